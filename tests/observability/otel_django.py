"""The Django reference project in the kit's pod (tests/byo_app/django_pod.py: Nginx in front of
Gunicorn with the rendered gunicorn.conf.py), sending its traces to a given OTLP/HTTP endpoint.

django-local is rendered with one change, `webstack:django.server.workers: 2` (its dev profile
sizes one worker), because what is proved is that every worker process exports. Its release Job
and init container run first, as tests/django_app/kit_pod.local_pod runs them. The substitutions
are django_pod's, plus the env the caller adds (`extra_env`, listed in Pod.substitutions).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for folder in ("fastapi_app", "byo_app", "django_plans"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from django_app.kit_pod import local_pod  # noqa: E402
from django_app.shop_app import missing_venv  # noqa: E402
from django_pod import Pod  # noqa: E402

STACK = "django-local"
WORKERS = 2

__all__ = ["STACK", "WORKERS", "missing_venv", "django_pod", "gunicorn_worker_pids"]


@contextmanager
def django_pod(dest: Path, nginx_bin: str, nginx_user: tuple[int, int] | None,
               extra_env: Mapping[str, str]) -> Iterator[Pod]:
    """django-local with WORKERS Gunicorn workers, its database migrated and static files
    collected, started; stopped and removed (with its PostgreSQL) on exit."""
    with local_pod(dest, nginx_bin, nginx_user, changes={"webstack:django": {"server": {"workers": WORKERS}}},
                   extra_env=extra_env) as (pod, _):
        yield pod.start()


def gunicorn_worker_pids(master_pid: int) -> set[int]:
    """The Gunicorn master's children: its worker processes."""
    return {int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()}
