"""The FastAPI suite: the reference app (stacks/fastapi/app) under a naive Uvicorn, under the kit's
rendered server command, under servers tuned by hand, and a bare ASGI app under the kit's command.

Every setup serves the same app object, bench/fastapi_bench/main.py (orders_api plus /io), from
.venv-app, against one throwaway PostgreSQL (harness.Postgres, migrated with Alembic, 1000 items),
each server pinned to the same CPUs as wrk (`Options.cpus`). Routes:
- trivial: `/healthz`, the app's liveness route: no I/O, but the app's middleware runs on it as on
  every route (the Prometheus middleware counts and times it; the tracing middleware skips it).
  A route added for the bench would pay the same middleware, so the app's own route is used.
- io: `/io` awaits 50 ms (bench/fastapi_bench/main.py): an I/O-bound handler.
- db: `/items/1`, one primary-key read through the ORM (SQLAlchemy async, psycopg 3, the app's pool).

The setups, and why each is configured as it is:
- naive (role "naive"): `uvicorn fastapi_bench.main:app --host 127.0.0.1 --port <port>`, Uvicorn's
  defaults otherwise (one worker, access log on, the default loop and HTTP parser: uvloop and
  httptools when installed, as they are in .venv-app), which is what `uvicorn app:app` gives a team.
  Its env: the database (DATABASE_*), PYTHONPATH=bench/, and OTEL_TRACES_EXPORTER=none
  (harness.base_env): nothing else of the kit's, so in-memory metrics and the SDK's default
  sampler (every request traced). `none` only spares it the SDK's default exporter retrying
  against a collector at localhost:4318 that does not exist here: it never slows the naive side.
- kit (role "kit"): the command and env the kit renders for the app container of fastapi-local's
  stack config, run through the real program under mocks (cli.offline, as `render` does), with the
  config changed in three values: `environment: prod`, because the production profile is what a
  user's traffic meets (access log off, 10% of traces kept; dev logs every request and keeps every
  trace); the image by digest that prod requires (fastapi-prod's; no image runs here); and the pod's
  resources pinned to a 2-core limit (RESOURCES, fastapi-local's own today, so a change to the
  example cannot silently change the budget). From them the kit computes 2 workers,
  --limit-concurrency and --backlog. Made runnable here by harness.RenderedRun.local's
  substitutions, and nothing else (kit_setup asserts that every other argument is the render's):
  - `--host 0.0.0.0` -> 127.0.0.1, `--port 8000` -> a free port;
  - the ConfigMap mount (/etc/webstack/uvicorn: logging.json; /etc/webstack/granian: logging.json
    and the kit's launcher webstack_granian.py) -> the rendered config dir;
  - the emptyDirs /tmp and /tmp/prometheus-multiproc -> fresh dirs under `work`;
  - env from the Secret (DATABASE_URL, DATABASE_HOST, DATABASE_PASSWORD, PGPASSWORD) and
    DATABASE_PORT -> the throwaway PostgreSQL's, for the rendered role and database (`app`);
  - the pod fields (POD_NAME, POD_NAMESPACE, NODE_NAME) -> harness.POD_FIELD_STAND_INS, and
    their $(NAME) references in OTEL_RESOURCE_ATTRIBUTES expanded, as the kubelet does;
  - the working dir (the image's WORKDIR) -> stacks/fastapi/app;
  and for the bench: the app `orders_api.main:app` -> `fastapi_bench.main:app` (the same app plus
  /io), PYTHONPATH=bench/ so it imports, and OTEL_TRACES_EXPORTER otlp -> none: there is no
  collector on loopback, so spans are made and sampled as rendered but not sent (sending them
  would cost the collector's CPU on the same two cores, and the naive side sends nothing either).
- kit (granian): the same stack config with `fastapi.server.kind: granian`, measured when the
  settings accept that key (`server_kinds()` asks the kit's own loader), with the same substitutions.
  ("kit" is the stack config as it is, whichever server that renders: Uvicorn today.)
- tuned by hand (role "tuned"), trivial route only (the comparison the issue asks for is the server,
  and the budget is 10 minutes): the fastest each server went on this machine, with the kit's app env
  (multiprocess metrics, tracing as rendered, each with a fresh metrics dir), so that only the server
  differs from the kit's: Uvicorn, Gunicorn with Uvicorn workers, Granian (TUNED documents each).
- limit (role "limit"): bench/fastapi_bench/bare.py, a fixed body and nothing else, under the kit's
  rendered command and flags ("kit"'s): what the kit's server alone reaches here.

wrk runs on the same two cores as the server (and PostgreSQL on the db route): no setup gets the
cores to itself, which caps every ratio (see bench/serve/load.py).
"""

from __future__ import annotations

