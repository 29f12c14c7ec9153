"""The `webstack:fastapi` section: how the ASGI server (Uvicorn or Granian) runs the app, its autoscaling
and its database."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from components.postgres import InClusterPostgresArgs
from components.rds_capacity import max_connections
from components.types import AllowlistCidr, Quantity
from components.web_service import Autoscaling
from stacks.errors import at
from stacks.fastapi.server import granian_problem, memory_problem, plan_server
from stacks.settings import (PROXY_IDLE_TIMEOUT_SECONDS, AppDatabaseSettings, AutoOrWhole, Section, StackSettings,
                             database_in_cluster_vpc, database_target_problem, database_target_unused)


class AsgiServer(Section):
    """How the ASGI server runs the app. `auto` values are computed from the pod's CPU and memory
    (see stacks/fastapi/server.py and bench/RESULTS.md for why); each key means the same for
    both kinds of server, mapped to each one's own flags."""

    kind: Literal["uvicorn", "granian"] = Field(
        "uvicorn", description="The server. uvicorn: Uvicorn workers (uvloop, httptools). granian: Granian, a Rust "
                               "HTTP server running the app in Python workers, with every key below mapped to its "
                               "flags; past limit_concurrency it leaves new connections waiting in the listen queue "
                               "instead of answering 503, and its responses carry `server: granian`. Measured on 2 "
                               "cores: Granian kept p99 low at 256 connections where Uvicorn's grew, but on a "
                               "database read its p99 was 2-3x Uvicorn's (stacks/fastapi/server.py).")
    app: str = Field("app.main:app", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
                     description="ASGI application as module:attribute.", examples=["orders_api.main:app"])
    workers: AutoOrWhole = Field(
        "auto", description="Worker processes per pod. auto: one per whole core of app.resources.cpu_limit "
                            "(at least 1), as many as app.resources.memory_limit holds at worker_memory each. "
                            "A Python process uses one core; more pods, not more workers, is how it scales.")
    worker_memory: Quantity = Field(
        "128Mi", description="Memory one idle worker takes (RSS; the reference app measures ~90Mi, ~110Mi after "
                             "load). Sizes the worker count and the per-worker concurrency limit.")
    limit_concurrency: AutoOrWhole = Field(
        "auto", description="Connections plus in-flight requests one worker holds before it answers 503 (granian: "
                            "connections one worker holds; past them new ones wait in the backlog). auto: the "
                            "worker's memory share beyond worker_memory at 512Ki per request (64 to 4096).")
    backlog: AutoOrWhole = Field(
        "auto", description="Listen queue of not-yet-accepted connections. auto: what all workers may hold, "
                            "capped at the kernel's default somaxconn (4096); granian: at least 128.")
    graceful_timeout_seconds: int = Field(
        30, ge=1, le=300, description="Seconds in-flight requests get to finish after SIGTERM (uvicorn: "
                                      "--timeout-graceful-shutdown; granian: --workers-kill-timeout); the pod's "
                                      "grace period is derived from it.")
    keep_alive_timeout_seconds: int = Field(
        75, ge=1, le=4000, description="Idle keep-alive connections are closed after this many seconds. Above the "
                                       "load balancer's idle timeout (ALB: 60 s), so the balancer closes first "
                                       "and never sends on a connection the server just closed (a 502). granian: "
                                       "--http1-header-read-timeout, which also times idle connections out.")
    forwarded_allow_ips: list[AllowlistCidr] | None = Field(
        None, description="CIDRs whose X-Forwarded-For/-Proto headers are trusted (the load balancer's). "
                          "Default: the VPC's CIDR when the kit creates it (ALB targets pods by IP); otherwise "
                          "none: set it to your load balancer's or ingress controller's range.",
        examples=[["10.0.0.0/16"]])
    access_log: bool = Field(
        False, description="One log line per request from the server. Off in prod: the app's metrics and "
                           "traces describe requests, and JSON logs keep errors with their trace id. dev: on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="The server's and the root logger's level.")
    log_format: Literal["json", "plain"] = Field(
        "json", description="json: one JSON object per line (needs python-json-logger in the image); plain: "
                            "Python's default text format, for an image without it.")
    metrics: bool = Field(
        True, description="Prometheus metrics across workers (prometheus_client's multiprocess mode): the kit "
                          "sets PROMETHEUS_MULTIPROC_DIR to an emptyDir of its own. false: neither is set.")

    @field_validator("workers", "limit_concurrency", "backlog")
    @classmethod
    def _positive(cls, value: int | str, info) -> int | str:
        bounds = {"workers": (1, 64), "limit_concurrency": (1, 100_000), "backlog": (1, 65_535)}[info.field_name]
        if isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"{info.field_name}: {value} is out of range ({bounds[0]}..{bounds[1]}, or auto)")
        return value


