"""The ASGI server's command (Uvicorn or Granian), env and files the FastAPI pods run, computed
from the pod's size.

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

Two servers, chosen by `fastapi.server.kind`: Uvicorn (the default) or Granian, a Rust HTTP
server (hyper on tokio) running the same ASGI app in Python workers. Both get the same numbers
from the same keys, and the app keeps what the kit promises under either (tests/fastapi_app/
test_rendered_server.py runs both): each worker, forked by Granian or spawned by Uvicorn, starts
its metrics and tracing in the ASGI lifespan; /metrics merges every worker's files; SIGTERM
drains the requests in flight; logs are JSON. Why offer Granian, and why not by default
(measured with the rendered commands, 2-core pod, 2 workers, wrk -t2 sharing the 2 cores, runs
of 5 s on a quiet machine; ranges over 2-5 runs):
- /healthz (no I/O): the same req/s within the noise (at 64 connections Uvicorn 10 300-12 200,
  Granian 11 200-12 800; at 256, 7 900-12 800 and 10 900-12 400) and p99 10-16 ms against
  11-20 ms at 64; at 256 Granian's p99 stayed at 31-55 ms where Uvicorn's reached 0.45-1.2 s.
- /items/1 (one PostgreSQL read): about the same req/s (Uvicorn 460-810, Granian 530-890), but
  Granian's tail is worse: p99 0.5-0.7 s against 0.3 s at 64 connections, 1.9-2.4 s against
  0.6-0.8 s at 256. Neither --runtime-mode st nor --task-impl rust changed that.
What differs, key by key:
- limit_concurrency is Granian's --backpressure: connections a worker holds, idle kept-alive
  ones included. Past it Granian stops accepting, and new connections wait in the listen queue
  (the backlog) until one of those closes, instead of getting Uvicorn's immediate 503. The
  memory bound is the same; the fast refusal that lets a load balancer retry elsewhere is not.
- keep_alive_timeout_seconds is --http1-header-read-timeout: hyper starts that timer when a
  connection goes idle, so it is also the keep-alive timeout (measured: an idle connection
  closes at the timeout). Granian's command line refuses more than 60 s, which is not above the
  load balancer's 60 s, so the pod runs Granian's command line from a small launcher
  (granian_launcher) that widens that one range and changes nothing else.
- graceful_timeout_seconds is --workers-kill-timeout: a worker still draining then is killed,
  so its lifespan shutdown (the last spans' export) does not run; Uvicorn cancels the requests
  and still runs it.
- forwarded_allow_ips: Granian's command line reads no proxy headers; the launcher file is also
  the ASGI target then, the app wrapped in Granian's own granian.utils.proxies with the same
  CIDRs (the client is the right-most address not in them, as Uvicorn does).
- backlog: Granian refuses a listen queue below 128.
- The server header: Granian has no flag to drop it; every response says `server: granian`
  unless the app sets its own.
- Granian always runs a supervisor beside its workers, even with one worker (30 MiB RSS measured;
  a worker of the reference app: 90 MiB idle, 110 MiB after load, as Uvicorn's 90 and 105).
- Its access log line is written after the request's span has ended: it carries no trace id.
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
    from stacks.fastapi.settings import AsgiServer

CONFIG_ROOT = "/etc/webstack"
CONFIG_DIR = f"{CONFIG_ROOT}/uvicorn"  # Uvicorn's; config_dir(kind) for either
LOG_CONFIG = "logging.json"
# Not "granian.py": the launcher's folder is first on sys.path, and that name would hide the package.
LAUNCHER = "webstack_granian.py"
# prometheus_client's multiprocess mode: each worker writes its samples here, /metrics merges them.
METRICS_DIR = "/tmp/prometheus-multiproc"
REQUEST_MEMORY = parse_quantity("512Ki")
# The process beside the workers. Uvicorn with --workers > 1: its supervisor and
# multiprocessing's resource tracker (measured 26 + 12 MiB RSS). Granian, always, even with one
# worker: its main process (measured 31 MiB RSS with the reference app).
SUPERVISOR_MEMORY = parse_quantity("40Mi")
MIN_CONCURRENCY, MAX_CONCURRENCY = 64, 4096
SOMAXCONN = 4096  # Linux default since 5.4; a larger backlog is silently cut to it
# `granian --backlog` refuses less ("x>=128").
GRANIAN_MIN_BACKLOG = 128
# The loggers each server writes to, routed to the root logger's JSON handler.
SERVER_LOGGERS = {"uvicorn": ("uvicorn", "uvicorn.error", "uvicorn.access"),
                  "granian": ("_granian", "granian.access")}  # `_granian`: its Rust core's logger too


@dataclass(frozen=True)
class ServerPlan:
    workers: int
    limit_concurrency: int
    backlog: int
    command: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # file name -> content, mounted at config_dir
    pod_field_env: dict[str, str] = field(default_factory=dict)  # env name -> pod field (downward API)
    writable_paths: list[str] = field(default_factory=list)  # directories the server itself needs writable
    kind: str = "uvicorn"  # the server: names its config files' role and directory

    @property
    def config_dir(self) -> str:
        return config_dir(self.kind)


def config_dir(kind: str) -> str:
    """Where the server's files (log config, Granian's launcher) are mounted."""
    return f"{CONFIG_ROOT}/{kind}"


def worker_count(server: "AsgiServer", resources: Resources) -> int:
    """One per whole core of the CPU limit, at least one, no more than the memory limit holds."""
    if server.workers != "auto":
        return server.workers
    return whole_core_workers(resources, per_worker=parse_quantity(server.worker_memory) + _min_headroom(),
                              overhead=SUPERVISOR_MEMORY)


def _has_supervisor(server: "AsgiServer", workers: int) -> bool:
    """Uvicorn runs one worker in its own process, Granian always beside a main process."""
    return workers > 1 or server.kind == "granian"


def _workers_memory(server: "AsgiServer", resources: Resources, workers: int) -> Decimal:
    """What the workers themselves may use: the limit, less the supervisor when there is one."""
    return parse_quantity(resources.memory_limit) - (SUPERVISOR_MEMORY if _has_supervisor(server, workers) else 0)


def _min_headroom() -> Decimal:
    return REQUEST_MEMORY * MIN_CONCURRENCY


def concurrency_limit(server: "AsgiServer", resources: Resources, workers: int) -> int:
    if server.limit_concurrency != "auto":
        return server.limit_concurrency
    share = _workers_memory(server, resources, workers) / workers - parse_quantity(server.worker_memory)
    return int(max(MIN_CONCURRENCY, min(MAX_CONCURRENCY, share // REQUEST_MEMORY)))


def backlog_size(server: "AsgiServer", limit: int, workers: int) -> int:
    """auto: what all workers could take next, within the kernel's cap (and Granian's floor)."""
    if server.backlog != "auto":
        return server.backlog
    backlog = min(SOMAXCONN, limit * workers)
    return max(GRANIAN_MIN_BACKLOG, backlog) if server.kind == "granian" else backlog


def memory_problem(server: "AsgiServer", resources: Resources) -> str | None:
    """An explicit worker count the memory limit cannot hold: the pod would be OOM-killed."""
    if server.workers == "auto":
        return None
    need = (parse_quantity(server.worker_memory) + _min_headroom()) * server.workers
    if need > _workers_memory(server, resources, server.workers):
        return (f"{server.workers} workers need about {int(need / 2**20)}Mi (worker_memory plus room for "
                f"{MIN_CONCURRENCY} requests each, and the supervisor), above app.resources.memory_limit "
                f"({resources.memory_limit}); lower workers or raise the limit")
    return None


def granian_problem(server: "AsgiServer") -> tuple[str, str] | None:
    """A key Granian cannot honour as given: (the key, why and what it accepts). Every other key
    maps to a Granian flag or to the launcher (see the module docstring)."""
    if server.kind == "granian" and server.backlog != "auto" and server.backlog < GRANIAN_MIN_BACKLOG:
        return "backlog", (f"{server.backlog} is below Granian's smallest listen queue ({GRANIAN_MIN_BACKLOG}); "
                           f"use {GRANIAN_MIN_BACKLOG}..65535 or auto, or kind uvicorn")
    return None


FORMATTERS = {
    # JSON lines, record extras (trace ids) included: needs python-json-logger in the image.
    "json": {"()": "pythonjsonlogger.json.JsonFormatter",
             "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
             "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    # The standard library's own, for an image without python-json-logger.
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
}


def log_config(level: str, log_format: str = "json", kind: str = "uvicorn") -> str:
    """dictConfig for the server and the app: one line per record on stdout. (Granian merges it
    into its own at the top level, so these handlers and loggers replace its defaults.)"""
    upper = level.upper()
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {log_format: FORMATTERS[log_format]},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": log_format,
                                "stream": "ext://sys.stdout"}},
        "root": {"level": upper, "handlers": ["stdout"]},
        "loggers": {name: {"level": upper, "handlers": [], "propagate": True} for name in SERVER_LOGGERS[kind]},
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


GRANIAN_LAUNCHER = '''"""Granian for the app, as the kit runs it (webstack: stacks/fastapi/server.py renders this file).

