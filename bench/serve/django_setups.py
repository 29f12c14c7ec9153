"""The Django suite: the reference shop under Gunicorn's defaults against the kit's Nginx + Gunicorn
pod, and the kit's serving path with a bare WSGI app (its ceiling), on loopback.

Setups (every process pinned to Options.cpus with wrk; PostgreSQL on the same cores):

- naive: `gunicorn shop.wsgi --bind 127.0.0.1:<port>` from the app folder (which has no
  gunicorn.conf.py: checked), Gunicorn's defaults otherwise: one sync worker, what a team ships
  when it copies the command from Django's deployment docs.
- kit: Debian's Nginx with the kit's nginx.conf in front of Gunicorn with the kit's
  gunicorn.conf.py, command and env, computed by the kit's own functions (load_settings,
  plan_gunicorn, the stack's nginx_conf) for django-local with a 2-core pod (RESOURCES) and the
  request profile of REQUEST_PROFILE (why below). Substituted, and nothing else (the unsubstituted
  files are asserted equal to what the stack renders):
  - Gunicorn's socket dir /run/gunicorn (socket and worker_tmp_dir) -> <work>/pod/gunicorn;
  - the config dirs /etc/webstack/{gunicorn,nginx} -> <work>/pod/conf; `gunicorn` -> .venv-django's;
  - PROMETHEUS_MULTIPROC_DIR /tmp/prometheus-multiproc -> <work>/pod/prometheus-multiproc;
  - the pod fields (POD_NAME, ...) -> the test harness's stand-ins, $(NAME) expanded as the kubelet does;
  - OTEL_TRACES_EXPORTER otlp -> none: the collector is another pod, absent here (spans are still
    made, with the rendered sampler; their export, a batch every few seconds, is not measured);
  - Nginx: listen 0.0.0.0:8000 -> 127.0.0.1:<free port>, the metrics listener 9000 -> a free port,
    its temp dir /tmp/nginx -> <work>/pod/nginx-tmp, the static root /var/www/static -> <work>/static
    (the init container's collectstatic -> `manage.py collectstatic` into it); as root, Nginx runs
    as `nobody`, as the pod's non-root uid.
- limit: the same pod with a bare WSGI app (bench/django_bench/bare.py, a fixed body) in place of
  `shop.wsgi:application`: the kit's serving path with nothing of Django's cost, on the trivial route.

Both Django setups get the same app env: DJANGO_SETTINGS_MODULE=django_bench.settings (the shop's
settings and URLs plus the bench routes), a secret key, DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,
DJANGO_HTTPS=false, STATIC_ROOT, DATABASE_* of a throwaway PostgreSQL (migrated, PRODUCTS rows);
OTEL_TRACES_EXPORTER=none. The kit adds its plan's env (OTEL_*, PROMETHEUS_MULTIPROC_DIR); naive
keeps the app's defaults (in-memory metrics).

Routes, each at every connection count of Options, naive and kit:
- trivial `/healthz`: the shop's liveness view, no I/O (checked: no database connection after it);
- io `/io`: blocks 50 ms in `time.sleep`, a call to another service. Not PostgreSQL's pg_sleep (the
  previous bench): that adds a database round trip and PostgreSQL's CPU on the same 2 cores and
  measures the database connections as well; the database read is its own route;
- db `/products/42`: one product by primary key through the ORM, as JSON, from PostgreSQL;
- static: a 100 KiB asset collected by `collectstatic` (hashed name). Naive: Django serves it
  (`django.views.static.serve` on a URL of its own: with DEBUG off Django's `static()` helper
  serves nothing, so this is what a team without a front server wires up). Kit: Nginx serves the
  collected root itself (its `location ^~ /static/`: sendfile, a year's immutable Cache-Control,
  the security headers); Gunicorn never sees the request (checked by that header).

Why each setup is configured as it is:
- naive is not tuned in any way: the issue compares the kit with what teams ship by default. Its
  one sync worker serves one request at a time, so the 50 ms route gets 20 req/s at most whatever
  the load, and what waits longer than wrk's 2 s timeout counts as an error.
- kit: 2 workers, one per whole core of the 2-core limit (1Gi holds them at 128Mi each), and 32
  gthreads each. The threads come from the request profile (REQUEST_PROFILE), which the README asks
  a user to describe: this io route measures 1.1-1.2 ms of server CPU per request (Gunicorn 1.1,
  Nginx 0.1) and waits 50 ms, so request_cpu_ms 1, request_io_ms 50: Little's law gives 51 threads,
  capped at MAX_THREADS. With the default profile (2 ms, 50 ms) it would be 26 threads, whose
  ceiling, 2 x 26 / 0.05 s = 1040 req/s, leaves no room over 50x naive (~980 req/s). The rest is
  the kit's as rendered: worker_connections = threads and one request per upstream connection
  (stacks/django/server.py says why), one Nginx worker (its container's 1-core limit), Nginx's
  JSON access log, Prometheus multiprocess metrics, OpenTelemetry spans.
- limit: the kit's serving path (Nginx, the unix socket, Gunicorn's gthread worker, the kit's
  hooks and logging) with an app that costs nothing: what Django adds is the difference to kit.

wrk runs with 2 threads on the same 2 cores: 2-9% of a core on the routes Django answers, half a
core reading 100 KiB responses from Nginx at 20 000/s (its rusage, 2026-11-30); PostgreSQL takes
its share on the db route.
"""

