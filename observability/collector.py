"""The OpenTelemetry Collector's pipeline, as a pure plan: the `config:` value the
opentelemetry-collector Helm chart takes, which is also a file `otelcol --config` reads.

    apps --OTLP/HTTP 4318 or gRPC 4317--> otlp receiver
        -> memory_limiter -> batch -> otlp_grpc/trace_store (Tempo, OTLP gRPC 4317)
                                   -> span_metrics connector -> prometheus exporter (:8889/metrics)

The span metrics turn every span into request, error and duration (R.E.D.) series, with exemplars
that carry the trace id: a latency panel's dot opens the trace that made it. The names they get in
Prometheus (the constants below) are what the kit's dashboards query.

Component type names are the current ones (`otlp_grpc`, `span_metrics`; `otlp` and `spanmetrics`
are their deprecated aliases), known since before 0.158 (the chart's appVersion), by the
collector-contrib image the kit runs and by the collector the tests build (tools/build-engine).

Each app worker process exports its own spans, with a resource of its own (the SDK gives it a
service.instance.id), so each is a writer of its own series: the exporter labels them `instance`
(`exported_instance` once Prometheus scrapes the collector) and a panel sums over them.

The chart merges this into its own default config, which keeps its keys where this sets none: so
every pipeline here names its processors (an empty list included), and the memory limiter sets
`limit_mib`, which the limiter prefers to the chart's default `limit_percentage`.
"""

from __future__ import annotations

from typing import Any

from observability.metrics import SloTargets

# --- what the pipeline exports to Prometheus --------------------------------------------------
# The connector's metrics are `traces.span.metrics.calls` (a monotonic sum) and
# `traces.span.metrics.duration` (a histogram, unit ms); the Prometheus exporter's default
# translation adds `_total` and the unit. A new calls series is first exported at 0, so that rate()
# counts its first spans. Proved against the real exporter by tests/observability/test_collector.py.
SPAN_CALLS = "traces_span_metrics_calls_total"
SPAN_DURATION = "traces_span_metrics_duration_milliseconds"
SPAN_DURATION_BUCKET = f"{SPAN_DURATION}_bucket"
SPAN_DURATION_COUNT = f"{SPAN_DURATION}_count"
SPAN_DURATION_SUM = f"{SPAN_DURATION}_sum"
# Labels every span metric has (the connector's default dimensions). service_name is the span's
# resource `service.name`, i.e. the app's OTEL_SERVICE_NAME.
SERVICE_LABEL = "service_name"
SPAN_NAME_LABEL = "span_name"
SPAN_KIND_LABEL = "span_kind"
STATUS_CODE_LABEL = "status_code"
SERVER_SPAN_KIND = "SPAN_KIND_SERVER"
ERROR_STATUS_CODE = "STATUS_CODE_ERROR"
# Exemplar label holding the trace id (Grafana's exemplarTraceIdDestinations reads it).
EXEMPLAR_TRACE_ID_LABEL = "trace_id"

# HTTP dimensions, OpenTelemetry's stable HTTP semantic conventions: label names http_request_method,
# http_route, http_response_status_code.
HTTP_DIMENSIONS = ("http.request.method", "http.route", "http.response.status_code")
# The same two facts under the older names, which the Python instrumentations (FastAPI, ASGI,
# Django, WSGI) still emit unless OTEL_SEMCONV_STABILITY_OPT_IN=http. A span carries one set or
# the other (both with `http/dup`); a dimension whose attribute a span lacks adds no label, so
# listing both costs no series.
LEGACY_HTTP_DIMENSIONS = ("http.method", "http.status_code")
ROUTE_LABEL = "http_route"

