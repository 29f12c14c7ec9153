"""What both framework stacks share, by composition: the platform they run on (providers,
network, cluster), the app's namespace, its database per target, release Jobs and the web
service, each a function a stack calls with the values it has.

A framework stack reads as its list of parts:

    platform = build_platform(name, settings, parent=self, needs_network=...)
    ns = app_namespace(platform, database_port=..., serve_port=...)
    db = app_database(platform, ns, ...)            # optional
    job = release_job(platform, ns, "migrate", ...)
    web = web_service(platform, ns, ..., depends_on=[job])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws_provider import AwsProviderArgs, tagged_provider
from components.certificate import alias_records, dns_validated_certificate
from components.cluster import Cluster, KubeconfigClusterArgs
from components.database import Database, DatabaseArgs
from components.k8s_pod import PodSource
from components.namespace import Namespace, NamespaceArgs
from components.network import Network, NewVpcArgs
from components.pod_identity import PodIdentity, PodIdentityArgs, Statement, secret_read_statements
from components.postgres import InClusterPostgres, InClusterPostgresArgs
from components.release_job import ReleaseJob, ReleaseJobArgs
from components.secrets_store import SecretsManagerEnv, SecretsManagerEnvArgs
from components.web_service import AlbIngress, ClassIngress, ConfigFiles, WebService, WebServiceArgs
from observability.app_monitoring import AppMonitoring, AppMonitoringArgs
from observability.charts import GRAFANA_SERVICE
from observability.dashboards import ScrapeJobs
from observability.metrics import AppTarget
from observability.monitoring_stack import MonitoringStack
from stacks.settings import (ClusterContext, ClusterKubeconfig, InstallObservability, ReleaseStep, StackSettings,
                             collector_port)

# Local clusters (kind, k3d, minikube) ship ingress-nginx in this namespace.
LOCAL_INGRESS_NAMESPACE = "ingress-nginx"


@dataclass(frozen=True)
class Platform:
    """Where a framework stack's resources go: its parent component, the providers, and on aws
    the network and cluster the kit created or was pointed at."""

    name: str
    settings: StackSettings
    parent: pulumi.Resource
    namespace: str
    k8s_provider: k8s.Provider
    aws_provider: aws.Provider | None = None
    network: Network | None = None
    cluster: Cluster | None = None
    region: str | None = None  # the AWS provider's, on aws

    @property
    def k8s_opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, providers={"kubernetes": self.k8s_provider})

    @property
    def aws_opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, providers={"aws": self.aws_provider})

    @property
    def app_service_account(self) -> str:
        """WebService names its ServiceAccount after itself."""
        return f"{self.name}-app"

    def vpc_cidrs(self) -> list[pulumi.Input[str]]:
        """Where an ALB with ip targets sends traffic from: the VPC."""
        if self.network is None:
            return []
        net = self.settings.network
        if isinstance(net, NewVpcArgs):
            return [net.cidr_block]
        vpc = aws.ec2.get_vpc_output(id=net.vpc_id, opts=pulumi.InvokeOutputOptions(parent=self.parent,
                                                                                    provider=self.aws_provider))
        return [vpc.cidr_block]


def build_platform(name: str, settings: StackSettings, *, parent: pulumi.Resource,
                   needs_network: bool) -> Platform:
    """The Kubernetes provider for the cluster the settings name; on aws also the tagged AWS
    provider, the VPC (created or existing) when `needs_network` or the cluster is created, and
    the cluster (created, or reached by kubeconfig or StackReference)."""
    child = pulumi.ResourceOptions(parent=parent)
    namespace = settings.k8s_namespace(pulumi.get_stack())
    cluster_settings = settings.cluster
    if settings.target == "local":
        if isinstance(cluster_settings, ClusterContext):
            provider = k8s.Provider(f"{name}-k8s", context=cluster_settings.context, opts=child)
        else:
            assert isinstance(cluster_settings, ClusterKubeconfig)
            provider = k8s.Provider(
                f"{name}-k8s", kubeconfig=pulumi.Output.secret(cluster_settings.kubeconfig.get_secret_value()),
                context=cluster_settings.context, opts=child)
        return Platform(name, settings, parent, namespace, provider)

    region = aws.config.region or "us-east-1"
    # The same identity as `aws eks get-token` in the kubeconfig (Cluster passes aws:profile there).
    aws_provider = tagged_provider(f"{name}-aws", AwsProviderArgs(region=region, profile=aws.config.profile),
                                   environment=settings.environment, opts=child)
    on_aws = pulumi.ResourceOptions(parent=parent, providers={"aws": aws_provider})
    network = None
    if needs_network or cluster_settings.mode == "create":
        network = Network(f"{name}-network", settings.network, opts=on_aws)
    kubeconfig = None
    cluster_args: Any = cluster_settings
    if isinstance(cluster_settings, ClusterKubeconfig):
        kubeconfig = pulumi.Output.secret(cluster_settings.kubeconfig.get_secret_value())
        cluster_args = KubeconfigClusterArgs(**cluster_settings.model_dump(exclude={"kubeconfig"}))
    cluster = Cluster(f"{name}-cluster", cluster_args,
                      subnet_ids=network.private_subnet_ids if network else None,
                      kubeconfig=kubeconfig, opts=on_aws)
    return Platform(name, settings, parent, namespace, cluster.provider, aws_provider, network, cluster, region)


def app_namespace(platform: Platform, *, database_port: int | None, serve_port: int,
                  metrics_port: int | None = None) -> Namespace:
    """The app's namespace: Pod Security restricted, default-deny NetworkPolicies that admit the
    ingress path (the VPC on aws, ingress-nginx on local), Prometheus (on `metrics_port`, default the
    serving port) and the database port."""
    s = platform.settings
    aws_target = s.target == "aws"
    endpoint = s.observability.collector_endpoint()
    args = NamespaceArgs(
        namespace_name=platform.namespace,
        app_ports=[serve_port],
        # With ALB ip targets, traffic comes from the VPC, not from a controller's pods.
        ingress_controller_namespace=None if aws_target else LOCAL_INGRESS_NAMESPACE,
        monitoring_namespace=s.observability.namespace,
        # Traces go to the collector; only its OTLP port, only in its namespace.
        **({"collector_namespace": s.observability.collector_ns(), "collector_ports": [collector_port(endpoint)]}
           if endpoint else {}),
        metrics_port=metrics_port or serve_port,
        database_port=database_port,
        # On aws the app and its release Jobs read the database secret through Pod Identity.
        pod_identity_agent=aws_target and s.has_database(),
        egress=list(s.app.egress),
    )
    cluster = platform.cluster
    return Namespace(f"{platform.name}-ns", args, ingress_cidrs=platform.vpc_cidrs() if aws_target else None,
                     # On a cluster the kit creates, policies apply once enforcement is switched on.
                     policies_depend_on=[r for r in [cluster and cluster.network_policy_enforcement] if r],
                     opts=platform.k8s_opts)


def _ingress(settings: StackSettings) -> AlbIngress | ClassIngress | None:
    if settings.target == "local":
        return ClassIngress(host=settings.app.domain)
    if settings.app.domain:
        # The settings require a certificate or the zone to issue one in (HTTPS only).
        return AlbIngress(host=settings.app.domain, certificate_arn=settings.app.certificate_arn)
    # Without a domain the service stays cluster-internal.
    return None


def _issued_certificate(platform: Platform) -> pulumi.Output[str] | None:
    """On aws, with a hosted zone and no certificate of the user's: one ACM issues for app.domain."""
    app = platform.settings.app
    if platform.settings.target != "aws" or not app.domain or not app.hosted_zone_id or app.certificate_arn:
        return None
    return dns_validated_certificate(f"{platform.name}-app", app.domain, app.hosted_zone_id, opts=platform.aws_opts)


