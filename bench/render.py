"""How long the offline render takes as a cold process, per example stack and as a platform grows.

    .venv/bin/python bench/render.py [--runs 3] [--sizes 1,10,50,100] [--stacks fastapi-dev,...]

Every render is a new process, timed from spawn to exit, as a user runs it: interpreter start,
imports, the program under mocks, every file written. Its peak memory is the child's max RSS,
read with `os.wait4` when it is reaped.

- Example stacks: `python -m cli render <stack> --out <tmp>`. The first render of each runs with
  an empty SDK bytecode cache (cli/sdk_imports.py compiles the SDK modules it imports once, as pip
  does at install): reported as `first_s`, it also fills that stack's cache for the timed runs.
- Synthetic stacks: `python bench/synthetic_stack.py N`, one program with N of the kit's FastAPI
  services (that module says what each is), after one untimed render that fills its cache.

Timed runs go round-robin (every stack, then every size, `runs` times), so a slow moment on a
shared machine spreads over all of them instead of landing on one. `run()` is what `bench/run`
calls; bench/report.py holds the targets and tables it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.synthetic_stack import stack_name  # noqa: E402
from cli.render import example_stacks  # noqa: E402

SIZES = (1, 10, 50, 100)
# A render that takes this long is hung, not slow: the 3 s budget with a wide margin for a busy
# machine (an example stack) and about 0.15 s per service measured, times ten (synthetic).
EXAMPLE_TIMEOUT_S = 60.0
SYNTHETIC_TIMEOUT_S, SYNTHETIC_TIMEOUT_PER_SERVICE_S = 60.0, 1.5


@dataclass(frozen=True)
class Sample:
    """One cold render: wall seconds from spawn to exit, and the process's peak RSS."""

    seconds: float
    max_rss_mib: float


def cold_render(argv: list[str], *, cache: Path, timeout_s: float) -> Sample:
    """Runs `argv` from the repository root with `cache` as XDG_CACHE_HOME; raises if it fails or
    outlives `timeout_s` (then it is killed)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        status, usage = _reap(proc.pid, timeout_s)
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if code != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-15:]
            why = f"killed after {timeout_s:.0f} s" if code == -signal.SIGKILL else f"exit status {code}"
            raise RuntimeError(f"{' '.join(argv[1:])}: {why}\n" + "\n".join(tail))
    # Linux reports ru_maxrss in KiB.
    return Sample(seconds, usage.ru_maxrss / 1024)


def _reap(pid: int, timeout_s: float) -> tuple[int, Any]:
    """Waits for the child to exit (at most `timeout_s`, then kills it) and reaps it with wait4,
    which returns that child's own rusage: RUSAGE_CHILDREN would be the maximum over all children
    so far. A pidfd wakes at the exit itself, so no polling interval adds to the time."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            os.kill(pid, signal.SIGKILL)  # not reaped yet, so the pid is still this child's
    finally:
        os.close(fd)
    _, status, usage = os.wait4(pid, 0)
    return status, usage


def example_argv(stack: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "cli", "render", stack, "--out", str(out)]


def synthetic_argv(services: int, out: Path) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "synthetic_stack.py"), str(services), "--out", str(out)]


def resource_count(render_dir: Path) -> int:
    return len(json.loads((render_dir / "resources.json").read_text())["resources"])


def summary(samples: list[Sample]) -> dict[str, Any]:
    times = [s.seconds for s in samples]
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "max_rss_mib": max(s.max_rss_mib for s in samples), "runs": [round(t, 3) for t in times]}


def run(*, runs: int = 3, sizes: tuple[int, ...] = SIZES, stacks: list[str] | None = None,
        log: Callable[[str], None] = lambda line: print(line, flush=True)) -> dict:
    """Measures every example stack (or `stacks`) and the synthetic stack at each size, `runs` timed
    cold renders each. Returns JSON-able data (bench/report.py makes its tables and targets):

    {"budget_s", "elapsed_s",
     "examples": [{"stack", "first_s", "median_s", "min_s", "max_s", "max_rss_mib", "resources", "runs"}],
     "synthetic": [{"services", "resources", "median_s", "min_s", "max_s", "max_rss_mib", "runs"}]}

    `runs` lists the timed renders' seconds; `max_rss_mib` is the highest of them."""
    if runs < 1:
        raise ValueError("runs: at least 1")
    stacks = example_stacks(ROOT) if stacks is None else list(stacks)
    sizes = tuple(sorted(set(sizes)))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="webstack-render-") as work:
        out, caches = Path(work) / "out", Path(work) / "cache"
        first: dict[str, Sample] = {}
        for stack in stacks:
            first[stack] = cold_render(example_argv(stack, out), cache=caches / stack, timeout_s=EXAMPLE_TIMEOUT_S)
            log(f"render {stack}: first render (empty SDK cache) {first[stack].seconds:.2f} s")
        if sizes:
            warm = cold_render(synthetic_argv(sizes[0], out), cache=caches / "synthetic",
                               timeout_s=_synthetic_timeout(sizes[0]))
            log(f"render synthetic: first render (empty SDK cache, {_label(sizes[0])}) {warm.seconds:.2f} s")
        timed: dict[str | int, list[Sample]] = {key: [] for key in [*stacks, *sizes]}
        for round_no in range(1, runs + 1):
            for stack in stacks:
                timed[stack].append(cold_render(example_argv(stack, out), cache=caches / stack,
                                                timeout_s=EXAMPLE_TIMEOUT_S))
            for n in sizes:
                timed[n].append(cold_render(synthetic_argv(n, out), cache=caches / "synthetic",
                                            timeout_s=_synthetic_timeout(n)))
            log(f"render: round {round_no}/{runs} " + ", ".join(
                f"{_label(key)} {samples[-1].seconds:.2f} s" for key, samples in timed.items()))
        examples = [{"stack": s, "first_s": first[s].seconds, "resources": resource_count(out / s),
                     **summary(timed[s])} for s in stacks]
        synthetic = [{"services": n, "resources": resource_count(out / stack_name(n)), **summary(timed[n])}
                     for n in sizes]
    return {"budget_s": report.RENDER_BUDGET_S, "elapsed_s": time.monotonic() - started,
            "examples": examples, "synthetic": synthetic}


def _label(key: str | int) -> str:
    """A stack's name, or a synthetic size as "N services"."""
    if isinstance(key, str):
        return key
    return f"{key} service" + ("" if key == 1 else "s")


def _synthetic_timeout(services: int) -> float:
    return SYNTHETIC_TIMEOUT_S + SYNTHETIC_TIMEOUT_PER_SERVICE_S * services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/render.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed cold renders per stack and size (default 3)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="web services in the synthetic stack, comma-separated; empty: none")
    parser.add_argument("--stacks", help="example stacks, comma-separated (default: every Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    try:
        sizes = tuple(int(n) for n in args.sizes.split(",") if n.strip())
    except ValueError:
        parser.error(f"--sizes: whole numbers separated by commas, got {args.sizes!r}")
    if args.runs < 1 or any(n < 1 for n in sizes):
        parser.error("--runs and --sizes: at least 1")
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()] if args.stacks is not None else None
    if stacks and (unknown := sorted(set(stacks) - set(example_stacks(ROOT)))):
        parser.error(f"--stacks: no Pulumi.<stack>.yaml for {', '.join(unknown)}")
    result = run(runs=args.runs, sizes=sizes, stacks=stacks)
    print("\n" + report.render_tables(result))
    print("\n" + report.targets_table(report.render_targets(result)))
    print(f"\nrender benchmark: {result['elapsed_s']:.0f} s, {args.runs} timed runs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