# Duration buckets, ms: fine below a second where web latency lives, coarse up to 10 s. The latency
# objective's threshold is always one of them (see collector_config), so "share of requests under
# it" is a bucket, not an interpolation.
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# How often the connector hands its (cumulative) series to the exporter. The exporter serves the
# last hand-over, so a scrape sees spans at most this old plus the scrape interval.
SPAN_METRICS_FLUSH = "15s"
# A series no span has updated for this long is dropped: each app worker process is a writer of its
# own (its resource has its own service.instance.id), and the series of restarted workers and
# replaced pods must not pile up. Same as the Prometheus exporter's own metric_expiration.
SPAN_METRICS_EXPIRATION = "5m"

# The chart's port names and defaults, which its Service and probes use.
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
SPAN_METRICS_PORT = 8889
HEALTH_CHECK_PORT = 13133
TELEMETRY_PORT = 8888  # the collector's own metrics (otelcol_*: refused, dropped, queue size)
# The pod's IP, which the chart puts in MY_POD_IP: the collector listens on the pod's address
# only, not on 0.0.0.0 (the chart's default does the same).
POD_IP = "${env:MY_POD_IP}"

# The chart's default memory limit for the kit (observability.collector.memory_mib).
DEFAULT_MEMORY_LIMIT_MIB = 1024
# Below this the collector's own baseline (~50 MiB of runtime, buffers and caches) leaves no room
# for data.
MIN_MEMORY_LIMIT_MIB = 128

TRACE_STORE_EXPORTER = "otlp_grpc/trace_store"
TRACES_PIPELINE = "traces"
METRICS_PIPELINE = "metrics"


