"""Run a Pulumi program in-process under the SDK's mock engine.

This is how offline render and the tests execute the real program: the same
`__main__.py` and components a `pulumi up` runs, with the engine replaced by
`cli.mocks`. Config is handed over exactly as the Pulumi CLI hands it to a
Python program (flat `project:key` strings, objects as JSON, plus the list of
keys that hold secrets).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from cli.mocks import SECRET_MARK, RecordingMonitor, WebstackMocks

PROJECT = "webstack"


@dataclass
class ProgramRun:
    monitor: RecordingMonitor
    outputs: dict[str, Any]  # stack outputs; secrets shown as SECRET_MARK


def flatten_config(values: Mapping[str, Any]) -> dict[str, str]:
    """Pulumi passes every config value to the program as a string; objects as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def start(stack: str, config: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset(),
          *, preview: bool = False) -> RecordingMonitor:
    """Points the Pulumi runtime at fresh mocks with this stack's config."""
    mocks = WebstackMocks()
    monitor = RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(flatten_config(config), sorted(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    return monitor


def run_program(stack: str, config: Mapping[str, Any], program: Callable[[], None],
                secret_keys: set[str] | frozenset[str] = frozenset(),
                *, preview: bool = False) -> ProgramRun:
    """Runs `program` to completion under mocks; raises what the program raised."""
    return run_started(start(stack, config, secret_keys, preview=preview), program)


def run_started(monitor: RecordingMonitor, program: Callable[[], None]) -> ProgramRun:
    """Runs `program` under the mocks `start` set up. If it raises, `monitor` still holds
    what it registered before, and nothing of this run is left to fail the next one."""
    runtime_settings.SETTINGS.rpc_manager.clear()
    try:
        _sync_await(run_pulumi_func(program))
    except BaseException:
        _finish_what_a_failed_run_left()
        raise
    root = runtime_settings.get_root_resource()
    exported = dict(getattr(root, "outputs", {}) or {})
    return ProgramRun(monitor=monitor, outputs=_resolve(exported))


def _finish_what_a_failed_run_left() -> None:
    """A run that fails in an Output stops waiting at the first error and leaves its other outputs
    and tasks on the event loop; the next run would await them and fail with this run's error.
    Let them finish (their errors are this run's, already raised) before anything else runs."""
    async def drain() -> None:
        for _ in range(20):  # outputs that finish may start others; a few rounds settle them
            me = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            left += list(runtime_settings.SETTINGS.outputs)
            runtime_settings.SETTINGS.outputs.clear()
            if not left:
                return
            try:
                await asyncio.wait_for(asyncio.gather(*left, return_exceptions=True), timeout=10)
            except asyncio.TimeoutError:
                return  # what never finishes is cancelled by wait_for

    _sync_await(drain())


def _resolve(exported: dict[str, Any]) -> dict[str, Any]:
    """Waits for exported Outputs and masks the secret ones."""
    async def one(value: Any) -> Any:
        out = pulumi.Output.from_input(value)
        plain = await out.future(with_unknowns=True)
        if await out.is_secret():
            return SECRET_MARK
        return _jsonable(plain)

    return {name: _sync_await(one(value)) for name, value in sorted(exported.items())}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
