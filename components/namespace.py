"""A namespace for one web service: Pod Security "restricted", and a network that
denies everything except what a web service needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.k8s_pod import MANAGED_BY
from components.types import DomainName, Ipv4Cidr, NamespaceName, dns_label_problem

# Pod Security Admission refuses pods that could escape the container (root, host
# namespaces, privilege escalation, extra capabilities, no seccomp profile).
POD_SECURITY_LEVEL = "restricted"
# Pinned to the target minor so a cluster upgrade cannot tighten the policy under a
# running release: the default EKS minor, components/cluster.py DEFAULT_VERSION (a test
# keeps them equal). An older API server (the 1.34 engine tests, a laptop cluster) accepts
# it and evaluates its own newest policy: Pod Security admission clamps a newer version.
POD_SECURITY_VERSION = "v1.35"
# The EKS Pod Identity agent's link-local address on every node (IPv4).
POD_IDENTITY_AGENT = "169.254.170.23/32"
# Set by the API server on every namespace since 1.22; cannot be spoofed by a user.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class EgressRule(BaseModel):
    """A destination the pods may connect to besides DNS, HTTPS and the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cidr: Ipv4Cidr | None = Field(None, description="IPv4 range the pods may reach, e.g. an external database's "
                                                    "subnet, 10.20.0.0/24.")
    host: DomainName | None = Field(
        None, description="A host name, e.g. smtp.example.com. Kubernetes NetworkPolicies match addresses, not "
                          "names: with host, the port is opened to every address (prefer cidr where you know it).")
    port: int = Field(ge=1, le=65535, description="TCP (or UDP) port, e.g. 5432, 587.")
    protocol: Literal["TCP", "UDP"] = Field("TCP", description="Transport protocol.")

    @model_validator(mode="after")
    def _one_destination(self) -> "EgressRule":
        if (self.cidr is None) == (self.host is None):
            raise ValueError("set exactly one of cidr (an IPv4 range) or host (a name), got "
                             + ("both" if self.cidr else "neither"))
        return self

    def rule(self) -> dict:
        """The NetworkPolicy egress rule."""
        port = [{"protocol": self.protocol, "port": self.port}]
        return {"to": [{"ipBlock": {"cidr": self.cidr}}], "ports": port} if self.cidr else {"ports": port}