As a script it is Granian's own command line (`granian --help`), with one change: the range of
--http1-header-read-timeout. Granian closes a keep-alive connection that stays idle that long,
and its command line allows at most 60 s, which is not above the load balancer's idle timeout
(60 s): the balancer could send on a connection Granian is closing, and get a 502.

Imported by Granian's workers (the target `webstack_granian:app`, used when TRUSTED_PROXIES is
not empty) it is APP behind Granian's own proxy-headers wrapper: X-Forwarded-For and
X-Forwarded-Proto are believed only from TRUSTED_PROXIES, the load balancer's range.
"""

import importlib
import sys

APP = {app!r}
TRUSTED_PROXIES = {trusted!r}


def main() -> None:
    import click
    from granian.cli import cli

    option = next((p for p in cli.params if p.name == "http1_header_read_timeout"), None)
    if option is None:
        sys.exit("webstack_granian: this Granian has no --http1-header-read-timeout; "
                 "install the version the kit names (stacks/fastapi/app/requirements.txt)")
    option.type = click.IntRange(1, None)
    cli(auto_envvar_prefix="GRANIAN")


def proxied(target: str, trusted: list) -> object:
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    module, _, attribute = target.partition(":")
    return wrap_asgi_with_proxy_headers(getattr(importlib.import_module(module), attribute), trusted)


if __name__ == "__main__":
    main()
elif TRUSTED_PROXIES:
    app = proxied(APP, TRUSTED_PROXIES)
'''


def granian_launcher(app: str, trusted_proxies: list[str]) -> str:
    return GRANIAN_LAUNCHER.format(app=app, trusted=list(trusted_proxies))


def uvicorn_command(server: "AsgiServer", *, port: int, workers: int, limit: int, backlog: int,
                    trusted_proxies: list[str]) -> list[str]:
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
    return command + ["--no-server-header", "--log-level", server.log_level,
                      "--log-config", f"{CONFIG_DIR}/{LOG_CONFIG}"]


def granian_command(server: "AsgiServer", *, port: int, workers: int, limit: int, backlog: int,
                    trusted_proxies: list[str]) -> list[str]:
    """Granian's flags for the same keys (the module docstring says where they differ)."""
    folder = config_dir("granian")
    return [
        # The image's python (its venv first on PATH), running Granian's command line.
        "python", f"{folder}/{LAUNCHER}",
        "--interface", "asgi",
        "--host", "0.0.0.0", "--port", str(port),
        "--workers", str(workers),
        # HTTP/1.1 only, as Uvicorn: what the load balancer speaks to pods, and where the
        # header-read timeout below is the keep-alive timeout.
        "--loop", "uvloop", "--http", "1",
        "--http1-header-read-timeout", str(server.keep_alive_timeout_seconds * 1000),  # milliseconds
        "--workers-kill-timeout", str(server.graceful_timeout_seconds),
        "--backpressure", str(limit),
        "--backlog", str(backlog),
        # A worker that dies (OOM-killed) is replaced, as Uvicorn's supervisor does.
        "--respawn-failed-workers",
        "--access-log" if server.access_log else "--no-access-log",
        "--log-level", server.log_level,
        "--log-config", f"{folder}/{LOG_CONFIG}",
        # Proxy headers need the app wrapped (the launcher does it); without them, the app itself.
        "webstack_granian:app" if trusted_proxies else server.app,
    ]