def app_dns(platform: Platform, web: WebService) -> dict[str, Any]:
    """On aws with an ingress: the ALB's name, and with a hosted zone an alias record of app.domain
    at it; without a zone, the record the user creates. The outputs to export."""
    app = platform.settings.app
    if platform.settings.target != "aws" or not app.domain:
        return {}
    outputs: dict[str, Any] = {"alb_hostname": web.ingress_hostname}
    if app.hosted_zone_id:
        zone = aws.lb.get_hosted_zone_id_output(load_balancer_type="application",
                                                opts=pulumi.InvokeOutputOptions(parent=platform.parent,
                                                                                provider=platform.aws_provider))
        alias_records(f"{platform.name}-app", app.hosted_zone_id, app.domain, target_name=web.ingress_hostname,
                      target_zone_id=zone.id, types=("A",), evaluate_target_health=True, opts=platform.aws_opts)
    else:
        outputs["dns_record_to_create"] = web.ingress_hostname.apply(
            lambda host: f"{app.domain} CNAME {host}" if host else "")
    return outputs


@dataclass(frozen=True)
class AppDatabase:
    """How the app and its release Jobs reach their database: env vars, some from outputs."""

    host: pulumi.Output[str]
    identifier: pulumi.Output[str] | None  # the RDS instance's, on aws
    secrets: dict[str, pulumi.Input[str]]  # other resources' outputs travel in the Secret
    env: dict[str, str]
    service_account: str | None = None  # for release Jobs that read the RDS secret
    sources: list[PodSource] = field(default_factory=list)  # env from volumes (the CSI-mounted password)
    # The mounted file the CSI driver rewrites when RDS rotates the password (aws), for apps that
    # read it at each connection.
    password_file: str | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # what pods using it wait for


