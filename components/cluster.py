"""EKS in Auto Mode with KMS-encrypted secrets and API access entries, or an existing cluster.

Whatever the mode, the component exposes a Kubernetes `provider` for the rest of the stack.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Annotated, Literal, Union

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.naming import (EKS_CLUSTER_NAME_MAX, IAM_NAME_PREFIX_MAX, LogRetentionDays, service_trust_policy,
                               physical_name, stack_prefix)
from components.types import AllowlistCidr, SecurityGroupId

TYPE = "webstack:components:Cluster"

# Amazon EKS Kubernetes release calendar, "End of standard support" (UTC), from
# https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar
# (1.35, newer than the copy read: endoflife.date/amazon-eks and AWS's aws-samples "EKS Version
# Support Calendar", both March 27, 2027, 14 months after its EKS release in late January 2026).
# The cluster's upgrade_policy is STANDARD: past this date EKS upgrades the control plane itself,
# so a version past it is refused. Add each new minor when EKS releases it, then move DEFAULT_VERSION.
EKS_STANDARD_SUPPORT_ENDS: dict[str, datetime.date] = {
    "1.29": datetime.date(2025, 3, 23),
    "1.30": datetime.date(2025, 7, 23),
    "1.31": datetime.date(2025, 11, 26),
    "1.32": datetime.date(2026, 3, 23),
    "1.33": datetime.date(2026, 7, 29),
    "1.34": datetime.date(2026, 12, 2),
    "1.35": datetime.date(2027, 3, 27),
}
# A minor with standard support left (the newest in the calendar today).
# tests/components/test_cluster_support.py fails once it has fewer than 90 days of it left;
# components/namespace.py pins Pod Security to it (a test keeps them equal).
DEFAULT_VERSION = "1.35"


def _minor_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def standard_support_problem(version: str, today: datetime.date) -> str | None:
    """Why `version` cannot be created with STANDARD support on `today`, or None."""
    supported = sorted((v for v, ends in EKS_STANDARD_SUPPORT_ENDS.items() if ends > today), key=_minor_key)
    fix = (f"use {supported[-1]}, the newest version with standard support left" if supported
           else "every version in the calendar is past it: add the newer minors to EKS_STANDARD_SUPPORT_ENDS")
    ends = EKS_STANDARD_SUPPORT_ENDS.get(version)
    if ends is None:
        known = sorted(EKS_STANDARD_SUPPORT_ENDS, key=_minor_key)
        return (f"{version!r} is not in the EKS release calendar the kit knows ({known[0]}..{known[-1]}); {fix} "
                f"(a newer minor EKS offers goes into EKS_STANDARD_SUPPORT_ENDS in components/cluster.py)")
    if ends <= today:
        return (f"EKS standard support for Kubernetes {version} ended on {ends.isoformat()} (the upgrade policy "
                f"is STANDARD: EKS upgrades such a control plane itself); {fix}")
    return None


ADMIN_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# What EKS Auto Mode needs the cluster role to do: run compute, EBS, load balancers and
# VPC networking on the cluster's behalf (AWS docs, "Auto Mode cluster IAM role").
CLUSTER_ROLE_POLICIES = ("AmazonEKSClusterPolicy", "AmazonEKSComputePolicy", "AmazonEKSBlockStoragePolicy",
                         "AmazonEKSLoadBalancingPolicy", "AmazonEKSNetworkingPolicy")
# Auto Mode nodes only need to join the cluster and pull images.
NODE_ROLE_POLICIES = ("AmazonEKSWorkerNodeMinimalPolicy", "AmazonEC2ContainerRegistryPullOnly")
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# The Secrets Store CSI driver with the AWS provider (ASCP), as one EKS add-on: pods mount
# Secrets Manager secrets (components/secrets_store.py). Auto Mode has no such built-in;
# its Pod Identity agent, which ASCP uses with usePodIdentity, is built in (no add-on).
SECRETS_STORE_ADDON = "aws-secrets-store-csi-driver-provider"
# Values of the driver chart bundled in the add-on (key "secrets-store-csi-driver"; the
# same keys as the add-on configuration in the ASCP repository's tests/addon_config_values.yaml).
SECRETS_STORE_CONFIG = {"secrets-store-csi-driver": {
    # secretObjects become Kubernetes Secrets (env vars) only with the sync RBAC installed;
    # without it the driver mounts the files and the env's Secret never appears.
    "syncSecret": {"enabled": True},
    # Re-read mounted secrets, so a rotated RDS password reaches the files and the synced
    # Secret (running containers' env vars still change only on restart).
    "enableSecretRotation": True,
    # RDS rotates its managed password in place (the old one stops logging in), so this is
    # how long a container (re)started after a rotation may still get the old one. The
    # driver's default; each re-read is a DescribeSecret per mounting pod (plus a
    # GetSecretValue when the version changed): ~720 calls a day per pod, ~$0.11 a month.
    "rotationPollInterval": "120s",
    # The chart default, stated: ASCP exchanges a token of this audience for the pod's
    # Pod Identity credentials.
    "tokenRequests": [{"audience": "sts.amazonaws.com"}, {"audience": "pods.eks.amazonaws.com"}],
}}
# The resource metrics API an HPA reads: EKS does not install it, and without it an HPA reports
# "failed to get cpu utilization" and never scales. A community add-on (AWS docs, "Community add-ons").
METRICS_SERVER_ADDON = "metrics-server"
# Auto Mode serves an Ingress only through an IngressClass naming its controller, with its
# parameters in an IngressClassParams (AWS docs, "Create an IngressClass to configure an
# Application Load Balancer"). The name is AlbIngress.ingress_class_name's default.
INGRESS_CLASS = "alb"
ALB_CONTROLLER = "eks.amazonaws.com/alb"
# Auto Mode's block storage provisions EBS volumes, but EKS creates no StorageClass for it: a
# PersistentVolumeClaim without one stays Pending for ever (Prometheus, Alertmanager and Tempo
# would hang the release). The kit makes one, the cluster's default: gp3, encrypted, bound when a
# pod is scheduled so the volume lands in that pod's AZ.
STORAGE_CLASS = "gp3-encrypted"
EBS_PROVISIONER = "ebs.csi.eks.amazonaws.com"
ALB_PARAMS_API_GROUP = "eks.amazonaws.com"
ALB_PARAMS_SPEC = {"scheme": "internet-facing"}
# Auto Mode accepts NetworkPolicies but enforces none until this key is set in this ConfigMap
# (AWS docs, "Use Network Policies with EKS Auto Mode"; the NodeClass settings are optional).
NETWORK_POLICY_CONFIG_MAP = {"name": "amazon-vpc-cni", "namespace": "kube-system"}
NETWORK_POLICY_DATA = {"enable-network-policy-controller": "true"}

_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9_+=,.@/-]+$"


class CreateClusterArgs(BaseModel):
    """Create an EKS cluster in Auto Mode (managed, autoscaled nodes, ALB ingress and EBS built in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["create"] = "create"
    version: str = Field(DEFAULT_VERSION, pattern=r"^1\.[0-9]{2}$",
                         description=f"Kubernetes minor version, e.g. '{DEFAULT_VERSION}'; one with EKS standard "
                                     "support left (the kit's EKS release calendar).")
    endpoint_public_access_cidrs: list[AllowlistCidr] = Field(
        default_factory=list,
        description="IPv4 CIDRs allowed to reach the public API endpoint (CI runners, VPN egress). "
                    "Empty: the endpoint is private, reachable from inside the VPC only.")
    deploy_from_vpc: bool = Field(
        False,
        description="The program runs inside the VPC (a runner or bastion there): a private endpoint is "
                    "reachable. The same `pulumi up` that creates the cluster creates Kubernetes objects "
                    "through its API, and a private endpoint times out from a laptop or a hosted CI runner, "
                    "so with no endpoint_public_access_cidrs this must be true.")
    admin_principal_arns: list[Annotated[str, Field(pattern=_ARN)]] = Field(
        default_factory=list,
        description="IAM role/user ARNs given cluster-admin through EKS access entries.")
    node_pools: list[Literal["general-purpose", "system"]] = Field(
        default_factory=lambda: ["general-purpose", "system"],
        min_length=1, description="Auto Mode built-in node pools to enable.")
    control_plane_logs: list[Literal[LOG_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["api", "audit", "authenticator"],
        description="Control-plane log types sent to CloudWatch Logs.")
    log_retention_days: LogRetentionDays = Field(
        90, description="Retention of the control-plane log group, days.")
    deletion_protection: bool = Field(True, description="EKS refuses to delete the cluster, and Pulumi its secrets "
                                                        "encryption key (`protect`), until this is turned off.")

    @field_validator("version")
    @classmethod
    def _standard_support_left(cls, version: str) -> str:
        if problem := standard_support_problem(version, datetime.date.today()):
            raise ValueError(problem)
        return version

    @field_validator("node_pools")
    @classmethod
    def _workloads_schedule(cls, pools: list[str]) -> list[str]:
        # The system pool is tainted for critical add-ons only: without general-purpose, the app's
        # pods and metrics-server stay Pending and `pulumi up` times out waiting for them.
        if "general-purpose" not in pools:
            raise ValueError(f"must include 'general-purpose', got {pools}: the 'system' pool runs only "
                             "critical add-ons, so the app's pods would never be scheduled")
        return pools

    @field_validator("control_plane_logs")
    @classmethod
    def _audit_kept(cls, logs: list[str]) -> list[str]:
        missing = [t for t in ("api", "audit", "authenticator") if t not in logs]
        if missing:
            raise ValueError(f"control_plane_logs: must include {missing}, got {logs}")
        return logs

    @model_validator(mode="after")
    def _api_reachable(self) -> "CreateClusterArgs":
        # The program creates Kubernetes objects through this endpoint right after the cluster:
        # one it cannot reach fails the first `up` on a timeout, after the cluster was made.
        if not self.endpoint_public_access_cidrs and not self.deploy_from_vpc:
            raise ValueError(
                "endpoint_public_access_cidrs is empty (a private API endpoint) and deploy_from_vpc is false: "
                "`pulumi up` could not reach the API to create the Kubernetes objects. Either list the egress "
                "CIDRs of the machines that run it (CI runners, VPN), e.g. endpoint_public_access_cidrs: "
                "['203.0.113.7/32'], or set deploy_from_vpc: true when they run inside the VPC")
        # The private endpoint is always on, so inside the VPC the CIDRs change nothing for the program.
        if self.endpoint_public_access_cidrs and self.deploy_from_vpc:
            raise ValueError(
                "deploy_from_vpc: only matters when endpoint_public_access_cidrs is empty (the private endpoint "
                "is always on, so a program inside the VPC reaches it either way); remove deploy_from_vpc")
        return self


class KubeconfigClusterArgs(BaseModel):
    """Use an existing cluster through a kubeconfig passed as a Pulumi secret (keyword `kubeconfig`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["kubeconfig"]
    context: str | None = Field(None, description="Context to use; default: the kubeconfig's current context.")
    cluster_name: str | None = Field(None, description="EKS cluster name, for Pod Identity associations (optional).")
    cluster_security_group_id: SecurityGroupId | None = Field(
        None, description="Security group of the cluster's pods, for database ingress.")


class StackReferenceClusterArgs(BaseModel):
    """Use a cluster another Pulumi stack (a platform stack) created and exports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["stack_reference"]
    stack: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="Platform stack, 'org/project/stack'.")
    output: str = Field("kubeconfig", min_length=1, description="Name of the stack output holding the kubeconfig.")
    cluster_name: str | None = Field(None, description="EKS cluster name, for Pod Identity associations (optional).")
    cluster_security_group_id: SecurityGroupId | None = Field(
        None, description="Security group of the cluster's pods, for database ingress.")


ClusterArgs = Annotated[Union[CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs],
                        Field(discriminator="mode")]


def _missing(stack: str, output: str) -> str:
    raise ValueError(f"the platform stack {stack!r} exports no output {output!r}: set cluster.output to the name "
                     "of its kubeconfig output (`pulumi stack output --stack <platform stack>` lists them)")


def kubeconfig_for(cluster_name: str, endpoint: str, ca_data: str, region: str, profile: str | None = None) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived token in it), as
    the identity Pulumi's AWS provider uses: its region, and its named profile when it has one."""
    exec_: dict = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                   "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
                   "interactiveMode": "Never"}
    if profile:
        # What `aws eks update-kubeconfig --profile` writes. Without it get-token would use the
        # default credentials, another identity than the cluster creator admin: 401 on every object.
        exec_["env"] = [{"name": "AWS_PROFILE", "value": profile}]
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster_name,
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "users": [{"name": cluster_name, "user": {"exec": exec_}}],
    }, sort_keys=True)


