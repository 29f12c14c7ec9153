"""The whole `webstack:` stack config as one validated pydantic model.

`StackSettings.from_config(pulumi.Config())` reads every `webstack:` key, applies
the environment profile, validates, and either returns a `FastApiSettings` /
`DjangoSettings` or raises `ConfigError` listing every problem at once. It runs
before any resource is created, so bad config creates nothing.

Defaults are the production answer. The `dev` and `staging` profiles (PROFILES
below) relax some of them; any key set in the stack file wins over its profile.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

import pulumi
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, TypeAdapter,
                      ValidationError, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from components.cluster import CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs
from components.database import DatabaseArgs
from components.k8s_pod import HealthChecks, Resources, has_digest, size_problem
from components.static_cdn import StaticCdnArgs
from components.network import ExistingVpcArgs, NewVpcArgs
from components.web_service import Autoscaling
from stacks.fastapi.server import memory_problem
from stacks.errors import PROJECT, ConfigError, at, key, problems_from, set_command

Environment = Literal["dev", "staging", "prod"]
# An ALB, and ingress-nginx towards its upstreams, keep idle connections for 60 s.
PROXY_IDLE_TIMEOUT_SECONDS = 60
Target = Literal["aws", "local"]
FRAMEWORKS = ("fastapi", "django")


# --- secrets -----------------------------------------------------------------------

class SecretValue(str):
    """A config string that Pulumi delivered as a secret (set with --secret)."""


def _require_secret(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, SecretValue):
        return SecretStr(str(value))
    if isinstance(value, str):
        # Never echo the value: it is the secret.
        raise PydanticCustomError("plaintext_secret", "a secret given in plaintext")
    return value


ConfigSecret = Annotated[SecretStr, BeforeValidator(_require_secret),
                         Field(json_schema_extra={"x-webstack-secret": True})]

# Env var names that carry credentials: they belong in app.secrets, encrypted.
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|DSN)",
                         re.IGNORECASE)
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Section(BaseModel):
    """Every config section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- shared sections ---------------------------------------------------------------

class AppSettings(Section):
    """The service's container: what runs, and what it is given."""

    image: str = Field(
        description="Container image, by digest (`repo@sha256:...`, required in staging and prod) "
                    "or by tag (dev only).",
        examples=["ghcr.io/acme/orders@sha256:4f2a9c0e5b7d1c3e8a6f0b2d4c6e8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f"],
        min_length=1)
    port: int = Field(8000, ge=1024, le=65535,
                      description="Port the app listens on inside the pod. Unprivileged (>= 1024): the pod runs as non-root.")
    env: dict[Annotated[str, Field(pattern=ENV_NAME)], str] = Field(
        default_factory=dict, description="Plain environment variables. Credentials go in `secrets`.")
    secrets: dict[Annotated[str, Field(pattern=ENV_NAME)], ConfigSecret] = Field(
        default_factory=dict,
        description="Environment variables from Pulumi secrets (`pulumi config set --secret --path "
                    "'webstack:app.secrets.NAME' ...`); delivered through a Kubernetes Secret.")
    domain: str | None = Field(None, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
                               description="Public hostname of the service, e.g. api.example.com.",
                               examples=["api.example.com"])
    certificate_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
        description="ACM certificate for `domain` (aws target). Required with a domain on aws: HTTPS only.",
        examples=["arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"])

    resources: Resources = Field(default_factory=Resources,
                                 description="CPU and memory requests and limits of the app container.")
    health: HealthChecks = Field(default_factory=HealthChecks,
                                 description="Startup, readiness and liveness probe paths and timing.")

    @field_validator("env")
    @classmethod
    def _no_credentials_in_env(cls, env: dict[str, str]) -> dict[str, str]:
        leaked = sorted(name for name in env if SECRET_NAME.search(name))
        if leaked:
            name = leaked[0]
            others = f" (also: {', '.join(leaked[1:])})" if leaked[1:] else ""
            raise at(name, f"looks like a credential, which must not be a plain env var{others}; "
                           f"store it encrypted: {set_command(('app', 'secrets', name), secret=True)}")
        return env

    @model_validator(mode="after")
    def _names_unique(self) -> "AppSettings":
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise at(f"env.{both[0]}", "also set in app.secrets; keep one of the two")
        return self