class FastApiDatabase(AppDatabaseSettings):
    """PostgreSQL for the app: RDS on aws (the keys above), an in-cluster server on local."""

    enabled: bool = Field(False, description="Give the app a PostgreSQL database and run its migrations "
                                             "as a release Job before every rollout.")
    migrate_command: list[Annotated[str, Field(min_length=1)]] = Field(["alembic", "upgrade", "head"], min_length=1,
                                       description="Release step run in the new image before the rollout.")


class FastApiSection(Section):
    """FastAPI on an ASGI server (Uvicorn or Granian)."""

    server: AsgiServer = Field(default_factory=AsgiServer, description="ASGI server settings.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Horizontal pod autoscaling.")
    database: FastApiDatabase = Field(default_factory=FastApiDatabase,
                                      description="Optional PostgreSQL (off unless enabled).")


class FastApiSettings(StackSettings):
    framework: Literal["fastapi"]
    fastapi: FastApiSection = Field(default_factory=FastApiSection, description="FastAPI-only settings.")

    def has_database(self) -> bool:
        return self.fastapi.database.enabled

    def db_max_connections(self) -> int | None:
        """The connections the database accepts: the RDS class's (components.rds_capacity), or the
        in-cluster server's; what the database-connections alert compares the pools' sum with."""
        if not self.has_database():
            return None
        if self.target == "local":
            return InClusterPostgresArgs().max_connections
        return max_connections(self.fastapi.database.instance_class)

    def provided_env_names(self) -> set[str]:
        plan = plan_server(self.fastapi.server, self.app.resources, port=self.app.port, service_name="app",
                           environment=self.environment, trusted_proxies=[],
                           otlp_endpoint=self.observability.collector_endpoint(),
                           trace_sample_ratio=self.observability.trace_sample_ratio)
        # The pod fields reach the app and its release Jobs alike; the server's own env (OTEL_*, the
        # metrics directory) only the app, so app.env, which both get, may not refer to it.
        return super().provided_env_names() | set(plan.pod_field_env)

    def unused_keys(self) -> dict[str, str]:
        unused = super().unused_keys()
        db = self.fastapi.database
        if not db.enabled:
            for name in FastApiDatabase.model_fields:
                if name != "enabled":
                    unused[f"fastapi.database.{name}"] = ("fastapi.database.enabled is false, so there is no "
                                                          "database: set enabled true, or remove the key")
            if self.target == "aws" and self.cluster.mode != "create":
                # Without a database the app needs no VPC of its own, and no database security group.
                unused["network"] = "only used for the database here (fastapi.database.enabled is false)"
                for name in ("cluster_name", "cluster_security_group_id"):
                    unused[f"cluster.{name}"] = "only used for the database (fastapi.database.enabled is false)"
        else:
            unused.update(database_target_unused("fastapi.database", self.target))
        if db.enabled and self.app.release is not None:
            unused["fastapi.database.migrate_command"] = ("app.release replaces the migration step: list the "
                                                          "migration command there, as its first step")
        return unused

    @model_validator(mode="after")
    def _fits_target(self) -> "FastApiSettings":
        db, server = self.fastapi.database, self.fastapi.server
        if problem := database_target_problem("fastapi.database", db, self.target, required=db.enabled):
            raise problem
        if server.keep_alive_timeout_seconds <= PROXY_IDLE_TIMEOUT_SECONDS:
            raise at("fastapi.server.keep_alive_timeout_seconds",
                     f"{server.keep_alive_timeout_seconds} is not above the load balancer's idle timeout "
                     f"({PROXY_IDLE_TIMEOUT_SECONDS} s): the server would close connections the balancer "
                     "still sends on (502s); use 75 or more")
        if problem := memory_problem(server, self.app.resources):
            raise at("fastapi.server.workers", problem)
        if problem := granian_problem(server):
            raise at(f"fastapi.server.{problem[0]}", problem[1])
        if db.enabled and self.target == "aws" and self.cluster.mode != "create":
            database_in_cluster_vpc(self)
        return self


# What dev and staging relax in this section.
PROFILE: dict[str, dict[str, Any]] = {
    "dev": {
        "fastapi.autoscaling.min_replicas": 1,
        "fastapi.autoscaling.max_replicas": 3,
        "fastapi.server.access_log": True,
        "fastapi.database.protect": False,
        "fastapi.database.deletion_protection": False,
        "fastapi.database.multi_az": False,
        "fastapi.database.instance_class": "db.t4g.micro",
        "fastapi.database.backup_retention_days": 1,
    },
    "staging": {
        "fastapi.autoscaling.max_replicas": 5,
        "fastapi.database.multi_az": False,
        "fastapi.database.instance_class": "db.t4g.medium",
        "fastapi.database.backup_retention_days": 7,
    },
}
