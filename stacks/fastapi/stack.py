"""FastApiStack: a FastAPI service on Uvicorn, autoscaled in Kubernetes."""

from __future__ import annotations

import pulumi

from stacks.base import WebStack
from stacks.settings import FastApiSettings, UvicornServer


def uvicorn_command(server: UvicornServer, port: int) -> list[str]:
    """The server command the pods run; the kit owns it so the grace period matches it."""
    return ["uvicorn", server.app, "--host", "0.0.0.0", "--port", str(port),
            "--timeout-graceful-shutdown", str(server.graceful_timeout_seconds),
            "--timeout-keep-alive", str(server.keep_alive_timeout_seconds)]


class FastApiStack(WebStack):
    """FastAPI on Uvicorn: namespace under restricted Pod Security, autoscaled service, ingress."""

    def __init__(self, name: str, settings: FastApiSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:FastApiStack", name, settings, opts)
        fa = settings.fastapi
        self._platform(needs_network=False)
        ns = self._namespace(database_port=None, serve_port=settings.app.port)
        self._web_service(ns, command=uvicorn_command(fa.server, settings.app.port),
                          graceful_timeout=fa.server.graceful_timeout_seconds, autoscaling=fa.autoscaling)
        self._finish()
