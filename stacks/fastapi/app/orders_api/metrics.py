"""Prometheus metrics that stay correct when several worker processes serve one port.

Each worker writes its samples to memory-mapped files in `PROMETHEUS_MULTIPROC_DIR` and
`/metrics` (answered by whichever worker the kernel picks) adds up every worker's files.
prometheus_client chooses file-backed values when it is first imported, so this module
creates the directory before importing it. Without the variable (a laptop, one process)
the ordinary in-memory registry is used.

The names are the kit's metric contract (observability/metrics.py), which its alert rules and
dashboards query: `http_requests_total{method,route,status}`,
`http_request_duration_seconds{method,route}` and `db_client_connections_usage{state}`.
Requests are labelled by route template (`/items/{item_id}`), never by raw path: one
series per route, not one per id. `app_worker_info` is 1 in every live worker
(`liveall`: a `pid` label, and a worker's series goes when the worker goes).
"""

from __future__ import annotations

import glob
import os
import re
import threading
import time
from typing import Any

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
from sqlalchemy import Engine, event  # noqa: E402
from sqlalchemy.pool import ConnectionPoolEntry  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

UNMATCHED = "<unmatched>"  # 404s share one label value, whatever path a scanner tried

REQUESTS = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"])
# The latency objective's threshold (SloTargets.latency_ms, 500 by default) must be a bucket
# boundary: the SLO counts requests in the `le="0.5"` bucket, and Prometheus can't split one.
LATENCY = Histogram("http_request_duration_seconds",
                    "Time from request start to the end of the response, seconds.",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
WORKER_INFO = Gauge("app_worker_info", "1 for each live worker process (label pid).",
                    multiprocess_mode="liveall")
# OpenTelemetry's db.client.connections.usage: the pool's open connections, lent to a request
# (`used`) or waiting in the pool (`idle`). `livesum`: the sum over the live workers, which is
# what PostgreSQL's max_connections sees; a dead worker's connections leave the sum with it.
DB_CONNECTIONS = Gauge("db_client_connections_usage", "Open database connections by state (used, idle).",
                       ["state"], multiprocess_mode="livesum")
DB_USED = DB_CONNECTIONS.labels("used")
DB_IDLE = DB_CONNECTIONS.labels("idle")


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


class PoolUsage:
    """Keeps DB_CONNECTIONS right for one SQLAlchemy pool, from its events.

    A flag per pool entry (`record_info` outlives reconnects of the entry) says whether it holds
    an open connection and whether that one is lent out, so each transition moves a count once:
    a checkin whose checkout failed (SQLAlchemy sends it after a failed pre-ping reconnect), or a
    close of a connection the app still holds (invalidated mid-request), can't drive a count
    below zero. Counts go up and down (not `set`): two pools in one process add up."""

    OPEN = "webstack.metrics.open"
    LENT = "webstack.metrics.lent"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the loop's thread and a dispose() elsewhere may both report

    def connect(self, _dbapi: Any, record: ConnectionPoolEntry) -> None:
        with self._lock:
            if not record.record_info.get(self.OPEN):
                record.record_info[self.OPEN] = True
                DB_IDLE.inc()

    def checkout(self, _dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        with self._lock:
            if record.record_info.get(self.OPEN) and not record.record_info.get(self.LENT):
                record.record_info[self.LENT] = True
                DB_IDLE.dec()
                DB_USED.inc()

    def checkin(self, _dbapi: Any, record: ConnectionPoolEntry) -> None:
        with self._lock:
            if record.record_info.pop(self.LENT, False):
                DB_USED.dec()
                DB_IDLE.inc()

    def gone(self, _dbapi: Any, record: ConnectionPoolEntry) -> None:
        """The entry's connection was closed, or detached from the pool: no longer the pool's."""
        with self._lock:
            if record.record_info.pop(self.OPEN, False):
                (DB_USED if record.record_info.pop(self.LENT, False) else DB_IDLE).dec()


def track_pool(engine: Engine) -> None:
    """Counts the connections of `engine`'s pool (an AsyncEngine's `.sync_engine`) in DB_CONNECTIONS."""
    usage = PoolUsage()
    event.listen(engine, "connect", usage.connect)
    event.listen(engine, "checkout", usage.checkout)
    event.listen(engine, "checkin", usage.checkin)
    event.listen(engine, "close", usage.gone)
    event.listen(engine, "detach", usage.gone)


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
