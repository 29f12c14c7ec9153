"""Fixtures for the Django reference project's tests: a throwaway PostgreSQL, collected static
files, `serve(argv, env)`, which runs a server under .venv-django and always stops it, and
Debian's nginx for the kit's pod (test_kit_served.py, test_graceful_stop.py).

A missing binary skips with the reason; under CI (CI=true) it fails instead (harness.require),
because .ci/run installs everything (tools/setup) and a skipped check there would pass silently.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fastapi_app"))

import harness  # noqa: E402
from harness import Server, Servers, require  # noqa: E402
from harness_fixtures import database, port, postgres_fixtures  # noqa: E402, F401 (fixtures)

# The kit's pod on loopback (django_pod, kubelet) and its Nginx (plans_harness).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "byo_app"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "django_plans"))

from nginx_fixtures import nginx_bin, nginx_user  # noqa: E402, F401 (fixtures)

from . import shop_app  # noqa: E402


@pytest.fixture(scope="session")
def django_venv() -> Path:
    require(shop_app.missing_venv())
    return shop_app.VENV


postgres, own_postgres = postgres_fixtures(after="django_venv")


@pytest.fixture
def migrated(postgres, database) -> str:
    """A database at `manage.py migrate`, as the release Job leaves it; returns its name."""
    shop_app.ok(shop_app.manage(postgres.env(database), "migrate", "--noinput"))
    return database


@pytest.fixture(scope="session")
def static_root(django_venv, tmp_path_factory) -> Path:
    """`collectstatic` once, as the kit's init container runs it: the hashed files and their
    manifest, without which a page with DEBUG off can't name its static files."""
    root = tmp_path_factory.mktemp("static")
    shop_app.ok(shop_app.manage({"STATIC_ROOT": str(root)}, "collectstatic", "--noinput"))
    return root


@pytest.fixture
def app_env(postgres, migrated, static_root) -> dict[str, str]:
    """What a server needs to serve every page: a migrated database and collected static files."""
    return {**postgres.env(migrated), "STATIC_ROOT": str(static_root)}


@pytest.fixture
def serve(django_venv, tmp_path) -> Iterator:
    """`serve(argv, env, port=...)` starts a server in the app folder and waits for /healthz.
    Servers stop before fixtures set up earlier (request `otlp` before `serve` so the
    receiver is still there for the shutdown flush)."""
    servers = Servers(tmp_path / "logs")

    def _serve(argv: Sequence[str], env: Mapping[str, str], *, port: int, ready_path: str = "/healthz") -> Server:
        return servers.start(argv, shop_app.env(env), port=port, cwd=shop_app.APP_DIR, ready_path=ready_path)

    try:
        yield _serve
    finally:
        servers.stop_all()


@pytest.fixture
def otlp(django_venv, tmp_path) -> Iterator[harness.OtlpReceiver]:
    require(harness.missing_app_venv())  # the receiver runs under .venv-app (opentelemetry-proto)
    receiver = harness.OtlpReceiver(tmp_path / "otlp")
    try:
        yield receiver
    finally:
        receiver.close()

