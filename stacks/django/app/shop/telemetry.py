"""OpenTelemetry tracing (Django requests, psycopg queries), configured only by OTEL_* variables.

- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: who is sending (the resource).
- `OTEL_TRACES_EXPORTER`: `otlp` (default), `console`, `none`, or a comma-separated list.
- `OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT`, `..._HEADERS`, `OTEL_BSP_*`: read by
  the SDK's OTLP/HTTP exporter (the only protocol installed: `http/protobuf`, port 4318) and
  batch processor. `OTEL_TRACES_SAMPLER(_ARG)`: read by the TracerProvider.
- `OTEL_SDK_DISABLED=true`: nothing is instrumented.
- `OTEL_PYTHON_DJANGO_EXCLUDED_URLS`: paths not traced (default: the probes and /metrics).

Pre-fork servers: a BatchSpanProcessor owns a thread and a queue, which must belong to the
process that serves requests, so the TracerProvider is made in each worker after the fork.
Two paths get there; whichever runs first in a process does it, the other then does nothing:

1. The kit's Gunicorn config calls `init_worker()` from its `post_fork` hook, in each new
   worker before the worker imports the app (or the kit's generic hook installs an SDK
   provider itself, which `init_worker()` then keeps).
2. Any other way of serving (`manage.py runserver`, Gunicorn without that config, another WSGI
   server, `gunicorn --preload`): `shop.wsgi` calls `init_worker()` when a process serves its
   first request. A preloading master imports `shop.wsgi` but serves nothing, so it never
   starts the exporter thread.

`instrument()` only wraps Django and psycopg (spans go through the global provider, a proxy
until a real one is set): no thread, safe in a master before a fork. `shop.wsgi` calls it
before Django loads its middleware, which is when the tracing middleware must be in the list.
Management commands (`migrate`, `collectstatic`) import neither and are not traced.
Queued spans are exported at exit (the provider's atexit hook, bounded by OTEL_BSP_EXPORT_TIMEOUT).
"""

from __future__ import annotations

import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

DEFAULT_EXCLUDED_URLS = "healthz,readyz,metrics"
PROTOCOL = "http/protobuf"

_lock = threading.Lock()
_instrumented = False
_worker_pid: int | None = None  # the process init_worker() ran in (a fork child must run it again)


def disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def initialised() -> bool:
    return _worker_pid == os.getpid()


def instrument() -> None:
    """Wraps Django and psycopg; starts nothing. Idempotent."""
    global _instrumented
    with _lock:
        if _instrumented or disabled():
            return
        _instrumented = True
        # DjangoInstrumentor inserts its middleware into settings.MIDDLEWARE.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        DjangoInstrumentor().instrument(
            excluded_urls=os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS))
        # Query spans (CLIENT), children of the request's span.
        PsycopgInstrumentor().instrument(enable_commenter=False)


def init_worker() -> None:
    """Sets up tracing in this process: call it in each worker after the fork. Idempotent."""
    global _worker_pid
    instrument()
    with _lock:
        if _worker_pid == os.getpid():
            return
        _worker_pid = os.getpid()
        if disabled() or isinstance(trace.get_tracer_provider(), TracerProvider):
            return  # off, or an SDK provider is already installed in this process: keep it
        from opentelemetry.sdk.resources import Resource

        # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the provider
        # reads OTEL_TRACES_SAMPLER(_ARG) and exports what is queued at exit; the processor
        # reads OTEL_BSP_*.
        provider = TracerProvider(resource=Resource.create())
        for exporter in _exporters():
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)


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
                raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: this image ships the OTLP "
                                 f"exporter for {PROTOCOL!r} only (port 4318)")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # reads OTEL_EXPORTER_OTLP_* itself
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: expected otlp, console or none")
    return exporters