from __future__ import annotations

import json
import random
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from bench.serve.load import Options, Run, measure, pinned

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
for _tests_dir in ("fastapi_app", "django_app", "django_plans"):
    if str(ROOT / "tests" / _tests_dir) not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / _tests_dir))

import harness  # noqa: E402  (tests/fastapi_app: PostgreSQL, free ports, the pod-field stand-ins)
import plans_harness  # noqa: E402  (tests/django_plans: Proc, Nginx's user, request)
import shop_app  # noqa: E402  (tests/django_app: the shop's virtualenv and manage.py)

from cli.offline import PROJECT  # noqa: E402
from cli.render import load_stack_file  # noqa: E402
from components.k8s_pod import expand_env  # noqa: E402
from stacks.config import load_settings  # noqa: E402
from stacks.django import nginx  # noqa: E402
from stacks.django import stack as django_stack  # noqa: E402
from stacks.django.server import CONF_FILE as GUNICORN_CONF  # noqa: E402
from stacks.django.server import CONFIG_DIR as GUNICORN_DIR  # noqa: E402
from stacks.django.server import METRICS_DIR, SOCKET_PATH, gunicorn_conf, plan_gunicorn  # noqa: E402
from stacks.django.settings import DjangoSettings  # noqa: E402

SUITE = "django"
STACK = "django-local"
# A 2-core pod, as the issue asks: 2 workers (one per whole core of the limit).
RESOURCES = {"cpu_request": "500m", "cpu_limit": "2", "memory_request": "512Mi", "memory_limit": "1Gi"}
# django.server's request profile, as a user describes their app: the io route's measured CPU and
# wait (the module docstring says why).
REQUEST_PROFILE = {"request_cpu_ms": 1, "request_io_ms": 50}
NGINX = "/usr/sbin/nginx"
DATABASE = "shop"
PRODUCTS = 1000  # rows in catalog_product; the db route reads one by primary key
PRODUCT_ID = 42
STATIC_SOURCE = "bench/app.js"  # the asset's name under the staticfiles source dir
STATIC_BYTES = 100 * 1024
BARE_APP = "django_bench.bare:application"


@dataclass
class Server:
    """A started setup: where it answers, the sessions measure() reads CPU from, how it was started."""

    base_url: str
    sessions: list[int]
    command: str
    extra: dict


@dataclass
class Pod:
    gunicorn_argv: list[str]
    gunicorn_env: dict[str, str]
    nginx_argv: list[str]
    socket: str
    port: int
    workers: int
    threads: int


def run(opts: Options, work: Path, log=print) -> list[Run]:
    for problem in (shop_app.missing_venv(), harness.missing_postgres(),
                    None if Path(NGINX).exists() else f"{NGINX} not found: apt-get install nginx (tools/setup does)"):
        if problem:
            raise SystemExit(problem)
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # Nginx's user (nobody, as root) reads the static root and the socket below it
    pg = harness.Postgres(max_connections=200)
    try:
        app_env, static_path = prepare_app(pg, work)
        routes = {"trivial": "/healthz", "io": "/io", "db": f"/products/{PRODUCT_ID}", "static": static_path}
        settings = kit_settings()
        runs = naive_runs(opts, work, app_env, routes, pg, log)
        runs += kit_runs(opts, work, settings, app_env, routes, log)
        runs += limit_runs(opts, work, settings, app_env, log)
        return runs
    finally:
        pg.close()


# --- the app, its database and its static files ---------------------------------------------

