"""OpenTelemetry under Gunicorn: each worker sets up its tracer provider after the fork (by the
kit's post_fork hook, or else at its first request), spans reach an OTLP/HTTP collector, and
every JSON log line written during a request carries its trace id."""

from __future__ import annotations

import secrets

from harness import json_log_lines

from .shop_app import Browser, children, gunicorn_argv, kit_config, threads

SERVER, CLIENT = 2, 3  # OTLP SpanKind values


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def tracing_env(app_env, otlp, **extra: str) -> dict[str, str]:
    return {**app_env, "OTEL_SERVICE_NAME": "shop-test", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_always_on", "OTEL_BSP_SCHEDULE_DELAY": "200", **extra}


def test_a_request_and_its_queries_reach_the_collector_and_its_trace_id_is_in_the_logs(
        otlp, serve, app_env, port, tmp_path):
    server = serve(gunicorn_argv(port, workers=2, config=kit_config(tmp_path)), tracing_env(app_env, otlp),
                   port=port)
    trace_id, header = traceparent()
    assert server.get("/", headers={"traceparent": header})[0] == 200

    def statement(span) -> str:
        return span["attributes"].get("db.statement") or span["attributes"].get("db.query.text") or ""

    def arrived(spans) -> bool:
        return any(s["kind"] == SERVER for s in spans if s["trace_id"] == trace_id) and \
            any("catalog_product" in statement(s) for s in spans if s["trace_id"] == trace_id)

    ours = [s for s in otlp.wait_for(arrived) if s["trace_id"] == trace_id]
    request = next(s for s in ours if s["kind"] == SERVER)
    assert request["name"] == "GET product-list"  # named by the view, like the metrics
    assert request["resource"]["service.name"] == "shop-test"
    assert request["resource"]["deployment.environment.name"] == "test"
    query = next(s for s in ours if s["kind"] == CLIENT and "catalog_product" in statement(s))
    assert query["parent_span_id"] == request["span_id"]  # the page's query, inside the request's span

    # A log record written during a request (here: a refused admin login) carries its ids.
    trace_id, header = traceparent()
    status, _, _ = Browser(port).post_form("/admin/login/", {"username": "mallory", "password": "guess"},
                                           headers={"traceparent": header})
    assert status == 200  # the form again
    spans = otlp.wait_for(lambda spans: any(s["trace_id"] == trace_id and s["kind"] == SERVER for s in spans))
    request = next(s for s in spans if s["trace_id"] == trace_id and s["kind"] == SERVER)
    lines = [line for line in json_log_lines(server.logs()) if line.get("trace_id") == trace_id]
    assert lines, server.logs()[-3000:]
    assert lines[0]["message"] == "login refused: wrong username or password" and lines[0]["username"] == "mallory"
    assert lines[0]["span_id"] == request["span_id"]
    assert lines[0]["logger"] == "shop.audit" and lines[0]["level"] == "WARNING"


def test_without_the_hook_each_worker_starts_tracing_at_its_first_request_and_the_master_never_does(
        otlp, serve, app_env, port, tmp_path):
    """`gunicorn --preload` and no post_fork hook: the master imports shop.wsgi, the workers
    inherit it, and a worker makes its tracer provider (and exporter thread) when it first
    serves. Spans queued far beyond the test's length still arrive: flushed at shutdown."""
    env = tracing_env(app_env, otlp, OTEL_BSP_SCHEDULE_DELAY="600000")
    server = serve(gunicorn_argv(port, workers=2, extra=["--preload"]), env, port=port)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert server.get(path)[0] == 200
    trace_id, header = traceparent()
    assert server.get("/", headers={"traceparent": header})[0] == 200
    assert threads(server.pid) == 1  # no exporter thread in the master: it would not survive the fork
    assert any(threads(pid) > 1 for pid in children(server.pid))
    assert otlp.spans() == []

    assert server.stop() == 0
    spans = otlp.spans()
    assert {s["trace_id"] for s in spans} == {trace_id}  # nothing from the probes or /metrics
    assert {SERVER, CLIENT} <= {s["kind"] for s in spans}


def test_with_the_exporter_off_logs_still_carry_the_callers_trace_id(otlp, serve, app_env, port, tmp_path):
    server = serve(gunicorn_argv(port, config=kit_config(tmp_path)),
                   tracing_env(app_env, otlp, OTEL_TRACES_EXPORTER="none"), port=port)
    trace_id, header = traceparent()
    Browser(port).post_form("/admin/login/", {"username": "mallory", "password": "guess"},
                            headers={"traceparent": header})
    lines = [line for line in json_log_lines(server.logs()) if line.get("username") == "mallory"]
    assert lines and lines[0]["trace_id"] == trace_id
    assert server.stop() == 0, server.logs()[-3000:]
    assert otlp.spans() == []