import copy
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.serve.load import Options, Run, measure, pinned
from cli.offline import run_program
from cli.render import PROGRAM, load_stack_file, write_render
from stacks.config import load_settings
from stacks.errors import ConfigError
from tests.fastapi_app import harness
from tests.fastapi_app.harness import APP_DIR, HOST, Postgres, RenderedRun, Server, free_port

SUITE = "fastapi"
STACK = "fastapi-local"
# The prod profile refuses an image by tag; fastapi-prod's digest is the kit's own example of one.
DIGEST_STACK = "fastapi-prod"
RESOURCES = {"cpu_request": "500m", "cpu_limit": "2", "memory_request": "512Mi", "memory_limit": "1Gi"}
BENCH_DIR = Path(__file__).resolve().parents[1]
APP = "fastapi_bench.main:app"
BARE_APP = "fastapi_bench.bare:app"
ROUTES = {"trivial": "/healthz", "io": "/io", "db": "/items/1"}
ITEMS = 1000
DB_PASSWORD = "bench-password"
READY_SECONDS = 60  # a server's start (imports, 2 workers, the pool's first connection) is seconds


@dataclass
class Setup:
    """One server to start and load: its command (before pinning), env and routes."""

    name: str
    role: str
    argv: list[str]
    env: dict[str, str]
    port: int
    routes: tuple[str, ...]
    ready_path: str = "/healthz"
    substitutions: list[str] = field(default_factory=list)


# --- the kit's rendered command ------------------------------------------------------------

def kit_config(kind: str | None = None) -> tuple[dict[str, Any], frozenset[str]]:
    """fastapi-local's config (as the Pulumi CLI hands it to the program) with the module
    docstring's changes: the prod profile, an image by digest, a 2-core pod; `kind` picks the server."""
    stack, digest = load_stack_file(STACK), load_stack_file(DIGEST_STACK)
    config = copy.deepcopy(stack.config)
    config["webstack:environment"] = "prod"
    config["webstack:app"] = {**config["webstack:app"], "image": digest.config["webstack:app"]["image"],
                              "resources": dict(RESOURCES)}
    if kind is not None:
        section = config.setdefault("webstack:fastapi", {})
        section["server"] = {**section.get("server", {}), "kind": kind}
    return config, stack.secret_keys


def server_kinds() -> list[str]:
    """The servers the kit can render: Uvicorn, and Granian once the settings accept
    `fastapi.server.kind` (the kit's own loader decides, so the bench follows the kit)."""
    config, secret_keys = kit_config("granian")
    prefix = "webstack:"
    values = {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}
    try:
        load_settings(values, {k[len(prefix):] for k in secret_keys})
    except ConfigError as error:
        if any(p.startswith("webstack:fastapi.server.kind: unknown key") for p in error.problems):
            return ["uvicorn"]
        raise  # the kit refuses Granian for another reason: a finding, not a silent skip
    return ["uvicorn", "granian"]


def render_kit(kind: str | None, dest: Path) -> Path:
    """Runs the kit's program under mocks for kit_config(kind) and writes its render to `dest`."""
    config, secret_keys = kit_config(kind)
    run = run_program(STACK, config, lambda: runpy.run_path(str(PROGRAM), run_name="__main__"), secret_keys)
    dest.mkdir(parents=True)
    write_render(STACK, run, dest)
    return dest


def kit_setup(name: str, role: str, rendered: Path, *, app: str, database: dict[str, str], scratch: Path,
              routes: tuple[str, ...]) -> Setup:
    """The rendered app container, runnable here with the module docstring's substitutions."""
    container = RenderedRun.find(rendered, "Deployment-*.app.json")
    rendered_app = "orders_api.main:app"  # fastapi-local's fastapi.server.app
    port = free_port()
    argv, env, _cwd, made = container.local(port=port, database=database, scratch=scratch)
    assert rendered_app in argv, f"{container.path.name}: the app {rendered_app} is not an argument: {argv}"
    app_index = argv.index(rendered_app)
    argv[app_index] = app
    made.append(f"{rendered_app} -> {app}")
    assert_only_substituted(container, argv, allowed={argv.index("--host") + 1: HOST,
                                                      argv.index("--port") + 1: str(port), app_index: app})
    if env.get("OTEL_TRACES_EXPORTER") != "none":
        made.append(f"OTEL_TRACES_EXPORTER {env.get('OTEL_TRACES_EXPORTER')} -> none (no collector here)")
        env["OTEL_TRACES_EXPORTER"] = "none"
    env["PYTHONPATH"] = str(BENCH_DIR)
    return Setup(name=name, role=role, argv=argv, env=env, port=port, routes=routes,
                 substitutions=list(dict.fromkeys(made)))  # a mount used twice is one substitution


