"""OpenTelemetry under a pre-fork server: each worker sets up its own TracerProvider after
the fork, spans reach an OTLP/HTTP collector, and every JSON log line of a traced request
carries its trace id (the kit's log config: python-json-logger, record extras included)."""

from __future__ import annotations

import secrets

from harness import json_log_lines, uvicorn_argv

from stacks.fastapi.server import log_config

SERVER, CLIENT = 2, 3  # OTLP SpanKind values


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def tracing_env(postgres, db, otlp, tmp_path, **extra: str) -> dict[str, str]:
    return {**postgres.env(db), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
            "OTEL_SERVICE_NAME": "orders-api-test", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on", "OTEL_BSP_SCHEDULE_DELAY": "200", **extra}


def json_logging(tmp_path) -> list[str]:
    path = tmp_path / "logging.json"
    path.write_text(log_config("info"))
    return ["--log-config", str(path)]


def test_a_traced_request_reaches_the_collector_and_its_trace_id_is_in_the_logs(
        otlp, serve, postgres, migrated, port, tmp_path):
    server = serve(uvicorn_argv(port, workers=2, extra=json_logging(tmp_path)),
                   tracing_env(postgres, migrated, otlp, tmp_path), port=port)
    trace_id, header = traceparent()
    status, item = server.json("POST", "/items", {"name": "traced"}, headers={"traceparent": header})
    assert status == 201

    def arrived(spans) -> bool:
        kinds = {x["kind"] for x in spans if x["trace_id"] == trace_id and x["name"] != "connect"}
        return {SERVER, CLIENT} <= kinds

    spans = otlp.wait_for(arrived)
    ours = [s for s in spans if s["trace_id"] == trace_id]
    request_span = next(s for s in ours if s["kind"] == SERVER)
    assert request_span["attributes"].get("http.route") == "/items"
    assert request_span["resource"]["service.name"] == "orders-api-test"
    assert request_span["resource"]["deployment.environment.name"] == "test"
    query = next(s for s in ours if s["kind"] == CLIENT and s["name"] != "connect")  # the INSERT
    assert query["name"].startswith("INSERT") and query["parent_span_id"] == request_span["span_id"]

    lines = json_log_lines(server.logs())
    created = [line for line in lines if line.get("message") == "item created"]
    assert created and created[0]["otelTraceID"] == trace_id
    assert created[0]["otelSpanID"] == request_span["span_id"]
    assert created[0]["item_id"] == item["id"] and created[0]["logger"] == "orders_api"
    # The access log line of the same request carries it too.
    assert any(line.get("otelTraceID") == trace_id and "POST /items" in line.get("message", "") for line in lines)


def test_queued_spans_are_flushed_at_shutdown_and_probes_are_not_traced(
        otlp, serve, postgres, migrated, port, tmp_path):
    # A batch delay far beyond the test: spans can only arrive through the shutdown flush.
    env = tracing_env(postgres, migrated, otlp, tmp_path, OTEL_BSP_SCHEDULE_DELAY="600000")
    server = serve(uvicorn_argv(port, workers=2, extra=json_logging(tmp_path)), env, port=port)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert server.get(path)[0] == 200
    trace_id, header = traceparent()
    assert server.json("GET", "/items/1", headers={"traceparent": header})[0] == 404
    assert otlp.spans() == []

    assert server.stop() == 0
    spans = otlp.spans()
    assert {s["trace_id"] for s in spans} == {trace_id}  # nothing from the probes or /metrics
    assert any(s["kind"] == SERVER and s["attributes"].get("http.route") == "/items/{item_id}" for s in spans)


def test_with_the_exporter_off_logs_still_carry_the_callers_trace_id(otlp, serve, postgres, migrated, port, tmp_path):
    env = tracing_env(postgres, migrated, otlp, tmp_path, OTEL_TRACES_EXPORTER="none")
    server = serve(uvicorn_argv(port, extra=json_logging(tmp_path)), env, port=port)
    trace_id, header = traceparent()
    assert server.json("POST", "/items", {"name": "quiet"}, headers={"traceparent": header})[0] == 201
    created = [line for line in json_log_lines(server.logs()) if line.get("message") == "item created"]
    assert created and created[0]["otelTraceID"] == trace_id
    server.stop()  # one process: Uvicorn re-raises SIGTERM after its graceful shutdown (-15)
    assert "Application shutdown complete." in server.logs()
    assert otlp.spans() == []
