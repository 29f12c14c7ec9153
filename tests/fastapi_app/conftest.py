"""Fixtures for the FastAPI reference app's tests: a throwaway PostgreSQL, an OTLP receiver,
and `serve(argv, env)`, which runs a server with .venv-app first on PATH and always stops it.

A missing binary skips with the reason; under CI (CI=true) it fails instead, because
.ci/run installs everything (tools/setup) and a skipped check there would pass silently.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import APP_DIR, OtlpReceiver, Server, Servers, require  # noqa: E402
from harness_fixtures import database, port, postgres_fixtures  # noqa: E402, F401 (fixtures)


@pytest.fixture(scope="session")
def app_venv() -> Path:
    require(harness.missing_app_venv())
    return harness.VENV_APP


postgres, own_postgres = postgres_fixtures(after="app_venv")


@pytest.fixture
def migrated(postgres, database) -> str:
    """A database at `alembic upgrade head`; returns its name."""
    result = harness.alembic(postgres.env(database), "upgrade", "head")
    assert result.returncode == 0, result.stdout + result.stderr
    return database


@pytest.fixture
def otlp(app_venv, tmp_path) -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver(tmp_path / "otlp")
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def serve(app_venv, tmp_path) -> Iterator:
    """`serve(argv, env, port=..., cwd=APP_DIR)` starts a server and waits for /healthz.
    Servers stop before fixtures set up earlier (request `otlp` before `serve` so the
    receiver is still there for the shutdown flush)."""
    servers = Servers(tmp_path / "logs")

    def _serve(argv: Sequence[str], env: Mapping[str, str], *, port: int, cwd: Path = APP_DIR,
               ready_path: str = "/healthz") -> Server:
        return servers.start(argv, env, port=port, cwd=cwd, ready_path=ready_path)

    try:
        yield _serve
    finally:
        servers.stop_all()