def assert_only_substituted(container: RenderedRun, argv: list[str], allowed: dict[int, str]) -> None:
    """Every argument is the render's, but for `allowed` (position -> value) and mount paths moved
    to local dirs: the bench runs the kit's command, not one like it."""
    mounts = [*container.files, *container.empty_dirs()]
    assert len(argv) == len(container.argv), (argv, container.argv)
    for i, (ours, theirs) in enumerate(zip(argv, container.argv)):
        if ours == theirs or allowed.get(i) == ours:
            continue
        assert any(theirs == m or theirs.startswith(m.rstrip("/") + "/") for m in mounts), \
            f"argument {i}: {theirs!r} became {ours!r}, which is no listed substitution"


# --- naive and tuned by hand -----------------------------------------------------------------

def naive_setup(database: dict[str, str]) -> Setup:
    port = free_port()
    return Setup(name="naive (uvicorn defaults)", role="naive",
                 argv=["uvicorn", APP, "--host", HOST, "--port", str(port)],
                 env={**database, "PYTHONPATH": str(BENCH_DIR)}, port=port, routes=tuple(ROUTES))


# Each server at its fastest on the trivial route here, found by timing (3-5 s runs, wrk beside it on
# the same two cores). {port} is filled in; `uvicorn`, `gunicorn` and `granian` are .venv-app's
# (harness.base_env puts it first on PATH). Two workers each: the route is CPU-bound, and a third
# worker on two cores shared with wrk served no more (11 382 vs 11 364 req/s at c256). The app's own
# code is ~0.11 of the ~0.14 ms of CPU a request costs under any of them (the bare app: 0.027 ms),
# so no server flag moved them apart by more than run-to-run noise (5%).
TUNED: dict[str, list[str]] = {
    # uvloop and httptools named (Uvicorn's "auto" picks them too), no access log: one log line per
    # request was 25% of the naive server's CPU per request (0.19 -> 0.14 ms without it).
    "uvicorn (by hand)": [
        "uvicorn", APP, "--host", HOST, "--port", "{port}", "--workers", "2",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header",
        "--backlog", "4096", "--log-level", "warning"],
    # uvicorn_worker.UvicornWorker keeps Uvicorn's access log on and hands each record to Gunicorn,
    # which drops it: 0.152-0.157 ms of CPU per request against 0.138 with the log off
    # (bench/fastapi_bench/gunicorn_worker.py).
    "gunicorn + uvicorn workers (by hand)": [
        "gunicorn", APP, "--bind", f"{HOST}:{{port}}", "--workers", "2",
        "--worker-class", "fastapi_bench.gunicorn_worker.QuietUvicornWorker", "--backlog", "4096",
        "--log-level", "warning"],
    # A single-threaded Rust runtime per worker (one core each), HTTP/1 only, no WebSockets, Rust's
    # task implementation: the leanest Granian; 0.132-0.144 ms of CPU per request against
    # 0.131-0.142 with its defaults, i.e. the same within noise.
    "granian (by hand)": [
        "granian", "--interface", "asgi", "--host", HOST, "--port", "{port}", "--workers", "2",
        "--loop", "uvloop", "--runtime-mode", "st", "--http", "1", "--no-ws", "--task-impl", "rust",
        "--backlog", "4096", "--log-level", "warning", APP],
}


def tuned_setup(name: str, kit_env: dict[str, str], scratch: Path) -> Setup:
    """A server tuned by hand, with the kit's app env (its own fresh metrics dir)."""
    port = free_port()
    env = dict(kit_env)
    if "PROMETHEUS_MULTIPROC_DIR" in env:
        metrics = scratch / "prometheus-multiproc"
        metrics.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return Setup(name=name, role="tuned", argv=[a.replace("{port}", str(port)) for a in TUNED[name]], env=env,
                 port=port, routes=("trivial",))


# --- the database ----------------------------------------------------------------------------

