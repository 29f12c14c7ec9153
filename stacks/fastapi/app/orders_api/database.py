"""Engines for the app (async) and for Alembic (sync), both logging in the same way.

With `DATABASE_SECRET_ARN` the password is never in the URL: a `do_connect` hook reads the
secret from AWS Secrets Manager when a new connection is opened, keeps it in memory, and
reads it again once after PostgreSQL refuses the login, because RDS rotates a managed
secret (the pods keep running through a rotation; existing connections stay logged in).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from orders_api import metrics
from orders_api.config import DatabaseConfig, database_config, env_float, env_int

log = logging.getLogger(__name__)

# SQLSTATEs of a refused login: invalid_password, invalid_authorization_specification.
AUTH_FAILED_SQLSTATES = {"28P01", "28000"}


class SecretCredentials:
    """Username and password from a Secrets Manager secret, cached until a login fails."""

    def __init__(self, arn: str, client: Any = None) -> None:
        self.arn = arn
        self._client = client
        self._lock = threading.Lock()
        self._cached: tuple[str | None, str] | None = None

    def get(self, *, refresh: bool = False) -> tuple[str | None, str]:
        with self._lock:
            if refresh or self._cached is None:
                response = self._secrets_client().get_secret_value(SecretId=self.arn)
                doc = json.loads(response["SecretString"])
                self._cached = (doc.get("username"), doc["password"])
            return self._cached

    def _secrets_client(self) -> Any:
        if self._client is None:
            import boto3  # imported here: only stacks that use a secret pay for it

            # The ARN names the secret's region; AWS_REGION, when set, wins.
            parts = self.arn.split(":")
            region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                      or (parts[3] if len(parts) > 3 and parts[3] else None))
            self._client = boto3.session.Session().client("secretsmanager", region_name=region)
        return self._client


def is_auth_failure(exc: BaseException) -> bool:
    # A refused login happens before any result exists, so psycopg often has no sqlstate;
    # the server's message is the reliable part ("password authentication failed for user").
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate in AUTH_FAILED_SQLSTATES or "password authentication failed" in str(exc)


def use_secret_credentials(engine: Engine, credentials: SecretCredentials) -> None:
    """Logs every new connection of `engine` in with the secret's current username/password."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _conn_rec, cargs, cparams):  # noqa: ANN001
        for attempt in (1, 2):
            username, password = credentials.get(refresh=attempt == 2)
            if username:
                cparams["user"] = username
            cparams["password"] = password
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as exc:
                if attempt == 2 or not is_auth_failure(exc):
                    raise
                log.warning("database login refused; reading secret %s again (rotated?)", credentials.arn)
        raise AssertionError("unreachable")


def _connect_args() -> dict[str, Any]:
    return {
        # libpq gives up on an unreachable host after this many seconds (minimum 2).
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5),
        # Shows in pg_stat_activity: which service holds a connection.
        "application_name": os.environ.get("OTEL_SERVICE_NAME") or "orders-api",
    }


def _with_credentials(engine: Engine, config: DatabaseConfig) -> None:
    if config.secret_arn:
        use_secret_credentials(engine, SecretCredentials(config.secret_arn))


def create_app_engine(config: DatabaseConfig | None = None) -> AsyncEngine:
    """The pool of one worker process. Workers x pods x (pool size + overflow) must stay
    below PostgreSQL's max_connections."""
    config = config or database_config()
    engine = create_async_engine(
        config.url,
        pool_size=env_int("DATABASE_POOL_SIZE", 5),
        # No overflow by default: under steady load SQLAlchemy opens overflow connections and
        # closes them again on return, and each new login is a SCRAM handshake (milliseconds
        # of CPU on both ends). The FastAPI server benchmark (bench/RESULTS.md) measured
        # 132 -> 192 req/s on a DB read at 16 connections with overflow 5 -> 0. Requests beyond the pool wait for it.
        max_overflow=env_int("DATABASE_POOL_MAX_OVERFLOW", 0),
        # A request waits at most this long for a free connection, then fails (500) rather
        # than queueing forever behind a slow database.
        pool_timeout=env_float("DATABASE_POOL_TIMEOUT_SECONDS", 5.0),
        # A failover or a restart leaves dead connections in the pool: test each on checkout.
        pool_pre_ping=True,
        # Below RDS Proxy's / load balancers' idle cut-offs.
        pool_recycle=1800,
        connect_args=_connect_args(),
    )
    _with_credentials(engine.sync_engine, config)
    # db_client_connections_usage: the dashboards set the pools' sum against max_connections.
    metrics.track_pool(engine.sync_engine)
    return engine


def create_migration_engine(config: DatabaseConfig | None = None) -> Engine:
    """One connection, no pool: what a release Job running `alembic upgrade head` needs."""
    config = config or database_config()
    engine = create_engine(config.url, poolclass=NullPool, connect_args=_connect_args())
    _with_credentials(engine, config)
    return engine
