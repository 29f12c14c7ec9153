"""The Uvicorn command, env and log config the FastAPI pods run, computed from the pod's size.

Why these numbers (measured in bench/RESULTS.md, "FastAPI server"):
- Workers: a Python process runs on one core (the GIL), and async I/O keeps that core busy
  with one process. So a pod gets one worker per whole core of its CPU limit, and never
  more than its memory limit holds. Below two cores that is one worker per pod and the HPA
  adds pods. Measured: on one CPU a second worker gave 0.77-1.11x the requests/s of one
  (and a worker's memory, ~85 MiB); on two CPUs, 1.5-1.6x.
- Concurrency limit: past it a worker answers 503 at once instead of queueing until it runs
  out of memory; the load balancer retries another pod and the HPA sees the load. Sized
  from the worker's share of the memory limit beyond its idle footprint.
- Backlog: the listen queue holds what the workers could take next; a longer queue only
  holds requests until the load balancer gives up on them. The kernel caps it at somaxconn.
- Keep-alive above the load balancer's idle timeout, graceful shutdown inside the pod's
  grace period (WebService derives the grace period from it).
- Proxy headers only from the load balancer's range: anyone else could forge the client
  address and scheme.
- Logs as JSON on stdout (python-json-logger; the app adds the trace id to each record),
  and no access log in prod: the app's metrics and traces already describe each request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from components.k8s_pod import Resources
from components.types import parse_quantity
from stacks.workers import whole_core_workers
from stacks.telemetry import POD_FIELD_ENV, otel_env

if TYPE_CHECKING:  # settings validates with memory_problem below
    from stacks.fastapi.settings import UvicornServer

CONFIG_DIR = "/etc/webstack/uvicorn"
LOG_CONFIG = "logging.json"
# prometheus_client's multiprocess mode: each worker writes its samples here, /metrics merges them.
METRICS_DIR = "/tmp/prometheus-multiproc"
REQUEST_MEMORY = parse_quantity("512Ki")
# With --workers > 1, Uvicorn's supervisor and multiprocessing's resource tracker (measured
# 26 + 12 MiB RSS) sit beside the workers.
SUPERVISOR_MEMORY = parse_quantity("40Mi")
MIN_CONCURRENCY, MAX_CONCURRENCY = 64, 4096
SOMAXCONN = 4096  # Linux default since 5.4; a larger backlog is silently cut to it


@dataclass(frozen=True)
class ServerPlan:
    workers: int
    limit_concurrency: int
    backlog: int
    command: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # file name -> content, mounted at CONFIG_DIR
    pod_field_env: dict[str, str] = field(default_factory=dict)  # env name -> pod field (downward API)
    writable_paths: list[str] = field(default_factory=list)  # directories the server itself needs writable


def worker_count(server: "UvicornServer", resources: Resources) -> int:
    """One per whole core of the CPU limit, at least one, no more than the memory limit holds."""
    if server.workers != "auto":
        return server.workers
    return whole_core_workers(resources, per_worker=parse_quantity(server.worker_memory) + _min_headroom(),
                              overhead=SUPERVISOR_MEMORY)


def _workers_memory(resources: Resources, workers: int) -> Decimal:
    """What the workers themselves may use: the limit, less the supervisor when there is one."""
    return parse_quantity(resources.memory_limit) - (SUPERVISOR_MEMORY if workers > 1 else 0)


def _min_headroom() -> Decimal:
    return REQUEST_MEMORY * MIN_CONCURRENCY


def concurrency_limit(server: "UvicornServer", resources: Resources, workers: int) -> int:
    if server.limit_concurrency != "auto":
        return server.limit_concurrency
    share = _workers_memory(resources, workers) / workers - parse_quantity(server.worker_memory)
    return int(max(MIN_CONCURRENCY, min(MAX_CONCURRENCY, share // REQUEST_MEMORY)))


def memory_problem(server: "UvicornServer", resources: Resources) -> str | None:
    """An explicit worker count the memory limit cannot hold: the pod would be OOM-killed."""
    if server.workers == "auto":
        return None
    need = (parse_quantity(server.worker_memory) + _min_headroom()) * server.workers
    if need > _workers_memory(resources, server.workers):
        return (f"{server.workers} workers need about {int(need / 2**20)}Mi (worker_memory plus room for "
                f"{MIN_CONCURRENCY} requests each, and the supervisor), above app.resources.memory_limit "
                f"({resources.memory_limit}); lower workers or raise the limit")
    return None


FORMATTERS = {
    # JSON lines, record extras (trace ids) included: needs python-json-logger in the image.
    "json": {"()": "pythonjsonlogger.json.JsonFormatter",
             "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
             "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    # The standard library's own, for an image without python-json-logger.
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
}


def log_config(level: str, log_format: str = "json") -> str:
    """dictConfig for Uvicorn and the app: one line per record on stdout."""
    upper = level.upper()
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {log_format: FORMATTERS[log_format]},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": log_format,
                                "stream": "ext://sys.stdout"}},
        "root": {"level": upper, "handlers": ["stdout"]},
        "loggers": {name: {"level": upper, "handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def plan_server(server: "UvicornServer", resources: Resources, *, port: int, service_name: str,
                environment: str, trusted_proxies: list[str], otlp_endpoint: str | None,
                trace_sample_ratio: float) -> ServerPlan:
    workers = worker_count(server, resources)
    limit = concurrency_limit(server, resources, workers)
    backlog = server.backlog if server.backlog != "auto" else min(SOMAXCONN, limit * workers)
    command = [
        "uvicorn", server.app,
        "--host", "0.0.0.0", "--port", str(port),
        "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools",
        "--timeout-keep-alive", str(server.keep_alive_timeout_seconds),
        "--timeout-graceful-shutdown", str(server.graceful_timeout_seconds),
        "--limit-concurrency", str(limit),
        "--backlog", str(backlog),
    ]
    if trusted_proxies:
        command += ["--proxy-headers", "--forwarded-allow-ips", ",".join(trusted_proxies)]
    else:
        command += ["--no-proxy-headers"]
    if not server.access_log:
        command += ["--no-access-log"]
    command += ["--no-server-header", "--log-level", server.log_level,
                "--log-config", f"{CONFIG_DIR}/{LOG_CONFIG}"]

    env = otel_env(service_name=service_name, environment=environment, otlp_endpoint=otlp_endpoint,
                   trace_sample_ratio=trace_sample_ratio)
    if server.metrics:
        # prometheus_client's multiprocess mode needs the directory to exist (its own emptyDir,
        # so every new pod starts without a dead worker's files).
        env["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
    return ServerPlan(workers=workers, limit_concurrency=limit, backlog=backlog, command=command, env=env,
                      files={LOG_CONFIG: log_config(server.log_level, server.log_format)},
                      pod_field_env=dict(POD_FIELD_ENV), writable_paths=[METRICS_DIR] if server.metrics else [])

