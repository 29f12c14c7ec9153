"""The kit's rendered FastAPI command, run for real: what `fastapi-local` would start in its
pods (the Alembic release Job, then the app container), on loopback against a real
PostgreSQL and an OTLP receiver. Each server the kit can render (`fastapi.server.kind`) keeps
the same promises: per-worker metrics merged on /metrics, traces exported from every worker,
JSON logs with the trace id, proxy headers believed only from the trusted range, and SIGTERM
draining the requests in flight.

The command, args and env are exactly those in `config/run/*.json` of the render, with only
these substitutions (harness.RenderedRun.local):
- the bind host 0.0.0.0 -> 127.0.0.1, and the port -> a free port;
- each ConfigMap mount path (e.g. /etc/webstack/uvicorn) -> the rendered config/<configmap>/ dir;
- each emptyDir mount path of the container (the pod's writable /tmp) -> a fresh temp dir, so
  PROMETHEUS_MULTIPROC_DIR=/tmp/... starts empty as in a new pod;
- env taken from a Secret, and the database address (DATABASE_HOST, DATABASE_PORT: the
  in-cluster Service's name and port) -> the test PostgreSQL's values; the rendered role
  and database names are created there as they are;
- env from the pod's own fields (POD_NAME, POD_NAMESPACE, NODE_NAME) -> stand-in values, and
  their $(NAME) references in OTEL_RESOURCE_ATTRIBUTES expanded, as the kubelet does;
- OTEL_EXPORTER_OTLP_ENDPOINT -> the test receiver; fastapi-local has no collector
  (OTEL_TRACES_EXPORTER=none), so OTLP/HTTP export to the receiver is switched on;
- the working dir (the image's WORKDIR) -> stacks/fastapi/app.
fastapi-local renders Uvicorn; the Granian cases render it with `fastapi.server.kind: granian`
(and the other `fastapi.server` keys a test names), through the same program under mocks.
"""

from __future__ import annotations

import copy
import json
import runpy
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from harness import (APP_BIN, HOST, POD_FIELD_STAND_INS, RenderedRun, free_port, json_log_lines, require,
                     run_command, samples, wait_until, worker_pids)

from cli.offline import run_program
from cli.render import PROGRAM, load_stack_file, render, write_render

STACK = "fastapi-local"
PASSWORD = "rendered-app-password"
KINDS = ["uvicorn", "granian"]
SERVER_SPAN = 2  # OTLP SpanKind
# What each server's command starts with, and the line it logs when its shutdown is complete.
STARTS = {"uvicorn": ["uvicorn", "orders_api.main:app"],
          "granian": ["python", "/etc/webstack/granian/webstack_granian.py", "--interface", "asgi"]}
STOPPED = {"uvicorn": "Application shutdown complete.", "granian": "Granian shutdown completed"}
LOCK_SECONDS = 3  # how long a test holds the items table: requests on it stay in flight that long


def render_with(dest: Path, **server: Any) -> Path:
    """fastapi-local rendered with these `fastapi.server` keys changed (the stack file is left alone)."""
    stack_file = load_stack_file(STACK)
    config = copy.deepcopy(stack_file.config)
    section = config["webstack:fastapi"]
    section["server"] = {**section.get("server", {}), **server}
    run = run_program(STACK, config, lambda: runpy.run_path(str(PROGRAM), run_name="__main__"),
                      stack_file.secret_keys)
    dest.mkdir(parents=True)
    write_render(STACK, run, dest)
    return dest


def require_kind(kind: str) -> None:
    if kind == "granian":
        require(None if (APP_BIN / "granian").exists() else
                f"{APP_BIN} has no granian: run tools/setup (stacks/fastapi/app/requirements.txt pins it)")


@pytest.fixture(scope="module", params=KINDS)
def rendered(request, tmp_path_factory) -> tuple[str, Path]:
    """(kind, render): the stack file as it is for uvicorn, with `kind: granian` for granian."""
    kind = request.param
    require_kind(kind)
    if kind == "uvicorn":
        return kind, render(STACK, tmp_path_factory.mktemp("render"))
    return kind, render_with(tmp_path_factory.mktemp("render") / STACK, kind=kind)


