"""The stack config sections both frameworks share, and the base of each framework's settings.

The loader (`stacks/config.py`) validates the whole `webstack:` config into a
`FastApiSettings` (`stacks/fastapi/settings.py`) or a `DjangoSettings`
(`stacks/django/settings.py`); both extend `StackSettings` below.

Defaults are the production answer. The `dev` and `staging` profiles relax some of them
(`PROFILE` here and in each framework's settings); any key set in the stack file wins.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from components.cluster import CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs
from components.database import DatabaseArgs
from components.k8s_pod import HealthChecks, Resources, env_references, ordered_env
from components.migration_guard import MigrationGuardArgs
from components.namespace import EgressRule
from components.network import ExistingVpcArgs, NewVpcArgs
from components.types import (AbsolutePath, AcmCertificateArn, DomainName, EnvName, HostedZoneId, ImageRef,
                              LabelKey, LabelValue, NamespaceName, Quantity, has_digest)
from observability.charts import DASHBOARD_LABELS, MONITOR_LABELS, MonitoringStackArgs, collector_endpoint
from observability.metrics import AppMetrics, SloTargets
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


# Values that are credentials whatever their variable is called: a URL with a password in it,
# and the shapes of well-known tokens and keys. A `$(NAME)` reference is not a credential.
SECRET_VALUES = (
    ("a URL with a password", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:(?!\$\()[^/\s@]+@")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a Stripe secret key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)


def credential_in(value: str) -> str | None:
    """What kind of credential `value` holds, if it looks like one."""
    return next((kind for kind, pattern in SECRET_VALUES if pattern.search(value)), None)


def _auto_or_whole(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise PydanticCustomError("auto_or_whole", "must be a whole number or auto, got '{value}'", {"value": str(value)})


# A count the kit computes unless the stack file gives one.
AutoOrWhole = Annotated[Union[int, Literal["auto"]], BeforeValidator(_auto_or_whole)]


class Section(BaseModel):
    """Every config section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Commands that apply database migrations: (program, subcommand), matched on the arguments'
# base names (`/app/.venv/bin/alembic upgrade head`, `python manage.py migrate --noinput`).
MIGRATION_COMMANDS = (("alembic", "upgrade"), ("manage.py", "migrate"), ("django-admin", "migrate"))


def looks_like_migration(command: list[str]) -> bool:
    """Whether `command` runs Alembic's upgrade or Django's migrate."""
    names = [arg.rsplit("/", 1)[-1] for arg in command]
    return any(program in names and verb in names[names.index(program) + 1:]
               for program, verb in MIGRATION_COMMANDS)


class ReleaseStep(Section):
    """One command run in the new image before the rollout (a Kubernetes Job)."""

    command: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="The command and its arguments, e.g. ['alembic', 'upgrade', 'head'] or "
                                  "['sh', 'scripts/prestart.sh'] (a shell script runs through the image's shell).",
        examples=[["alembic", "upgrade", "head"]])
    working_dir: AbsolutePath | None = Field(None, description="Directory it runs in; default: the image's WORKDIR.")
    migration: bool | None = Field(
        None, description="The step migrates the database: it runs under webstack:migrations (lock and statement "
                          "timeouts, lock timeouts retried). Unset: true for `alembic ... upgrade` and "
                          "`manage.py migrate` / `django-admin migrate`; set true for a script that migrates.")

    @property
    def is_migration(self) -> bool:
        return self.migration if self.migration is not None else looks_like_migration(self.command)


