"""How long the offline render takes, from a cold process, per example stack.

    .venv/bin/python bench/render_time.py [--runs 5]

Reports the median wall time of `python -m stacks render <stack>` (interpreter start,
imports, program under mocks, files written) and its ratio to the 3 s budget. A script,
not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks.render import example_stacks  # noqa: E402

BUDGET_S = 3.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'stack':<16} {'median s':>9} {'min s':>7} {'of budget':>10}")
    with tempfile.TemporaryDirectory() as out:
        for stack in example_stacks(ROOT):
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "stacks", "render", stack, "--out", out],
                               cwd=ROOT, check=True, capture_output=True)
                times.append(time.perf_counter() - start)
            med = statistics.median(times)
            print(f"{stack:<16} {med:>9.2f} {min(times):>7.2f} {med / BUDGET_S:>9.0%}")


if __name__ == "__main__":
    main()