def memory_limiter(memory_limit_mib: int) -> dict[str, Any]:
    """The memory limiter's settings for a container limited to `memory_limit_mib`.

    The hard limit is 80% of the container's: the limiter bounds the Go heap, and the process
    needs about 50 MiB beyond it (its README), so the kernel's OOM kill stays out of reach. The
    spike allowance is 20% of the hard limit (the README's starting point): the limiter starts
    refusing data at the soft limit (hard - spike), receivers answer "retry later", and the apps'
    exporters retry. Checked every second, the README's recommendation, so a burst cannot grow
    past the spike allowance unseen. The chart sets GOMEMLIMIT to 80% of the container's limit too,
    so the Go GC works harder near the same line.
    """
    limit = memory_limit_mib * 80 // 100
    return {"check_interval": "1s", "limit_mib": limit, "spike_limit_mib": limit * 20 // 100}


def span_metrics(latency_slo_ms: int) -> dict[str, Any]:
    """The span_metrics connector: R.E.D. series per service, span name, kind, status and HTTP
    method/route/status, with exemplars."""
    buckets = sorted({*LATENCY_BUCKETS_MS, latency_slo_ms})
    return {
        # Explicit: the connector's default unit is to change from ms to s (feature gate
        # connector.spanmetrics.useSecondAsDefaultMetricsUnit), which would rename the histogram.
        "histogram": {"unit": "ms", "explicit": {"buckets": [f"{ms}ms" for ms in buckets]}},
        "dimensions": [{"name": name} for name in (*HTTP_DIMENSIONS, *LEGACY_HTTP_DIMENSIONS)],
        # Each data point keeps a few (trace id, span id, value) samples of the last interval.
        "exemplars": {"enabled": True},
        # Prometheus needs cumulative counters; delta would make every scrape a reset.
        "aggregation_temporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
        "metrics_flush_interval": SPAN_METRICS_FLUSH,
        "metrics_expiration": SPAN_METRICS_EXPIRATION,
    }


def collector_config(*, trace_store_endpoint: str, listen_host: str = POD_IP,
                     otlp_grpc_port: int = OTLP_GRPC_PORT, otlp_http_port: int = OTLP_HTTP_PORT,
                     metrics_port: int = SPAN_METRICS_PORT, health_check_port: int = HEALTH_CHECK_PORT,
                     telemetry_port: int = TELEMETRY_PORT, memory_limit_mib: int = DEFAULT_MEMORY_LIMIT_MIB,
                     insecure_trace_store: bool = True,
                     latency_slo_ms: int = SloTargets().latency_ms) -> dict[str, Any]:
    """The collector's config.

    trace_store_endpoint: `host:port` of the trace store's OTLP gRPC receiver (Tempo: 4317).
    listen_host: the address every listener binds (default: the pod's IP, from MY_POD_IP).
    memory_limit_mib: the container's memory limit, MiB; the memory limiter is sized from it.
    insecure_trace_store: plaintext gRPC to the trace store. The in-cluster Tempo serves no TLS,
      and the exporter's default (TLS) would fail every export with a handshake error.
    latency_slo_ms: the latency objective's threshold; it is always one of the duration buckets.
    """
    if not trace_store_endpoint or "://" in trace_store_endpoint or ":" not in trace_store_endpoint:
        raise ValueError(f"trace_store_endpoint: give host:port of the trace store's OTLP gRPC receiver "
                         f"(e.g. tempo.monitoring.svc:4317), got {trace_store_endpoint!r}; TLS is chosen "
                         f"by insecure_trace_store, not by a scheme")
    ports = {"otlp_grpc_port": otlp_grpc_port, "otlp_http_port": otlp_http_port, "metrics_port": metrics_port,
             "health_check_port": health_check_port, "telemetry_port": telemetry_port}
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise ValueError(f"{name}: must be 1..65535, got {port}")
    if len(set(ports.values())) != len(ports):
        raise ValueError(f"ports must differ, two listeners cannot bind one port: {ports}")
    if memory_limit_mib < MIN_MEMORY_LIMIT_MIB:
        raise ValueError(f"memory_limit_mib: must be at least {MIN_MEMORY_LIMIT_MIB}, got {memory_limit_mib}: "
                         f"the collector's own baseline leaves no room for data below it")
    if latency_slo_ms <= 0:
        raise ValueError(f"latency_slo_ms: must be positive, got {latency_slo_ms}")

    def at(port: int) -> str:
        return f"{listen_host}:{port}"

    trace_store: dict[str, Any] = {"endpoint": trace_store_endpoint}
    if insecure_trace_store:
        trace_store["tls"] = {"insecure": True}
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": at(otlp_grpc_port)},
                                   "http": {"endpoint": at(otlp_http_port)}}},
        },
        "processors": {
            "memory_limiter": memory_limiter(memory_limit_mib),
            # Defaults: up to 8192 spans or 200 ms per export, whichever comes first.
            "batch": {},
        },
        "connectors": {"span_metrics": span_metrics(latency_slo_ms)},
        "exporters": {
            # Default sending queue and retries: a Tempo restart delays traces, it does not drop them
            # (until the queue is full).
            TRACE_STORE_EXPORTER: trace_store,
            "prometheus": {
                "endpoint": at(metrics_port),
                # Exemplars are only written in the OpenMetrics format, which Prometheus asks for.
                "enable_open_metrics": True,
                # No resource_to_telemetry_conversion: the connector already puts service.name on
                # every data point (service_name); copying every resource attribute (pod, node,
                # SDK version, instance id) into labels would multiply the series for nothing a
                # panel selects on. They stay on the exporter's target_info.
            },
        },
        "extensions": {
            # The chart's liveness and readiness probes call it; it must stay.
            "health_check": {"endpoint": at(health_check_port)},
        },
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                TRACES_PIPELINE: {
                    "receivers": ["otlp"],
                    # memory_limiter first: it must refuse data before anything else holds it.
                    "processors": ["memory_limiter", "batch"],
                    "exporters": [TRACE_STORE_EXPORTER, "span_metrics"],
                },
                METRICS_PIPELINE: {
                    "receivers": ["span_metrics"],
                    # The connector already emits one batch per flush; the chart's default
                    # processors for this pipeline would only add a delay.
                    "processors": [],
                    "exporters": ["prometheus"],
                },
            },
            "telemetry": {"metrics": {"readers": [
                {"pull": {"exporter": {"prometheus": {"host": listen_host, "port": telemetry_port}}}}]}},
        },
    }
