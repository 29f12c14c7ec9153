"""The Gunicorn command a Django pod runs, and the release step before it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.django.settings import GunicornServer

MIGRATE = ["python", "manage.py", "migrate", "--noinput"]


def gunicorn_command(server: GunicornServer, port: int) -> list[str]:
    """The server command the pods run; the kit owns it so the grace period matches it."""
    return ["gunicorn", server.wsgi_app, "--bind", f"0.0.0.0:{port}",
            "--graceful-timeout", str(server.graceful_timeout_seconds),
            "--timeout", str(server.timeout_seconds),
            "--keep-alive", str(server.keep_alive_timeout_seconds),
            "--access-logfile", "-"]
