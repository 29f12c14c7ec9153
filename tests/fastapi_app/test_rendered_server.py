"""The kit's rendered FastAPI command, run for real: what `fastapi-local` would start in its
pods (the Alembic release Job, then the app container), on loopback against a real
PostgreSQL and an OTLP receiver.

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
"""

from __future__ import annotations

import secrets

import pytest
from harness import POD_FIELD_STAND_INS, RenderedRun, free_port, json_log_lines, run_command, samples, worker_pids

from cli.render import render

STACK = "fastapi-local"
PASSWORD = "rendered-app-password"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render(STACK, tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def app_database(postgres, rendered) -> dict[str, str]:
    """The rendered role and database (DATABASE_USER / DATABASE_NAME), in the test PostgreSQL."""
    job = RenderedRun.find(rendered, "Job-*.json")
    user = job.env.get("DATABASE_USER")
    name = job.env.get("DATABASE_NAME")
    assert isinstance(user, str) and isinstance(name, str), "fastapi-local names its role and database"
    postgres.psql("postgres", f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{PASSWORD}'")
    postgres.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
    return {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(postgres.port), "DATABASE_USER": user,
            "DATABASE_NAME": name, "DATABASE_PASSWORD": PASSWORD, "PGPASSWORD": PASSWORD,
            "DATABASE_URL": f"postgresql://{user}:{PASSWORD}@127.0.0.1:{postgres.port}/{name}"}


def test_the_rendered_release_job_and_server_run_for_real(otlp, serve, postgres, rendered, app_database, tmp_path):
    # 1. The release Job, exactly as rendered: migrations before any pod starts.
    job = RenderedRun.find(rendered, "Job-*.json")
    assert job.argv == ["alembic", "upgrade", "head"]
    argv, env, cwd, _ = job.local(port=None, database=app_database, scratch=tmp_path / "job")
    result = run_command(argv, env, cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert postgres.psql(app_database["DATABASE_NAME"], "SELECT version_num FROM alembic_version") == "0002"

    # 2. The app container.
    app = RenderedRun.find(rendered, "Deployment-*.app.json")
    assert app.argv[:2] == ["uvicorn", "orders_api.main:app"]
    workers = int(app.flag("--workers"))
    port = free_port()
    argv, env, cwd, made = app.local(port=port, database=app_database, scratch=tmp_path / "pod",
                                     otlp_endpoint=otlp.endpoint)
    print("substitutions:", *made, sep="\n  ")
    server = serve(argv, env, port=port, cwd=cwd)

    assert server.get("/healthz")[0] == 200
    assert server.get("/readyz")[0] == 200

    # /metrics: one live series per worker process, whichever worker answers.
    def every_worker() -> bool:
        text = server.get("/metrics")[2].decode()
        pids = {int(labels["pid"]) for labels, _ in samples(text, "app_worker_info")}
        return len(pids) == workers and pids == worker_pids(server.pid)

    server.wait_until(every_worker, 30, f"{workers} workers in /metrics")

    # A traced request: its spans reach the collector, its trace id is in a JSON log line.
    trace_id = secrets.token_hex(16)
    status, item = server.json("POST", "/items", {"name": "rendered"},
                               headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert status == 201
    assert server.json("GET", f"/items/{item['id']}") == (200, item)
    # Stop the pod's server: the workers flush their queued spans on the way out.
    server.stop()
    assert "Application shutdown complete." in server.logs()
    spans = otlp.wait_for(lambda s: any(x["trace_id"] == trace_id and x["kind"] == 2 for x in s), timeout=5)
    request_span = next(s for s in spans if s["trace_id"] == trace_id and s["kind"] == 2)
    assert request_span["resource"]["service.name"] == env["OTEL_SERVICE_NAME"]
    # Which pod, namespace and node: the rendered downward-API env, expanded as the kubelet does.
    assert {k: request_span["resource"].get(k) for k in ("k8s.pod.name", "k8s.namespace.name", "k8s.node.name")} \
        == {"k8s.pod.name": POD_FIELD_STAND_INS["metadata.name"],
            "k8s.namespace.name": POD_FIELD_STAND_INS["metadata.namespace"],
            "k8s.node.name": POD_FIELD_STAND_INS["spec.nodeName"]}
    logged = [line for line in json_log_lines(server.logs()) if line.get("otelTraceID") == trace_id]
    assert any(line.get("message") == "item created" for line in logged), server.logs()[-3000:]