def plan_server(server: "AsgiServer", resources: Resources, *, port: int, service_name: str,
                environment: str, trusted_proxies: list[str], otlp_endpoint: str | None,
                trace_sample_ratio: float) -> ServerPlan:
    workers = worker_count(server, resources)
    limit = concurrency_limit(server, resources, workers)
    backlog = backlog_size(server, limit, workers)
    build = granian_command if server.kind == "granian" else uvicorn_command
    command = build(server, port=port, workers=workers, limit=limit, backlog=backlog,
                    trusted_proxies=trusted_proxies)
    files = {LOG_CONFIG: log_config(server.log_level, server.log_format, server.kind)}
    if server.kind == "granian":
        files[LAUNCHER] = granian_launcher(server.app, trusted_proxies)

    env = otel_env(service_name=service_name, environment=environment, otlp_endpoint=otlp_endpoint,
                   trace_sample_ratio=trace_sample_ratio)
    if server.metrics:
        # prometheus_client's multiprocess mode needs the directory to exist (its own emptyDir,
        # so every new pod starts without a dead worker's files).
        env["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
    return ServerPlan(workers=workers, limit_concurrency=limit, backlog=backlog, command=command, env=env,
                      files=files, pod_field_env=dict(POD_FIELD_ENV),
                      writable_paths=[METRICS_DIR] if server.metrics else [], kind=server.kind)
