"""The kit's Django pod (Nginx in front of Gunicorn) against a naive Gunicorn, on loopback.

    .venv/bin/python bench/django_server.py [--duration 10] [--connections 64,256]

Needs tools/setup (.venv-django), PostgreSQL server binaries, Debian's nginx and wrk (tools/setup
installs them as root on Debian). One run starts a throwaway PostgreSQL, migrates it
(`manage.py migrate`), then measures with wrk (`-t2 -c<n> -d<duration>s --latency --timeout 2s`,
wrk's default timeout said out loud), each run after a 2 s warm-up:

1. naive: `gunicorn shop.wsgi --bind 127.0.0.1:<port>`, Gunicorn's defaults otherwise (one sync
   worker), run from the app folder, which has no gunicorn.conf.py (checked);
2. kit: Debian's /usr/sbin/nginx with the kit's nginx.conf in front of Gunicorn with the kit's
   gunicorn.conf.py, command and env, computed by the kit's own functions (load_settings,
   plan_gunicorn, nginx_conf, as stacks/django/stack.py calls them) for django-local with a pod of
   2 cores (RESOURCES): 2 workers x 26 threads. The substitutions, and nothing else:
   - Gunicorn's socket dir /run/gunicorn (socket and worker_tmp_dir) -> <scratch>/gunicorn;
   - the config dirs /etc/webstack/{gunicorn,nginx} -> <scratch>/conf; `gunicorn` -> .venv-django's;
   - PROMETHEUS_MULTIPROC_DIR /tmp/prometheus-multiproc -> <scratch>/prometheus-multiproc;
   - the pod fields (POD_NAME, POD_NAMESPACE, NODE_NAME) -> the FastAPI harness's stand-ins,
     and their $(NAME) references expanded, as the kubelet does;
   - Nginx: listen 0.0.0.0:8000 -> 127.0.0.1:<free port>, the metrics listener 9000 -> a free
     port, its temp dir /tmp/nginx -> <scratch>/nginx-tmp, the static root /var/www/static ->
     <scratch>/static (empty: no route here reads it); as root, Nginx runs as `nobody`, as the
     pod's non-root uid (tests/django_plans/plans_harness.py).

Both get the same app env: DJANGO_SETTINGS_MODULE=django_bench.settings (bench/django_bench: the
shop's settings and URLs plus /io), a secret key, DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,
DJANGO_HTTPS=false, DATABASE_* of the throwaway PostgreSQL; and no OTLP collector, so
OTEL_TRACES_EXPORTER=none (the kit's rendered value for a stack without one; the clean env of
plans_harness for naive): spans are made, not exported. The kit adds its plan's env (OTEL_*,
PROMETHEUS_MULTIPROC_DIR); naive keeps the app's defaults (in-memory metrics).

Routes: /healthz (Django's, no I/O) and /io (50 ms in PostgreSQL: `SELECT pg_sleep(0.05)`).
Every server process and wrk run pinned to CPUs 0,1 (taskset): on a 2-core machine wrk, the
servers and PostgreSQL share both cores. Before each run it waits (up to 20 s) until nothing
else keeps the CPUs busy, and after each wrk run until the server has served what wrk left queued.
Besides wrk's numbers it reads, over each run, the CPU time of the server's processes per request
(Nginx and Gunicorn with their workers, from /proc) and how busy both CPUs were.
A script, not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
for tests_dir in ("fastapi_app", "django_app", "django_plans"):
    sys.path.insert(0, str(ROOT / "tests" / tests_dir))

import harness  # noqa: E402
import shop_app  # noqa: E402
from fastapi_server import busy_fraction, wait_for_quiet  # noqa: E402
from harness import POD_FIELD_STAND_INS, Postgres, free_port  # noqa: E402
from plans_harness import Proc, give_to, make_scratch, request, wait_until  # noqa: E402

from cli.offline import PROJECT  # noqa: E402
from cli.render import load_stack_file  # noqa: E402
from components.k8s_pod import expand_env  # noqa: E402
from stacks.config import load_settings  # noqa: E402
from stacks.django import nginx  # noqa: E402
from stacks.django.server import CONF_FILE as GUNICORN_CONF  # noqa: E402
from stacks.django.server import CONFIG_DIR as GUNICORN_DIR  # noqa: E402
from stacks.django.server import METRICS_DIR, gunicorn_conf, plan_gunicorn  # noqa: E402
from stacks.django.settings import DjangoSettings  # noqa: E402
from stacks.django.stack import trusted_proxies  # noqa: E402

STACK = "django-local"
RESOURCES = {"cpu_request": "500m", "cpu_limit": "2", "memory_request": "512Mi", "memory_limit": "1Gi"}
CPUS = "0,1"
NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
WRK_TIMEOUT_SECONDS = 2  # wrk's default: a response slower than this counts as a timeout, not a latency
WARM_UP_SECONDS = 2
IO_SECONDS = 0.05  # what /io waits in PostgreSQL (bench/django_bench/urls.py)
PATHS = ("/healthz", "/io")
DATABASE = "shop"
# The app's env in both modes; main adds HOME and the database's DATABASE_*.
APP_ENV = {"DJANGO_SETTINGS_MODULE": "django_bench.settings", "DJANGO_SECRET_KEY": shop_app.SECRET_KEY,
           "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "DJANGO_HTTPS": "false",
           "PYTHONPATH": f"{shop_app.APP_DIR}:{BENCH}", "PATH": f"{shop_app.BIN}:/usr/local/bin:/usr/bin:/bin"}


@dataclass
class Result:
    server: str
    path: str
    connections: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int  # wrk: "Non-2xx or 3xx responses"
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    server_cpu_ms: float  # CPU time of the server's processes (Nginx and Gunicorn) per answered request
    cpus_busy: float  # share of both CPUs busy during the run (servers, wrk, PostgreSQL)
    restarts: int  # Gunicorn workers replaced (max_requests) from the warm-up to the end of the run
    disturbed: bool = False  # something else used the CPUs right after the run

    @property
    def mean_ms(self) -> float:
        """Mean latency by Little's law (wrk keeps `connections` requests in flight): unlike wrk's
        percentiles, it includes the responses slower than wrk's timeout."""
        return 1000 * self.connections / self.rps if self.rps else float("inf")


