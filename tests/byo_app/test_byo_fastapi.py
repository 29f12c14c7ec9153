"""Bring your own FastAPI app: a todo service that is not ours (tests/byo_app/apps/todo:
FastAPI, SQLAlchemy and psycopg 3, its only setting DATABASE_URL; Alembic run by
backend/scripts/prestart.sh), deployed with the stack config a user of target local writes,
and run with exactly what the kit renders for it: the release Job's command in its working
dir, then the Deployment's uvicorn command, each with its env expanded as the kubelet expands
it (components.k8s_pod.expand_env, in the rendered order), against a real PostgreSQL.

The app ships none of the kit's extras: no prometheus_client (so `fastapi.server.metrics:
false`: nothing would serve /metrics), no OpenTelemetry SDK, no python-json-logger (so
`log_format: plain`; the kit's JSON logging config names its formatter); it has
uvicorn[standard], whose uvloop and httptools the rendered command names. It reads DATABASE_URL
only; the other rendered variables (DATABASE_*, PGPASSWORD, OTEL_*, POD_*) reach it unread.

Substitutions (kubelet.Container.local makes these and nothing else, and lists each one):
- the image (`COPY . /app`, `WORKDIR /app`, `ENV PYTHONPATH=/app/backend`, as IMAGE says):
  /app -> tests/byo_app/apps/todo, so the Job's working_dir /app/backend -> .../todo/backend and
  the Deployment's (none set: the image's WORKDIR /app) -> .../todo; PYTHONPATH likewise; the
  image's Python and packages -> .venv-byo, first on PATH;
- env from the kit's local Secret (DATABASE_HOST, DATABASE_PASSWORD, PGPASSWORD, DATABASE_URL):
  the values the program put in it, which the render masks; the password is LOCAL_PASSWORD,
  percent-encoded in the URL by stacks.platform.database_url;
- the database address: the in-cluster Service name (DATABASE_HOST, and the host in
  DATABASE_URL) -> 127.0.0.1, port 5432 (DATABASE_PORT, and in DATABASE_URL) -> the test
  PostgreSQL's port. The rendered role and database (DATABASE_USER, DATABASE_NAME) are created
  there with LOCAL_PASSWORD, as the kit's PostgreSQL StatefulSet creates them;
- env from the pod's own fields (POD_NAME, POD_NAMESPACE, NODE_NAME) -> harness stand-ins;
- the ConfigMap at /etc/webstack/uvicorn (logging.json) -> the rendered config/<configmap>/;
  the emptyDir /tmp -> a fresh temp dir;
- `--host 0.0.0.0 --port 8000` -> 127.0.0.1 and a free port; the kubelet's probes (the
  manifest's paths) are sent there with the Host header a probe carries (<pod IP>:8000, a
  stand-in pod IP).
"""

from __future__ import annotations

import signal

import pytest
from harness import free_port, run_command
from kubelet import APPS, Database, Image, probe_host, sql_literal

from stacks.platform import database_url

STACK = "byo-fastapi"
# Characters a URL reserves: the kit must carry them percent-encoded, the app must decode them.
LOCAL_PASSWORD = "todo p@ss:w/rd#1%?"
CONFIG = {
    "webstack:framework": "fastapi", "webstack:environment": "dev", "webstack:target": "local",
    "webstack:cluster": {"mode": "context"},
    "webstack:app": {"image": "ghcr.io/example/todo:1.0",
                     "release": [{"command": ["sh", "scripts/prestart.sh"], "working_dir": "/app/backend"}]},
    "webstack:fastapi": {"server": {"app": "todo.main:app", "log_format": "plain", "metrics": False},
                         "database": {"enabled": True, "local_password": LOCAL_PASSWORD}},
}
SECRET_KEYS = {"webstack:fastapi"}
IMAGE = Image(APPS / "todo", workdir="/app", env={"PYTHONPATH": "/app/backend"})
# The port of the kit's in-cluster PostgreSQL Service (DATABASE_PORT, and in DATABASE_URL).
SERVICE_PORT = 5432