def prepare_database(pg: Postgres, user: str, name: str) -> dict[str, str]:
    """The rendered role and database in the throwaway PostgreSQL, migrated, with ITEMS rows; the
    env that reaches them, in every form the rendered container reads."""
    pg.psql("postgres", f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{DB_PASSWORD}'")
    pg.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
    database = {"DATABASE_HOST": HOST, "DATABASE_PORT": str(pg.port), "DATABASE_USER": user,
                "DATABASE_NAME": name, "DATABASE_PASSWORD": DB_PASSWORD, "DATABASE_SSLMODE": "disable"}
    migrated = harness.alembic(database, "upgrade", "head")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    pg.psql(name, f"INSERT INTO items (name, description) "
                  f"SELECT 'item ' || n, repeat('x', 100) FROM generate_series(1, {ITEMS}) n")
    return database


def rendered_database(database: dict[str, str]) -> dict[str, str]:
    """What the rendered container takes from its Secret, for this PostgreSQL."""
    d = database
    return {**d, "PGPASSWORD": d["DATABASE_PASSWORD"],
            "DATABASE_URL": f"postgresql://{d['DATABASE_USER']}:{d['DATABASE_PASSWORD']}@{d['DATABASE_HOST']}:"
                            f"{d['DATABASE_PORT']}/{d['DATABASE_NAME']}"}


# --- running ---------------------------------------------------------------------------------

def session_rss_mib(session: int) -> list[float]:
    """RSS of each process of a server's session (supervisor and workers), MiB."""
    out = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(status.read_text().rsplit(")", 1)[1].split()[3]) != session:
                continue
            text = (status.parent / "status").read_text()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                out.append(round(int(line.split()[1]) / 1024, 1))
    return sorted(out)


def reproducible_env(env: dict[str, str]) -> dict[str, str]:
    """The env a reader needs beside `command` to start a setup again, without the throwaway
    database's password (in DATABASE_URL too)."""
    return {k: v for k, v in sorted(env.items()) if "PASSWORD" not in k and k != "DATABASE_URL"}


def serve_and_measure(setup: Setup, opts: Options, work: Path, log=print) -> list[Run]:
    """Starts `setup` (pinned, in its own session), loads each of its routes, stops it."""
    argv = pinned(setup.argv, opts)
    runs: list[Run] = []
    name = "".join(c if c.isalnum() else "-" for c in setup.name)
    with Server(argv, env=setup.env, cwd=APP_DIR, port=setup.port, log_dir=work / "logs", name=name,
                ready_path=setup.ready_path, ready_timeout=READY_SECONDS) as server:
        for route in setup.routes:
            measured = measure(suite=SUITE, setup=setup.name, role=setup.role, route=route,
                               base_url=f"http://127.0.0.1:{setup.port}", path=ROUTES[route],
                               sessions=[server.pid], command=" ".join(argv), opts=opts, log=log)
            rss = session_rss_mib(server.pid)
            for run in measured:
                run.extra.update(rss_mib=rss, env=reproducible_env(setup.env))
                if setup.substitutions:
                    run.extra["substitutions"] = setup.substitutions
            runs += measured
    return runs


def kit_renders(work: Path, log=print) -> dict[str, Path]:
    """Setup name -> render: "kit", the stack config as it is, and "kit (<kind>)" for the other server
    kind when the settings accept `fastapi.server.kind`."""
    renders = {"kit": render_kit(None, work / "render-default")}
    default = rendered_server(renders["kit"])
    others = [kind for kind in server_kinds() if kind != default]
    if not others:
        log("  kit (granian): not measured, the kit's settings have no fastapi.server.kind yet")
    for kind in others:
        renders[f"kit ({kind})"] = render_kit(kind, work / f"render-{kind}")
    return renders


def rendered_server(rendered: Path) -> str:
    """Which server the rendered command starts, "uvicorn" or "granian" (Granian runs from the kit's
    launcher script, `python .../webstack_granian.py`)."""
    argv = RenderedRun.find(rendered, "Deployment-*.app.json").argv
    return "granian" if any("granian" in Path(a).name for a in argv[:2]) else Path(argv[0]).name


def plan(renders: dict[str, Path], database: dict[str, str], work: Path) -> list[Setup]:
    """Every setup of the suite, in the order they run."""
    secrets = rendered_database(database)
    setups = [naive_setup(database)]
    for i, (name, rendered) in enumerate(renders.items()):
        setups.append(kit_setup(name, "kit", rendered, app=APP, database=secrets, scratch=work / f"pod-{i}",
                                routes=tuple(ROUTES)))
    kit_env = setups[1].env
    # The limit under the server the kit runs by default (the first render).
    default = renders["kit"]
    setups.append(kit_setup(f"bare ASGI, kit's {rendered_server(default)} command", "limit", default,
                            app=BARE_APP, database=secrets, scratch=work / "pod-bare", routes=("trivial",)))
    for i, name in enumerate(TUNED):
        setups.append(tuned_setup(name, kit_env, work / f"tuned-{i}"))
    return setups


def run(opts: Options, work: Path, log=print) -> list[Run]:
    for problem in (harness.missing_app_venv(), harness.missing_postgres()):
        if problem:
            raise SystemExit(problem)
    work.mkdir(parents=True, exist_ok=True)
    renders = kit_renders(work, log)
    container = RenderedRun.find(renders["kit"], "Deployment-*.app.json")
    pg = Postgres()
    try:
        database = prepare_database(pg, container.env["DATABASE_USER"], container.env["DATABASE_NAME"])
        setups = plan(renders, database, work)
        for setup in setups:
            if setup.substitutions:
                log(f"  {setup.name}: " + "; ".join(setup.substitutions))
        runs: list[Run] = []
        for setup in setups:
            runs += serve_and_measure(setup, opts, work, log)
        return runs
    finally:
        pg.close()