@dataclass
class KitPod:
    gunicorn_argv: list[str]
    gunicorn_env: dict[str, str]
    nginx_argv: list[str]
    socket: str
    port: int
    workers: int
    threads: int


def kit_settings() -> DjangoSettings:
    """django-local's values with a 2-core pod, through the kit's own loader (profiles, validation)."""
    stack_file = load_stack_file(STACK)
    prefix = f"{PROJECT}:"
    values = {k[len(prefix):]: v for k, v in stack_file.config.items() if k.startswith(prefix)}
    values["app"] = {**values["app"], "resources": RESOURCES}
    settings = load_settings(values, {k[len(prefix):] for k in stack_file.secret_keys})
    assert isinstance(settings, DjangoSettings)
    return settings


def kit_pod(settings: DjangoSettings, scratch: Path, nginx_user: tuple[int, int] | None,
            app_env: dict[str, str]) -> KitPod:
    """The Gunicorn plan and nginx.conf as DjangoStack computes them, with the docstring's path
    substitutions; writes both config files under `scratch`."""
    dj = settings.django
    server = dj.server
    plan = plan_gunicorn(server, settings.app.resources, threads=settings.gunicorn_threads(),
                         service_name=settings.k8s_namespace(STACK), environment=settings.environment,
                         otlp_endpoint=settings.observability.otlp_endpoint,
                         trace_sample_ratio=settings.observability.trace_sample_ratio)
    socket_dir, conf_dir, metrics_dir = scratch / "gunicorn", scratch / "conf", scratch / "prometheus-multiproc"
    temp_dir, static_root = scratch / "nginx-tmp", scratch / "static"
    for path in (socket_dir, conf_dir, metrics_dir, temp_dir, static_root):
        path.mkdir(mode=0o755)
    give_to(temp_dir, nginx_user)
    socket = str(socket_dir / "gunicorn.sock")

    values = dict(workers=plan.workers, threads=plan.threads, timeout_seconds=server.timeout_seconds,
                  graceful_timeout_seconds=server.graceful_timeout_seconds, max_requests=server.max_requests,
                  max_requests_jitter=server.max_requests_jitter, log_level=server.log_level)
    # The same arguments give the plan's own file: only the paths below differ from the pod's.
    assert gunicorn_conf(**values) == plan.files[GUNICORN_CONF], "plan_gunicorn's arguments changed: update the bench"
    (conf_dir / GUNICORN_CONF).write_text(gunicorn_conf(**values, socket_path=socket, worker_tmp_dir=str(socket_dir)))
    argv = [str(shop_app.BIN / "gunicorn") if arg == "gunicorn" else arg.replace(GUNICORN_DIR, str(conf_dir))
            for arg in plan.command]

    env = {**plan.env}
    if env.get("PROMETHEUS_MULTIPROC_DIR") == METRICS_DIR:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    fields = {name: POD_FIELD_STAND_INS[field] for name, field in plan.pod_field_env.items()}
    env = expand_env([{"name": name} for name in fields] + [{"name": k, "value": v} for k, v in env.items()],
                     resolve=fields)

    port = free_port()
    conf = nginx.nginx_conf(  # DjangoStack.nginx_conf's values
        port=port, socket_path=socket, metrics_port=free_port() if server.metrics else None,
        admin_path=settings.admin_path(STACK), admin_allowed_cidrs=list(dj.admin.allowed_cidrs),
        trusted_proxy_cidrs=trusted_proxies(settings, None),  # the platform is read on aws only
        client_max_body_size_mb=dj.nginx.client_max_body_size_mb,
        keep_alive_timeout_seconds=dj.nginx.keep_alive_timeout_seconds,
        upstream_timeout_seconds=server.timeout_seconds + 5,
        shutdown_timeout_seconds=server.graceful_timeout_seconds + nginx.GUNICORN_STOP_LAG_SECONDS,
        https=settings.serves_https, static_root=str(static_root) if settings.target == "local" else None,
        worker_processes=nginx.worker_processes(dj.nginx.resources.cpu_limit),
        listen_address="127.0.0.1", temp_dir=str(temp_dir))
    (conf_dir / nginx.CONF_FILE).write_text(conf)
    return KitPod(gunicorn_argv=argv, gunicorn_env={**app_env, **env},
                  nginx_argv=[NGINX, "-e", "stderr", "-c", str(conf_dir / nginx.CONF_FILE)],
                  socket=socket, port=port, workers=plan.workers, threads=plan.threads)


