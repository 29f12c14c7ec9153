"""Fixtures for the bring-your-own-app tests: .venv-byo (the apps' own packages, none of the
kit's), a throwaway PostgreSQL and `serve`, both from tests/fastapi_app/harness.py, and Debian's
nginx for a Django stack's pod.

A missing piece skips with the reason; under CI (CI=true) it fails instead, because .ci/run
installs everything (tools/setup) and a skipped check there would pass silently.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fastapi_app"))

from harness import Servers, require  # noqa: E402
from harness_fixtures import postgres_fixture  # noqa: E402
from kubelet import BYO_VENV, Container, Render, missing_byo_venv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "django_plans"))

from nginx_fixtures import nginx_bin, nginx_user  # noqa: E402, F401 (fixtures)

from cli.offline import run_program  # noqa: E402
from cli.render import ROOT, write_render  # noqa: E402


@pytest.fixture(scope="session")
def byo_venv() -> Path:
    require(missing_byo_venv())
    return BYO_VENV


postgres = postgres_fixture("postgres", scope="session", after="byo_venv",
                            doc="One PostgreSQL for these tests; each app gets its own role and database.")


@pytest.fixture
def serve(byo_venv, tmp_path) -> Iterator:
    """`serve(argv, env, cwd=..., port=..., ready_path=...)` starts a server, waits until
    `ready_path` answers 200 (bounded), and always stops it (SIGTERM, then SIGKILL)."""
    servers = Servers(tmp_path / "logs")
    try:
        yield servers.start
    finally:
        servers.stop_all()


def program() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@pytest.fixture(scope="module")
def rendered(request, tmp_path_factory) -> Render:
    """The test module's stack (its STACK, CONFIG and SECRET_KEYS) rendered as `python -m cli render`
    writes it, with the mock engine's record of it."""
    stack, config, secret_keys = request.module.STACK, request.module.CONFIG, request.module.SECRET_KEYS
    run = run_program(stack, config, program, secret_keys)
    dest = tmp_path_factory.mktemp("render") / stack
    write_render(stack, run, dest)
    return Render(stack, dest, run.monitor, dict(run.outputs))


@pytest.fixture(scope="module")
def job(rendered) -> Container:
    """The stack's one release step, `app.release[0]`."""
    return rendered.container("Job-web-release-1-*.release.json")