@pytest.fixture(scope="module")
def app_database(postgres, tmp_path_factory) -> dict[str, str]:
    """The rendered role and database (DATABASE_USER / DATABASE_NAME), in the test PostgreSQL
    (the release Job's env names them; the server's kind does not change it)."""
    job = RenderedRun.find(render(STACK, tmp_path_factory.mktemp("render-job")), "Job-*.json")
    user = job.env.get("DATABASE_USER")
    name = job.env.get("DATABASE_NAME")
    assert isinstance(user, str) and isinstance(name, str), "fastapi-local names its role and database"
    # Other modules' tests render the same role into the session's PostgreSQL, with passwords of
    # their own: this module's is set whether the role is there already or not.
    exists = postgres.psql("postgres", f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'") == "1"
    verb = "ALTER" if exists else "CREATE"
    postgres.psql("postgres", f"{verb} ROLE \"{user}\" LOGIN PASSWORD '{PASSWORD}'")
    if postgres.psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
        postgres.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
    return {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(postgres.port), "DATABASE_USER": user,
            "DATABASE_NAME": name, "DATABASE_PASSWORD": PASSWORD, "PGPASSWORD": PASSWORD,
            "DATABASE_URL": f"postgresql://{user}:{PASSWORD}@127.0.0.1:{postgres.port}/{name}"}


def release(render_dir: Path, app_database: dict[str, str], scratch: Path) -> subprocess.CompletedProcess:
    """The release Job, exactly as rendered: migrations before any pod starts."""
    job = RenderedRun.find(render_dir, "Job-*.json")
    # Under the migration guard (tests/fastapi_app/test_guarded_migrate_job.py), its script from the render.
    assert job.argv[-4:] == ["--", "alembic", "upgrade", "head"]
    argv, env, cwd, _ = job.local(port=None, database=app_database, scratch=scratch)
    return run_command(argv, env, cwd)


def start_app(serve, render_dir: Path, app_database: dict[str, str], scratch: Path, otlp=None):
    """The app container of `render_dir`, serving on a free port; (server, its env, its argv)."""
    app = RenderedRun.find(render_dir, "Deployment-*.app.json")
    port = free_port()
    argv, env, cwd, made = app.local(port=port, database=app_database, scratch=scratch,
                                     otlp_endpoint=None if otlp is None else otlp.endpoint)
    print("substitutions:", *made, sep="\n  ")
    return serve(argv, env, port=port, cwd=cwd), env, app


def server_span(otlp, trace_id: str, timeout: float = 5) -> dict[str, Any]:
    spans = otlp.wait_for(lambda s: any(x["trace_id"] == trace_id and x["kind"] == SERVER_SPAN for x in s),
                          timeout=timeout)
    found = [s for s in spans if s["trace_id"] == trace_id and s["kind"] == SERVER_SPAN]
    assert found, f"no server span of trace {trace_id} among {len(spans)} spans"
    return found[0]


def traceparent(trace_id: str) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def reads_by_worker(metrics_dir: Path) -> dict[int, float]:
    """pid -> GET /items/{item_id} requests that worker answered, from its own counter file
    (prometheus_client's multiprocess mode: counter_<pid>.db), read with .venv-app's client."""
    script = ("import glob, json, os, sys\n"
              "from prometheus_client.mmap_dict import MmapedDict\n"
              "out = {}\n"
              "for path in glob.glob(os.path.join(sys.argv[1], 'counter_*.db')):\n"
              "    pid = int(path.rsplit('_', 1)[1].split('.')[0])\n"
              "    for key, value, *_ in MmapedDict.read_all_values_from_file(path):\n"
              "        name, sample, labels, _help = json.loads(key)\n"
              "        if sample == 'http_requests_total' and labels.get('route') == '/items/{item_id}' and value:\n"
              "            out[pid] = out.get(pid, 0) + value\n"
              "print(json.dumps(out))\n")
    result = subprocess.run([str(APP_BIN / "python"), "-c", script, str(metrics_dir)], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return {int(pid): count for pid, count in json.loads(result.stdout).items()}


def client_of(span: dict[str, Any]) -> tuple[str | None, str | None]:
    """(client address, scheme) the app saw for the request of `span` (OpenTelemetry's names)."""
    attrs = span["attributes"]
    return (attrs.get("client.address") or attrs.get("http.client_ip") or attrs.get("net.peer.ip"),
            attrs.get("url.scheme") or attrs.get("http.scheme"))


@contextmanager
def items_locked(postgres, dbname: str) -> Iterator[None]:
    """Holds an exclusive lock on the items table for LOCK_SECONDS from a psql session of its own:
    a request that reads an item stays in flight until then, with no test route in the app."""
    sql = f"BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({LOCK_SECONDS}); COMMIT;"
    proc = subprocess.Popen([str(postgres.bin / "psql"), "-X", "-q", "-h", HOST, "-p", str(postgres.port),
                             "-U", postgres.user, "-d", dbname, "-c", sql],
                            env={"PATH": "/usr/bin:/bin", "PGPASSWORD": postgres.password, "PGCONNECT_TIMEOUT": "5"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: waiting(postgres, dbname, granted=True) == 1, 10, "the lock on items", popen=proc,
                   name="psql")
        yield
    finally:
        try:
            proc.wait(LOCK_SECONDS + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def waiting(postgres, dbname: str, *, granted: bool = False) -> int:
    """Sessions holding (granted) or waiting for a lock on the items table."""
    return int(postgres.psql(dbname, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                     f"WHERE c.relname = 'items' AND l.granted = {str(granted).lower()}"))


def in_flight(pool: ThreadPoolExecutor, server, path: str) -> Future:
    """GET `path` on a connection of its own, answered in the background: (status, seconds taken)."""
    def get() -> tuple[int, float]:
        start = time.monotonic()
        status = server.get(path, timeout=LOCK_SECONDS + 20)[0]
        return status, time.monotonic() - start
    return pool.submit(get)


def test_the_rendered_release_job_and_server_run_for_real(otlp, serve, postgres, rendered, app_database, tmp_path):
    kind, render_dir = rendered
    # 1. The release Job, exactly as rendered: migrations before any pod starts.
    result = release(render_dir, app_database, tmp_path / "job")
    assert result.returncode == 0, result.stdout + result.stderr
    assert postgres.psql(app_database["DATABASE_NAME"], "SELECT version_num FROM alembic_version") == "0002"

    # 2. The app container.
    server, env, app = start_app(serve, render_dir, app_database, tmp_path / "pod", otlp)
    assert app.argv[:len(STARTS[kind])] == STARTS[kind] and "orders_api.main:app" in app.argv
    workers = int(app.flag("--workers"))
    assert workers == 2, "fastapi-local's pod has a 2-core limit"

    assert server.get("/healthz")[0] == 200
    assert server.get("/readyz")[0] == 200

    # /metrics: one live series per worker process, whichever worker answers.
    def every_worker() -> bool:
        text = server.get("/metrics")[2].decode()
        pids = {int(labels["pid"]) for labels, _ in samples(text, "app_worker_info")}
        return len(pids) == workers and pids == worker_pids(server.pid)

    server.wait_until(every_worker, 30, f"{workers} workers in /metrics")

    # A traced request: its spans reach the collector, its trace id is in a JSON log line. Its
    # forwarded headers are not believed: fastapi-local trusts no proxy.
    trace_id = secrets.token_hex(16)
    status, item = server.json("POST", "/items", {"name": "rendered"},
                               headers={**traceparent(trace_id),
                                        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert status == 201

    # Every worker exports its own spans: traced reads on new connections until each worker has
    # answered some (counted in its own metrics file), and later every one of their traces arrives.
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    reads: list[str] = []
    while len(reads) < 4 or (len(reads) < 200 and len(reads_by_worker(metrics_dir)) < workers):
        reads.append(secrets.token_hex(16))
        assert server.json("GET", f"/items/{item['id']}", headers=traceparent(reads[-1])) == (200, item)
    assert set(reads_by_worker(metrics_dir)) == worker_pids(server.pid)

    # 3. SIGTERM with a request in flight: the server finishes it, then exits (the pod's
    # shutdown); the workers flush their queued spans on the way out.
    with ThreadPoolExecutor(1) as pool, items_locked(postgres, app_database["DATABASE_NAME"]):
        reading = in_flight(pool, server, f"/items/{item['id']}")
        wait_until(lambda: waiting(postgres, app_database["DATABASE_NAME"]) == 1, 10, "the read waiting on the lock")
        stopped_at = time.monotonic()
        server.stop()
        assert time.monotonic() - stopped_at > 1, "the server waited for the request in flight"
    assert reading.result(timeout=5)[0] == 200
    assert STOPPED[kind] in server.logs()

    request_span = server_span(otlp, trace_id)
    arrived = {s["trace_id"] for s in otlp.spans() if s["kind"] == SERVER_SPAN}
    assert set(reads) <= arrived, f"{len(set(reads) - arrived)} of {len(reads)} traced reads not exported"
    assert request_span["resource"]["service.name"] == env["OTEL_SERVICE_NAME"]
    # Which pod, namespace and node: the rendered downward-API env, expanded as the kubelet does.
    assert {k: request_span["resource"].get(k) for k in ("k8s.pod.name", "k8s.namespace.name", "k8s.node.name")} \
        == {"k8s.pod.name": POD_FIELD_STAND_INS["metadata.name"],
            "k8s.namespace.name": POD_FIELD_STAND_INS["metadata.namespace"],
            "k8s.node.name": POD_FIELD_STAND_INS["spec.nodeName"]}
    assert client_of(request_span) == (HOST, "http"), "forwarded headers believed from an untrusted peer"
    logged = [line for line in json_log_lines(server.logs()) if line.get("otelTraceID") == trace_id]
    assert any(line.get("message") == "item created" for line in logged), server.logs()[-3000:]
    # dev keeps the access log (the server's own logger), in JSON like every other line.
    assert any("POST /items" in line.get("message", "") for line in json_log_lines(server.logs()))


@pytest.mark.parametrize("kind", KINDS)
def test_proxy_headers_are_believed_from_the_trusted_range(kind, otlp, serve, postgres, app_database, tmp_path):
    require_kind(kind)
    render_dir = render_with(tmp_path / "render", kind=kind, forwarded_allow_ips=["127.0.0.1/32"])
    assert release(render_dir, app_database, tmp_path / "job").returncode == 0
    server, _, _ = start_app(serve, render_dir, app_database, tmp_path / "pod", otlp)
    trace_id = secrets.token_hex(16)
    # The load balancer appends the peer it saw to what the client sent: the right-most
    # untrusted address is the client (the left one is whatever the client claimed).
    status, _ = server.json("POST", "/items", {"name": "proxied"},
                            headers={**traceparent(trace_id), "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
                                     "X-Forwarded-Proto": "https"})
    assert status == 201
    server.stop()
    assert client_of(server_span(otlp, trace_id)) == ("203.0.113.9", "https")


def test_past_the_concurrency_limit_uvicorn_answers_503_at_once(serve, postgres, app_database, tmp_path):
    # One worker, room for 2: the request in flight and the connection of the one refused.
    render_dir = render_with(tmp_path / "render", workers=1, limit_concurrency=2)
    assert release(render_dir, app_database, tmp_path / "job").returncode == 0
    server, _, _ = start_app(serve, render_dir, app_database, tmp_path / "pod")
    item = server.json("POST", "/items", {"name": "limited"})[1]
    with ThreadPoolExecutor(1) as pool, items_locked(postgres, app_database["DATABASE_NAME"]):
        reading = in_flight(pool, server, f"/items/{item['id']}")
        wait_until(lambda: waiting(postgres, app_database["DATABASE_NAME"]) == 1, 10, "the read waiting on the lock")
        start = time.monotonic()
        assert server.get("/healthz")[0] == 503
        assert time.monotonic() - start < 1, "refused at once, not queued"
    assert reading.result(timeout=5)[0] == 200


def test_past_the_concurrency_limit_granian_holds_new_connections_in_the_backlog(
        serve, postgres, app_database, tmp_path):
    require_kind("granian")
    # One worker holding 2 connections (--backpressure 2): both reads wait on the lock, so a
    # third connection is not accepted until one of them ends; it is then served, not refused.
    render_dir = render_with(tmp_path / "render", kind="granian", workers=1, limit_concurrency=2)
    assert release(render_dir, app_database, tmp_path / "job").returncode == 0
    server, _, app = start_app(serve, render_dir, app_database, tmp_path / "pod")
    assert app.flag("--backpressure") == "2"
    item = server.json("POST", "/items", {"name": "limited"})[1]
    with ThreadPoolExecutor(3) as pool, items_locked(postgres, app_database["DATABASE_NAME"]):
        reads = [in_flight(pool, server, f"/items/{item['id']}") for _ in range(2)]
        wait_until(lambda: waiting(postgres, app_database["DATABASE_NAME"]) == 2, 10, "both reads waiting on the lock")
        third = in_flight(pool, server, "/healthz")
        status, took = third.result(timeout=LOCK_SECONDS + 20)
    assert status == 200
    assert took > 1, "the third connection waited in the backlog until a read ended"
    assert [r.result(timeout=5)[0] for r in reads] == [200, 200]


def test_granian_times_an_idle_connection_out_at_its_header_read_timeout(serve, app_database, tmp_path):
    """keep_alive_timeout_seconds is rendered as --http1-header-read-timeout because hyper, under
    Granian, starts that timer when a keep-alive connection goes idle. The rendered 75 s is past a
    test's patience: this runs the rendered command with that one flag at 2 s."""
    require_kind("granian")
    render_dir = render_with(tmp_path / "render", kind="granian")
    app = RenderedRun.find(render_dir, "Deployment-*.app.json")
    assert app.flag("--http1-header-read-timeout") == "75000", "above the load balancer's 60 s"
    port = free_port()
    argv, env, cwd, _ = app.local(port=port, database=app_database, scratch=tmp_path / "pod")
    argv[argv.index("--http1-header-read-timeout") + 1] = "2000"
    serve(argv, env, port=port, cwd=cwd)
    with socket.create_connection((HOST, port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200"), "kept alive: no Connection: close"
        idle_from = time.monotonic()
        assert conn.recv(1) == b"", "the server closed the idle connection"
        assert 1.5 < time.monotonic() - idle_from < 5