def pinned(argv: list[str]) -> list[str]:
    return ["taskset", "-c", CPUS, *argv]


def wrk(port: int, path: str, *, duration: int, connections: int) -> dict[str, float]:
    argv = pinned([WRK, "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
                   "--timeout", f"{WRK_TIMEOUT_SECONDS}s", f"http://127.0.0.1:{port}{path}"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, check=True).stdout

    def latency_ms(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency_ms("50"), "p99_ms": latency_ms("99"),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "socket_errors": sum(counts), "timeouts": counts[3]}


def cpu_seconds(sessions: list[int]) -> float:
    """CPU time of every process in these sessions (a Proc's server and its workers), with the
    children they reaped (workers Gunicorn replaced)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) in sessions:  # field 6, session id; then utime, stime, cutime, cstime
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_sample() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def drain(port: int, max_wait: float = 45) -> None:
    """Waits until /healthz answers within 0.2 s again. After wrk exits a server still serves what
    was queued: a sync worker answers, one by one, each request whose connection wrk closed (at 256
    connections on /io, 13 s of them), which must not spill into the next run."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            if (request(port, "/healthz", timeout=max(1.0, deadline - started)).status == 200
                    and time.monotonic() - started < 0.2):
                return
        except OSError:
            time.sleep(0.2)
    print(f"  WARNING: the server still answers slowly {max_wait:.0f} s after the run")