class MigrationSettings(MigrationGuardArgs):
    """How release steps that migrate the database run (`app.release` steps marked `migration`, and
    the kit's own: Alembic's upgrade, Django's migrate), so that a migration never blocks traffic:
    PostgreSQL `lock_timeout` and `statement_timeout` in the connection's options (PGOPTIONS), a lock
    timeout retried with backoff, and a failure that names the blocking session
    (components/migration_guard.py has the arithmetic)."""

    # Kubernetes' activeDeadlineSeconds of the migrate Job; `pulumi up` waits 300 s more for it.
    job_deadline_seconds: int = Field(
        600, ge=60, le=86400, description="Seconds before Kubernetes fails the migrate Job; must hold every "
                                          "retry: (lock_retries + 1) x lock_timeout_seconds + the backoff waits + "
                                          "statement_timeout_seconds + 60 (the pod's start). `pulumi up` waits "
                                          "300 s longer.")

    @model_validator(mode="after")
    def _backoff_order(self) -> "MigrationSettings":
        if problem := self.backoff_problem():
            raise at(*problem)
        return self

    @model_validator(mode="after")
    def _fits_deadline(self) -> "MigrationSettings":
        if problem := self.deadline_problem(self.job_deadline_seconds):
            raise at("job_deadline_seconds", problem)
        return self

    def guard_args(self) -> MigrationGuardArgs:
        """The component's arguments: these settings without the Job's deadline (ReleaseJob's own)."""
        return MigrationGuardArgs(**self.model_dump(exclude={"job_deadline_seconds"}))


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
        None, description="ACM certificate for `domain`, in the stack's region (aws target). On aws a domain "
                          "needs it or hosted_zone_id: the ALB serves HTTPS only.")
    hosted_zone_id: HostedZoneId | None = Field(
        None, description="Route 53 zone of `domain` (aws target): the kit issues a DNS-validated certificate "
                          "(unless certificate_arn is set) and points an alias record at the ALB. Unset: create "
                          "the record yourself, to the `alb_hostname` output.")

    resources: Resources = Field(default_factory=Resources,
                                 description="CPU and memory requests and limits of the app container.")
    health: HealthChecks = Field(default_factory=HealthChecks,
                                 description="Startup, readiness and liveness probe paths and timing.")
    writable_paths: list[AbsolutePath] = Field(
        ["/tmp"], min_length=1, description="Directories the app writes to, each an emptyDir (the image's root "
                                            "filesystem is read-only), e.g. ['/tmp', '/app/uploads'].")
    release: list[ReleaseStep] | None = Field(
        None, description="Release steps run in order, each in the new image as a Job that must succeed before "
                          "the next and before the rollout. Unset: the framework's migration step (when it has "
                          "a database); set, it replaces it.")
    egress: list[EgressRule] = Field(
        default_factory=list, description="Extra destinations the pods may connect to (an external database, "
                                          "SMTP, an API on a port other than 443). DNS and HTTPS are always open.")
    database_url_env: EnvName | None = Field(
        "DATABASE_URL", description="Name of the variable holding the kit's database as one URL "
                                    "(postgresql://user[:password]@host:port/name?sslmode=...); null: none. "
                                    "Only with the kit's database.")

    @field_validator("env")
    @classmethod
    def _no_credentials_in_env(cls, env: dict[str, str]) -> dict[str, str]:
        leaked = sorted(name for name in env if SECRET_NAME.search(name))
        if leaked:
            name = leaked[0]
            others = f" (also: {', '.join(leaked[1:])})" if leaked[1:] else ""
            raise at(name, f"looks like a credential, which must not be a plain env var{others}; "
                           f"store it encrypted: {set_command(('app', 'secrets', name), secret=True)}")
        for name, value in sorted(env.items()):
            if kind := credential_in(value):
                # Never echo the value: it is the secret.
                raise at(name, f"the value holds {kind}, which must not be a plain env var; store it "
                               f"encrypted: {set_command(('app', 'secrets', name), secret=True)}")
        return env

    @model_validator(mode="after")
    def _names_unique(self) -> "AppSettings":
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise at(f"env.{both[0]}", "also set in app.secrets; keep one of the two")
        url = self.database_url_env
        if url is not None and (url in self.env or url in self.secrets):
            where = "env" if url in self.env else "secrets"
            raise at("database_url_env", f"{url!r} is also set in app.{where}: the kit's database URL would "
                                         f"clash with yours; remove app.{where}.{url}, or name the kit's another "
                                         "way (or null for none)")
        return self


class AppDatabaseSettings(DatabaseArgs):
    """PostgreSQL for the app: RDS on aws (the keys above), an in-cluster server on local."""

    local_password: ConfigSecret | None = Field(
        None, description="target local: password of the in-cluster server's user (a Pulumi secret). "
                          "On aws RDS generates and rotates it.")
    local_storage: Quantity = Field("1Gi", description="target local: size of the in-cluster server's volume.")
    local_image: ImageRef = Field("docker.io/library/postgres:17.6-bookworm",
                                  description="target local: PostgreSQL image (Debian variant: runs as the pod's "
                                              "non-root uid).")


# DatabaseArgs keys that configure RDS only (database_name names the in-cluster database too).
RDS_ONLY = tuple(name for name in DatabaseArgs.model_fields if name != "database_name")
LOCAL_ONLY = ("local_storage", "local_image")