@pytest.fixture(scope="module")
def database(postgres, job) -> Database:
    """The rendered role and database, created in the test PostgreSQL with the stack's password."""
    plain = {e["name"]: e["value"] for e in job.env_entries if "value" in e}
    user, name = plain["DATABASE_USER"], plain["DATABASE_NAME"]
    postgres.psql("postgres", f'CREATE ROLE "{user}" LOGIN PASSWORD {sql_literal(LOCAL_PASSWORD)}')
    postgres.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
    host = next(data["DATABASE_HOST"] for data in job.secrets.values() if "DATABASE_HOST" in data)
    return Database(host=host, port=SERVICE_PORT, local_port=postgres.port)


@pytest.fixture(scope="module")
def released(job, database, tmp_path_factory):
    """The release Job, run once as rendered: (its result, what it was given)."""
    local = job.local(IMAGE, database=database, scratch=tmp_path_factory.mktemp("job"), port=None)
    return run_command(local.argv, local.env, local.cwd, timeout=120), local


def test_the_release_job_runs_the_prestart_script_from_its_working_dir_and_migrates(
        job, released, postgres, database):
    assert job.argv == ["sh", "scripts/prestart.sh"]
    assert job.working_dir == "/app/backend"
    result, local = released
    print("substitutions:", *local.substitutions, sep="\n  ")
    assert result.returncode == 0, result.stdout + result.stderr
    assert local.cwd == IMAGE.dir / "backend"

    # The URL the kit composed reached the app unchanged but for the address.
    user, name = local.env["DATABASE_USER"], local.env["DATABASE_NAME"]
    assert local.env["DATABASE_URL"] == database_url(user, "127.0.0.1", postgres.port, name, "disable",
                                                     password=LOCAL_PASSWORD)
    assert postgres.psql(name, "SELECT version_num FROM alembic_version") == "0001"
    assert postgres.psql(name, "SELECT tableowner FROM pg_tables WHERE tablename = 'todos'") == user

    # The next release runs the same Job again: nothing to do, and it still succeeds.
    again = run_command(local.argv, local.env, local.cwd, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert postgres.psql(name, "SELECT version_num FROM alembic_version") == "0001"


def test_the_rendered_uvicorn_command_serves_the_app_its_probes_and_a_database_route(
        rendered, released, database, postgres, serve, tmp_path):
    assert released[0].returncode == 0, "the release Job must have migrated first"
    app = rendered.container("Deployment-web-app.app.json")
    assert app.argv[:2] == ["uvicorn", "todo.main:app"]
    assert app.run.flag("--loop") == "uvloop" and app.run.flag("--http") == "httptools"
    port = free_port()
    local = app.local(IMAGE, database=database, scratch=tmp_path / "pod", port=port)
    print("substitutions:", *local.substitutions, sep="\n  ")
    assert local.cwd == IMAGE.dir

    probes = app.probes()
    assert set(probes) == {"startup", "readiness", "liveness"}
    server = serve(local.argv, local.env, cwd=local.cwd, port=port, ready_path=probes["readiness"][0])
    for kind, (path, container_port) in probes.items():
        status, _, body = server.get(path, headers=probe_host(container_port), timeout=5)
        assert status == 200, f"{kind} probe GET {path}: {status} {body[:300]!r}"

    status, created = server.json("POST", "/todos", {"title": "deploy with webstack"}, timeout=10)
    assert status == 201, created
    assert created["title"] == "deploy with webstack" and created["done"] is False
    status, listed = server.json("GET", "/todos", timeout=10)
    assert status == 200 and listed == [created]
    assert postgres.psql(local.env["DATABASE_NAME"], "SELECT title FROM todos") == "deploy with webstack"

    # A pod's end: SIGTERM, and the server shuts down within the grace period by itself (uvicorn
    # re-raises the signal once done: -15, where a SIGKILL after the wait would be -9).
    assert server.stop(timeout=30) in (0, -signal.SIGTERM), server.logs()[-3000:]
    assert "Application shutdown complete." in server.logs()
