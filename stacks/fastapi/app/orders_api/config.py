"""Where the database is and how to log in, read from the environment (no I/O here).

Order of precedence:

1. `DATABASE_URL` (postgres://, postgresql:// or postgresql+psycopg://; the driver is
   always psycopg 3);
2. else `DATABASE_HOST`, `DATABASE_PORT` (5432), `DATABASE_NAME`, `DATABASE_USER`, and
   either `DATABASE_PASSWORD` or `DATABASE_SECRET_ARN` (an AWS Secrets Manager secret
   holding `{"username", "password"}`, as RDS manages it; read at connect time).

`DATABASE_SSLMODE` (default `prefer`) applies unless the URL already names an sslmode.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url

DRIVER = "postgresql+psycopg"
DEFAULT_SSLMODE = "prefer"


class ConfigError(RuntimeError):
    """The environment does not say how to reach the database."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: URL
    # Set when the password comes from Secrets Manager instead of the URL.
    secret_arn: str | None = None


def database_config(env: Mapping[str, str] = os.environ) -> DatabaseConfig:
    raw = env.get("DATABASE_URL")
    if raw:
        url = make_url(raw)
        if url.drivername not in ("postgres", "postgresql") and not url.drivername.startswith("postgresql+"):
            raise ConfigError(f"DATABASE_URL: expected a postgresql:// URL, got scheme {url.drivername!r}")
        url = url.set(drivername=DRIVER)
        secret_arn = None
    else:
        missing = [name for name in ("DATABASE_HOST", "DATABASE_NAME") if not env.get(name)]
        password = env.get("DATABASE_PASSWORD")
        secret_arn = env.get("DATABASE_SECRET_ARN") or None
        if password and secret_arn:
            raise ConfigError("DATABASE_PASSWORD and DATABASE_SECRET_ARN are both set; "
                              "set one: the password, or the secret that holds it")
        if not secret_arn and not env.get("DATABASE_USER"):
            missing.append("DATABASE_USER")
        if missing:
            raise ConfigError("database not configured: set DATABASE_URL, or "
                              + ", ".join(missing) + " (see orders_api/config.py)")
        port = env.get("DATABASE_PORT") or "5432"
        if not port.isdigit():
            raise ConfigError(f"DATABASE_PORT: expected a port number, got {port!r}")
        url = URL.create(DRIVER, username=env.get("DATABASE_USER") or None, password=password or None,
                         host=env["DATABASE_HOST"], port=int(port), database=env["DATABASE_NAME"])
    if "sslmode" not in url.query:
        url = url.update_query_dict({"sslmode": env.get("DATABASE_SSLMODE") or DEFAULT_SSLMODE})
    return DatabaseConfig(url=url, secret_arn=secret_arn)


def env_float(name: str, default: float, env: Mapping[str, str] = os.environ) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None


def env_int(name: str, default: int, env: Mapping[str, str] = os.environ) -> int:
    value = env.get(name)
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    return int(value)
