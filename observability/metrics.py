"""The metrics contract between an app and the kit's alerts and dashboards.

The kit's rules and panels query these names. The reference apps export exactly them (see their
`metrics.py`); a user's app exports them too, or tells the kit its own names with
`observability.metrics.*`. Names are Prometheus' (a counter's `_total`, a histogram's `_bucket`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class AppMetrics(BaseModel):
    """Which of the app's metrics the rules and dashboards read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_total: str = Field(
        "http_requests_total", pattern=METRIC_NAME,
        description="Counter of HTTP requests answered, with the route and status labels below.")
    request_duration: str = Field(
        "http_request_duration_seconds", pattern=METRIC_NAME,
        description="Histogram of request durations in seconds (the name without `_bucket`); it needs a "
                    "bucket at the latency SLO's threshold.")
    route_label: str = Field("route", pattern=LABEL_NAME,
                             description="Label naming the route template (`/orders/{id}`, not the raw path).")
    status_label: str = Field("status", pattern=LABEL_NAME, description="Label holding the HTTP status code.")
    db_connections: str = Field(
        "db_client_connections_usage", pattern=METRIC_NAME,
        description="Gauge of the app's open database connections by `state` (used, idle), summed over "
                    "the worker processes (OpenTelemetry's db.client.connections.usage).")


class SloTargets(BaseModel):
    """The service level objectives the alerts defend (per environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    availability_percent: float = Field(
        99.9, ge=90.0, le=99.99,
        description="Share of requests over 30 days that must not fail with a 5xx, percent. 99.9 allows "
                    "43 minutes of full outage a month.")
    latency_ms: int = Field(
        500, ge=5, le=60_000,
        description="The latency objective's threshold, milliseconds; the app's duration histogram needs a "
                    "bucket at exactly this value (500 ms is one in both reference apps).")
    latency_percent: float = Field(
        99.0, ge=50.0, le=99.99, description="Share of requests that must finish within latency_ms, percent.")


class AppTarget(BaseModel):
    """Where one app's series live and what bounds it: the names the rules and panels select on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field(description="The app's Kubernetes namespace.")
    job: str = Field(description="Prometheus' `job` label of the app's scrape: the Service's name (a "
                                 "ServiceMonitor's default).")
    deployment: str = Field(description="The Deployment's name; its pods are `<deployment>-<hash>-<id>`.")
    hpa: str | None = Field(None, description="The HorizontalPodAutoscaler's name; None: no autoscaling.")
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(1, ge=1)
    release_job_prefixes: tuple[str, ...] = Field(
        (), description="Name prefixes of the release Jobs (`web-migrate-`): each release makes a new Job "
                        "`<prefix><hash>`.")
    service_name: str = Field(description="OTEL_SERVICE_NAME of the app's spans: the `service_name` label of the "
                                          "collector's span metrics.")
    db_max_connections: int | None = Field(
        None, ge=1, description="The database server's max_connections; None: the app has no database.")
