"""The collector's pipeline (observability/collector.py): first the plan on its own, then the
plan run by a real collector (tools/build-engine's otelcol-webstack) between the reference apps,
run with the kit's rendered server commands, and a stand-in trace store (otel_collector.py).

The apps run as the kit renders them (FastAPI: fastapi-local's Uvicorn command and env, as
tests/fastapi_app/test_rendered_server.py runs it; Django: django-local's pod, Nginx and Gunicorn,
as tests/django_app/test_kit_served.py runs it, but with 2 Gunicorn workers: otel_django.py).
Their OTLP endpoint is this collector; one variable is added to their env,
OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=process, so that each span names the worker process (pid)
that exported it.

A missing collector binary skips these tests when pytest runs alone, and fails them under CI or
tools/test (otel_collector.require_otelcol).
"""

from __future__ import annotations

import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# The servers the app tests share: harness and harness_fixtures (FastAPI's folder), Nginx's
# fixtures (django_plans'); otel_django adds the Django pod's folders.
for folder in ("fastapi_app", "django_plans"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / folder))

from harness import (  # noqa: E402
    VENV_APP,
    OtlpReceiver,
    RenderedRun,
    Server,
    free_port,
    missing_app_venv,
    require,
    run_command,
    worker_pids,
)
from harness_fixtures import postgres_fixtures  # noqa: E402
from nginx_fixtures import nginx_bin, nginx_user  # noqa: E402, F401 (fixtures)
from otel_django import WORKERS, django_pod, gunicorn_worker_pids  # noqa: E402
from otel_django import missing_venv as missing_django_venv  # noqa: E402
from otel_collector import (  # noqa: E402
    Collector,
    openmetrics_samples,
    require_otelcol,
    scrape,
    trace_store_stand_in,
    validate,
    write_config,
)

from cli.render import render  # noqa: E402
from observability import collector  # noqa: E402
from observability.collector import collector_config  # noqa: E402

SERVER_KIND = 2  # OTLP SpanKind SERVER


# --- the plan -----------------------------------------------------------------------------

def plan(**kw) -> dict:
    return collector_config(trace_store_endpoint="tempo.monitoring.svc:4317", **kw)


def components(config: dict) -> dict[str, set[str]]:
    return {kind: set(config.get(kind) or {}) for kind in ("receivers", "processors", "exporters", "connectors")}


def test_every_pipeline_names_only_components_the_config_defines():
    config = plan()
    defined = components(config)
    for name, pipeline in config["service"]["pipelines"].items():
        for role, kinds in (("receivers", ("receivers", "connectors")), ("processors", ("processors",)),
                            ("exporters", ("exporters", "connectors"))):
            for ref in pipeline.get(role) or []:
                assert any(ref in defined[kind] for kind in kinds), f"{name}.{role}: {ref} is not defined"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    # A connector is both ends: an exporter of one pipeline and a receiver of another.
    pipelines = config["service"]["pipelines"]
    for connector in defined["connectors"]:
        assert any(connector in p["exporters"] for p in pipelines.values())
        assert any(connector in p.get("receivers", []) for p in pipelines.values())


def test_traces_go_through_the_memory_limiter_first_then_to_the_trace_store_and_the_span_metrics():
    traces = plan()["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"][0] == "memory_limiter" and "batch" in traces["processors"]
    assert set(traces["exporters"]) == {collector.TRACE_STORE_EXPORTER, "span_metrics"}
    metrics = plan()["service"]["pipelines"]["metrics"]
    assert metrics["receivers"] == ["span_metrics"] and metrics["exporters"] == ["prometheus"]
    # Set, even empty: the chart merges its default processors into a pipeline that names none.
    assert metrics["processors"] == []


def test_the_trace_store_exporter_speaks_plaintext_otlp_grpc_unless_told_otherwise():
    exporter = plan()["exporters"][collector.TRACE_STORE_EXPORTER]
    assert collector.TRACE_STORE_EXPORTER.split("/")[0] == "otlp_grpc"
    assert exporter == {"endpoint": "tempo.monitoring.svc:4317", "tls": {"insecure": True}}
    assert "tls" not in plan(insecure_trace_store=False)["exporters"][collector.TRACE_STORE_EXPORTER]


@pytest.mark.parametrize("memory_mib, limit, spike", [(256, 204, 40), (1024, 819, 163), (4096, 3276, 655)])
def test_the_memory_limiter_keeps_a_fifth_of_the_container_for_the_runtime(memory_mib, limit, spike):
    limiter = plan(memory_limit_mib=memory_mib)["processors"]["memory_limiter"]
    assert limiter == {"check_interval": "1s", "limit_mib": limit, "spike_limit_mib": spike}
    assert limit <= memory_mib * 0.8 and memory_mib - limit >= 50  # the README's ~50 MiB beyond the heap


