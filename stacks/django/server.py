"""The Gunicorn a Django pod runs (its gunicorn.conf.py, command and env), computed from the pod's
size and the app's request profile; and the release steps before it.

Why these numbers:
- Workers: a Python process computes on one core at a time (the GIL), so a pod gets one worker
  per whole core of its CPU limit, and never more than its memory limit holds (worker_memory
  each, plus 40 MiB for the master). Below two cores that is one worker and the HPA adds pods.
- Threads (Little's law): a request spends c ms on the CPU and w ms waiting (database, other
  services). While one thread computes, the others wait, so a worker keeps its core busy with
  ceil((c + w) / c) requests in flight: with the defaults, 2 ms and 50 ms, 26 threads. More
  threads only queue on the GIL, and each holds a database connection (CONN_MAX_AGE keeps one
  per thread), so they are capped at MAX_THREADS (32). The settings lower `auto` further to what
  the database's max_connections holds (connections_needed, max_connections).
  Measured (2026-11-30, a WSGI view that sleeps 50 ms, Gunicorn pinned to one core, wrk -c64
  -d10s on loopback): `gunicorn app:app` (one sync worker) 19.6 req/s, median latency 1.0 s and
  157 requests past wrk's 2 s timeout; this plan (1 worker x 26 gthreads) 509 req/s on TCP and
  511 req/s behind Nginx on the socket, 26x, median 110 ms (64 connections share 26 threads):
  98% of the 26 / 0.050 s = 520 req/s Little's law allows.
- Timeouts: with gthread the worker's main loop, not the request threads, tells the master it is
  alive, so `timeout` restarts only a wedged worker, never a slow request; Nginx's
  proxy_read_timeout (timeout + a little) bounds how long a client waits. graceful_timeout is
  what in-flight requests get after SIGTERM; the pod's grace period is derived from it.
- One request per connection, and worker_connections = threads: a gthread worker accepts new
  connections while it holds fewer than worker_connections (Gunicorn's default 1000), so with
  connections Nginx kept alive one worker took all of them and the other idled (`ss -xp`: 256 of
  256 on one worker). Nginx now opens a unix-socket connection per request (tens of
  microseconds) and closes it; a worker holding as many as it has threads accepts no more, so
  the next connection goes to a worker with a free thread. Measured on /io (bench/RESULTS.md,
  2 workers x 26 threads, 2 cores shared with wrk and PostgreSQL): 418-623 -> 740-751 req/s, p99
  196 -> 131 ms at 64 connections; /healthz 0.7-0.9x -> 0.9-1.0x the naive server.
- max_requests (+ jitter): a worker is replaced after that many requests, so a slow leak in the
  app never reaches the memory limit; the jitter keeps workers from restarting together. 50 000:
  a replacement re-imports Django, and at 5 000 a busy worker (~800 req/s in bench/RESULTS.md)
  was replaced every 6-8 s; at 50 000 that is once a minute at full load, hours at a typical one.
- Proxy headers: Gunicorn listens only on a unix socket in an emptyDir that only the pod's Nginx
  mounts. Gunicorn trusts a unix-socket peer unconditionally for secure_scheme_headers and
  forwarder_headers; forwarded_allow_ips applies to TCP peers only (27.0: http/message.py,
  `_peer_is_trusted_proxy`, and the setting's own docs). So the trust boundary is Nginx, which
  sets X-Forwarded-Proto itself (believing the load balancer only) and clears the others; here
  secure_scheme_headers names X-Forwarded-Proto alone (Gunicorn's default also believes
  X-Forwarded-Ssl and X-Forwarded-Protocol, which a client could send), forwarder_headers is
  empty (no SCRIPT_NAME or REMOTE_USER from headers), and forwarded_allow_ips is empty, so
  that a TCP bind added for debugging trusts nobody. On a unix socket REMOTE_ADDR is empty: the
  client's address is X-Forwarded-For (= X-Real-IP), which Nginx sets to the one address it
  verified.
- Logs: no access log (Nginx writes one JSON line per request, with the real client address);
  Gunicorn's error log and the app's records are JSON lines on stdout, by a formatter defined in
  the conf file itself (the standard library and Gunicorn only: an image with just Django and
  Gunicorn runs it). Silencing the access logger is not enough: with any logconfig_dict Gunicorn
  builds each request's access-log fields before the logger drops them (23 us a call on its own;
  in a server 0.07 ms of worker CPU per request on the shop's /healthz, and a bare WSGI app's
  0.31 -> 0.25 ms, 2026-11-30, bench/serve/django_setups.py), so the conf's logger class skips it.
- Hooks, each a no-op when its package is absent: the master empties PROMETHEUS_MULTIPROC_DIR at
  start (a restarted container keeps its emptyDir, and a dead pid's samples would be summed) and
  marks each dead worker's gauges dead; each worker instruments Django and sets up tracing from
  the standard OTEL_* variables, unless the app set up its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.k8s_pod import Resources
from components.types import parse_quantity
from stacks.telemetry import POD_FIELD_ENV, otel_env
from stacks.workers import whole_core_workers
# The RDS connection table moved to components (both stacks read it); names kept for importers.
from components.rds_capacity import (RDS_BYTES_PER_CONNECTION, RDS_RESERVED_CONNECTIONS,  # noqa: F401
                                     RDS_USABLE_MEMORY, instance_memory_gib, max_connections)

if TYPE_CHECKING:  # the settings import this module
    from stacks.django.settings import GunicornServer

MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
COLLECTSTATIC = ["python", "manage.py", "collectstatic", "--noinput"]

CONFIG_DIR = "/etc/webstack/gunicorn"
CONF_FILE = "gunicorn.conf.py"
# Shared with Nginx, medium Memory. Also the workers' heartbeat files: Gunicorn touches one per
# worker every second, which on a disk-backed directory can stall the worker on I/O.
SOCKET_DIR = "/run/gunicorn"
SOCKET_PATH = SOCKET_DIR + "/gunicorn.sock"
# prometheus_client's multiprocess mode: each worker writes its samples here, /metrics merges them.
METRICS_DIR = "/tmp/prometheus-multiproc"

# Above this, threads queue on the GIL, and each one's database connection costs more than it gives.
MAX_THREADS = 32
# The Gunicorn master (arbiter) beside its workers: measured 25 MiB RSS (Gunicorn 27, the stock
# Django project of tests/byo_app, whose workers took 52 MiB each), with room to spare.
MASTER_MEMORY = parse_quantity("40Mi")
# The probes' default paths (components.k8s_pod.HealthChecks) and the metrics path.
EXCLUDED_FROM_TRACES = ("/healthz", "/readyz", "/metrics")

@dataclass(frozen=True)
class GunicornPlan:
    workers: int
    threads: int
    command: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # file name -> content, mounted at CONFIG_DIR
    pod_field_env: dict[str, str] = field(default_factory=dict)  # env name -> pod field (downward API)
    writable_paths: list[str] = field(default_factory=list)  # directories the server itself needs writable


def worker_count(server: "GunicornServer", resources: Resources) -> int:
    """One per whole core of the CPU limit, at least one, no more than the memory limit holds."""
    if server.workers != "auto":
        return server.workers
    return whole_core_workers(resources, per_worker=parse_quantity(server.worker_memory), overhead=MASTER_MEMORY)


def little_threads(server: "GunicornServer") -> int:
    """Requests in flight that keep one core busy: ceil((cpu + io) / cpu), at most MAX_THREADS."""
    if server.threads != "auto":
        return server.threads
    cpu, io = server.request_cpu_ms, server.request_io_ms
    return max(1, min(MAX_THREADS, math.ceil((cpu + io) / cpu)))


def rollout_pods(max_replicas: int, surge_percent: int = 25) -> int:
    """Pods at the worst moment: max replicas plus those a rolling update adds (ceil(max_replicas x surge))."""
    return max_replicas + math.ceil(max_replicas * surge_percent / 100)


def connections_needed(workers: int, threads: int, max_replicas: int, surge_percent: int = 25) -> int:
    """Database connections at the worst moment: every thread of every pod holds one (Django's
    connections are per thread, kept open by CONN_MAX_AGE), at rollout_pods, plus the release Job's."""
    return workers * threads * rollout_pods(max_replicas, surge_percent) + 1


