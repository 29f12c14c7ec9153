"""The two reference apps as the kit renders them (fastapi-local, django-local), on loopback with
real PostgreSQL, for the dashboard tests: what the cluster's pod would run, scraped by a real
Prometheus, and a little traffic of each kind the panels show.

Both use the pod harnesses of the other test folders and make only the substitutions those list
(tests/byo_app/kubelet.py and django_pod.py): the image's files -> the app's folder and its venv,
the Secrets' values -> the program's, the database address -> the test PostgreSQL, pod fields ->
stand-ins, the bind address -> 127.0.0.1 and a free port. The fastapi-local pod is the app
container alone (the release Job runs first); django-local's is Nginx + Gunicorn after its
release Job and init container (tests/django_app/kit_pod.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parents[1]
for folder in ("fastapi_app", "byo_app", "django_plans"):  # the harnesses' modules, by bare name
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from django_app.kit_pod import image_env, local_pod  # noqa: E402
from django_pod import create_role, render_stack, rendered_value  # noqa: E402
from harness import APP_BIN, APP_DIR, Postgres, Server, free_port, run_command  # noqa: E402
from kubelet import PROBE_POD_IP, Database, Image, Render  # noqa: E402

from components.database import PORT as DATABASE_PORT  # noqa: E402
from observability.metrics import AppTarget  # noqa: E402

FASTAPI_IMAGE = Image(APP_DIR, workdir="/app", env=image_env(APP_DIR / "Dockerfile"), bin=APP_BIN)
LOAD_THREADS = 8


@dataclass
class RunningApp:
    """One app on loopback: how to scrape it as Prometheus would reach the pod, its database, and
    `get(path)` -> HTTP status, a request as a client of the Service sends it."""

    render: Render
    target: AppTarget
    scrape_target: str  # host:port in the scrape's request line and Host header
    proxy_url: str | None  # where the scrape connects, when not to scrape_target itself
    postgres: Postgres
    database: str
    get: Callable[[str], int]


def app_target(render: Render, postgres: Postgres) -> AppTarget:
    """What the kit's observability is told about the rendered app: its namespace, the Service that
    selects its pods (the scrape's `job`), the Deployment and its autoscaler, the service name of
    its spans, and the max_connections of the database it uses (here, the test PostgreSQL's)."""
    deployment = render.manifest("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = [obj["metadata"]["name"] for obj in _objects(render, "Service")
                if obj["spec"].get("selector", {}).items() <= pod_labels.items()]
    assert len(services) == 1, services
    hpa = render.manifest("HorizontalPodAutoscaler")
    app = render.container("Deployment-*.app.json")
    return AppTarget(
        namespace=render.namespace, job=services[0], deployment=deployment["metadata"]["name"],
        hpa=hpa["metadata"]["name"], min_replicas=hpa["spec"]["minReplicas"], max_replicas=hpa["spec"]["maxReplicas"],
        service_name=rendered_value(app, "OTEL_SERVICE_NAME"),
        db_max_connections=int(postgres.psql("postgres", "SHOW max_connections")))


def _objects(render: Render, kind: str) -> list[dict[str, Any]]:
    return [obj for path in sorted((render.dir / "manifests").glob("*.yaml"))
            if (obj := yaml.safe_load(path.read_text())).get("kind") == kind]


@contextmanager
def fastapi_local(work: Path) -> Iterator[RunningApp]:
    """fastapi-local's release Job, then its app container (Uvicorn, its workers, the kit's
    PROMETHEUS_MULTIPROC_DIR on the pod's emptyDir), serving /metrics on its http port."""
    render = render_stack("fastapi-local", work / "render")
    with ExitStack() as cleanup:
        pg = Postgres()
        cleanup.callback(pg.close)
        app = render.container("Deployment-*.app.json")
        name = rendered_value(app, "DATABASE_NAME")
        create_role(pg, rendered_value(app, "DATABASE_USER"), rendered_value(app, "DATABASE_PASSWORD"), name)
        database = Database(host=render.outputs["database_host"], port=DATABASE_PORT, local_port=pg.port)
        job = render.container("Job-web-migrate-*.release.json")
        migrate = job.local(FASTAPI_IMAGE, database=database, scratch=work / "job", port=None)
        result = run_command(migrate.argv, migrate.env, migrate.cwd)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

        port = free_port()
        local = app.local(FASTAPI_IMAGE, database=database, scratch=work / "pod", port=port)
        server = Server(local.argv, env=local.env, cwd=local.cwd, port=port, log_dir=work / "logs", name="uvicorn")
        cleanup.callback(server.stop)
        server.start()
        yield RunningApp(render, app_target(render, pg), f"127.0.0.1:{port}", None, pg, name,
                         lambda path: server.get(path)[0])


@contextmanager
def django_local(work: Path, nginx_bin: str, nginx_user: tuple[int, int] | None) -> Iterator[RunningApp]:
    """django-local's pod after its release steps: Nginx in front of Gunicorn, /metrics on Nginx's
    second listener. Prometheus reaches a pod by its IP, and Django answers only the hosts it was
    given (the pod IP among them): the scrape goes to `<pod IP>:<metrics port>` through Nginx's
    loopback listener as its HTTP proxy, so the request line and Host are the pod's, as in the
    cluster, while the connection stays on 127.0.0.1."""
    with local_pod(work / "render", nginx_bin, nginx_user) as (pod, jobs):
        pod.start()
        nginx = pod.render.pod_container("nginx")
        metrics_port = next(p["containerPort"] for p in nginx["ports"] if p["name"] == "metrics")
        name = jobs["migrate"][1].env["DATABASE_NAME"]
        yield RunningApp(pod.render, app_target(pod.render, pod.postgres), f"{PROBE_POD_IP}:{metrics_port}",
                         f"http://127.0.0.1:{pod.metrics_port}", pod.postgres, name,
                         lambda path: pod.get(path, headers={"Host": pod.service_host}).status)


def load(app: RunningApp, paths: Sequence[str], rounds: int) -> dict[tuple[str, int], int]:
    """Each of `paths` requested `rounds` times, LOAD_THREADS at a time, each on a new connection:
    (path, status) -> count."""
    requests = [path for _ in range(rounds) for path in paths]
    with ThreadPoolExecutor(LOAD_THREADS) as pool:
        statuses = list(pool.map(app.get, requests))
    counts: dict[tuple[str, int], int] = {}
    for key in zip(requests, statuses, strict=True):
        counts[key] = counts.get(key, 0) + 1
    return counts


def open_connections(app: RunningApp) -> int:
    """Client connections PostgreSQL has open to the app's database (not this query's own)."""
    return int(app.postgres.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                             f"'client backend' AND datname = '{app.database}'"))
