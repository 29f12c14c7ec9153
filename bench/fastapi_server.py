"""The kit's Uvicorn command against a naive one and against the bare limit, on loopback.

    .venv/bin/python bench/fastapi_server.py [--duration 10] [--connections 64]

Needs tools/setup (.venv-app), PostgreSQL server binaries and wrk (tools/setup installs both
as root on Debian). One run starts a throwaway PostgreSQL (migrated, 1000 items), then
measures with wrk, each run after a warm-up:

1. naive: `uvicorn orders_api.main:app` with Uvicorn's defaults (1 worker, access log on);
2. kit: the command and env rendered for fastapi-local (`config/run/Deployment-*.app.json`),
   with the substitutions of tests/fastapi_app/test_rendered_server.py (no OTLP collector:
   spans are made, not exported, as rendered);
3. bare: a minimal ASGI app returning a fixed body, under the kit's exact flags.

Endpoints: /healthz (no I/O) and /items/1 (one primary-key read in PostgreSQL). Then the
worker-model question: the kit's command with 1 or 2 workers, the server pinned to 1 CPU
(taskset -c 0; wrk on the other) or given both (wrk shares them). RSS per worker process
is read from /proc after each run. Before each run it waits (up to 2 min) until nothing else
keeps the CPUs busy, and says so if it gave up. A script, not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fastapi_app"))

import harness  # noqa: E402
from harness import APP_DIR, Postgres, RenderedRun, Server, free_port, worker_pids  # noqa: E402

from cli.render import render  # noqa: E402

STACK = "fastapi-local"
PASSWORD = "bench-password"
BARE_APP = '''
BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
'''


@dataclass
class Result:
    label: str
    path: str
    rps: float
    p99_ms: float
    errors: int
    rss_mib: list[float]
    disturbed: bool = False  # something else used the CPUs right after the run


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over `seconds` (from /proc/stat)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(limit: float = 0.10, max_wait: float = 120) -> float:
    """Waits (bounded) until something else on the machine stops using the CPUs: another
    build during a run makes its numbers meaningless. Returns the busy share seen last."""
    deadline = time.monotonic() + max_wait
    busy = busy_fraction()
    while busy > limit and time.monotonic() < deadline:
        busy = busy_fraction(2.0)
    if busy > limit:
        print(f"  WARNING: the machine is {busy:.0%} busy with other work; numbers are not comparable")
    return busy


def wrk(port: int, path: str, *, duration: int, connections: int, cpus: str | None) -> tuple[float, float, int]:
    prefix = ["taskset", "-c", cpus] if cpus else []
    argv = prefix + ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
                     f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, errors + (int(non2xx.group(1)) if non2xx else 0)


def rss_mib(server: Server) -> list[float]:
    pids = worker_pids(server.pid) or {server.pid}  # one worker: the server process itself
    out = []
    for pid in sorted(pids):
        status = Path(f"/proc/{pid}/status").read_text()
        out.append(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024)
    return out


def measure(label: str, argv: list[str], env: dict[str, str], cwd: Path, port: int, paths: list[str], *,
            args: argparse.Namespace, log_dir: Path, server_cpus: str | None = None,
            wrk_cpus: str | None = None) -> list[Result]:
    if server_cpus:
        argv = ["taskset", "-c", server_cpus, *argv]
    results = []
    with Server(argv, env=env, cwd=cwd, port=port, log_dir=log_dir, name=re.sub(r"\W+", "-", label)) as server:
        for path in paths:
            wait_for_quiet()
            wrk(port, path, duration=2, connections=args.connections, cpus=wrk_cpus)  # warm-up
            rps, p99, errors = wrk(port, path, duration=args.duration, connections=args.connections, cpus=wrk_cpus)
            rss = rss_mib(server)
            time.sleep(0.5)  # the server settles; then anything busy is someone else
            result = Result(label, path, rps, p99, errors, rss, disturbed=busy_fraction() > 0.10)
            results.append(result)
            print(f"  {label:<34} {path:<10} {rps:>9.0f} req/s  p99 {p99:>7.2f} ms  errors {errors}"
                  f"{'  (disturbed)' if result.disturbed else ''}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=64, help="wrk's open connections")
    args = parser.parse_args()
    # SIGTERM (a timeout, CI) unwinds like Ctrl-C, so the servers and PostgreSQL get stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for problem in (harness.missing_app_venv(), harness.missing_postgres(),
                    None if shutil.which("wrk") else "wrk not found: apt-get install wrk"):
        if problem:
            raise SystemExit(problem)

    work = Path(tempfile.mkdtemp(prefix="webstack-bench-"))
    pg = Postgres(max_connections=200)
    try:
        rendered = render(STACK, work / "render")
        app = RenderedRun.find(rendered, "Deployment-*.app.json")
        user, name = app.env["DATABASE_USER"], app.env["DATABASE_NAME"]
        pg.psql("postgres", f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{PASSWORD}'")
        pg.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
        database = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(pg.port), "DATABASE_USER": user,
                    "DATABASE_NAME": name, "DATABASE_PASSWORD": PASSWORD, "DATABASE_SSLMODE": "disable"}
        migrated = harness.alembic(database, "upgrade", "head")
        assert migrated.returncode == 0, migrated.stderr
        pg.psql(name, "INSERT INTO items (name, description) "
                      "SELECT 'item ' || n, repeat('x', 100) FROM generate_series(1, 1000) n")

        bare_dir = work / "bare"
        bare_dir.mkdir()
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        paths = ["/healthz", "/items/1"]
        logs = work / "logs"

        def kit(workers: int | None = None, app_module: str | None = None) -> tuple[list[str], dict, Path, int]:
            port = free_port()
            argv, env, cwd, _ = app.local(port=port, database=database, scratch=work / f"pod-{port}")
            if workers is not None:
                argv[argv.index("--workers") + 1] = str(workers)
            if app_module is not None:
                argv[argv.index("orders_api.main:app")] = app_module
                cwd = bare_dir
            return argv, env, cwd, port

        print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), wrk -t1 "
              f"-c{args.connections}, {args.duration} s per run after a 2 s warm-up, all on loopback")
        print(f"kit command: {' '.join(app.argv)}")
        results: list[Result] = []
        print("\n== naive vs kit vs bare (no pinning: server and wrk share both CPUs)")
        naive_port = free_port()
        naive_env = {**database, "OTEL_TRACES_EXPORTER": "none"}
        results += measure("naive (uvicorn defaults)", harness.uvicorn_argv(naive_port)[:-2], naive_env,
                           APP_DIR, naive_port, paths, args=args, log_dir=logs)
        argv, env, cwd, port = kit()
        results += measure("kit (rendered fastapi-local)", argv, env, cwd, port, paths, args=args, log_dir=logs)
        argv, env, cwd, port = kit(app_module="bare_app:app")
        results += measure("bare (fixed body, kit flags)", argv, env, cwd, port, ["/healthz"], args=args,
                           log_dir=logs)

        print("\n== worker model: the kit's command, 1 or 2 workers, server on 1 or 2 CPUs")
        model: list[Result] = []
        for cpus, server_cpus, wrk_cpus in (("1 CPU", "0", "1"), ("2 CPUs", None, None)):
            for workers in (1, 2):
                argv, env, cwd, port = kit(workers=workers)
                model += measure(f"{cpus}, {workers} worker{'s' if workers > 1 else ''}", argv, env, cwd, port,
                                 paths, args=args, log_dir=logs, server_cpus=server_cpus, wrk_cpus=wrk_cpus)
        report(results, model)
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)


def report(results: list[Result], model: list[Result]) -> None:
    by = {(r.label.split(" ")[0], r.path): r for r in results}
    print("\n" + f"{'server':<30} {'path':<10} {'req/s':>8} {'p99 ms':>8} {'errors':>6} {'RSS/worker MiB':>15}")
    for r in results + model:
        rss = "/".join(f"{m:.0f}" for m in r.rss_mib)
        print(f"{r.label:<30} {r.path:<10} {r.rps:>8.0f} {r.p99_ms:>8.2f} {r.errors:>6} {rss:>15}"
              f"{'  *' if r.disturbed else ''}")
    if any(r.disturbed for r in results + model):
        print("* other work used the CPUs right after this run: rerun before trusting it")
    print("\nratios (req/s; p99)")
    for path in ("/healthz", "/items/1"):
        kit, naive, bare = by.get(("kit", path)), by.get(("naive", path)), by.get(("bare", path))
        line = f"  {path:<10} kit/naive {kit.rps / naive.rps:.2f}x; p99 {kit.p99_ms / naive.p99_ms:.2f}x"
        if bare:
            line += f"   kit/bare {kit.rps / bare.rps:.2f}x; p99 {kit.p99_ms / bare.p99_ms:.2f}x"
        print(line)
    for cpus in ("1 CPU", "2 CPUs"):
        for path in ("/healthz", "/items/1"):
            one = next(r for r in model if r.label == f"{cpus}, 1 worker" and r.path == path)
            two = next(r for r in model if r.label == f"{cpus}, 2 workers" and r.path == path)
            print(f"  {cpus:<6} {path:<10} 2 workers / 1 worker: {two.rps / one.rps:.2f}x req/s, "
                  f"p99 {two.p99_ms / one.p99_ms:.2f}x")


if __name__ == "__main__":
    main()