def plan_gunicorn(server: "GunicornServer", resources: Resources, *, threads: int, service_name: str,
                  environment: str, otlp_endpoint: str | None, trace_sample_ratio: float) -> GunicornPlan:
    """`threads` comes from the caller: the settings may lower Little's law to the database's budget."""
    workers = worker_count(server, resources)
    env = otel_env(service_name=service_name, environment=environment, otlp_endpoint=otlp_endpoint,
                   trace_sample_ratio=trace_sample_ratio)
    # Probes and scrapes every few seconds from every pod are not worth a trace (read by
    # opentelemetry-instrumentation-django: patterns searched in the URL).
    env["OTEL_PYTHON_DJANGO_EXCLUDED_URLS"] = ",".join(EXCLUDED_FROM_TRACES)
    if server.metrics:
        # Its own emptyDir; the master empties it at start (on_starting), see the module docstring.
        env["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
    conf = gunicorn_conf(workers=workers, threads=threads, timeout_seconds=server.timeout_seconds,
                         graceful_timeout_seconds=server.graceful_timeout_seconds,
                         max_requests=server.max_requests, max_requests_jitter=server.max_requests_jitter,
                         log_level=server.log_level)
    # --config always: without it Gunicorn reads ./gunicorn.conf.py from the working directory, so a
    # file the image happens to have there would silently replace the kit's.
    return GunicornPlan(workers=workers, threads=threads,
                        command=["gunicorn", "--config", f"{CONFIG_DIR}/{CONF_FILE}", server.wsgi_app],
                        env=env, files={CONF_FILE: conf}, pod_field_env=dict(POD_FIELD_ENV),
                        writable_paths=[METRICS_DIR] if server.metrics else [])


def gunicorn_conf(*, workers: int, threads: int, timeout_seconds: int, graceful_timeout_seconds: int,
                  max_requests: int, max_requests_jitter: int, log_level: str,
                  socket_path: str = SOCKET_PATH, worker_tmp_dir: str = SOCKET_DIR) -> str:
    """gunicorn.conf.py: these settings, then the logging and hooks every pod shares (CONF_HOOKS).
    The same values always give the same bytes."""
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise ValueError(f"log_level {log_level!r}: expected critical, error, warning, info or debug")
    settings = [
        ("bind", [f"unix:{socket_path}"], "Nginx's only way in; no TCP port at all"),
        ("umask", 0, "the socket must be connectable by Nginx's uid; the emptyDir is the boundary"),
        ("workers", workers, None),
        ("threads", threads, None),
        ("worker_class", "gthread" if threads > 1 else "sync", None),
        ("worker_connections", threads, "no more than it has threads: the next goes to another worker"),
        ("timeout", timeout_seconds, "kills a wedged worker (gthread: not a slow request)"),
        ("graceful_timeout", graceful_timeout_seconds, "in-flight requests after SIGTERM"),
        ("max_requests", max_requests, "0: never replace a worker"),
        ("max_requests_jitter", max_requests_jitter, None),
        ("worker_tmp_dir", worker_tmp_dir, "heartbeat files on memory (the emptyDir is medium Memory)"),
        ("preload_app", False, "each worker imports the app after the fork: no shared DB connections or "
                               "tracing threads"),
        ("secure_scheme_headers", {"X-FORWARDED-PROTO": "https"}, "the one header Nginx sets"),
        ("forwarder_headers", "", "no SCRIPT_NAME/PATH_INFO/REMOTE_USER from headers"),
        ("forwarded_allow_ips", "", "TCP peers; a unix-socket peer (Nginx) is always trusted"),
        ("accesslog", None, "Nginx logs each request"),
        ("errorlog", "-", None),
        ("loglevel", log_level, None),
        ("control_socket_disable", True, "no gunicornc socket under $HOME (read-only in the pod)"),
    ]
    lines = ["# gunicorn.conf.py, rendered by webstack (stacks/django/server.py) from the stack's settings;",
             "# change those, not this file. Python: Gunicorn executes it.", ""]
    for name, value, why in settings:
        line = f"{name} = {value!r}"
        lines.append(f"{line}  # {why}" if why else line)
    return "\n".join(lines) + "\n" + CONF_HOOKS


# The part of gunicorn.conf.py that does not depend on the settings. It runs inside the user's
# image: the standard library only, and every optional package imported inside a try.
CONF_HOOKS = r'''
import datetime
import glob
import json
import logging
import os

try:  # trace ids in each log record, when the app is traced
    from opentelemetry import trace as _otel_trace
except ImportError:
    _otel_trace = None


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, pid, trace ids, any extras."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record):
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if _otel_trace is not None:
            context = _otel_trace.get_current_span().get_span_context()
            if context.is_valid:
                entry["trace_id"] = format(context.trace_id, "032x")
                entry["span_id"] = format(context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


# Replaces Gunicorn's handlers (its error log on stderr) and gives the app's records the same
# format through the root logger; an app's own LOGGING setting still applies on top.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonLines}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stdout"], "propagate": False},
        # Any logconfig_dict turns Gunicorn's access log on; Nginx already writes one per request.
        "gunicorn.access": {"level": "CRITICAL", "handlers": ["null"], "propagate": False},
    },
}

try:  # Gunicorn is what runs this file; the guard only keeps a plain `python gunicorn.conf.py` working
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:
    _GunicornLogger = None

if _GunicornLogger is not None:
    class NoAccessLog(_GunicornLogger):
        """Gunicorn's logger minus the access log. With any logconfig_dict Gunicorn builds every
        request's access-log fields (the time formatted, a dict of each header and environ key)
        before the silenced logger drops them: 0.07 ms of worker CPU per request."""

        def access(self, resp, req, environ, request_time):
            pass

    logger_class = NoAccessLog


def _otel_disabled():
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def on_starting(server):
    # A restarted container keeps its emptyDir: the previous run's pids' samples would be summed
    # with this run's. Only prometheus_client's files (*.db) are removed.
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in glob.glob(os.path.join(path, "*.db")):
            os.remove(name)


def child_exit(server, worker):
    # A dead worker's live gauges (multiprocess_mode livesum/liveall/...) must stop counting.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    # Django's instrumentation adds a middleware, so it must run after the settings module is
    # known and before the WSGI handler loads the middleware: that is, inside django.setup(),
    # which get_wsgi_application() calls. An app that instrumented itself earlier keeps its own
    # (instrumenting twice is a no-op).
    if _otel_disabled():
        return
    try:
        import django
        from opentelemetry.instrumentation.django import DjangoInstrumentor
    except ImportError:
        return
    setup = django.setup

    def setup_instrumented(*args, **kwargs):
        django.setup = setup
        DjangoInstrumentor().instrument()
        return setup(*args, **kwargs)

    django.setup = setup_instrumented


_tracer_provider = None


def post_worker_init(worker):
    # After the app is imported, in each worker (a BatchSpanProcessor's thread does not survive
    # a fork). An app that set up its own TracerProvider at import keeps it.
    global _tracer_provider
    exporters = [e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    if _otel_disabled() or "otlp" not in exporters:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        worker.log.info("tracing off: opentelemetry-sdk or opentelemetry-exporter-otlp-proto-http is not installed")
        return
    if not isinstance(_otel_trace.get_tracer_provider(), _otel_trace.ProxyTracerProvider):
        return
    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the provider reads
    # OTEL_TRACES_SAMPLER(_ARG); the exporter OTEL_EXPORTER_OTLP_*; the processor OTEL_BSP_*.
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _otel_trace.set_tracer_provider(provider)
    _tracer_provider = provider


def worker_exit(server, worker):
    # Export the spans still queued before the worker is gone (bounded by OTEL_BSP_EXPORT_TIMEOUT).
    if _tracer_provider is not None:
        _tracer_provider.shutdown()
'''