def database_target_unused(section: str, target: str) -> dict[str, str]:
    """The database keys of the other target: RDS keys on local, in-cluster keys on aws."""
    if target == "local":
        return {f"{section}.{name}": ("an RDS setting; target local runs PostgreSQL in the cluster "
                                      "(local_storage, local_image): remove it") for name in RDS_ONLY}
    return {f"{section}.{name}": "target local only; on aws RDS runs the database: remove it"
            for name in LOCAL_ONLY}


def database_target_problem(section: str, db: AppDatabaseSettings, target: str, *, required: bool) -> Exception | None:
    """The in-cluster server needs a password from the stack file; RDS makes its own."""
    key = f"{section}.local_password"
    if required and target == "local" and db.local_password is None:
        return at(key, "required on target local (the in-cluster server's password); store one encrypted: "
                       + set_command(tuple(key.split(".")), secret=True))
    if db.local_password is not None and target == "aws":
        return at(key, "target aws uses RDS, which generates and rotates the password; remove the key")
    return None


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


class ObservabilityShared(Section):
    """What both modes share: how much is traced, the objectives the alerts defend, and the names of
    the app's metrics."""

    trace_sample_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of new traces kept (parent-based: a sampled caller's "
                                         "trace is always kept). dev: 1.0.")
    slo: SloTargets = Field(default_factory=SloTargets, description="The objectives the alerts and the "
                                                                    "dashboard's SLO panels measure.")
    metrics: AppMetrics = Field(default_factory=AppMetrics, description="The app's metric names, if they differ "
                                                                        "from the kit's contract (README).")