def prepare_app(pg: harness.Postgres, work: Path) -> tuple[dict[str, str], str]:
    """Migrates and fills a fresh database, collects the static files (with the bench's 100 KiB
    asset) into <work>/static; returns the app env and the asset's URL path (its hashed name)."""
    home, static_root, sources = work / "home", work / "static", work / "static-src"
    for path in (home, static_root, sources / Path(STATIC_SOURCE).parent):
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
    app_env = {"DJANGO_SETTINGS_MODULE": "django_bench.settings", "DJANGO_SECRET_KEY": shop_app.SECRET_KEY,
               "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "DJANGO_HTTPS": "false",
               "PYTHONPATH": f"{shop_app.APP_DIR}:{BENCH}", "PATH": f"{shop_app.BIN}:/usr/local/bin:/usr/bin:/bin",
               "HOME": str(home), "STATIC_ROOT": str(static_root), **pg.env(pg.create_database(DATABASE))}
    shop_app.ok(shop_app.manage(app_env, "migrate", "--noinput", timeout=180))
    pg.psql(DATABASE, "INSERT INTO catalog_product (name, price, created, in_stock) "
                      f"SELECT 'Product ' || i, i * 1.25, now(), true FROM generate_series(1, {PRODUCTS}) AS i")
    (sources / STATIC_SOURCE).write_text(static_asset(STATIC_BYTES))
    shop_app.ok(shop_app.manage({**app_env, "BENCH_STATICFILES_DIR": str(sources)}, "collectstatic", "--noinput",
                                timeout=180))
    hashed = json.loads((static_root / "staticfiles.json").read_text())["paths"][STATIC_SOURCE]
    return app_env, f"/static/{hashed}"


def static_asset(size: int) -> str:
    """`size` bytes of JavaScript-like text, the same every run (a fixed seed)."""
    rng = random.Random(18)
    words = ["const", "return", "function", "value", "element", "render", "state", "props", "=>", "{", "}", ";"]
    lines = ["// bench/serve/django_setups.py: a 100 KiB static asset"]
    length = len(lines[0])
    while length < size:
        lines.append(" ".join(rng.choice(words) for _ in range(12)))
        length += len(lines[-1]) + 1
    return "\n".join(lines)[:size]


def check_routes(where: int | str, routes: dict[str, str], *, nginx_static: bool) -> None:
    """Every route answers 200 before it is measured; the asset is whole, and came from Nginx (its
    Cache-Control) on the kit, from Django on naive."""
    for route, path in routes.items():
        resp = plans_harness.request(where, path)
        assert resp.status == 200, f"{route} {path}: {resp.status} {resp.body[:500]!r}"
        if route == "static":
            assert len(resp.body) == STATIC_BYTES, f"{path}: {len(resp.body)} bytes"
            served_by_nginx = resp.header("Cache-Control") == nginx.STATIC_CACHE_CONTROL
            assert served_by_nginx == nginx_static, f"{path}: Cache-Control {resp.header('Cache-Control')!r}"