class ClusterKubeconfig(KubeconfigClusterArgs):
    """An existing cluster, reached with a kubeconfig held as a Pulumi secret."""

    kubeconfig: ConfigSecret = Field(description="The kubeconfig file's content, as a Pulumi secret.")
    context: str | None = Field(None, description="Context to use; default: the kubeconfig's current context.")


class ClusterContext(Section):
    """A laptop or CI cluster from the local kubeconfig (kind, k3d, minikube, Docker Desktop)."""

    mode: Literal["context"]
    context: str | None = Field(None, description="kubeconfig context; default: the current context.",
                                examples=["kind-webstack"])


ClusterSettings = Annotated[Union[CreateClusterArgs, ClusterKubeconfig, StackReferenceClusterArgs, ClusterContext],
                            Field(discriminator="mode")]
NetworkSettings = Annotated[Union[NewVpcArgs, ExistingVpcArgs], Field(discriminator="mode")]


class ObservabilitySettings(Section):
    """Where the monitoring stack lives (its installation is a later capability)."""

    namespace: str = Field("monitoring", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63,
                           description="Namespace of Prometheus; allowed to scrape the app's pods.")
    otlp_endpoint: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(:\d+)?/?$",
        description="OpenTelemetry collector (OTLP over HTTP) the app sends traces to, e.g. "
                    "http://otel-collector.monitoring:4318. Unset: tracing is wired but exports nothing.",
        examples=["http://otel-collector.monitoring:4318"])
    trace_sample_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of new traces kept (parent-based: a sampled caller's "
                                         "trace is always kept). dev: 1.0.")


# --- the stack ---------------------------------------------------------------------

class StackSettings(Section):
    """Keys common to both frameworks. Load with `StackSettings.from_config(pulumi.Config())`."""

    framework: str = Field(description="Which setup to build: fastapi or django.")
    environment: Environment = Field(description="Profile of defaults: dev, staging or prod.")
    target: Target = Field("aws", description="aws: EKS and AWS services. local: any kubeconfig context, "
                                               "in-cluster equivalents, no AWS resources.")
    namespace: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63,
                                  description="Kubernetes namespace; default: `<project>-<stack>`.")
    app: AppSettings = Field(description="The service's container image, port, env and secrets.")
    cluster: ClusterSettings = Field(default_factory=CreateClusterArgs,
                                     description="Which cluster runs the app; default: create one (aws).")
    network: NetworkSettings = Field(default_factory=NewVpcArgs,
                                     description="VPC of the aws target: create one, or use existing subnets.")
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings,
                                                 description="How the app is monitored.")

    @model_validator(mode="after")
    def _target_fits_cluster(self) -> "StackSettings":
        mode = self.cluster.mode
        if self.target == "local" and mode == "create":
            raise at("cluster.mode", "'create' makes an EKS cluster, which target local does not have; "
                                     "use a kubeconfig context: " + set_command(("cluster", "mode"), "context"))
        if self.target == "aws" and mode == "context":
            raise at("cluster.mode", "'context' is for target local; on aws use create, kubeconfig "
                                     "or stack_reference")
        if self.target == "local" and "network" in self.model_fields_set:
            raise at("network", "target local creates no AWS network; remove the section")
        if not self.is_dev and not has_digest(self.app.image):
            # A tag can be re-pushed: what runs would change without a deploy, and a
            # rollback could not bring the old bytes back.
            raise at("app.image", f"{self.app.image!r} is pinned by tag only; {self.environment} needs an "
                                  "image by digest (repo@sha256:<64 hex>); tags are accepted in dev")
        return self

    # -- loading ----------------------------------------------------------------
    @classmethod
    def from_config(cls, config: pulumi.Config | None = None) -> "FastApiSettings | DjangoSettings":
        """Reads every `webstack:` key the Pulumi CLI passed to this program."""
        namespace = (config.name if config is not None else None) or pulumi.get_project()
        values, secret_keys = _read_namespace(namespace)
        return cls.load(values, secret_keys)

    @classmethod
    def load(cls, values: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()
             ) -> "FastApiSettings | DjangoSettings":
        """Validates `{key: value}` (keys without the `webstack:` prefix). Raises ConfigError."""
        raw = {k: _mark_secrets(v) if k in secret_keys else v for k, v in values.items()}
        misplaced = _misplaced_sections(raw)
        for section in misplaced:
            raw.pop(section)
        problems = list(misplaced.values())
        for section in ("network", "cluster"):
            # `mode` may be left out: the default is to create the VPC or cluster.
            if isinstance(raw.get(section), dict):
                raw[section] = {"mode": "create", **raw[section]}
        _apply_profile(raw)
        try:
            settings = _ADAPTER.validate_python(raw)
        except ValidationError as exc:
            problems += problems_from(exc, AnyStack)
            raise ConfigError(problems) from None
        if problems:
            raise ConfigError(problems)
        return settings

    # -- derived values --------------------------------------------------------------
    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    def k8s_namespace(self, stack: str) -> str:
        return self.namespace or f"{PROJECT}-{stack}"[:63].rstrip("-")


