"""Shared fixtures: run the real program or a single component under the mock engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
