"""The `webstack:django` section: how Gunicorn runs the app, its autoscaling, database and static files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from components.database import DatabaseArgs
from components.static_cdn import StaticCdnArgs
from components.web_service import Autoscaling
from stacks.settings import Section, StackSettings, database_in_cluster_vpc


class GunicornServer(Section):
    """How Gunicorn runs the WSGI app."""

    wsgi_app: str = Field("config.wsgi:application", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
                          description="WSGI application as module:attribute.", examples=["shop.wsgi:application"])
    graceful_timeout_seconds: int = Field(
        30, ge=1, le=300, description="Seconds workers get to finish requests after SIGTERM (--graceful-timeout).")
    timeout_seconds: int = Field(30, ge=1, le=600,
                                 description="A worker silent this long is killed and restarted (--timeout).")
    keep_alive_timeout_seconds: int = Field(
        75, ge=1, le=4000, description="Idle keep-alive seconds (--keep-alive); above the ALB's 60 s idle timeout.")


class DjangoSection(Section):
    """Django on Gunicorn; every release runs `manage.py migrate` before the rollout."""

    server: GunicornServer = Field(default_factory=GunicornServer, description="WSGI server settings.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Horizontal pod autoscaling.")
    database: DatabaseArgs = Field(default_factory=DatabaseArgs, description="RDS PostgreSQL (aws target).")
    static: StaticCdnArgs = Field(default_factory=StaticCdnArgs,
                                  description="Static files: private S3 bucket behind CloudFront (aws target).")


class DjangoSettings(StackSettings):
    framework: Literal["django"]
    django: DjangoSection = Field(default_factory=DjangoSection, description="Django-only settings.")

    def has_database(self) -> bool:
        return self.target == "aws"

    def provided_env_names(self) -> set[str]:
        static = {"STATIC_URL", "AWS_STORAGE_BUCKET_NAME"} if self.target == "aws" else set()
        return super().provided_env_names() | static | {"POD_IP"}

    def unused_keys(self) -> dict[str, str]:
        unused = super().unused_keys()
        for name in ("otlp_endpoint", "trace_sample_ratio"):
            unused[f"observability.{name}"] = "the Django stack does not export traces yet: remove it"
        if self.target == "local":
            for section in ("database", "static"):
                unused[f"django.{section}"] = ("target local gives Django no RDS database and no static-files "
                                               "bucket (an in-cluster database is planned): remove it")
        return unused

    @model_validator(mode="after")
    def _database_reachable(self) -> "DjangoSettings":
        if self.target == "aws" and self.cluster.mode != "create":
            database_in_cluster_vpc(self)
        return self


# What dev and staging relax in this section.
PROFILE: dict[str, dict[str, Any]] = {
    "dev": {
        "django.database.protect": False,
        "django.database.deletion_protection": False,
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.micro",
        "django.database.backup_retention_days": 1,
        "django.static.protect": False,
        "django.autoscaling.min_replicas": 1,
        "django.autoscaling.max_replicas": 3,
    },
    "staging": {
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.medium",
        "django.database.backup_retention_days": 7,
        "django.autoscaling.max_replicas": 5,
    },
}
