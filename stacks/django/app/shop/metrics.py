"""Prometheus metrics that stay right when several Gunicorn workers serve one port.

With `PROMETHEUS_MULTIPROC_DIR` set, each worker writes its samples to memory-mapped files
in that directory and `/metrics` (answered by whichever worker the kernel picks) adds up
every worker's files. prometheus_client picks file-backed values when it is first imported,
so this module creates the directory before importing it. Without the variable (a laptop,
`runserver`) the ordinary in-memory registry is used.

Only counters and histograms: a dead worker's counts must stay in the sums (they never go
down), and they do. The server should still call `multiprocess.mark_process_dead(pid)` when
a worker exits: a no-op for these, it keeps gauges right if you add some.

Requests are labelled by view name (`product-list`, `admin:index`), never by raw path: one
series per view, not one per URL a scanner tries.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

from django.http import HttpRequest, HttpResponse  # noqa: E402
from prometheus_client import (  # noqa: E402  (after the directory exists)
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

UNMATCHED = "<unmatched>"  # every 404 from URL resolution shares one label value
# Any other method (a scanner's garbage) shares one label value too.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

REQUESTS = Counter("shop_http_requests", "HTTP requests answered.", ["method", "view", "status"])
LATENCY = Histogram("shop_http_request_duration_seconds",
                    "Time from the request reaching Django to its response, seconds.", ["method", "view"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


def exposition() -> tuple[bytes, str]:
    """The body and content type of /metrics."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class PrometheusMiddleware:
    """Counts and times each request by method, view name and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        # Django turns exceptions raised below into responses (500, 404...), so one always comes.
        response = self.get_response(request)
        match = request.resolver_match  # set by URL resolution; None when nothing matched
        view = match.view_name if match else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(method, view, str(response.status_code)).inc()
        LATENCY.labels(method, view).observe(time.perf_counter() - start)
        return response
