"""How long the offline render takes, from a cold process, per example stack.

    .venv/bin/python bench/render_time.py [--runs 5]

Reports the wall time of `python -m cli render <stack>` (interpreter start, imports,
program under mocks, files written, exit) and its ratio to the 3 s budget:

- first: the first render with an empty SDK bytecode cache (cli/sdk_imports.py compiles
  the SDK modules it imports once, as pip does at install);
- median/min/max: later renders, the cache warm;
- plain: the same render without the kit's two speed-ups (`render()` called from a plain
  interpreter: SDK annotations evaluated at import, full interpreter teardown).

A script, not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.render import example_stacks  # noqa: E402

BUDGET_S = 3.0


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'stack':<16} {'first s':>8} {'median s':>9} {'min s':>7} {'max s':>7} {'of budget':>10} "
          f"{'plain s':>8} {'plain/kit':>10}")
    stacks = example_stacks(ROOT)
    first: dict[str, float] = {}
    kit: dict[str, list[float]] = {s: [] for s in stacks}
    plain: dict[str, list[float]] = {s: [] for s in stacks}
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}

        def cli(stack: str) -> list[str]:
            return [sys.executable, "-m", "cli", "render", stack, "--out", out]

        def bare(stack: str) -> list[str]:
            return [sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from cli.render import render; render(sys.argv[1], Path(sys.argv[2]))",
                    stack, out]

        for stack in stacks:
            first[stack] = timed(cli(stack), {**env, "XDG_CACHE_HOME": f"{cache}/empty-{stack}"})
            timed(cli(stack), env)  # fills the shared cache the timed runs below use
        # Round-robin, so that a slow minute on a shared machine spreads over every stack.
        for _ in range(args.runs):
            for stack in stacks:
                kit[stack].append(timed(cli(stack), env))
                plain[stack].append(timed(bare(stack), env))
    for stack in stacks:
        med, plain_med = statistics.median(kit[stack]), statistics.median(plain[stack])
        print(f"{stack:<16} {first[stack]:>8.2f} {med:>9.2f} {min(kit[stack]):>7.2f} {max(kit[stack]):>7.2f} "
              f"{med / BUDGET_S:>9.0%} {plain_med:>8.2f} {plain_med / med:>9.2f}x")


if __name__ == "__main__":
    main()
