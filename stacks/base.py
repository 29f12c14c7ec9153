"""What both framework stacks share: the cluster they run on, the namespace, the web service.

`WebStack` maps validated settings onto the components; FastApiStack and DjangoStack
add what only their framework needs (the server command, release jobs, data stores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws_provider import AwsProviderArgs, tagged_provider
from components.cluster import Cluster, KubeconfigClusterArgs
from components.database import PORT, Database, DatabaseArgs
from components.namespace import Namespace, NamespaceArgs
from components.network import Network, NewVpcArgs
from components.pod_identity import PodIdentity, PodIdentityArgs, secret_read_statements
from components.postgres import InClusterPostgres, InClusterPostgresArgs
from components.release_job import ReleaseJob, ReleaseJobArgs
from components.web_service import AlbIngress, ClassIngress, ConfigFiles, WebService, WebServiceArgs
from stacks.settings import ClusterContext, ClusterKubeconfig, StackSettings

# Local clusters (kind, k3d, minikube) ship ingress-nginx in this namespace.
LOCAL_INGRESS_NAMESPACE = "ingress-nginx"
POSTGRES_PORT = PORT  # RDS and the in-cluster server alike


class AppDatabase:
    """How the app and its release Jobs reach their database: env vars, some from outputs."""

    def __init__(self, secrets: dict[str, pulumi.Input[str]], env: dict[str, str],
                 service_account: str | None = None) -> None:
        self.secrets = secrets  # other resources' outputs travel in the Secret
        self.env = env
        self.service_account = service_account  # for release Jobs that read the RDS secret


class WebStack(pulumi.ComponentResource):
    """Base of FastApiStack and DjangoStack: call `_platform()`, add children, then `_finish()`."""

    namespace: str

    def __init__(self, type_token: str, name: str, settings: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token, name, None, opts)
        self.name = name
        self.settings = settings
        self.namespace = settings.k8s_namespace(pulumi.get_stack())
        self.aws_provider: aws.Provider | None = None
        self.network: Network | None = None
        self.cluster: Cluster | None = None
        self._exports: dict[str, Any] = {
            "framework": settings.framework,
            "environment": settings.environment,
            "target": settings.target,
            "namespace": self.namespace,
        }

    # -- the platform: AWS provider, network, cluster, Kubernetes provider ------------
    def _platform(self, *, needs_network: bool) -> None:
        s, name = self.settings, self.name
        child = pulumi.ResourceOptions(parent=self)
        if s.target == "local":
            cluster = s.cluster
            if isinstance(cluster, ClusterContext):
                self.k8s_provider = k8s.Provider(f"{name}-k8s", context=cluster.context, opts=child)
            else:
                assert isinstance(cluster, ClusterKubeconfig)
                self.k8s_provider = k8s.Provider(
                    f"{name}-k8s", kubeconfig=pulumi.Output.secret(cluster.kubeconfig.get_secret_value()),
                    context=cluster.context, opts=child)
            return
        self.aws_provider = tagged_provider(f"{name}-aws", AwsProviderArgs(region=aws.config.region or "us-east-1"),
                                            environment=s.environment, opts=child)
        on_aws = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})
        if needs_network or s.cluster.mode == "create":
            self.network = Network(f"{name}-network", s.network, opts=on_aws)
        cluster_args = s.cluster
        kubeconfig = None
        if isinstance(cluster_args, ClusterKubeconfig):
            kubeconfig = pulumi.Output.secret(cluster_args.kubeconfig.get_secret_value())
            cluster_args = KubeconfigClusterArgs(**cluster_args.model_dump(exclude={"kubeconfig", "context"}))
        self.cluster = Cluster(f"{name}-cluster", cluster_args,
                               subnet_ids=self.network.private_subnet_ids if self.network else None,
                               kubeconfig=kubeconfig, opts=on_aws)
        self.k8s_provider = self.cluster.provider

    @property
    def k8s_opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.k8s_provider})

    def _vpc_cidrs(self) -> list[pulumi.Input[str]]:
        """Where an ALB with ip targets sends traffic from: the VPC."""
        if self.network is None:
            return []
        net = self.settings.network
        if isinstance(net, NewVpcArgs):
            return [net.cidr_block]
        vpc = aws.ec2.get_vpc_output(id=net.vpc_id, opts=pulumi.InvokeOutputOptions(parent=self,
                                                                                    provider=self.aws_provider))
        return [vpc.cidr_block]

    # -- the namespace and the web service -------------------------------------------
    def _namespace(self, *, database_port: int | None, serve_port: int) -> Namespace:
        s = self.settings
        aws_target = s.target == "aws"
        args = NamespaceArgs(
            namespace_name=self.namespace,
            app_ports=[serve_port],
            # With ALB ip targets, traffic comes from the VPC, not from a controller's pods.
            ingress_controller_namespace=None if aws_target else LOCAL_INGRESS_NAMESPACE,
            monitoring_namespace=s.observability.namespace,
            metrics_port=s.app.port,
            database_port=database_port,
        )
        return Namespace(f"{self.name}-ns", args, ingress_cidrs=self._vpc_cidrs() if aws_target else None,
                         opts=self.k8s_opts)

    def _ingress(self) -> AlbIngress | ClassIngress | None:
        s = self.settings
        if s.target == "local":
            return ClassIngress(host=s.app.domain)
        if s.app.domain and s.app.certificate_arn:
            return AlbIngress(host=s.app.domain, certificate_arn=s.app.certificate_arn)
        # HTTPS only: without a domain and its certificate the service stays cluster-internal.
        return None

    # -- the database ----------------------------------------------------------------
    @property
    def app_service_account(self) -> str:
        """WebService names its ServiceAccount after itself."""
        return f"{self.name}-app"

    def _database(self, ns: Namespace, rds: DatabaseArgs, *, local: InClusterPostgresArgs | None = None,
                  local_password: pulumi.Input[str] | None = None) -> AppDatabase:
        """RDS on aws, an in-cluster PostgreSQL on local; both reached through DATABASE_* env vars."""
        s, name = self.settings, self.name
        if s.target == "local":
            assert local is not None and local_password is not None
            pg = InClusterPostgres(f"{name}-postgres", local, namespace=ns.name, password=local_password,
                                   opts=self.k8s_opts)
            self._exports["database_host"] = pg.host
            return AppDatabase(
                secrets={"DATABASE_HOST": pg.host, "DATABASE_PASSWORD": pulumi.Output.secret(local_password)},
                env={"DATABASE_PORT": str(pg.port), "DATABASE_NAME": pg.database_name,
                     "DATABASE_USER": pg.username, "DATABASE_SSLMODE": "disable"})
        assert self.network is not None and self.cluster is not None
        on_aws = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws_provider})
        db = Database(f"{name}-db", rds, vpc_id=self.network.vpc_id, subnet_ids=self.network.private_subnet_ids,
                      client_security_group_id=self.cluster.cluster_security_group_id, opts=on_aws)
        self._exports["database_host"] = db.address
        release_account = None
        if self.cluster.cluster_name is not None:
            # RDS keeps the password in Secrets Manager; the app and its release Jobs read
            # exactly that secret, each as its own ServiceAccount.
            release_account = f"{name}-release"
            k8s.core.v1.ServiceAccount(f"{name}-release-service-account",
                                       metadata={"name": release_account, "namespace": ns.name},
                                       automount_service_account_token=False, opts=self.k8s_opts)
            for role, account in (("app", self.app_service_account), ("release", release_account)):
                PodIdentity(f"{name}-{role}-identity", PodIdentityArgs(namespace=self.namespace, service_account=account),
                            cluster_name=self.cluster.cluster_name, statements=secret_read_statements(db.secret_arn),
                            opts=on_aws)
        else:
            pulumi.log.warn("cluster.cluster_name is unset: no Pod Identity is created, so pods cannot read "
                            "the RDS-managed password; set it or grant access yourself", resource=self)
        return AppDatabase(
            secrets={"DATABASE_HOST": db.address, "DATABASE_PORT": db.port.apply(str),
                     "DATABASE_SECRET_ARN": db.secret_arn},
            env={"DATABASE_NAME": rds.database_name, "DATABASE_USER": rds.master_username,
                 "DATABASE_SSLMODE": "require"},
            service_account=release_account)

    def _release_job(self, ns: Namespace, role: str, command: list[str], *,
                     secrets: dict[str, pulumi.Input[str]], env: dict[str, str],
                     service_account: str | None = None) -> ReleaseJob:
        s = self.settings
        return ReleaseJob(
            f"{self.name}-{role}",
            ReleaseJobArgs(image=s.app.image, require_digest=not s.is_dev, command=command,
                           env={**env, **s.app.env}, resources=s.app.resources, secrets_as="env"),
            namespace=ns.name, secrets={**self.app_secrets(), **secrets} or None,
            service_account_name=service_account, opts=self.k8s_opts)

    def _web_service(self, ns: Namespace, *, command: list[str], graceful_timeout: int,
                     autoscaling: Any, secrets: dict[str, pulumi.Input[str]] | None = None,
                     env: dict[str, str] | None = None, config_files: Sequence[ConfigFiles] = (),
                     pod_field_env: dict[str, str] | None = None,
                     depends_on: Sequence[pulumi.Resource] = ()) -> WebService:
        s = self.settings
        args = WebServiceArgs(
            image=s.app.image,
            require_digest=not s.is_dev,
            port=s.app.port,
            command=command,
            env={**(env or {}), **s.app.env},
            # As with `env`, a name the user sets in app.env wins.
            pod_field_env={k: f for k, f in (pod_field_env or {}).items() if k not in s.app.env},
            config_files=list(config_files),
            resources=s.app.resources,
            health=s.app.health,
            autoscaling=autoscaling,
            allow_single_replica=s.is_dev,
            server_graceful_timeout_seconds=graceful_timeout,
            metrics_port=s.app.port,
            ingress=self._ingress(),
            secrets_as="env",
        )
        web = WebService(self.app_service_account, args, namespace=ns.name,
                         secrets={**self.app_secrets(), **(secrets or {})} or None,
                         depends_on=list(depends_on), opts=self.k8s_opts)
        self._exports["url"] = web.url
        return web

    def app_secrets(self) -> dict[str, pulumi.Output[str]]:
        return {k: pulumi.Output.secret(v.get_secret_value()) for k, v in self.settings.app.secrets.items()}

    def exports(self) -> dict[str, Any]:
        """Stack outputs, as `pulumi stack output` will show them."""
        return dict(self._exports)

    def _finish(self) -> None:
        self.register_outputs(self._exports)
