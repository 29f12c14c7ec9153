"""The whole benchmark in one run: `bench/run` (which sets up first) or `.venv/bin/python -m bench`.

    bench/run [--smoke] [--suites fastapi,django,limits,render] [--out bench/results]

Serve suites (bench/serve) on loopback under wrk, then the render suite (bench/render.py), then the
JSON, markdown table and charts (bench/report.py) in --out, named by today's date. The default sizes
finish in under 10 minutes on 2 cores; --smoke runs every setup once at a tiny size (seconds per
setup: its numbers mean nothing) so the benchmark cannot rot unnoticed (tests/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.serve.load import WRK, WRK_TIMEOUT_SECONDS, Options, Run, cpu_count, missing_tools

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("limits", "fastapi", "django", "render")
# The default run's bound: the 10 minutes, with room; a hung server must not hang CI or a laptop.
BUDGET_S = 15 * 60
SMOKE_BUDGET_S = 5 * 60


def options(args: argparse.Namespace) -> Options:
    if args.smoke:
        return Options(duration=1, warm_up=0, connections=(16,), quiet_wait=1, smoke=True)
    return Options(duration=args.duration, warm_up=args.warm_up,
                   connections=tuple(int(c) for c in args.connections.split(",")))


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return f"{argv[0]}: not found"
    return ((done.stdout + done.stderr).strip().splitlines() or ["?"])[0]


def _package_versions(venv: str, names: list[str]) -> list[str]:
    python = ROOT / venv / "bin" / "python"
    if not python.exists():
        return []
    code = ("import importlib.metadata as m, sys\n"
            "for n in sys.argv[1:]:\n"
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: pass\n")
    done = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, timeout=60)
    return done.stdout.strip().splitlines()


def machine(opts: Options) -> dict:
    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    versions = [f"Python {platform.python_version()}", _first_line([WRK, "-v"]).split(" [")[0],
                _first_line(["/usr/sbin/nginx", "-v"]).replace("nginx version: ", "")]
    versions += _package_versions(".venv-app", ["uvicorn", "granian", "gunicorn", "fastapi"])
    versions += [f"{v} (Django app)" for v in _package_versions(".venv-django", ["django", "gunicorn"])]
    return {"cpus": f"{os.cpu_count()} CPUs ({cpu.group(1) if cpu else platform.machine()})",
            "memory": f"{int(mem.group(1)) / 2**20:.0f} GiB" if mem else "?",
            "pinned_cpus": cpu_count(opts), "kernel": platform.release(), "versions": versions}


def run_suite(name: str, opts: Options, work: Path) -> list[Run]:
    if name == "limits":
        from bench.serve import limits as suite
    elif name == "fastapi":
        from bench.serve import fastapi_setups as suite
    else:
        from bench.serve import django_setups as suite
    print(f"\n== {name}", flush=True)
    return suite.run(opts, work / name, log=lambda line: print(line, flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every setup once, tiny sizes (seconds)")
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated, of {', '.join(SUITES)}")
    parser.add_argument("--duration", type=int, default=Options.duration, help="seconds per measured wrk run")
    parser.add_argument("--warm-up", type=int, default=Options.warm_up, help="seconds of load before each run")
    parser.add_argument("--connections", default=",".join(map(str, Options.connections)),
                        help="wrk's open connections, comma-separated")
    parser.add_argument("--render-runs", type=int, default=3, help="cold renders per stack and size")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the outputs go")
    args = parser.parse_args(argv)
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    if unknown := [s for s in suites if s not in SUITES]:
        parser.error(f"--suites: unknown {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    opts = options(args)
    serving = [s for s in suites if s != "render"]
    if serving and (problems := missing_tools(opts)):
        parser.error("; ".join(problems))

    budget = SMOKE_BUDGET_S if args.smoke else BUDGET_S
    # SIGTERM and the overall bound unwind like Ctrl-C, so every server and PostgreSQL is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"bench: gave up after {budget} s"))
    signal.alarm(budget)
    started, work = time.monotonic(), Path(tempfile.mkdtemp(prefix="webstack-bench-"))
    os.chmod(work, 0o755)  # as root, Nginx's workers (nobody) must reach the pods' files below it
    result: dict = {"date": datetime.date.today().isoformat(),
                    "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(opts), "smoke": args.smoke,
                    "options": {"duration": opts.duration, "warm_up": opts.warm_up,
                                "connections": list(opts.connections), "cpus": opts.cpus,
                                "wrk_timeout_s": WRK_TIMEOUT_SECONDS, "render_runs": args.render_runs},
                    "serve": [], "render": None}
    try:
        print(f"bench: {result['machine']['cpus']}, {', '.join(result['machine']['versions'])}", flush=True)
        for name in SUITES:
            if name in serving:
                result["serve"] += [r.as_dict() for r in run_suite(name, opts, work)]
        if "render" in suites:
            from bench import render
            print("\n== render", flush=True)
            result["render"] = (render.run(runs=1, sizes=(1, 2), stacks=render_smoke_stacks())
                                if args.smoke else render.run(runs=args.render_runs))
    finally:
        signal.alarm(0)
        shutil.rmtree(work, ignore_errors=True)
    result["elapsed_s"] = time.monotonic() - started
    targets = report.serve_targets(result["serve"]) + report.render_targets(result["render"] or {})
    result["targets"] = [t.as_dict() for t in targets]
    written = report.write(result, args.out)
    print("\n" + report.targets_table(targets))
    print(f"\nbench: {result['elapsed_s']:.0f} s; wrote {', '.join(str(p) for p in written)}")
    return 0


def render_smoke_stacks() -> list[str]:
    """One example stack, the quickest to render (no AWS resources)."""
    from cli.render import example_stacks
    stacks = example_stacks(ROOT)
    return ["fastapi-local"] if "fastapi-local" in stacks else stacks[:1]


if __name__ == "__main__":
    sys.exit(main())
