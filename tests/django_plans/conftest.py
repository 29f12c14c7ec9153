"""Fixtures for the Django pod's plans (stacks/django/server.py, stacks/django/nginx.py): Debian's
nginx, .venv-byo's Gunicorn, and a scratch directory both can use.

A missing binary skips with the reason; under CI (CI=true) it fails instead (harness.require),
because .ci/run installs everything (tools/setup) and a skipped check there would pass silently.

As root, Nginx runs as `nobody`, as in the pod (a non-root uid, no `user` directive): the
scratch directory is world-readable and the parts Nginx writes are owned by that user.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fastapi_app"))

from harness import require  # noqa: E402
from nginx_fixtures import nginx_bin, nginx_user  # noqa: E402, F401 (fixtures)
from plans_harness import BYO_GUNICORN, make_scratch  # noqa: E402


@pytest.fixture(scope="session")
def gunicorn_bin() -> Path:
    require(None if BYO_GUNICORN.exists() else f"{BYO_GUNICORN} missing: run tools/setup (./tools/test does)")
    return BYO_GUNICORN


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = make_scratch()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
