"""Prometheus metrics that stay right when several Gunicorn workers serve one port.

With `PROMETHEUS_MULTIPROC_DIR` set, each worker writes its samples to memory-mapped files
in that directory and `/metrics` (answered by whichever worker the kernel picks) adds up
every worker's files. prometheus_client picks file-backed values when it is first imported,
so this module creates the directory before importing it. Without the variable (a laptop,
`runserver`) the ordinary in-memory registry is used.

The names are the kit's metric contract (observability/metrics.py), which its alert rules and
dashboards query: `http_requests_total{method,route,status}`,
`http_request_duration_seconds{method,route}` and `db_client_connections_usage{state}`.

A dead worker's counts must stay in the sums (they never go down), and they do. Its open
connections must leave them: the gauge is `livesum`, and the server calls
`multiprocess.mark_process_dead(pid)` when a worker exits (the kit's gunicorn.conf.py does, in
`child_exit`), which drops that worker's gauge files.

Requests are labelled by the URL pattern that matched (`/`, `/healthz`, `/<admin>/login/`),
never by raw path: one series per route, not one per URL a scanner tries.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

from django.conf import settings  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import ResolverMatch  # noqa: E402
from prometheus_client import (  # noqa: E402  (after the directory exists)
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

UNMATCHED = "<unmatched>"  # every 404 from URL resolution shares one label value
# The admin's prefix (DJANGO_ADMIN_PATH) is chosen to be hard to guess: it stays out of the
# metrics, which every Grafana user reads.
ADMIN = "<admin>/"
# Any other method (a scanner's garbage) shares one label value too.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

REQUESTS = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"])
# The latency objective's threshold (SloTargets.latency_ms, 500 by default) must be a bucket
# boundary: the SLO counts requests in the `le="0.5"` bucket, and Prometheus can't split one.
LATENCY = Histogram("http_request_duration_seconds",
                    "Time from the request reaching Django to its response, seconds.", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
# OpenTelemetry's db.client.connections.usage, counted by the engine (shop/db/postgresql/base.py).
# Django has no pool: each thread holds its own connection while it is open (CONN_MAX_AGE), so
# every open connection is `used` and `idle` stays 0; it is exported so both states the
# contract names exist. `livesum`: the sum over the live workers, what max_connections sees.
DB_CONNECTIONS = Gauge("db_client_connections_usage", "Open database connections by state (used, idle).",
                       ["state"], multiprocess_mode="livesum")
DB_USED = DB_CONNECTIONS.labels("used")
DB_CONNECTIONS.labels("idle")


def route_of(match: ResolverMatch | None) -> str:
    """The route label: the matched pattern from the site's root (`/`, `/healthz`), the view's
    name for a resolver that records no pattern, UNMATCHED when nothing matched."""
    if match is None:
        return UNMATCHED
    if match.route is None:
        return match.view_name
    route = match.route
    if route.startswith(settings.ADMIN_PATH):
        route = ADMIN + route[len(settings.ADMIN_PATH):]
    # An empty label value is no label at all to Prometheus: the root pattern "" becomes "/".
    return "/" + route


def exposition() -> tuple[bytes, str]:
    """The body and content type of /metrics."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class PrometheusMiddleware:
    """Counts and times each request by method, route and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        # Django turns exceptions raised below into responses (500, 404...), so one always comes.
        response = self.get_response(request)
        route = route_of(request.resolver_match)  # set by URL resolution; None when nothing matched
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        LATENCY.labels(method, route).observe(time.perf_counter() - start)
        return response
