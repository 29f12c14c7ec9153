"""OpenTelemetry tracing, configured only by the standard OTEL_* environment variables.

- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: who is sending (the resource).
- `OTEL_TRACES_EXPORTER`: `otlp` (default), `console`, `none`, or a comma-separated list.
- `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
  `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` (`http/protobuf`, the only protocol installed),
  `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`: read by the SDK's exporter and batch processor.
- `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`: read by the SDK's TracerProvider.
- `OTEL_SDK_DISABLED=true`: no instrumentation at all.
- `OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`: paths not traced (default: the probes and /metrics).

Pre-fork servers: a BatchSpanProcessor owns a thread and a queue, which do not survive a
fork. So the split is: `instrument_app()` at import only wraps the app (its tracer is a
proxy, no thread), and `start()` builds the TracerProvider in each worker, from the
lifespan startup, after any fork. `shutdown()` flushes queued spans before the worker exits.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

DEFAULT_EXCLUDED_URLS = "/healthz,/readyz,/metrics"
PROTOCOL = "http/protobuf"

_provider: TracerProvider | None = None


def disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def instrument_app(app: FastAPI) -> None:
    """Wraps the app in the tracing middleware. Safe before a fork: starts nothing."""
    if disabled():
        return
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS),
        # One span per request (plus its queries), not one per ASGI send/receive message.
        exclude_spans=["receive", "send"],
    )


def start() -> None:
    """Sets up tracing in this process. Call once per worker, after the fork."""
    global _provider
    if _provider is not None:
        return
    if not disabled():
        # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the
        # provider reads OTEL_TRACES_SAMPLER(_ARG); the processor reads OTEL_BSP_*.
        provider = TracerProvider(resource=Resource.create())
        for exporter in _exporters():
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _provider = provider
    # Every log record gets otelTraceID / otelSpanID (all zeros outside a span); the JSON
    # formatter of the kit's log config prints them. No format change, no extra handler:
    # the server's --log-config owns the handlers.
    LoggingInstrumentor().instrument(
        tracer_provider=_provider, set_logging_format=False, inject_trace_context=True,
        enable_log_auto_instrumentation=False)


def instrument_engine(engine: AsyncEngine) -> None:
    if _provider is not None:
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=_provider)


def shutdown() -> None:
    """Exports the spans still queued (bounded by OTEL_BSP_EXPORT_TIMEOUT)."""
    if _provider is not None:
        _provider.shutdown()


def _exporters() -> list[SpanExporter]:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "none":
            continue
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or PROTOCOL)
            if protocol != PROTOCOL:
                raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: this image ships the "
                                 f"OTLP exporter for {PROTOCOL!r} only (port 4318)")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # reads OTEL_EXPORTER_OTLP_* itself
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: expected otlp, console or none")
    return exporters