def measure(server: str, port: int, sessions: list[int], gunicorn_log: Path, connections: list[int],
            duration: int) -> list[Result]:
    def restarts() -> int:
        # Workers that hit max_requests. By pid: a gthread worker's threads can each log the line
        # once (the check-and-set of `alive` has no lock).
        lines = gunicorn_log.read_text(errors="replace").splitlines()
        pids = [re.search(r'"pid": \d+|\[\d+\]', line) for line in lines if "Autorestarting worker" in line]
        return len({pid.group(0) if pid else i for i, pid in enumerate(pids)})

    results = []
    for path in PATHS:
        for conns in connections:
            drain(port)
            wait_for_quiet(max_wait=20)
            restarts0 = restarts()
            wrk(port, path, duration=WARM_UP_SECONDS, connections=conns)
            drain(port)
            cpu0, (total0, idle0) = cpu_seconds(sessions), cpu_sample()
            numbers = wrk(port, path, duration=duration, connections=conns)
            cpu1, (total1, idle1) = cpu_seconds(sessions), cpu_sample()
            numbers |= {"server_cpu_ms": 1000 * (cpu1 - cpu0) / max(1, numbers["requests"]),
                        "cpus_busy": 1 - (idle1 - idle0) / max(1, total1 - total0)}
            drain(port)
            numbers["restarts"] = restarts() - restarts0
            time.sleep(0.5)  # the server settles; then anything busy is someone else
            result = Result(server, path, conns, **numbers, disturbed=busy_fraction() > 0.10)
            results.append(result)
            print(f"  {server:<6} {path:<9} c{conns:<4} {result.rps:>8.0f} req/s  p50 {result.p50_ms:>8.2f} ms  "
                  f"p99 {result.p99_ms:>8.2f} ms  non-2xx {result.non_2xx}  socket errors {result.socket_errors} "
                  f"(timeouts {result.timeouts})  server CPU {result.server_cpu_ms:.2f} ms/req  CPUs busy "
                  f"{result.cpus_busy:.0%}  workers replaced {result.restarts}"
                  f"{'  (disturbed)' if result.disturbed else ''}", flush=True)
    return results


def check_routes(where: int | str) -> None:
    for path in PATHS:
        resp = request(where, path)
        assert resp.status == 200, f"{path}: {resp.status} {resp.body[:500]!r}"


def run_naive(scratch: Path, app_env: dict[str, str], connections: list[int], duration: int) -> list[Result]:
    assert not (shop_app.APP_DIR / "gunicorn.conf.py").exists(), "the app folder has a gunicorn.conf.py"
    port = free_port()
    argv = [str(shop_app.BIN / "gunicorn"), "shop.wsgi", "--bind", f"127.0.0.1:{port}"]
    print(f"naive: {' '.join(pinned(argv))}  (cwd {shop_app.APP_DIR.relative_to(ROOT)})")
    proc = Proc("naive-gunicorn", pinned(argv), log_dir=scratch, cwd=shop_app.APP_DIR, env=app_env)
    try:
        wait_until(lambda: request(port, "/healthz").status == 200, 60, "naive Gunicorn", proc)
        check_routes(port)
        return measure("naive", port, [proc.popen.pid], proc.stderr, connections, duration)
    finally:
        proc.stop()


def run_kit(pod: KitPod, scratch: Path, nginx_user: tuple[int, int] | None, connections: list[int],
            duration: int) -> list[Result]:
    print(f"kit: {' '.join(pinned(pod.nginx_argv))}  in front of  {' '.join(pinned(pod.gunicorn_argv))}")
    procs = [Proc("kit-gunicorn", pinned(pod.gunicorn_argv), log_dir=scratch, cwd=shop_app.APP_DIR,
                  env=pod.gunicorn_env)]
    try:
        wait_until(lambda: request(pod.socket, "/healthz").status == 200, 60, "the kit's Gunicorn", procs[0])
        procs.append(Proc("kit-nginx", pinned(pod.nginx_argv), log_dir=scratch, user=nginx_user))
        wait_until(lambda: request(pod.port, "/healthz").status == 200, 30, "Nginx", procs[1])
        check_routes(pod.port)
        return measure("kit", pod.port, [p.popen.pid for p in procs], procs[0].stdout, connections, duration)
    finally:
        for proc in reversed(procs):
            proc.stop()


def versions(pg: Postgres) -> dict[str, str]:
    def run(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr).strip().splitlines()[0]

    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return {
        "machine": f"{os.cpu_count()} CPUs ({cpu.group(1) if cpu else 'unknown'})",
        "gunicorn": run([str(shop_app.BIN / "gunicorn"), "--version"]),
        "nginx": run([NGINX, "-v"]),
        "django": run([str(shop_app.BIN / "python"), "-c", "import django; print('Django', django.__version__)"]),
        "postgresql": "PostgreSQL " + pg.psql("postgres", "SHOW server_version"),
        "wrk": run([WRK, "-v"]).split(" [")[0],
    }