class NamespaceArgs(BaseModel):
    """Who may talk to the pods of this namespace, and to whom they may talk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace_name: NamespaceName | None = Field(
        None, description="Kubernetes name of the namespace; defaults to the component name "
        "(namespaces are shared, well-known names, so there is no random suffix).")
    app_ports: list[int] = Field(
        [8000], min_length=1, description="Container ports (TCP) the ingress controller / load balancer may reach.")
    ingress_controller_namespace: NamespaceName | None = Field(
        "ingress-nginx", description="Namespace of the in-cluster ingress controller allowed in on app_ports; "
        "None when traffic comes straight from a load balancer (see ingress_cidrs).")
    ingress_cidrs: list[Ipv4Cidr] = Field(
        [], description="Source CIDRs allowed in on app_ports, e.g. the VPC CIDR when an ALB sends "
        "to pod IPs (target-type ip).")
    monitoring_namespace: NamespaceName | None = Field(
        "monitoring", description="Namespace whose Prometheus may scrape metrics_port; None to deny.")
    metrics_port: int = Field(9090, ge=1, le=65535, description="Container port (TCP) serving /metrics.")
    database_port: int | None = Field(
        5432, ge=1, le=65535, description="TCP port of the database the pods may reach; None to deny.")
    database_cidrs: list[Ipv4Cidr] = Field(
        [], description="Where the database lives (e.g. the private subnets); empty means any "
        "destination on database_port, such as an in-cluster PostgreSQL.")
    collector_namespace: NamespaceName | None = Field(
        None, description="Namespace of the OpenTelemetry Collector the pods send traces to; None: no traces leave.")
    collector_ports: list[int] = Field([4317, 4318], description="The collector's OTLP ports (gRPC, HTTP).")
    allow_https_egress: bool = Field(True, description="Pods may open TCP 443 anywhere (AWS APIs, S3, OTLP).")
    pod_identity_agent: bool = Field(
        False, description="Pods may reach the EKS Pod Identity agent (169.254.170.23:80) for AWS credentials; "
        "on for pods whose ServiceAccount has a Pod Identity association.")
    egress: list[EgressRule] = Field([], description="Further destinations the pods may connect to.")
    allow_within_namespace: bool = Field(
        False, description="Pods of this namespace may reach each other on any port "
        "(e.g. an in-cluster PostgreSQL on the local target).")

    @field_validator("app_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 1 <= p <= 65535]
        if bad:
            raise ValueError(f"app_ports: {bad} are not TCP ports (1..65535)")
        return value


class Namespace(pulumi.ComponentResource):
    """A namespace enforcing Pod Security "restricted", with default-deny NetworkPolicies
    and the few allows a web service needs."""

    name: pulumi.Output[str]

    def __init__(self, name: str, args: NamespaceArgs, *,
                 ingress_cidrs: pulumi.Input[Sequence[str]] | None = None,
                 database_cidrs: pulumi.Input[Sequence[str]] | None = None,
                 policies_depend_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`ingress_cidrs` / `database_cidrs` add to the Args' lists values that are
        other components' outputs (the VPC CIDR, the database subnets' CIDRs).
        `policies_depend_on`: what makes the cluster enforce NetworkPolicies (e.g. the EKS Auto Mode
        network-policy switch); the policies wait for it."""
        super().__init__("webstack:components:Namespace", name, None, opts)
        ns_name = args.namespace_name or name
        if problem := dns_label_problem(ns_name):
            raise ValueError(f"namespace name: {problem}; set namespace_name")
        labels = {"app.kubernetes.io/managed-by": MANAGED_BY}
        child = pulumi.ResourceOptions(parent=self)

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": ns_name,
                "labels": {
                    **labels,
                    # enforce refuses the pod; audit and warn tell whoever applied it why.
                    **{f"pod-security.kubernetes.io/{mode}": POD_SECURITY_LEVEL
                       for mode in ("enforce", "audit", "warn")},
                    **{f"pod-security.kubernetes.io/{mode}-version": POD_SECURITY_VERSION
                       for mode in ("enforce", "audit", "warn")},
                },
            },
            opts=child,
        )
        namespace = ns.metadata.apply(lambda m: m.name)
        # Every policy waits for the namespace (the Output carries the dependency).
        meta = lambda role: {"name": role, "namespace": namespace, "labels": labels}  # noqa: E731
        all_pods: dict = {}

        policy_opts = pulumi.ResourceOptions(parent=self, depends_on=list(policies_depend_on))

        def policy(role: str, spec: dict) -> k8s.networking.v1.NetworkPolicy:
            return k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}", metadata=meta(role), spec={"podSelector": all_pods, **spec}, opts=policy_opts)

        def from_namespace(ns: str) -> dict:
            return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ns}}}

        def cidr_peers(static: list[str], dynamic: pulumi.Input[Sequence[str]] | None) -> pulumi.Output[list]:
            return pulumi.Output.from_input(dynamic or []).apply(
                lambda extra: [{"ipBlock": {"cidr": c}} for c in sorted({*static, *extra})])

        tcp = lambda port: {"protocol": "TCP", "port": port}  # noqa: E731

        # Anything not allowed below is refused, in both directions: a compromised pod
        # cannot scan the cluster or exfiltrate to arbitrary ports.
        policy("default-deny", {"policyTypes": ["Ingress", "Egress"]})

        # Web traffic: from the ingress controller's pods, or from the load balancer's
        # addresses when it targets pod IPs directly (ALB target-type ip).
        web_from = cidr_peers(args.ingress_cidrs, ingress_cidrs).apply(
            lambda peers: ([from_namespace(args.ingress_controller_namespace)]
                           if args.ingress_controller_namespace else []) + peers)
        policy("allow-web", {
            "policyTypes": ["Ingress"],
            "ingress": web_from.apply(lambda peers: [
                {"from": peers, "ports": [tcp(p) for p in args.app_ports]}] if peers else []),
        })

        if args.monitoring_namespace:
            policy("allow-metrics", {
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [from_namespace(args.monitoring_namespace)],
                             "ports": [tcp(args.metrics_port)]}],
            })

        # Name resolution on 53, over UDP and over TCP for large replies, to wherever the cluster
        # answers it: a kube-dns pod on most clusters, but EKS Auto Mode answers on the node
        # itself, which a pod selector would not match (every lookup would time out).
        policy("allow-dns", {"policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "UDP", "port": 53},
                                                                               tcp(53)]}]})

        if args.pod_identity_agent:
            # EKS Pod Identity hands out credentials from a link-local agent on each node.
            policy("allow-pod-identity", {"policyTypes": ["Egress"], "egress": [{
                "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [tcp(80)]}]})

        if args.database_port is not None:
            db_to = cidr_peers(args.database_cidrs, database_cidrs)
            policy("allow-database", {
                "policyTypes": ["Egress"],
                "egress": db_to.apply(lambda peers: [
                    {**({"to": peers} if peers else {}), "ports": [tcp(args.database_port)]}]),
            })

        if args.collector_namespace:
            policy("allow-telemetry", {"policyTypes": ["Egress"], "egress": [{
                "to": [from_namespace(args.collector_namespace)], "ports": [tcp(p) for p in args.collector_ports]}]})

        if args.allow_https_egress:
            policy("allow-https", {"policyTypes": ["Egress"], "egress": [{"ports": [tcp(443)]}]})

        if args.egress:
            policy("allow-egress", {"policyTypes": ["Egress"], "egress": [r.rule() for r in args.egress]})

        if args.allow_within_namespace:
            same = {"podSelector": {}}
            policy("allow-namespace", {"policyTypes": ["Ingress", "Egress"],
                                       "ingress": [{"from": [same]}], "egress": [{"to": [same]}]})

        self.name = namespace
        self.register_outputs({"name": self.name})
