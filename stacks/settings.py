"""The whole `webstack:` stack config as one validated pydantic model.

`StackSettings.from_config(pulumi.Config())` reads every `webstack:` key, applies
the environment profile, validates, and either returns a `FastApiSettings` /
`DjangoSettings` or raises `ConfigError` listing every problem at once. It runs
before any resource is created, so bad config creates nothing.

Defaults are the production answer. The `dev` and `staging` profiles (PROFILES
below) relax some of them; any key set in the stack file wins over its profile.
"""

from __future__ import annotations

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
from components.k8s_pod import HealthChecks, Resources
from components.static_cdn import StaticCdnArgs
from components.network import ExistingVpcArgs, NewVpcArgs
from components.web_service import Autoscaling
from stacks.errors import PROJECT, ConfigError, at, key, problems_from, set_command

Environment = Literal["dev", "staging", "prod"]
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


class UvicornServer(Section):
    """How Uvicorn runs the ASGI app."""

    app: str = Field("app.main:app", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                     description="ASGI application as module:attribute.", examples=["orders.main:app"])
    graceful_timeout_seconds: int = Field(
        30, ge=1, le=300, description="Seconds in-flight requests get to finish after SIGTERM "
                                      "(--timeout-graceful-shutdown); the pod's grace period is derived from it.")
    keep_alive_timeout_seconds: int = Field(
        75, ge=1, le=4000, description="Idle keep-alive connections are closed after this many seconds. Above the "
                                       "load balancer's idle timeout (ALB: 60 s), so the balancer closes first "
                                       "and never sends on a connection the server just closed (a 502).")


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


class DjangoSettings(StackSettings):
    framework: Literal["django"]
    django: DjangoSection = Field(default_factory=DjangoSection, description="Django-only settings.")

    @model_validator(mode="after")
    def _database_reachable(self) -> "DjangoSettings":
        if self.target != "aws" or self.cluster.mode == "create":
            return self
        # RDS must sit in the VPC of a cluster the kit did not create, open to its pods.
        if self.network.mode == "create":
            raise at("network.mode", f"with cluster.mode {self.cluster.mode}, the database must live in that "
                                     "cluster's VPC: set network.mode existing with its vpc_id and subnet ids")
        if not self.cluster.cluster_security_group_id:
            raise at("cluster.cluster_security_group_id", "required with an existing cluster on aws: the "
                     "database admits only this security group (the cluster's pods)")
        return self


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
        "django.autoscaling.min_replicas": 1,
        "django.autoscaling.max_replicas": 3,
        "network.az_count": 2,
        "network.nat_gateways": "single",
        "cluster.deletion_protection": False,
    },
    "staging": {
        "django.database.multi_az": False,
        "django.database.instance_class": "db.t4g.medium",
        "django.database.backup_retention_days": 7,
        "fastapi.autoscaling.max_replicas": 5,
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
