"""Fixtures for the bring-your-own-app tests: .venv-byo (the apps' own packages, none of the
kit's), a throwaway PostgreSQL and `serve`, both from tests/fastapi_app/harness.py.

A missing piece skips with the reason; under CI (CI=true) it fails instead, because .ci/run
installs everything (tools/setup) and a skipped check there would pass silently.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fastapi_app"))

import harness  # noqa: E402
from harness import Postgres, Server  # noqa: E402
from kubelet import BYO_VENV, missing_byo_venv  # noqa: E402


def require(reason: str | None) -> None:
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def byo_venv() -> Path:
    require(missing_byo_venv())
    return BYO_VENV


@pytest.fixture(scope="session")
def postgres(byo_venv) -> Iterator[Postgres]:
    """One PostgreSQL for these tests; each app gets its own role and database."""
    require(harness.missing_postgres())
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture
def serve(byo_venv, tmp_path) -> Iterator:
    """`serve(argv, env, cwd=..., port=..., ready_path=...)` starts a server, waits until
    `ready_path` answers 200 (bounded), and always stops it (SIGTERM, then SIGKILL)."""
    started: list[Server] = []

    def _serve(argv: Sequence[str], env: Mapping[str, str], *, cwd: Path, port: int,
               ready_path: str, ready_headers: Mapping[str, str] | None = None) -> Server:
        server = Server(argv, env=env, cwd=cwd, port=port, log_dir=tmp_path / "logs",
                        ready_path=ready_path, ready_timeout=60, name=f"server{len(started)}",
                        ready_headers=ready_headers)
        started.append(server)
        server.start()
        return server

    try:
        yield _serve
    finally:
        for server in started:
            server.stop()