def app_database(platform: Platform, ns: Namespace, rds: DatabaseArgs, *,
                 local: InClusterPostgresArgs | None = None,
                 local_password: pulumi.Input[str] | None = None,
                 app_statements: Sequence[Statement] = ()) -> AppDatabase:
    """RDS on aws, an in-cluster PostgreSQL on local; both reached through DATABASE_* env vars.
    `app_statements`: more permissions of the app's own Pod Identity on aws (e.g. its uploads
    bucket): EKS takes one role per service account, and this is where the app's role is made."""
    s, name = platform.settings, platform.name
    url_env = s.app.database_url_env
    if s.target == "local":
        assert local is not None and local_password is not None
        pg = InClusterPostgres(f"{name}-postgres", local, namespace=ns.name, password=local_password,
                               opts=platform.k8s_opts)
        password = pulumi.Output.secret(local_password)
        secrets: dict[str, pulumi.Input[str]] = {"DATABASE_HOST": pg.host, "DATABASE_PASSWORD": password,
                                                 "PGPASSWORD": password}
        if url_env:
            # The kit knows the password here, so the URL carries it, percent-encoded.
            secrets[url_env] = pulumi.Output.all(pg.host, password).apply(
                lambda v: database_url(pg.username, v[0], pg.port, pg.database_name, "disable", password=v[1]))
        return AppDatabase(
            host=pg.host, identifier=None, secrets=secrets,
            env={"DATABASE_PORT": str(pg.port), "DATABASE_NAME": pg.database_name,
                 "DATABASE_USER": pg.username, "DATABASE_SSLMODE": "disable"})
    assert platform.network is not None and platform.cluster is not None
    cluster = platform.cluster
    db = Database(f"{name}-db", rds, vpc_id=platform.network.vpc_id,
                  subnet_ids=platform.network.private_subnet_ids,
                  client_security_group_id=cluster.cluster_security_group_id, opts=platform.aws_opts)
    # The settings require the cluster's name on aws (Pod Identity needs it).
    assert cluster.cluster_name is not None
    # RDS keeps the password in Secrets Manager; the app and its release Jobs read exactly that
    # secret, each as its own ServiceAccount, and the Secrets Store CSI driver hands it to them
    # as PGPASSWORD and DATABASE_PASSWORD (no AWS code in the app).
    release_account = f"{name}-release"
    release_sa = k8s.core.v1.ServiceAccount(f"{name}-release-service-account",
                                            metadata={"name": release_account, "namespace": ns.name},
                                            automount_service_account_token=False, opts=platform.k8s_opts)
    identities = [PodIdentity(f"{name}-{role}-identity", PodIdentityArgs(namespace=platform.namespace,
                                                                         service_account=account),
                              cluster_name=cluster.cluster_name,
                              statements=[*secret_read_statements(db.secret_arn), *extra],
                              opts=platform.aws_opts)
                  for role, account, extra in (("app", platform.app_service_account, app_statements),
                                               ("release", release_account, ()))]
    password = SecretsManagerEnv(
        f"{name}-db-password",
        SecretsManagerEnvArgs(keys={"DATABASE_PASSWORD": "password", "PGPASSWORD": "password"},
                              region=platform.region),
        namespace=ns.name, secret_arn=db.secret_arn, depends_on=[cluster.secrets_store_addon],
        opts=platform.k8s_opts)
    env = {"DATABASE_NAME": rds.database_name, "DATABASE_USER": rds.master_username, "DATABASE_SSLMODE": "require"}
    if url_env:
        # RDS passwords may hold '#', '?', '%' or ':', which would break a URL, so the URL names
        # no password: libpq (psycopg, Django) and asyncpg take it from PGPASSWORD. The kubelet
        # expands the references from the variables listed before it.
        env[url_env] = database_url("$(DATABASE_USER)", "$(DATABASE_HOST)", "$(DATABASE_PORT)",
                                    "$(DATABASE_NAME)", "require")
    return AppDatabase(
        host=db.address, identifier=db.identifier,
        secrets={"DATABASE_HOST": db.address, "DATABASE_PORT": db.port.apply(str),
                 "DATABASE_SECRET_ARN": db.secret_arn},
        env=env, service_account=release_account, sources=[password.pod_source],
        password_file=f"{password.mount['mountPath']}/DATABASE_PASSWORD",
        # Pods mount the password only once the SecretProviderClass exists and their
        # ServiceAccounts may read the secret (the mount fails until then).
        depends_on=[password, *identities, release_sa])


