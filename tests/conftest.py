"""Shared fixtures: run the real program or a single component under the mock engine, and
`checkov`, the path of the tool.

The repository root is on sys.path (`cli`, `components`, `stacks`), and so is this folder, for
the check modules the test folders share by bare name (dockerfile_checks).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for path in (TESTS, ROOT):  # each to the front, so ROOT is searched first
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cli.mocks import RecordingMonitor  # noqa: E402
from cli.offline import run_program  # noqa: E402


@pytest.fixture
def run():
    """`run(program, stack=..., config=..., secret_keys=...)` runs `program` to completion
    under mocks and returns the RecordingMonitor (`.all(type)`, `.one(type, name)`)."""

    def _run(program, *, stack: str = "test", config: dict | None = None,
             secret_keys: set[str] | None = None) -> RecordingMonitor:
        return run_program(stack, config or {}, program, set(secret_keys or ())).monitor

    return _run


@pytest.fixture(scope="session")
def checkov() -> str:
    """checkov's path. Missing, the test skips with how to get it; under CI (CI=true) it fails
    instead, because .ci/run installs it and a skipped check there would pass silently."""
    tool = shutil.which("checkov")
    if tool is None:
        reason = "checkov is installed into .venv-tools by tools/setup; run the suite with ./tools/test"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)
    return tool