class Cluster(pulumi.ComponentResource):
    """EKS Auto Mode cluster: private-by-default API, KMS-encrypted secrets, audit logs, access entries only.

    A cluster created here also gets what the kit's objects need from it, each waited for:
    metrics-server (HPAs), the `alb` IngressClass (Ingresses), NetworkPolicy enforcement and the
    Secrets Store CSI driver. Callers make their objects depend on the attribute that serves them;
    on clusters the kit does not create those attributes are None and the platform team provides them."""

    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    cluster_name: pulumi.Output[str] | None
    cluster_security_group_id: pulumi.Output[str] | None
    oidc_issuer: pulumi.Output[str] | None
    secrets_store_addon: aws.eks.Addon | None
    metrics_server_addon: aws.eks.Addon | None
    ingress_class: k8s.networking.v1.IngressClass | None
    network_policy_enforcement: k8s.core.v1.ConfigMapPatch | None
    storage_class: k8s.storage.v1.StorageClass | None

    def __init__(self, name: str, args: CreateClusterArgs | KubeconfigClusterArgs | StackReferenceClusterArgs, *,
                 subnet_ids: pulumi.Input[list[str]] | None = None,
                 kubeconfig: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`subnet_ids` (private subnets) is required to create; `kubeconfig` (a secret) for mode 'kubeconfig'."""
        super().__init__(TYPE, name, None, opts)
        self.oidc_issuer = None
        self.node_role_arn: pulumi.Output[str] | None = None
        # Only a cluster created here gets these; on others the platform team installs them.
        self.secrets_store_addon = None
        self.metrics_server_addon = None
        self.ingress_class = None
        self.network_policy_enforcement = None
        self.storage_class = None
        depends: list[pulumi.Resource] = []
        cluster: aws.eks.Cluster | None = None
        if isinstance(args, CreateClusterArgs):
            if subnet_ids is None:
                raise ValueError(f"Cluster {name!r}: subnet_ids is required with mode 'create' (pass Network.private_subnet_ids)")
            cluster, depends = self._create(name, args, subnet_ids)
        else:
            if isinstance(args, KubeconfigClusterArgs):
                if kubeconfig is None:
                    raise ValueError(f"Cluster {name!r}: mode 'kubeconfig' needs the kubeconfig keyword "
                                     "(a Pulumi secret, e.g. config.require_secret('kubeconfig'))")
                raw = pulumi.Output.from_input(kubeconfig)
            else:
                ref = pulumi.StackReference(f"{name}-platform", stack_name=args.stack,
                                            opts=pulumi.ResourceOptions(parent=self))
                stack, output = args.stack, args.output
                # A missing output would otherwise surface as a bare KeyError from inside the engine.
                raw = ref.get_output(output).apply(lambda value: value if value is not None else _missing(stack, output))
            self.kubeconfig = pulumi.Output.secret(raw).apply(
                lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True))
            self.cluster_name = pulumi.Output.from_input(args.cluster_name) if args.cluster_name else None
            self.cluster_security_group_id = (pulumi.Output.from_input(args.cluster_security_group_id)
                                              if args.cluster_security_group_id else None)
        # Every Kubernetes object of the stack goes through this provider; it waits for the cluster
        # and the admin access entries so the first `up` is not refused with 401. The API must also be
        # reachable from where `pulumi up` runs: CreateClusterArgs refuses a private endpoint unless
        # deploy_from_vpc says the program runs inside the VPC.
        context = args.context if isinstance(args, KubeconfigClusterArgs) else None
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, context=context,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=depends))
        if cluster is not None:
            self._cluster_objects(name, cluster)
        self.register_outputs({"kubeconfig": self.kubeconfig, "cluster_name": self.cluster_name,
                               "cluster_security_group_id": self.cluster_security_group_id,
                               "oidc_issuer": self.oidc_issuer})

    def _create(self, name: str, args: CreateClusterArgs,
                subnet_ids: pulumi.Input[list[str]]) -> tuple[aws.eks.Cluster, list[pulumi.Resource]]:
        """The cluster and its AWS-side parts; returns it and what the provider must wait for."""
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        cluster_name = physical_name(pulumi.get_project(), pulumi.get_stack(), name, max_length=EKS_CLUSTER_NAME_MAX)

        # sts:TagSession: Auto Mode tags the sessions it uses to manage nodes and volumes.
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role", name_prefix=stack_prefix("eks", max_length=IAM_NAME_PREFIX_MAX),
            assume_role_policy=service_trust_policy("eks.amazonaws.com", None,
                                                    actions=("sts:AssumeRole", "sts:TagSession")), opts=child)
        attachments = [aws.iam.RolePolicyAttachment(
            f"{name}-cluster-{p}", role=cluster_role.name, policy_arn=f"arn:aws:iam::aws:policy/{p}", opts=child)
            for p in CLUSTER_ROLE_POLICIES]
        node_role = aws.iam.Role(
            f"{name}-node-role", name_prefix=stack_prefix("node", max_length=IAM_NAME_PREFIX_MAX),
            assume_role_policy=service_trust_policy("ec2.amazonaws.com", None), opts=child)
        attachments += [aws.iam.RolePolicyAttachment(
            f"{name}-node-{p}", role=node_role.name, policy_arn=f"arn:aws:iam::aws:policy/{p}", opts=child)
            for p in NODE_ROLE_POLICIES]

        # Envelope encryption: a stolen etcd snapshot does not reveal Secrets.
        # Protected with the cluster: without the key, every Secret in etcd is unreadable.
        key = aws.kms.Key(f"{name}-secrets", description=f"EKS secrets encryption for {cluster_name}",
                          enable_key_rotation=True, deletion_window_in_days=30,
                          opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                              protect=args.deletion_protection)))
        # EKS would create this group itself with no retention (kept forever, billed forever).
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/eks/{cluster_name}/cluster",
                                       retention_in_days=args.log_retention_days, opts=child)

        public = bool(args.endpoint_public_access_cidrs)
        vpc_config: dict = {"subnet_ids": subnet_ids, "endpoint_private_access": True,
                            "endpoint_public_access": public}
        if public:
            vpc_config["public_access_cidrs"] = list(args.endpoint_public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks", name=cluster_name, version=args.version, role_arn=cluster_role.arn,
            vpc_config=vpc_config,
            # Access entries only: the aws-auth ConfigMap is deprecated and easy to lock yourself out with.
            # The identity running Pulumi stays admin: it must reach the API to deploy the rest of
            # the stack, and this flag can only be set at creation (changing it replaces the cluster).
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            # Auto Mode: EKS runs compute (Karpenter-based autoscaling), load balancing and EBS.
            bootstrap_self_managed_addons=False,
            compute_config={"enabled": True, "node_pools": list(args.node_pools), "node_role_arn": node_role.arn},
            kubernetes_network_config={"elastic_load_balancing": {"enabled": True}},
            storage_config={"block_storage": {"enabled": True}},
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": key.arn}},
            enabled_cluster_log_types=list(args.control_plane_logs),
            deletion_protection=args.deletion_protection,
            upgrade_policy={"support_type": "STANDARD"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, logs]))

        entries: list[pulumi.Resource] = []
        for arn in args.admin_principal_arns:
            # Named by a hash of the ARN, so reordering the list changes nothing.
            tag = hashlib.sha256(arn.encode()).hexdigest()[:8]
            entry = aws.eks.AccessEntry(f"{name}-admin-{tag}", cluster_name=cluster.name, principal_arn=arn,
                                        type="STANDARD", opts=child)
            entries.append(aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{tag}", cluster_name=cluster.name, principal_arn=arn, policy_arn=ADMIN_POLICY_ARN,
                access_scope={"type": "cluster"}, opts=pulumi.ResourceOptions(parent=self, depends_on=[entry])))

        # Installs the SecretProviderClass CRD: SecretsManagerEnv waits for it (depends_on).
        # OVERWRITE: a driver someone installed by hand before the first `up` is taken over.
        self.secrets_store_addon = aws.eks.Addon(
            f"{name}-secrets-store", cluster_name=cluster.name, addon_name=SECRETS_STORE_ADDON,
            configuration_values=json.dumps(SECRETS_STORE_CONFIG, sort_keys=True),
            resolve_conflicts_on_create="OVERWRITE", opts=child)
        # The HPA's resource metrics API (WebService's HPA needs it to scale). Needs the cluster (its
        # name carries the dependency) and a node for its pods, which Auto Mode compute launches for
        # them; the create waits until the add-on is ACTIVE, i.e. those pods run (20 min at most).
        self.metrics_server_addon = aws.eks.Addon(
            f"{name}-metrics-server", cluster_name=cluster.name, addon_name=METRICS_SERVER_ADDON,
            resolve_conflicts_on_create="OVERWRITE", opts=child)

        self.cluster_name = cluster.name
        self.cluster_security_group_id = cluster.vpc_config.cluster_security_group_id
        self.oidc_issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        self.node_role_arn = node_role.arn
        # get-token runs as the identity Pulumi's AWS provider uses (`aws:profile`, None when unset:
        # then AWS_PROFILE or the default chain, as for the provider itself).
        profile = aws.config.profile
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.data, region,
        ).apply(lambda a: kubeconfig_for(*a, profile=profile)))
        return cluster, [cluster, *entries]

    def _cluster_objects(self, name: str, cluster: aws.eks.Cluster) -> None:
        """Kubernetes objects a created cluster needs before the stack's own, through `self.provider`
        (which waits for the cluster and the admin access entries)."""
        assert self.metrics_server_addon is not None

        # Needs the IngressClassParams CRD, which Auto Mode's load balancing installs, not this program.
        # Waits for the cluster (ACTIVE) and for the metrics-server add-on (ACTIVE once Auto Mode
        # compute runs its pods), so Auto Mode's capabilities are up; the Kubernetes provider also
        # retries a create refused with "no matches for kind" while a CRD is being registered.
        params = k8s.apiextensions.CustomResource(
            f"{name}-alb-params", api_version=f"{ALB_PARAMS_API_GROUP}/v1", kind="IngressClassParams",
            metadata={"name": INGRESS_CLASS}, spec=dict(ALB_PARAMS_SPEC),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider,
                                        depends_on=[cluster, self.metrics_server_addon]))
        # Needs its IngressClassParams, which it names, so created after it. Callers' Ingresses
        # depend on it: no controller serves an Ingress whose class does not exist (no ALB, no error).
        self.ingress_class = k8s.networking.v1.IngressClass(
            f"{name}-alb", metadata={"name": INGRESS_CLASS},
            spec={"controller": ALB_CONTROLLER,
                  "parameters": {"apiGroup": ALB_PARAMS_API_GROUP, "kind": "IngressClassParams",
                                 "name": params.metadata["name"]}},
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider,
                                        depends_on=[cluster, self.metrics_server_addon, params]))

        # Needs only the API (kube-system exists from the start). A patch, by server-side apply: it
        # creates the ConfigMap when absent and changes only this key when EKS or the VPC CNI add-on
        # made it, where a plain create fails with "already exists"; deleting it removes only the key.
        # Namespaces' NetworkPolicies depend on it: until it is applied they are accepted, not enforced.
        self.network_policy_enforcement = k8s.core.v1.ConfigMapPatch(
            f"{name}-network-policy", metadata=dict(NETWORK_POLICY_CONFIG_MAP), data=dict(NETWORK_POLICY_DATA),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[cluster]))

        # Needs only the API; claims that name it (or none, as the default) wait for it.
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage", metadata={"name": STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner=EBS_PROVISIONER, volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True,
            parameters={"type": "gp3", "encrypted": "true"}, reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[cluster]))
