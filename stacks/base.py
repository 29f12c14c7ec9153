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
from components.namespace import Namespace, NamespaceArgs
from components.network import Network, NewVpcArgs
from components.web_service import AlbIngress, ClassIngress, WebService, WebServiceArgs
from stacks.settings import ClusterContext, ClusterKubeconfig, StackSettings

# Local clusters (kind, k3d, minikube) ship ingress-nginx in this namespace.
LOCAL_INGRESS_NAMESPACE = "ingress-nginx"


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

    def _web_service(self, ns: Namespace, *, command: list[str], graceful_timeout: int,
                     autoscaling: Any, secrets: dict[str, pulumi.Input[str]] | None = None,
                     depends_on: Sequence[pulumi.Resource] = ()) -> WebService:
        s = self.settings
        args = WebServiceArgs(
            image=s.app.image,
            require_digest=not s.is_dev,
            port=s.app.port,
            command=command,
            env=dict(s.app.env),
            resources=s.app.resources,
            health=s.app.health,
            autoscaling=autoscaling,
            allow_single_replica=s.is_dev,
            server_graceful_timeout_seconds=graceful_timeout,
            metrics_port=s.app.port,
            ingress=self._ingress(),
            secrets_as="env",
        )
        web = WebService(f"{self.name}-app", args, namespace=ns.name,
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