class InstallObservability(ObservabilityShared, MonitoringStackArgs):
    """The kit installs Prometheus, Alertmanager, Grafana, an OpenTelemetry Collector and Tempo (one stack per cluster).

    From the community charts: kube-prometheus-stack (with the operator and kube-state-metrics),
    opentelemetry-collector and tempo, pinned in observability/charts.py."""

    mode: Literal["install"]

    def collector_endpoint(self) -> str:
        return collector_endpoint(self.namespace)

    def collector_ns(self) -> str:
        return self.namespace

    def labels(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """(ServiceMonitor labels, PrometheusRule labels, dashboard ConfigMap labels)."""
        return dict(MONITOR_LABELS), dict(MONITOR_LABELS), dict(DASHBOARD_LABELS)


class ExistingObservability(ObservabilityShared):
    """A platform team's Prometheus Operator, Grafana and collector run: only the app's objects are made.

    The app's ServiceMonitor, PrometheusRule and dashboard ConfigMap, labelled as that Prometheus
    and Grafana select them."""

    mode: Literal["existing"]
    namespace: NamespaceName = Field("monitoring", description="Namespace of that Prometheus: the app's "
                                                               "NetworkPolicy admits scrapes from it.")
    monitor_labels: dict[LabelKey, LabelValue] = Field(
        {"release": "kube-prometheus-stack"}, min_length=1,
        description="Labels the Prometheus' serviceMonitorSelector matches (kube-prometheus-stack: "
                    "`release: <its release name>`); put on the app's ServiceMonitor.")
    rule_labels: dict[LabelKey, LabelValue] | None = Field(
        None, description="Labels its ruleSelector matches; default: monitor_labels.")
    dashboard_labels: dict[LabelKey, LabelValue] = Field(
        {"grafana_dashboard": "1"}, min_length=1,
        description="Labels Grafana's dashboard sidecar loads ConfigMaps by (the charts' default).")
    dashboards_namespace: NamespaceName | None = Field(
        None, description="Namespace the dashboard ConfigMap goes to (one the sidecar searches); default: "
                          "namespace.")
    otlp_endpoint: str | None = Field(
        None, pattern=r"^https?://[^\s/:]+(:[0-9]+)?/?$",
        description="The collector's OTLP over HTTP endpoint, e.g. http://otel-collector.monitoring:4318. "
                    "Unset: tracing is wired but exports nothing.",
        examples=["http://otel-collector.monitoring:4318"])
    collector_namespace: NamespaceName | None = Field(
        None, description="Namespace of that collector: the app may connect to it on the endpoint's port; default: "
                    "the endpoint's `<service>.<namespace>` host, else namespace.")

    def collector_endpoint(self) -> str | None:
        return self.otlp_endpoint

    def collector_ns(self) -> str:
        if self.collector_namespace:
            return self.collector_namespace
        host = urlsplit(self.otlp_endpoint or "").hostname or ""
        parts = host.split(".")
        return parts[1] if len(parts) >= 2 and not host.replace(".", "").isdigit() else self.namespace

    def labels(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        return dict(self.monitor_labels), dict(self.rule_labels or self.monitor_labels), dict(self.dashboard_labels)


ObservabilitySettings = Annotated[Union[InstallObservability, ExistingObservability], Field(discriminator="mode")]


def collector_port(endpoint: str) -> int:
    """The TCP port of an OTLP endpoint URL (its scheme's default when it names none)."""
    parts = urlsplit(endpoint)
    return parts.port or (443 if parts.scheme == "https" else 80)


class StackSettings(Section):
    """Keys common to both frameworks. Loaded by `stacks.config.settings_from_config`."""

    framework: str = Field(description="Which setup to build: fastapi or django.")
    environment: Environment = Field(description="Profile of defaults: dev, staging or prod.")
    target: Target = Field("aws", description="aws: EKS and AWS services. local: any kubeconfig context, "
                                               "in-cluster equivalents, no AWS resources.")
    namespace: NamespaceName | None = Field(None, description="Kubernetes namespace; default: `<project>-<stack>`.")
    app: AppSettings = Field(description="The service's container image, port, env and secrets.")
    cluster: ClusterSettings = Field(default_factory=CreateClusterArgs,
                                     description="Which cluster runs the app; default: create one on aws, the "
                                                 "kubeconfig's current context on local.")
    network: NetworkSettings = Field(default_factory=NewVpcArgs,
                                     description="VPC of the aws target: create one, or use existing subnets.")
    observability: ObservabilitySettings = Field(
        default_factory=lambda: InstallObservability(mode="install"),
        description="How the app is monitored: `install` the monitoring stack in the cluster (default), or "
                    "use the `existing` one a platform team runs.")
    migrations: MigrationSettings = Field(
        default_factory=MigrationSettings,
        description="How release steps that migrate the database run: PostgreSQL lock and statement timeouts, "
                    "lock timeouts retried with backoff within the Job's deadline.")

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

    @model_validator(mode="after")
    def _references_resolve(self) -> "StackSettings":
        """Kubernetes expands `$(NAME)` only to a variable the container defines; any other name
        stays literal text (a pod retrying a host named `$(DATABASE_HOST)`), so refuse it here."""
        known = set(self.app.env) | set(self.app.secrets) | self.provided_env_names()
        places = [(f"app.env.{name}", value) for name, value in sorted(self.app.env.items())]
        places += [(f"app.release.{i}.command", arg) for i, step in enumerate(self.app.release or [])
                   for arg in step.command]
        for where, text in places:
            unknown = [ref for ref in env_references(text) if ref not in known]
            if unknown:
                raise at(where, f"$({unknown[0]}) names no variable of the container, so Kubernetes would "
                                f"leave it as literal text; known here: {', '.join(sorted(known))} "
                                "(write $$(NAME) for a literal)")
        # Each reference must come earlier in the env list; a cycle cannot be ordered.
        order = [e["name"] for e in ordered_env(self.app.env, first=[{"name": n} for n in sorted(known - set(
            self.app.env))])]
        for name, value in sorted(self.app.env.items()):
            later = [ref for ref in env_references(value) if order.index(ref) > order.index(name)]
            if later:
                raise at(f"app.env.{name}", f"refers to $({later[0]}), which refers back to it: a cycle "
                                            "Kubernetes cannot expand")
        return self

    # -- derived values --------------------------------------------------------------
    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    def has_database(self) -> bool:
        """Whether the kit gives the app a database (each framework says when)."""
        return False

    def migrates(self) -> bool:
        """Whether a release step migrates the database: one of app.release marked (or recognised) as a
        migration, else the framework's own migrate step, which runs when the kit gives a database."""
        if self.app.release is not None:
            return any(step.is_migration for step in self.app.release)
        return self.has_database()

    def provided_env_names(self) -> set[str]:
        """The variables the kit sets in the app's container and its release Jobs alike, which
        `$(NAME)` in app.env (given to both) may refer to; each framework adds its own."""
        return database_env_names(self.target, self.app.database_url_env) if self.has_database() else set()

    def unused_keys(self) -> dict[str, str]:
        """Keys that would change nothing with these settings, each with the reason: the loader
        refuses any the stack file sets (an accepted key always does something). Each framework's
        settings add their own."""
        unused: dict[str, str] = {}
        if self.target == "local":
            unused["app.certificate_arn"] = ("target local serves through ingress-nginx; an ACM certificate is "
                                             "for the ALB on aws: remove it")
            unused["app.hosted_zone_id"] = "target local creates no DNS records (Route 53 is aws): remove it"
            for name in ("cluster_name", "cluster_security_group_id"):
                unused[f"cluster.{name}"] = "used on target aws only (Pod Identity, database access): remove it"
        elif self.app.domain is None:
            unused["app.certificate_arn"] = "only used with app.domain (the ALB serves that name with it): set both"
            unused["app.hosted_zone_id"] = "only used with app.domain (the zone the kit writes its record in): set both"
        if not self.has_database():
            unused["app.database_url_env"] = "the kit gives this stack no database: remove it"
        if not self.migrates():
            unused["migrations"] = ("no release step migrates a database (the kit's runs with its database; in "
                                    "app.release, mark yours `migration: true`): remove it")
        return unused

    def k8s_namespace(self, stack: str) -> str:
        return self.namespace or f"{PROJECT}-{stack}"[:63].rstrip("-")


# What the app's container is told about the kit's database. On aws the password is RDS's,
# rotated in Secrets Manager, delivered by the Secrets Store CSI driver; on local it is the
# in-cluster server's. PGPASSWORD is read by libpq (psycopg, Django) and asyncpg when a URL has none.
DATABASE_ENV = ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_SSLMODE",
                "DATABASE_PASSWORD", "PGPASSWORD")
DATABASE_ENV_AWS = ("DATABASE_SECRET_ARN",)


def database_env_names(target: str, url_env: str | None) -> set[str]:
    names = set(DATABASE_ENV) | (set(DATABASE_ENV_AWS) if target == "aws" else set())
    return names | ({url_env} if url_env else set())


def database_in_cluster_vpc(settings: StackSettings) -> None:
    """RDS must sit in the VPC of a cluster the kit did not create, open to its pods."""
    if settings.network.mode == "create":
        raise at("network.mode", f"with cluster.mode {settings.cluster.mode}, the database must live in that "
                                 "cluster's VPC: set network.mode existing with its vpc_id and subnet ids")
    if not settings.cluster.cluster_security_group_id:
        raise at("cluster.cluster_security_group_id", "required with an existing cluster on aws: the "
                 "database admits only this security group (the cluster's pods)")
    if not settings.cluster.cluster_name:
        raise at("cluster.cluster_name", "required with an existing cluster on aws: the pods get the RDS-managed "
                 "password through EKS Pod Identity associations, which name the cluster")


def https_only(settings: StackSettings) -> None:
    """On aws the app is served by an ALB over HTTPS only: a domain needs its certificate."""
    app = settings.app
    if settings.target == "aws" and app.domain and not (app.certificate_arn or app.hosted_zone_id):
        raise at("app.certificate_arn", f"required with app.domain {app.domain!r} on aws: the ALB serves HTTPS "
                 "only; give an ACM certificate for that name in the stack's region, or app.hosted_zone_id "
                 "(its Route 53 zone) and the kit issues one")


# What dev and staging relax of the shared sections (each framework's settings add theirs).
PROFILE: dict[str, dict[str, Any]] = {
    "dev": {
        "observability.trace_sample_ratio": 1.0,
        "observability.prometheus.replicas": 1,
        "observability.prometheus.retention_days": 7,
        "observability.prometheus.storage_gb": 20,
        "observability.prometheus.memory_mib": 1024,
        "observability.prometheus.cpu_millicores": 250,
        "observability.alertmanager.replicas": 1,
        "observability.tempo.retention_hours": 72,
        "observability.tempo.storage_gb": 10,
        "observability.tempo.memory_mib": 512,
        "observability.collector.replicas": 1,
        "observability.collector.memory_mib": 256,
        "network.az_count": 2,
        "network.nat_gateways": "single",
        "network.flow_log_retention_days": 14,
        "cluster.deletion_protection": False,
    },
    "staging": {
        "network.nat_gateways": "single",
        "observability.prometheus.retention_days": 15,
        "observability.prometheus.storage_gb": 50,
        "observability.tempo.retention_hours": 168,
    },
}