def database_sessions(pg: harness.Postgres) -> int:
    return int(pg.psql("postgres", f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{DATABASE}'"))


# --- naive --------------------------------------------------------------------------------

def naive_runs(opts: Options, work: Path, app_env: dict[str, str], routes: dict[str, str], pg: harness.Postgres,
               log) -> list[Run]:
    assert not (shop_app.APP_DIR / "gunicorn.conf.py").exists(), "the app folder has a gunicorn.conf.py"
    port = harness.free_port()
    argv = pinned([str(shop_app.BIN / "gunicorn"), "shop.wsgi", "--bind", f"127.0.0.1:{port}"], opts)
    proc = plans_harness.Proc("naive-gunicorn", argv, log_dir=work, cwd=shop_app.APP_DIR, env=app_env)
    try:
        plans_harness.wait_until(lambda: plans_harness.request(port, "/healthz").status == 200, 60,
                                 "naive Gunicorn", proc)
        # The trivial route does no I/O: after it, no process has a database connection.
        assert database_sessions(pg) == 0, "/healthz opened a database connection"
        check_routes(port, routes, nginx_static=False)
        server = Server(f"http://127.0.0.1:{port}", [proc.popen.pid],
                        f"cd stacks/django/app && {' '.join(argv)}", {"workers": 1, "worker_class": "sync"})
        return measure_routes(opts, "naive (gunicorn defaults)", "naive", server, routes, log)
    finally:
        proc.stop()


def measure_routes(opts: Options, setup: str, role: str, server: Server, routes: dict[str, str], log) -> list[Run]:
    runs = []
    for route, path in routes.items():
        for run in measure(suite=SUITE, setup=setup, role=role, route=route, base_url=server.base_url, path=path,
                           sessions=server.sessions, command=server.command, opts=opts, log=log):
            run.extra = dict(server.extra)
            runs.append(run)
    return runs


# --- the kit's pod ------------------------------------------------------------------------

def kit_settings() -> DjangoSettings:
    """django-local's values with a 2-core pod and REQUEST_PROFILE, through the kit's own loader
    (profiles, validation), as `pulumi up` would read them."""
    stack_file = load_stack_file(STACK)
    prefix = f"{PROJECT}:"
    values = {k[len(prefix):]: v for k, v in stack_file.config.items() if k.startswith(prefix)}
    values["app"] = {**values["app"], "resources": RESOURCES}
    django = values.setdefault("django", {})
    django["server"] = {**django.get("server", {}), **REQUEST_PROFILE}
    settings = load_settings(values, {k[len(prefix):] for k in stack_file.secret_keys})
    assert isinstance(settings, DjangoSettings)
    return settings


def kit_pod(settings: DjangoSettings, pod_dir: Path, static_root: Path, app_env: dict[str, str],
            wsgi_app: str | None = None) -> Pod:
    """The Gunicorn plan and nginx.conf as DjangoStack computes them, with the module docstring's
    substitutions; writes both files under `pod_dir`. `wsgi_app` replaces the app Gunicorn serves."""
    server = settings.django.server
    plan = plan_gunicorn(server, settings.app.resources, threads=settings.gunicorn_threads(),
                         service_name=settings.k8s_namespace(STACK), environment=settings.environment,
                         otlp_endpoint=settings.observability.collector_endpoint(),
                         trace_sample_ratio=settings.observability.trace_sample_ratio)
    socket_dir, conf_dir, metrics_dir, temp_dir = (pod_dir / "gunicorn", pod_dir / "conf",
                                                   pod_dir / "prometheus-multiproc", pod_dir / "nginx-tmp")
    for path in (socket_dir, conf_dir, metrics_dir, temp_dir):
        path.mkdir(mode=0o755, parents=True)
    plans_harness.give_to(temp_dir, plans_harness.nginx_run_as())
    socket = str(socket_dir / "gunicorn.sock")

    values = dict(workers=plan.workers, threads=plan.threads, timeout_seconds=server.timeout_seconds,
                  graceful_timeout_seconds=server.graceful_timeout_seconds, max_requests=server.max_requests,
                  max_requests_jitter=server.max_requests_jitter, log_level=server.log_level)
    # The same arguments give the plan's own file: only the paths below differ from the pod's.
    assert gunicorn_conf(**values) == plan.files[GUNICORN_CONF], "plan_gunicorn's arguments changed: update the bench"
    (conf_dir / GUNICORN_CONF).write_text(gunicorn_conf(**values, socket_path=socket, worker_tmp_dir=str(socket_dir)))
    argv = [str(shop_app.BIN / "gunicorn") if arg == "gunicorn" else arg.replace(GUNICORN_DIR, str(conf_dir))
            for arg in plan.command]
    if wsgi_app:
        assert argv[-1] == server.wsgi_app, argv
        argv[-1] = wsgi_app

    env = {**plan.env, "OTEL_TRACES_EXPORTER": "none"}
    if env.get("PROMETHEUS_MULTIPROC_DIR") == METRICS_DIR:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    fields = {name: harness.POD_FIELD_STAND_INS[field] for name, field in plan.pod_field_env.items()}
    env = expand_env([{"name": name} for name in fields] + [{"name": k, "value": v} for k, v in env.items()],
                     resolve=fields)

    port = harness.free_port()
    conf = nginx.nginx_conf(**nginx_values(settings, port=port, socket_path=socket, metrics_port=harness.free_port(),
                                           static_root=str(static_root), listen_address="127.0.0.1",
                                           temp_dir=str(temp_dir)))
    (conf_dir / nginx.CONF_FILE).write_text(conf)
    return Pod(gunicorn_argv=argv, gunicorn_env={**app_env, **env},
               nginx_argv=[NGINX, "-e", "stderr", "-c", str(conf_dir / nginx.CONF_FILE)],
               socket=socket, port=port, workers=plan.workers, threads=plan.threads)


def nginx_values(settings: DjangoSettings, **substitutions) -> dict:
    """nginx_conf's arguments as the stack passes them, checked against the stack's own render,
    with the substitutions applied."""
    admin_path = settings.admin_path(STACK)
    metrics_port = django_stack.METRICS_PORT if settings.django.server.metrics else None
    dj, server = settings.django, settings.django.server
    values = dict(
        port=settings.app.port, socket_path=SOCKET_PATH, metrics_port=metrics_port, admin_path=admin_path,
        admin_allowed_cidrs=list(dj.admin.allowed_cidrs),
        trusted_proxy_cidrs=django_stack.trusted_proxies(settings, None),  # the platform is read on aws only
        client_max_body_size_mb=dj.nginx.client_max_body_size_mb,
        keep_alive_timeout_seconds=dj.nginx.keep_alive_timeout_seconds,
        upstream_timeout_seconds=server.timeout_seconds + 5,
        shutdown_timeout_seconds=server.graceful_timeout_seconds + nginx.GUNICORN_STOP_LAG_SECONDS,
        https=settings.serves_https, static_root=nginx.STATIC_ROOT,
        worker_processes=nginx.worker_processes(dj.nginx.resources.cpu_limit))
    platform = types.SimpleNamespace(settings=settings, network=None)  # what the stack's nginx_conf reads
    assert nginx.nginx_conf(**values) == django_stack.nginx_conf(platform, admin_path, metrics_port), \
        "the stack's nginx_conf arguments changed: update the bench"
    if metrics_port is None:
        substitutions["metrics_port"] = None
    return {**values, **substitutions}


def start_pod(opts: Options, pod: Pod, work: Path, name: str) -> tuple[list[plans_harness.Proc], str]:
    """Gunicorn, then Nginx in front of it, each pinned and in its own session; the procs (started
    so far, for the caller to stop) and the command line."""
    gunicorn_argv, nginx_argv = pinned(pod.gunicorn_argv, opts), pinned(pod.nginx_argv, opts)
    procs = [plans_harness.Proc(f"{name}-gunicorn", gunicorn_argv, log_dir=work, cwd=shop_app.APP_DIR,
                                env=pod.gunicorn_env)]
    plans_harness.wait_until(lambda: plans_harness.request(pod.socket, "/healthz").status == 200, 60,
                             f"{name}: Gunicorn", procs[0])
    procs.append(plans_harness.Proc(f"{name}-nginx", nginx_argv, log_dir=work, user=plans_harness.nginx_run_as()))
    plans_harness.wait_until(lambda: plans_harness.request(pod.port, "/healthz").status == 200, 30,
                             f"{name}: Nginx", procs[1])
    return procs, f"{' '.join(nginx_argv)}  in front of  (cd stacks/django/app && {' '.join(gunicorn_argv)})"


def stop_all(procs: list[plans_harness.Proc]) -> None:
    for proc in reversed(procs):  # Nginx first, as the pod stops
        proc.stop()


def kit_runs(opts: Options, work: Path, settings: DjangoSettings, app_env: dict[str, str], routes: dict[str, str],
             log) -> list[Run]:
    pod = kit_pod(settings, work / "pod", work / "static", app_env)
    procs: list[plans_harness.Proc] = []
    try:
        procs, command = start_pod(opts, pod, work, "kit")
        check_routes(pod.port, routes, nginx_static=True)
        server = Server(f"http://127.0.0.1:{pod.port}", [p.popen.pid for p in procs], command,
                        {"workers": pod.workers, "threads": pod.threads, "worker_class": "gthread"})
        return measure_routes(opts, "kit (nginx + gunicorn)", "kit", server, routes, log)
    finally:
        stop_all(procs)


def limit_runs(opts: Options, work: Path, settings: DjangoSettings, app_env: dict[str, str], log) -> list[Run]:
    pod = kit_pod(settings, work / "bare-pod", work / "static", app_env, wsgi_app=BARE_APP)
    procs: list[plans_harness.Proc] = []
    try:
        procs, command = start_pod(opts, pod, work, "bare")
        server = Server(f"http://127.0.0.1:{pod.port}", [p.popen.pid for p in procs], command,
                        {"workers": pod.workers, "threads": pod.threads, "worker_class": "gthread"})
        return measure_routes(opts, "bare WSGI (kit's nginx + gunicorn)", "limit", server, {"trivial": "/healthz"},
                              log)
    finally:
        stop_all(procs)