def database_url(user: str, host: str, port: int | str, name: str, sslmode: str, *,
                 password: str | None = None) -> str:
    """postgresql://user[:password]@host:port/name?sslmode=..., the password percent-encoded."""
    auth = f"{user}:{quote(password, safe='')}" if password is not None else user
    return f"postgresql://{auth}@{host}:{port}/{name}?sslmode={sslmode}"


def app_secrets(settings: StackSettings) -> dict[str, pulumi.Output[str]]:
    """`app.secrets` as Pulumi secrets, for the app's Secret."""
    return {k: pulumi.Output.secret(v.get_secret_value()) for k, v in settings.app.secrets.items()}


def release_jobs(platform: Platform, ns: Namespace, default: list[tuple[str, ReleaseStep]], *,
                 secrets: dict[str, pulumi.Input[str]], env: dict[str, str],
                 service_account: str | None = None, sources: Sequence[PodSource] = (),
                 pod_field_env: dict[str, str] | None = None,
                 depends_on: Sequence[pulumi.Resource] = ()) -> list[ReleaseJob]:
    """The release steps in the new image, with the app's env and secrets, each a Job that waits
    for the one before; the rollout waits for them all. `default` ((role, step) pairs) runs unless
    the stack sets `app.release`, whose steps are named release-1, release-2, ..."""
    s = platform.settings
    steps = default if s.app.release is None else [(f"release-{i}", step)
                                                    for i, step in enumerate(s.app.release, start=1)]
    jobs: list[ReleaseJob] = []
    for role, step in steps:
        jobs.append(release_job(platform, ns, role, step, secrets=secrets, env=env, service_account=service_account,
                                sources=sources, pod_field_env=pod_field_env, depends_on=[*depends_on, *jobs[-1:]]))
    return jobs


def release_job(platform: Platform, ns: Namespace, role: str, step: ReleaseStep, *,
                secrets: dict[str, pulumi.Input[str]], env: dict[str, str], service_account: str | None = None,
                sources: Sequence[PodSource] = (), pod_field_env: dict[str, str] | None = None,
                depends_on: Sequence[pulumi.Resource] = ()) -> ReleaseJob:
    """One release step in the new image, with the app's env and secrets and what the kit adds;
    a migration under the migration guard (webstack:migrations)."""
    s = platform.settings
    # A migration runs guarded, with the deadline its retries were checked against.
    guard = dict(migration_guard=s.migrations.guard_args(),
                 active_deadline_seconds=s.migrations.job_deadline_seconds) if step.is_migration else {}
    return ReleaseJob(
        f"{platform.name}-{role}",
        ReleaseJobArgs(image=s.app.image, require_digest=not s.is_dev, command=step.command,
                       working_dir=step.working_dir, env={**env, **s.app.env}, resources=s.app.resources,
                       # The app's pod fields too, so `$(NAME)` in app.env expands here as in the pods.
                       pod_field_env=_own_pod_fields(s, pod_field_env),
                       secrets_as="env", writable_paths=s.app.writable_paths, **guard),
        namespace=ns.name, secrets={**app_secrets(s), **secrets} or None,
        service_account_name=service_account, sources=sources, depends_on=list(depends_on),
        opts=platform.k8s_opts)


def _own_pod_fields(settings: StackSettings, fields: dict[str, str] | None) -> dict[str, str]:
    """As with `env`, a name the user sets in app.env wins over the kit's pod field."""
    return {k: f for k, f in (fields or {}).items() if k not in settings.app.env}


