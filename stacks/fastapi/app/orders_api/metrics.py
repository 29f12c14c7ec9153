"""Prometheus metrics that stay correct when several worker processes serve one port.

Each worker writes its samples to memory-mapped files in `PROMETHEUS_MULTIPROC_DIR` and
`/metrics` (answered by whichever worker the kernel picks) adds up every worker's files.
prometheus_client chooses file-backed values when it is first imported, so this module
creates the directory before importing it. Without the variable (a laptop, one process)
the ordinary in-memory registry is used.

Requests are labelled by route template (`/items/{item_id}`), never by raw path: one
series per route, not one per id. `orders_api_worker_info` is 1 in every live worker
(`liveall`: a `pid` label, and a worker's series goes when the worker goes).
"""

from __future__ import annotations

import glob
import os
import re
import time

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

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
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

UNMATCHED = "<unmatched>"  # 404s share one label value, whatever path a scanner tried

REQUESTS = Counter("orders_api_http_requests", "HTTP requests answered.",
                   ["method", "route", "status"])
LATENCY = Histogram("orders_api_http_request_duration_seconds",
                    "Time from request start to the end of the response, seconds.",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
WORKER_INFO = Gauge("orders_api_worker_info", "1 for each live worker process (label pid).",
                    multiprocess_mode="liveall")


def worker_started() -> None:
    """Call in each worker at startup (after fork)."""
    if MULTIPROC_DIR:
        _forget_dead_workers()
    WORKER_INFO.set(1)


def worker_stopped() -> None:
    """Call in each worker at shutdown: its live gauges leave /metrics."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(os.getpid())


def _forget_dead_workers() -> None:
    # A worker that was killed (OOM, SIGKILL) never ran worker_stopped(); the server starts a
    # new one, whose startup removes the dead pid's live gauges. The directory is an emptyDir
    # that outlives container restarts, so this also clears a previous container's workers.
    # Counters of dead workers stay: their sum must never go down.
    pids = set()
    for path in glob.glob(os.path.join(MULTIPROC_DIR, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if match:
            pids.add(int(match.group(1)))
    for pid in pids - {os.getpid()}:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> tuple[bytes, str]:
    """The body and content type of /metrics."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class PrometheusMiddleware:
    """Counts and times every HTTP request (plain ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before the response started is a 500 to the client

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # FastAPI's router puts the matched route in the (shared) scope.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - start)
