"""Each example stack run once under mocks per test session, shared by the test modules."""

from __future__ import annotations

from cli.offline import ProgramRun
from cli.render import run_stack

_cache: dict[str, ProgramRun] = {}


def stack(name: str) -> ProgramRun:
    if name not in _cache:
        _cache[name] = run_stack(name)
    return _cache[name]
