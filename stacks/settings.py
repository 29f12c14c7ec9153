"""The stack config sections both frameworks share, and the base of each framework's settings.

The loader (`stacks/config.py`) validates the whole `webstack:` config into a
`FastApiSettings` (`stacks/fastapi/settings.py`) or a `DjangoSettings`
(`stacks/django/settings.py`); both extend `StackSettings` below.

Defaults are the production answer. The `dev` and `staging` profiles relax some of them
(`PROFILE` here and in each framework's settings); any key set in the stack file wins.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from components.cluster import CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs
from components.k8s_pod import HealthChecks, Resources
from components.network import ExistingVpcArgs, NewVpcArgs
from components.types import (AcmCertificateArn, DomainName, EnvName, ImageRef, NamespaceName,
                              has_digest)
from stacks.errors import PROJECT, at, set_command

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


class Section(BaseModel):
    """Every config section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- shared sections ---------------------------------------------------------------

class AppSettings(Section):
    """The service's container: what runs, and what it is given."""

    image: ImageRef = Field(
        description="Container image, by digest (`repo@sha256:...`, required in staging and prod) "
                    "or by tag (dev only).")
    port: int = Field(8000, ge=1024, le=65535,
                      description="Port the app listens on inside the pod. Unprivileged (>= 1024): the pod runs as non-root.")
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="Plain environment variables. Credentials go in `secrets`.")
    secrets: dict[EnvName, ConfigSecret] = Field(
        default_factory=dict,
        description="Environment variables from Pulumi secrets (`pulumi config set --secret --path "
                    "'webstack:app.secrets.NAME' ...`); delivered through a Kubernetes Secret.")
    domain: DomainName | None = Field(None, description="Public hostname of the service, e.g. api.example.com.")
    certificate_arn: AcmCertificateArn | None = Field(
        None, description="ACM certificate for `domain` (aws target). Required with a domain on aws: HTTPS only.")

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

    namespace: NamespaceName = Field("monitoring", description="Namespace of Prometheus; allowed to scrape the app's pods.")
    otlp_endpoint: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(:\d+)?/?$",
        description="OpenTelemetry collector (OTLP over HTTP) the app sends traces to, e.g. "
                    "http://otel-collector.monitoring:4318. Unset: tracing is wired but exports nothing.",
        examples=["http://otel-collector.monitoring:4318"])
    trace_sample_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of new traces kept (parent-based: a sampled caller's "
                                         "trace is always kept). dev: 1.0.")



class StackSettings(Section):
    """Keys common to both frameworks. Loaded by `stacks.config.settings_from_config`."""

    framework: str = Field(description="Which setup to build: fastapi or django.")
    environment: Environment = Field(description="Profile of defaults: dev, staging or prod.")
    target: Target = Field("aws", description="aws: EKS and AWS services. local: any kubeconfig context, "
                                               "in-cluster equivalents, no AWS resources.")
    namespace: NamespaceName | None = Field(None, description="Kubernetes namespace; default: `<project>-<stack>`.")
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
        if self.target == "local" and mode == "stack_reference":
            raise at("cluster.mode", "'stack_reference' reads an EKS cluster from a platform stack, which is "
                                     "target aws; on local use context or kubeconfig")
        if self.target == "local" and "network" in self.model_fields_set:
            raise at("network", "target local creates no AWS network; remove the section")
        if not self.is_dev and not has_digest(self.app.image):
            # A tag can be re-pushed: what runs would change without a deploy, and a
            # rollback could not bring the old bytes back.
            raise at("app.image", f"{self.app.image!r} is pinned by tag only; {self.environment} needs an "
                                  "image by digest (repo@sha256:<64 hex>); tags are accepted in dev")
        https_only(self)
        return self

    # -- derived values --------------------------------------------------------------
    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    def unused_keys(self) -> dict[str, str]:
        """Keys that would change nothing with these settings, each with the reason: the loader
        refuses any the stack file sets (an accepted key always does something). Each framework's
        settings add their own."""
        unused: dict[str, str] = {}
        if self.target == "local":
            unused["app.certificate_arn"] = ("target local serves through ingress-nginx; an ACM certificate is "
                                             "for the ALB on aws: remove it")
            for name in ("cluster_name", "cluster_security_group_id"):
                unused[f"cluster.{name}"] = "used on target aws only (Pod Identity, database access): remove it"
        elif self.app.domain is None:
            unused["app.certificate_arn"] = "only used with app.domain (the ALB serves that name with it): set both"
        return unused

    def k8s_namespace(self, stack: str) -> str:
        return self.namespace or f"{PROJECT}-{stack}"[:63].rstrip("-")


def database_in_cluster_vpc(settings: StackSettings) -> None:
    """RDS must sit in the VPC of a cluster the kit did not create, open to its pods."""
    if settings.network.mode == "create":
        raise at("network.mode", f"with cluster.mode {settings.cluster.mode}, the database must live in that "
                                 "cluster's VPC: set network.mode existing with its vpc_id and subnet ids")
    if not settings.cluster.cluster_security_group_id:
        raise at("cluster.cluster_security_group_id", "required with an existing cluster on aws: the "
                 "database admits only this security group (the cluster's pods)")


def https_only(settings: StackSettings) -> None:
    """On aws the app is served by an ALB over HTTPS only: a domain needs its certificate."""
    if settings.target == "aws" and settings.app.domain and not settings.app.certificate_arn:
        raise at("app.certificate_arn", f"required with app.domain {settings.app.domain!r} on aws: the ALB "
                 "serves HTTPS only (an ACM certificate for that name, in the stack's region)")


# What dev and staging relax of the shared sections (each framework's settings add theirs).
PROFILE: dict[str, dict[str, Any]] = {
    "dev": {
        "observability.trace_sample_ratio": 1.0,
        "network.az_count": 2,
        "network.nat_gateways": "single",
        "network.flow_log_retention_days": 14,
        "cluster.deletion_protection": False,
    },
    "staging": {
        "network.nat_gateways": "single",
    },
}