def _auto_or_whole(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise PydanticCustomError("auto_or_whole", "must be a whole number or auto, got '{value}'", {"value": str(value)})


AutoOrWhole = Annotated[Union[int, Literal["auto"]], BeforeValidator(_auto_or_whole)]


class UvicornServer(Section):
    """How Uvicorn runs the ASGI app. `auto` values are computed from the pod's CPU and memory
    (see stacks/fastapi/server.py and bench/RESULTS.md for why)."""

    app: str = Field("app.main:app", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                     description="ASGI application as module:attribute.", examples=["orders_api.main:app"])
    workers: AutoOrWhole = Field(
        "auto", description="Worker processes per pod. auto: one per whole core of app.resources.cpu_limit "
                            "(at least 1), as many as app.resources.memory_limit holds at worker_memory each. "
                            "A Python process uses one core; more pods, not more workers, is how it scales.")
    worker_memory: str = Field(
        "128Mi", description="Memory one idle worker takes (RSS; the reference app measures ~85Mi). "
                             "Sizes the worker count and the per-worker concurrency limit.")
    limit_concurrency: AutoOrWhole = Field(
        "auto", description="Connections plus in-flight requests one worker holds before it answers 503. auto: "
                            "the worker's memory share beyond worker_memory at 512Ki per request (64 to 4096).")
    backlog: AutoOrWhole = Field(
        "auto", description="Listen queue of not-yet-accepted connections. auto: what all workers may hold, "
                            "capped at the kernel's default somaxconn (4096).")
    graceful_timeout_seconds: int = Field(
        30, ge=1, le=300, description="Seconds in-flight requests get to finish after SIGTERM "
                                      "(--timeout-graceful-shutdown); the pod's grace period is derived from it.")
    keep_alive_timeout_seconds: int = Field(
        75, ge=1, le=4000, description="Idle keep-alive connections are closed after this many seconds. Above the "
                                       "load balancer's idle timeout (ALB: 60 s), so the balancer closes first "
                                       "and never sends on a connection the server just closed (a 502).")
    forwarded_allow_ips: list[str] | None = Field(
        None, description="CIDRs whose X-Forwarded-For/-Proto headers are trusted (the load balancer's). "
                          "Default: the VPC's CIDR when the kit creates it (ALB targets pods by IP); otherwise "
                          "none: set it to your load balancer's or ingress controller's range.",
        examples=[["10.0.0.0/16"]])
    access_log: bool = Field(
        False, description="One log line per request from Uvicorn. Off in prod: the app's metrics and "
                           "traces describe requests, and JSON logs keep errors with their trace id. dev: on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Uvicorn and root logger level.")

    @field_validator("worker_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if problem := size_problem("worker_memory", value, "128Mi"):
            raise ValueError(problem)
        return value

    @field_validator("workers", "limit_concurrency", "backlog")
    @classmethod
    def _positive(cls, value: int | str, info) -> int | str:
        bounds = {"workers": (1, 64), "limit_concurrency": (1, 100_000), "backlog": (1, 65_535)}[info.field_name]
        if isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"{info.field_name}: {value} is out of range ({bounds[0]}..{bounds[1]}, or auto)")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        for cidr in value or []:
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"forwarded_allow_ips: not a CIDR, got {cidr!r} (e.g. 10.0.0.0/16)") from None
            if net.prefixlen == 0:
                raise ValueError(f"forwarded_allow_ips: {cidr!r} would let any client forge its address "
                                 "and scheme; list the load balancer's range")
        return value