def test_every_listener_binds_the_pod_ip_by_default_and_the_given_host_and_ports_otherwise():
    default = plan()
    assert default["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "${env:MY_POD_IP}:4317"
    assert default["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "${env:MY_POD_IP}:4318"
    assert default["exporters"]["prometheus"]["endpoint"] == "${env:MY_POD_IP}:8889"
    assert default["extensions"]["health_check"]["endpoint"] == "${env:MY_POD_IP}:13133"
    local = plan(listen_host="127.0.0.1", otlp_grpc_port=1, otlp_http_port=2, metrics_port=3,
                 health_check_port=4, telemetry_port=5)
    reader = local["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader == {"host": "127.0.0.1", "port": 5}
    assert local["exporters"]["prometheus"]["endpoint"] == "127.0.0.1:3"


def test_span_metrics_have_exemplars_http_dimensions_and_a_bucket_at_the_latency_objective():
    connector = plan()["connectors"]["span_metrics"]
    assert connector["exemplars"] == {"enabled": True}
    assert connector["histogram"]["unit"] == "ms"
    assert "500ms" in connector["histogram"]["explicit"]["buckets"]
    assert "300ms" in plan(latency_slo_ms=300)["connectors"]["span_metrics"]["histogram"]["explicit"]["buckets"]
    names = [d["name"] for d in connector["dimensions"]]
    assert {"http.request.method", "http.route", "http.response.status_code"} <= set(names)
    assert connector["aggregation_temporality"] == "AGGREGATION_TEMPORALITY_CUMULATIVE"
    prometheus = plan()["exporters"]["prometheus"]
    assert prometheus["enable_open_metrics"] is True  # exemplars exist only in OpenMetrics
    assert "resource_to_telemetry_conversion" not in prometheus  # service_name comes from the connector


@pytest.mark.parametrize("kw, match", [
    ({"trace_store_endpoint": "http://tempo:4317"}, "trace_store_endpoint"),
    ({"trace_store_endpoint": "tempo"}, "trace_store_endpoint"),
    ({"metrics_port": 4317}, "ports must differ"),
    ({"otlp_http_port": 70000}, "otlp_http_port"),
    ({"memory_limit_mib": 64}, "memory_limit_mib"),
    ({"latency_slo_ms": 0}, "latency_slo_ms"),
])
def test_a_config_that_cannot_work_is_refused_with_the_parameter_named(kw, match):
    args = {"trace_store_endpoint": "tempo.monitoring.svc:4317", **kw}
    with pytest.raises(ValueError, match=match):
        collector_config(**args)


# --- the plan run by a real collector ------------------------------------------------------

def test_the_collector_validates_the_rendered_config_and_refuses_an_unknown_component(tmp_path):
    require_otelcol()
    # As in the chart's pod, where MY_POD_IP is set; validate binds nothing.
    pod = {"MY_POD_IP": "127.0.0.1"}
    result = validate(write_config(plan(), tmp_path / "config.yaml"), env=pod)
    assert result.returncode == 0, result.stdout + result.stderr
    # validate is a real check: a component the binary lacks fails it.
    broken = plan()
    broken["service"]["pipelines"]["traces"]["processors"].append("tail_sampling")
    result = validate(write_config(broken, tmp_path / "broken.yaml"), env=pod)
    assert result.returncode != 0 and "tail_sampling" in result.stdout + result.stderr


@pytest.fixture(scope="session")
def app_venv() -> Path:
    """The FastAPI app's venv; its Python also runs the OTLP receiver at the end of the pipeline."""
    require(missing_app_venv())
    return VENV_APP


postgres, own_postgres = postgres_fixtures(after="app_venv")


class Pipeline:
    """The kit's collector on loopback, its trace store stand-in and the OTLP receiver at the end."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.started: list[Server] = []
        self.receiver = OtlpReceiver(work_dir / "receiver")

    def start(self) -> Pipeline:
        store, store_endpoint = trace_store_stand_in(forward_to=self.receiver.endpoint, work_dir=self.work_dir)
        self.started.append(store)
        ports = {name: free_port() for name in ("otlp_grpc_port", "otlp_http_port", "metrics_port",
                                                "health_check_port", "telemetry_port")}
        self.config = collector_config(trace_store_endpoint=store_endpoint, listen_host="127.0.0.1", **ports)
        self.config_file = write_config(self.config, self.work_dir / "collector.yaml")
        result = validate(self.config_file)
        assert result.returncode == 0, result.stdout + result.stderr
        self.collector = Collector(self.config_file, health_port=ports["health_check_port"], log_dir=self.work_dir,
                                   name="collector")
        self.started.append(self.collector)
        self.collector.start()
        self.ports = ports
        self.otlp_http_endpoint = f"http://127.0.0.1:{ports['otlp_http_port']}"
        return self

    def metrics(self) -> str:
        return scrape(self.ports["metrics_port"])

    def close(self) -> None:
        for server in reversed(self.started):
            server.stop()
        self.receiver.close()


@pytest.fixture
def pipeline(app_venv, tmp_path):
    """Set up before the app's server, so it is still there for the server's shutdown flush."""
    require_otelcol()
    p = Pipeline(tmp_path / "otel")
    try:
        yield p.start()
    finally:
        p.close()


def every_worker_traced(pipeline: Pipeline, *, service: str, pids: set[int], call, logs) -> list[dict]:
    """Sends bursts of concurrent requests (`call(traceparent)`, each on a new connection, so every
    worker accepts some; each continues a trace of its own) until server spans from each of the
    worker processes `pids` have reached the end of the pipeline. Returns the app's server spans
    there, checked: from those workers only, one exporter (service.instance.id) per worker, in the
    callers' traces. The SDK's batch processor exports every 5 s: a burst is given 7 s."""
    trace_ids: set[str] = set()

    def one(_: int) -> None:
        trace_id = secrets.token_hex(16)
        trace_ids.add(trace_id)
        call(f"00-{trace_id}-{secrets.token_hex(8)}-01")

    def spans() -> list[dict]:
        return server_spans(pipeline, service)

    deadline = time.monotonic() + 40
    while {s["resource"].get("process.pid") for s in spans()} < pids:
        assert time.monotonic() < deadline, \
            f"no server spans from each of the workers {sorted(pids)} within 40 s:\n{logs()[-4000:]}"
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(24)))
        wait = min(time.monotonic() + 7, deadline)
        while time.monotonic() < wait and {s["resource"].get("process.pid") for s in spans()} < pids:
            time.sleep(0.2)
    found = spans()
    assert {s["resource"]["process.pid"] for s in found} == pids  # and from no other process
    assert len({s["resource"]["service.instance.id"] for s in found}) == len(pids)
    assert {s["trace_id"] for s in found} <= trace_ids
    return found


def server_spans(pipeline: Pipeline, service: str) -> list[dict]:
    """The server spans of `service` that reached the end of the pipeline."""
    return [s for s in pipeline.receiver.spans()
            if s["kind"] == SERVER_KIND and s["resource"].get("service.name") == service]


def check_span_metrics(pipeline: Pipeline, service: str, route: str | None) -> None:
    """The collector's Prometheus endpoint counts each of the app's server spans that reached the
    trace store under the app's service_name and the route (None: spans without http.route have
    no such label), in a duration histogram that has the latency objective's bucket, and shows
    exemplars naming their traces."""

    def ours(name: str, text: str) -> list:
        return [s for s in openmetrics_samples(text, name)
                if s[0].get(collector.SERVICE_LABEL) == service and s[0].get(collector.ROUTE_LABEL) == route
                and s[0].get(collector.SPAN_KIND_LABEL) == collector.SERVER_SPAN_KIND]

    # The connector hands its series to the exporter every SPAN_METRICS_FLUSH (15 s), each with the
    # exemplars of the spans since the previous hand-over only: they are collected across scrapes.
    exemplars: list[dict[str, str]] = []
    deadline = time.monotonic() + 25
    while True:
        text, spans = pipeline.metrics(), server_spans(pipeline, service)
        calls, buckets = ours(collector.SPAN_CALLS, text), ours(collector.SPAN_DURATION_BUCKET, text)
        counted = sum(value for _, value, _ in ours(collector.SPAN_DURATION_COUNT, text))
        exemplars += [e for *_, e in calls + buckets if e]
        if (counted == len(spans) and exemplars) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counted == len(spans), text[-4000:]
    # The calls counter has the same series (a new one starts at 0, so that rate() counts its
    # first spans; its count follows at the next hand-over).
    assert calls, text[-4000:]
    assert {labels["le"] for labels, _, _ in buckets} >= {"500.0", "+Inf"}, buckets
    assert exemplars, text[-4000:]
    assert {e[collector.EXEMPLAR_TRACE_ID_LABEL] for e in exemplars} <= {s["trace_id"] for s in spans}
    # Each worker process is a writer of its own (its service.instance.id, the exporter's
    # `instance`); the other resource attributes (pod, pid) stay off the series.
    assert {labels["instance"] for labels, _, _ in calls} == {s["resource"]["service.instance.id"] for s in spans}
    for labels, _, _ in calls + buckets:
        assert not {"process_pid", "service_instance_id", "k8s_pod_name"} & set(labels), labels


# Added to each app's rendered env: the SDK's process detector, which puts process.pid on each
# worker's resource, so a span names the process that made it.
PROCESS_DETECTOR = {"OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "process"}


# --- FastAPI: Uvicorn workers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def fastapi_render(app_venv, tmp_path_factory) -> Path:
    return render("fastapi-local", tmp_path_factory.mktemp("render"))


def fastapi_database(postgres, rendered: Path, scratch: Path) -> dict[str, str]:
    """The rendered role and database in the test PostgreSQL, migrated by the rendered release Job."""
    job = RenderedRun.find(rendered, "Job-*.json")
    user, name, password = job.env["DATABASE_USER"], job.env["DATABASE_NAME"], secrets.token_hex(8)
    postgres.psql("postgres", f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
    postgres.psql("postgres", f'CREATE DATABASE "{name}" OWNER "{user}"')
    database = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(postgres.port), "DATABASE_USER": user,
                "DATABASE_NAME": name, "DATABASE_PASSWORD": password, "PGPASSWORD": password,
                "DATABASE_URL": f"postgresql://{user}:{password}@127.0.0.1:{postgres.port}/{name}"}
    argv, env, cwd, _ = job.local(port=None, database=database, scratch=scratch)
    result = run_command(argv, env, cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return database


def test_spans_from_every_uvicorn_worker_reach_the_trace_store_and_become_span_metrics(
        pipeline, own_postgres, fastapi_render, tmp_path):
    app = RenderedRun.find(fastapi_render, "Deployment-*.app.json")
    workers = int(app.flag("--workers"))
    assert workers >= 2, "the point is one exporter per worker process"
    port = free_port()
    database = fastapi_database(own_postgres, fastapi_render, tmp_path / "job")
    argv, env, cwd, made = app.local(port=port, database=database, scratch=tmp_path / "pod",
                                     otlp_endpoint=pipeline.otlp_http_endpoint)
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "1", "fastapi-local samples every trace (dev profile)"
    env |= PROCESS_DETECTOR
    print("substitutions:", *made, f"added {PROCESS_DETECTOR}", sep="\n  ")
    with Server(argv, env=env, cwd=cwd, port=port, log_dir=tmp_path / "logs", name="uvicorn") as server:
        pids = worker_pids(server.pid)
        assert len(pids) == workers, pids

        def call(traceparent: str) -> None:
            assert server.get("/items/424242", headers={"traceparent": traceparent})[0] == 404

        service = env["OTEL_SERVICE_NAME"]
        spans = every_worker_traced(pipeline, service=service, pids=pids, call=call,
                                    logs=lambda: server.logs() + pipeline.collector.logs())
        assert {s["attributes"].get("http.route") for s in spans} == {"/items/{item_id}"}
        check_span_metrics(pipeline, service, "/items/{item_id}")


# --- Django: Gunicorn workers behind Nginx -------------------------------------------------

def test_spans_from_every_gunicorn_worker_reach_the_trace_store_and_become_span_metrics(
        pipeline, nginx_bin, nginx_user, tmp_path):
    require(missing_django_venv())
    extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": pipeline.otlp_http_endpoint, **PROCESS_DETECTOR}
    with django_pod(tmp_path / "render" / "django-local", nginx_bin, nginx_user, extra) as pod:
        env = pod.app_env
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "1", "django-local samples every trace (dev profile)"
        pids = gunicorn_worker_pids(pod.gunicorn.popen.pid)
        assert len(pids) == WORKERS, pids

        def call(traceparent: str) -> None:
            assert pod.get("/", headers={"Host": pod.service_host, "traceparent": traceparent}).status == 200

        service = env["OTEL_SERVICE_NAME"]
        spans = every_worker_traced(pipeline, service=service, pids=pids, call=call,
                                    logs=lambda: "\n".join(pod.substitutions) + pod.gunicorn.logs())
        # The product list's view: Django's instrumentation names the span after it and sets no
        # http.route for the root path.
        assert {(s["name"], s["attributes"].get("http.route")) for s in spans} == {("GET product-list", None)}
        check_span_metrics(pipeline, service, None)