def nginx_user() -> tuple[int, int] | None:
    """As root, Nginx runs as `nobody`, as the pod's non-root uid; otherwise as the caller."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", default="64,256", help="wrk's open connections, comma-separated")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    started = time.monotonic()
    # SIGTERM (a timeout, CI) and the overall bound unwind like Ctrl-C, so servers and PostgreSQL stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    budget = 180 + 2 * len(PATHS) * len(connections) * (args.duration + 45)
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"gave up after {budget} s"))
    signal.alarm(budget)
    for problem in (shop_app.missing_venv(), harness.missing_postgres(),
                    None if Path(NGINX).exists() else f"{NGINX} not found: apt-get install nginx",
                    None if Path(WRK).exists() else f"{WRK} not found: apt-get install wrk",
                    None if {0, 1} <= os.sched_getaffinity(0) else f"needs CPUs {CPUS}"):
        if problem:
            raise SystemExit(problem)

    user = nginx_user()
    scratch = make_scratch()
    pg = Postgres(max_connections=200)
    try:
        (scratch / "home").mkdir()
        (scratch / "pod").mkdir(mode=0o755)
        app_env = {**APP_ENV, "HOME": str(scratch / "home"), **pg.env(pg.create_database(DATABASE))}
        pod = kit_pod(kit_settings(), scratch / "pod", user, app_env)
        migrated = shop_app.manage(app_env, "migrate", "--noinput", timeout=180)
        assert migrated.returncode == 0, migrated.stdout[-4000:] + migrated.stderr[-4000:]
        info = versions(pg)
        print(f"{datetime.date.today()}  {info['machine']}; {', '.join(v for k, v in info.items() if k != 'machine')}")
        print(f"wrk -t2 -c{{{args.connections}}} -d{args.duration}s --latency --timeout {WRK_TIMEOUT_SECONDS}s after a "
              f"{WARM_UP_SECONDS} s warm-up; servers and wrk pinned to CPUs {CPUS}, PostgreSQL shares them; loopback")
        print(f"kit plan for {STACK} with app.resources {RESOURCES}: {pod.workers} workers x {pod.threads} threads")
        results = run_naive(scratch, app_env, connections, args.duration)
        results += run_kit(pod, scratch, user, connections, args.duration)
        report(results, pod, time.monotonic() - started)
    finally:
        signal.alarm(0)
        pg.close()
        shutil.rmtree(scratch, ignore_errors=True)


def report(results: list[Result], pod: KitPod, elapsed: float) -> None:
    by = {(r.server, r.path, r.connections): r for r in results}
    print("\n| server | route | conns | req/s | p50 ms | p99 ms | mean ms (conns / req/s) | non-2xx "
          "| socket errors (timeouts) | server CPU ms/req | CPUs busy | workers replaced | kit/naive req/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(results, key=lambda r: (PATHS.index(r.path), r.connections, r.server != "naive")):
        ratio = ""
        if r.server == "kit" and ("naive", r.path, r.connections) in by:
            ratio = f"{r.rps / by[('naive', r.path, r.connections)].rps:.1f}x"
        print(f"| {r.server}{' *' if r.disturbed else ''} | `{r.path}` | {r.connections} | {r.rps:.0f} | "
              f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.mean_ms:.0f} | {r.non_2xx} | {r.socket_errors} ({r.timeouts}) | "
              f"{r.server_cpu_ms:.2f} | {r.cpus_busy:.0%} | {r.restarts} | {ratio} |")
    if any(r.disturbed for r in results):
        print("\n* other work used the CPUs right after this run: rerun before trusting it")
    print(f"\np50/p99 are wrk's, of the responses that came within its {WRK_TIMEOUT_SECONDS} s timeout; slower ones "
          "count as timeouts (as does a connection still waiting at each 2 s check), so where there are timeouts "
          "the mean (Little's law, all responses) is the latency to read.")
    kit_limit = pod.workers * pod.threads / IO_SECONDS
    for r in results:
        if r.path == "/io":
            limit = kit_limit if r.server == "kit" else 1 / IO_SECONDS
            print(f"{r.server:<5} /io c{r.connections}: {r.rps:.0f} req/s = {r.rps / limit:.0%} of "
                  f"{'workers x threads' if r.server == 'kit' else '1 thread'} / {IO_SECONDS} s = {limit:.0f} req/s")
    print(f"total time: {elapsed:.0f} s")


if __name__ == "__main__":
    main()