class FastApiDatabase(DatabaseArgs):
    """PostgreSQL for the app: RDS on aws (the keys above), an in-cluster server on local."""

    enabled: bool = Field(False, description="Give the app a PostgreSQL database and run its migrations "
                                             "as a release Job before every rollout.")
    migrate_command: list[str] = Field(["alembic", "upgrade", "head"], min_length=1,
                                       description="Release step run in the new image before the rollout.")
    local_password: ConfigSecret | None = Field(
        None, description="target local: password of the in-cluster server's user (a Pulumi secret). "
                          "On aws RDS generates and rotates it.")
    local_storage: str = Field("1Gi", description="target local: size of the in-cluster server's volume.")
    local_image: str = Field("docker.io/library/postgres:17.6-bookworm",
                             description="target local: PostgreSQL image (Debian variant: runs as the pod's non-root uid).")

    @field_validator("local_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if problem := size_problem("local_storage", value, "1Gi"):
            raise ValueError(problem)
        return value

class GunicornServer(Section):
    """How Gunicorn runs the WSGI app."""

    wsgi_app: str = Field("config.wsgi:application", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                          description="WSGI application as module:attribute.", examples=["shop.wsgi:application"])
    graceful_timeout_seconds: int = Field(
        30, ge=1, le=300, description="Seconds workers get to finish requests after SIGTERM (--graceful-timeout).")
    timeout_seconds: int = Field(30, ge=1, le=600,
                                 description="A worker silent this long is killed and restarted (--timeout).")
    keep_alive_timeout_seconds: int = Field(
        75, ge=1, le=4000, description="Idle keep-alive seconds (--keep-alive); above the ALB's 60 s idle timeout.")


class FastApiSection(Section):
    """FastAPI on Uvicorn."""

    server: UvicornServer = Field(default_factory=UvicornServer, description="ASGI server settings.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Horizontal pod autoscaling.")
    database: FastApiDatabase = Field(default_factory=FastApiDatabase,
                                      description="Optional PostgreSQL (off unless enabled).")


class DjangoSection(Section):
    """Django on Gunicorn; every release runs `manage.py migrate` before the rollout."""

    server: GunicornServer = Field(default_factory=GunicornServer, description="WSGI server settings.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Horizontal pod autoscaling.")
    database: DatabaseArgs = Field(default_factory=DatabaseArgs, description="RDS PostgreSQL (aws target).")
    static: StaticCdnArgs = Field(default_factory=StaticCdnArgs,
                                  description="Static files: private S3 bucket behind CloudFront (aws target).")


class FastApiSettings(StackSettings):
    framework: Literal["fastapi"]
    fastapi: FastApiSection = Field(default_factory=FastApiSection, description="FastAPI-only settings.")

    @model_validator(mode="after")
    def _fits_target(self) -> "FastApiSettings":
        db, server = self.fastapi.database, self.fastapi.server
        if db.enabled and self.target == "local" and db.local_password is None:
            raise at("fastapi.database.local_password", "required with database.enabled on target local; "
                     "store one encrypted: " + set_command(("fastapi", "database", "local_password"), secret=True))
        if db.local_password is not None and self.target == "aws":
            raise at("fastapi.database.local_password", "target aws uses RDS, which generates and rotates "
                                                        "the password; remove the key")
        if server.keep_alive_timeout_seconds <= PROXY_IDLE_TIMEOUT_SECONDS:
            raise at("fastapi.server.keep_alive_timeout_seconds",
                     f"{server.keep_alive_timeout_seconds} is not above the load balancer's idle timeout "
                     f"({PROXY_IDLE_TIMEOUT_SECONDS} s): the server would close connections the balancer "
                     "still sends on (502s); use 75 or more")
        if problem := memory_problem(server, self.app.resources):
            raise at("fastapi.server.workers", problem)
        if db.enabled and self.target == "aws" and self.cluster.mode != "create":
            _database_in_cluster_vpc(self)
        return self


class DjangoSettings(StackSettings):
    framework: Literal["django"]
    django: DjangoSection = Field(default_factory=DjangoSection, description="Django-only settings.")

    @model_validator(mode="after")
    def _database_reachable(self) -> "DjangoSettings":
        if self.target == "aws" and self.cluster.mode != "create":
            _database_in_cluster_vpc(self)
        return self


def _database_in_cluster_vpc(settings: "StackSettings") -> None:
    """RDS must sit in the VPC of a cluster the kit did not create, open to its pods."""
    if settings.network.mode == "create":
        raise at("network.mode", f"with cluster.mode {settings.cluster.mode}, the database must live in that "
                                 "cluster's VPC: set network.mode existing with its vpc_id and subnet ids")
    if not settings.cluster.cluster_security_group_id:
        raise at("cluster.cluster_security_group_id", "required with an existing cluster on aws: the "
                 "database admits only this security group (the cluster's pods)")


AnyStack = Annotated[Union[FastApiSettings, DjangoSettings], Field(discriminator="framework")]
_ADAPTER: TypeAdapter = TypeAdapter(AnyStack)


# --- environment profiles ----------------------------------------------------------
# Production is the model default. A profile lists what dev and staging relax; each
# entry applies only where the stack file leaves the key unset.
PROFILES: dict[str, dict[str, Any]] = {
    "dev": {
        "django.database.protect": False,
        "django.database.deletion_protection": False,
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.micro",
        "django.database.backup_retention_days": 1,
        "django.static.protect": False,
        "fastapi.autoscaling.min_replicas": 1,
        "fastapi.autoscaling.max_replicas": 3,
        "fastapi.server.access_log": True,
        "fastapi.database.protect": False,
        "fastapi.database.deletion_protection": False,
        "fastapi.database.multi_az": False,
        "fastapi.database.instance_class": "db.t4g.micro",
        "fastapi.database.backup_retention_days": 1,
        "observability.trace_sample_ratio": 1.0,
        "django.autoscaling.min_replicas": 1,
        "django.autoscaling.max_replicas": 3,
        "network.az_count": 2,
        "network.nat_gateways": "single",
        "network.flow_log_retention_days": 14,
        "cluster.deletion_protection": False,
    },
    "staging": {
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.medium",
        "django.database.backup_retention_days": 7,
        "fastapi.autoscaling.max_replicas": 5,
        "fastapi.database.multi_az": False,
        "fastapi.database.instance_class": "db.t4g.medium",
        "fastapi.database.backup_retention_days": 7,
        "django.autoscaling.max_replicas": 5,
        "network.nat_gateways": "single",
    },
    "prod": {},
}


def profile_defaults(environment: str) -> dict[str, Any]:
    return dict(PROFILES.get(environment, {}))


def _apply_profile(raw: dict[str, Any]) -> None:
    env, framework, target = raw.get("environment"), raw.get("framework"), raw.get("target", "aws")
    for dotted, value in profile_defaults(env if isinstance(env, str) else "").items():
        path = dotted.split(".")
        if path[0] in FRAMEWORKS and path[0] != framework:
            continue
        if path[0] in ("network", "cluster"):
            section = raw.get(path[0], {})
            # These profile keys exist only where the kit creates the VPC or the cluster.
            if target != "aws" or not isinstance(section, dict) or section.get("mode", "create") != "create":
                continue
            raw.setdefault(path[0], {}).setdefault("mode", "create")
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(path[-1], value)


def _misplaced_sections(raw: dict[str, Any]) -> dict[str, str]:
    """A framework section on the other framework's stack is a contradiction, said plainly."""
    framework = raw.get("framework")
    found: dict[str, str] = {}
    if framework not in FRAMEWORKS:
        return found
    for other in FRAMEWORKS:
        if other != framework and other in raw:
            found[other] = (
                f"{key((other,))}: this section configures framework '{other}', but "
                f"{key(('framework',))} is '{framework}'; remove the section, or set "
                f"{key(('framework',))} to {other}")
    return found


def _mark_secrets(value: Any) -> Any:
    """Pulumi marks a whole top-level key secret when any value under it is; mark its strings."""
    if isinstance(value, dict):
        return {k: _mark_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_secrets(v) for v in value]
    if isinstance(value, str):
        return SecretValue(value)
    return value


def _read_namespace(namespace: str) -> tuple[dict[str, Any], set[str]]:
    """All `<namespace>:<key>` values the Pulumi CLI passed, objects decoded from JSON."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_full = set(runtime_config.get_config_secret_keys_env())
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    prefix = f"{namespace}:"
    for full_key, text in merged.items():
        if not full_key.startswith(prefix):
            continue
        name = full_key[len(prefix):]
        values[name] = _decode(text)
        if full_key in secret_full or runtime_config.is_config_secret(full_key):
            secrets.add(name)
    return values, secrets


def _decode(text: Any) -> Any:
    """Objects and lists arrive as JSON text; scalars stay as the string the user typed."""
    if isinstance(text, str) and text[:1] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text