def web_service(platform: Platform, ns: Namespace, *, command: list[str], graceful_timeout: int,
                autoscaling: Any, secrets: dict[str, pulumi.Input[str]] | None = None,
                env: dict[str, str] | None = None, config_files: Sequence[ConfigFiles] = (),
                pod_field_env: dict[str, str] | None = None, writable_paths: Sequence[str] = (),
                sources: Sequence[PodSource] = (), depends_on: Sequence[pulumi.Resource] = (),
                waf_acl_arn: pulumi.Input[str] | None = None, **pod: Any) -> WebService:
    """The app's Deployment, Service, HPA, PDB and ingress, with the app's own env winning.
    `pod`: more WebServiceArgs fields (a proxy container in front, shared volumes, ...); they
    replace the defaults here."""
    s = platform.settings
    defaults: dict[str, Any] = dict(
        image=s.app.image,
        require_digest=not s.is_dev,
        port=s.app.port,
        command=command,
        env={**(env or {}), **s.app.env},
        pod_field_env=_own_pod_fields(s, pod_field_env),
        config_files=list(config_files),
        resources=s.app.resources,
        health=s.app.health,
        autoscaling=autoscaling,
        allow_single_replica=s.is_dev,
        server_graceful_timeout_seconds=graceful_timeout,
        metrics_port=s.app.port,
        ingress=_ingress(s),
        secrets_as="env",
        # The app's own, then the server's (e.g. the metrics directory), each once.
        writable_paths=list(dict.fromkeys([*s.app.writable_paths, *writable_paths])),
    )
    args = WebServiceArgs(**{**defaults, **pod})
    return WebService(platform.app_service_account, args, namespace=ns.name,
                      secrets={**app_secrets(s), **(secrets or {})} or None, sources=sources,
                      depends_on=list(depends_on), ingress_certificate_arn=_issued_certificate(platform),
                      # An Ingress no controller serves would wait 10 minutes and fail the update.
                      ingress_depends_on=[r for r in [platform.cluster and platform.cluster.ingress_class] if r],
                      ingress_waf_acl_arn=waf_acl_arn, opts=platform.k8s_opts)


def observability(platform: Platform, web: WebService, *, autoscaling: Any, jobs: Sequence[ReleaseJob] = (),
                  db_max_connections: int | None = None) -> dict[str, Any]:
    """In `install` mode the monitoring stack (once per cluster); in both modes the app's
    ServiceMonitor, rules and dashboard, labelled for the Prometheus and Grafana that load them.
    The outputs to export."""
    s = platform.settings
    obs = s.observability
    outputs: dict[str, Any] = {}
    ready: list[pulumi.Resource] = []
    dashboards_ns = obs.namespace
    if isinstance(obs, InstallObservability):
        storage = [r for r in [platform.cluster and platform.cluster.storage_class] if r]
        stack = MonitoringStack(f"{platform.name}-monitoring", obs, depends_on=storage, opts=platform.k8s_opts)
        ready = stack.ready
        outputs["grafana_admin_password"] = stack.grafana_admin_password
        outputs["grafana_port_forward"] = f"kubectl -n {obs.namespace} port-forward svc/{GRAFANA_SERVICE} 3000:80"
    elif obs.dashboards_namespace:
        dashboards_ns = obs.dashboards_namespace
    monitor_labels, rule_labels, dashboard_labels = obs.labels()
    name = platform.app_service_account  # the WebService's name: its Deployment, Service and HPA
    target = AppTarget(
        namespace=platform.namespace, job=name, deployment=name, service_name=platform.namespace,
        hpa=name if autoscaling is not None else None,
        min_replicas=autoscaling.min_replicas if autoscaling is not None else 1,
        max_replicas=autoscaling.max_replicas if autoscaling is not None else 1,
        release_job_prefixes=tuple(job.name_prefix for job in jobs),
        db_max_connections=db_max_connections)
    args = AppMonitoringArgs(
        target=target, slo=obs.slo, metrics=obs.metrics, service_labels=web.service_selector,
        metrics_port=web.metrics_port_name, monitor_labels=monitor_labels, rule_labels=rule_labels,
        dashboard_labels=dashboard_labels, dashboards_namespace=dashboards_ns,
        title=f"{platform.namespace} ({s.framework}, {s.environment})",
        scrape_jobs=ScrapeJobs(collector_namespace=obs.collector_ns()))
    AppMonitoring(f"{platform.name}-monitor", args, depends_on=ready, opts=platform.k8s_opts)
    return outputs


def base_exports(platform: Platform) -> dict[str, Any]:
    """The outputs every stack has, as `pulumi stack output` shows them."""
    s = platform.settings
    outputs: dict[str, Any] = {"framework": s.framework, "environment": s.environment, "target": s.target,
                               "namespace": platform.namespace, "health_path": s.app.health.readiness_path}
    if s.target == "aws":
        # What `python -m cli verify` checks the live resources by (docs/verify.md).
        outputs["aws_region"] = platform.region
        if platform.cluster is not None and platform.cluster.cluster_name is not None:
            outputs["cluster_name"] = platform.cluster.cluster_name
    return outputs
