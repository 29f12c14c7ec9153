"""Cluster: EKS Auto Mode with secure defaults, or an existing cluster reached through a provider."""

import json

import pulumi

from components.cluster import Cluster, CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs
from components.web_service import AlbIngress

EKS = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
PROVIDER = "pulumi:providers:kubernetes"
INGRESS_CLASS = "kubernetes:networking.k8s.io/v1:IngressClass"
INGRESS_CLASS_PARAMS = "kubernetes:eks.amazonaws.com/v1:IngressClassParams"
CONFIG_MAP_PATCH = "kubernetes:core/v1:ConfigMapPatch"
SUBNETS = ["subnet-0aaa11111", "subnet-0aaa22222"]
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
# The program runs inside the VPC, so the private endpoint (the default) is reachable.
IN_VPC = {"deploy_from_vpc": True}


def create(args=None, store=None):
    def program():
        cluster = Cluster("eks", args or CreateClusterArgs(**IN_VPC), subnet_ids=SUBNETS)
        if store is not None:
            store.append(cluster)
    return program


def get_token(monitor) -> dict:
    kubeconfig = json.loads(monitor.one(PROVIDER).plain_inputs["kubeconfig"])
    return kubeconfig["users"][0]["user"]["exec"]


def test_cluster_runs_in_auto_mode(run):
    eks = run(create(), stack="prod").one(EKS)

    assert eks.inputs["computeConfig"]["enabled"] is True
    assert eks.inputs["computeConfig"]["nodePools"] == ["general-purpose", "system"]
    assert eks.inputs["kubernetesNetworkConfig"]["elasticLoadBalancing"]["enabled"] is True
    assert eks.inputs["storageConfig"]["blockStorage"]["enabled"] is True
    assert eks.inputs["bootstrapSelfManagedAddons"] is False


def test_api_endpoint_is_private_unless_cidrs_are_listed(run):
    vpc = run(create()).one(EKS).inputs["vpcConfig"]

    assert vpc["endpointPublicAccess"] is False
    assert vpc["endpointPrivateAccess"] is True


def test_public_endpoint_admits_only_the_listed_cidrs(run):
    vpc = run(create(CreateClusterArgs(endpoint_public_access_cidrs=["203.0.113.0/24"]))).one(EKS).inputs["vpcConfig"]

    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_secrets_are_encrypted_with_a_rotating_kms_key(run):
    monitor = run(create())

    key = monitor.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    encryption = monitor.one(EKS).inputs["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"] == key.state["arn"]


def test_control_plane_logs_api_audit_authenticator_with_retention(run):
    monitor = run(create())

    assert monitor.one(EKS).inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    group = monitor.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["name"] == f"/aws/eks/{monitor.one(EKS).inputs['name']}/cluster"


def test_authentication_uses_access_entries_not_aws_auth(run):
    monitor = run(create(CreateClusterArgs(admin_principal_arns=[ADMIN], **IN_VPC)))

    assert monitor.one(EKS).inputs["accessConfig"]["authenticationMode"] == "API"
    entry = monitor.one("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == ADMIN
    policy = monitor.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert policy.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    assert policy.inputs["accessScope"] == {"type": "cluster"}
    assert not [r for r in monitor.all() if r.type == "kubernetes:core/v1:ConfigMap"]


def test_cluster_role_trust_allows_tag_session_for_auto_mode(run):
    monitor = run(create())

    role = monitor.one("aws:iam/role:Role", "eks-cluster-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    attached = {a.inputs["policyArn"].rsplit("/", 1)[1] for a in monitor.all("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.name.startswith("eks-cluster-")}
    assert attached == {"AmazonEKSClusterPolicy", "AmazonEKSComputePolicy", "AmazonEKSBlockStoragePolicy",
                        "AmazonEKSLoadBalancingPolicy", "AmazonEKSNetworkingPolicy"}


def test_nodes_get_only_the_minimal_worker_and_ecr_pull_policies(run):
    monitor = run(create())

    attached = {a.inputs["policyArn"].rsplit("/", 1)[1] for a in monitor.all("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.name.startswith("eks-node-")}
    assert attached == {"AmazonEKSWorkerNodeMinimalPolicy", "AmazonEC2ContainerRegistryPullOnly"}


def test_the_cluster_has_deletion_protection_unless_turned_off(run):
    # The component never reads the stack name; which stacks turn it off is the profile's
    # business (tests/test_stacks.py checks the prod and dev examples).
    assert run(create()).one(EKS).inputs["deletionProtection"] is True
    off = CreateClusterArgs(deletion_protection=False, **IN_VPC)
    assert run(create(off)).one(EKS).inputs["deletionProtection"] is False


def test_kubernetes_provider_gets_a_secret_kubeconfig_after_admin_access(run):
    monitor = run(create(CreateClusterArgs(admin_principal_arns=[ADMIN], **IN_VPC)))

    provider = monitor.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    kubeconfig = json.loads(provider.plain_inputs["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:2] == ["eks", "get-token"]
    association = monitor.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association.urn in provider.dependencies


def test_kubeconfig_mode_creates_only_the_provider(run):
    def program():
        Cluster("eks", KubeconfigClusterArgs(mode="kubeconfig"), kubeconfig=pulumi.Output.secret('{"kind": "Config"}'))

    monitor = run(program)

    assert sorted(r.type for r in monitor.all()) == ["pulumi:providers:kubernetes", "webstack:components:Cluster"]
    assert monitor.one("pulumi:providers:kubernetes").inputs["kubeconfig"] == "[secret]"


def test_stack_reference_mode_reads_the_kubeconfig_as_a_secret(run):
    monitor = run(lambda: Cluster("eks", StackReferenceClusterArgs(mode="stack_reference", stack="acme/platform/prod")))

    provider = monitor.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert json.loads(provider.plain_inputs["kubeconfig"])["kind"] == "Config"
    assert not monitor.all(EKS)


def test_a_created_cluster_gets_the_secrets_store_add_on_with_sync_and_rotation(run):
    monitor = run(create())

    addon = monitor.one(ADDON, "eks-secrets-store")
    assert addon.inputs["addonName"] == "aws-secrets-store-csi-driver-provider"
    assert addon.inputs["clusterName"] == monitor.one(EKS).inputs["name"]
    assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
    driver = json.loads(addon.inputs["configurationValues"])["secrets-store-csi-driver"]
    assert driver["syncSecret"] == {"enabled": True}
    assert driver["enableSecretRotation"] is True
    assert driver["rotationPollInterval"].endswith("s")
    assert {"audience": "pods.eks.amazonaws.com"} in driver["tokenRequests"]


def test_auto_mode_needs_no_pod_identity_agent_add_on(run):
    names = [a.inputs["addonName"] for a in run(create()).all("aws:eks/addon:Addon")]

    assert "eks-pod-identity-agent" not in names


def test_clusters_the_kit_does_not_create_get_no_add_on(run):
    store: list = []

    def program():
        store.append(Cluster("eks", KubeconfigClusterArgs(mode="kubeconfig"),
                             kubeconfig=pulumi.Output.secret('{"kind": "Config"}')))
        store.append(Cluster("ref", StackReferenceClusterArgs(mode="stack_reference", stack="acme/platform/prod")))

    monitor = run(program)

    assert not monitor.all(ADDON)
    assert not monitor.all(INGRESS_CLASS) and not monitor.all(INGRESS_CLASS_PARAMS)
    assert not monitor.all(CONFIG_MAP_PATCH)
    for c in store:
        assert (c.secrets_store_addon, c.metrics_server_addon) == (None, None)
        assert (c.ingress_class, c.network_policy_enforcement) == (None, None)


def test_a_created_cluster_gets_the_metrics_server_add_on_so_the_hpa_can_scale(run):
    store: list = []
    monitor = run(create(store=store))

    addon = monitor.one(ADDON, "eks-metrics-server")
    assert addon.inputs["addonName"] == "metrics-server"
    assert addon.inputs["clusterName"] == monitor.one(EKS).inputs["name"]
    assert store[0].metrics_server_addon is not None


def test_a_created_cluster_gets_the_alb_ingress_class_auto_mode_serves(run):
    store: list = []
    monitor = run(create(store=store))

    params = monitor.one(INGRESS_CLASS_PARAMS)
    assert params.inputs["spec"] == {"scheme": "internet-facing"}
    ingress_class = monitor.one(INGRESS_CLASS)
    # The class AlbIngress names by default, so a WebService's Ingress finds it.
    assert ingress_class.inputs["metadata"]["name"] == AlbIngress.model_fields["ingress_class_name"].default
    assert ingress_class.inputs["spec"]["controller"] == "eks.amazonaws.com/alb"
    assert ingress_class.inputs["spec"]["parameters"] == {
        "apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": params.inputs["metadata"]["name"]}
    assert store[0].ingress_class is not None


def test_the_ingress_class_waits_for_the_cluster_and_its_auto_mode_compute(run):
    monitor = run(create())

    params, ingress_class = monitor.one(INGRESS_CLASS_PARAMS), monitor.one(INGRESS_CLASS)
    provider = monitor.one(PROVIDER)
    component = monitor.one("webstack:components:Cluster")
    # The metrics-server add-on turns ACTIVE only once Auto Mode has launched a node for it.
    needed = {monitor.one(EKS).urn, monitor.one(ADDON, "eks-metrics-server").urn}
    for obj in (params, ingress_class):
        assert needed <= set(obj.dependencies)
        assert obj.provider.startswith(provider.urn + "::")
        assert obj.parent == component.urn
    assert params.urn in ingress_class.dependencies


def test_a_created_cluster_switches_on_network_policy_enforcement(run):
    store: list = []
    monitor = run(create(store=store))

    patch = monitor.one(CONFIG_MAP_PATCH)
    assert patch.inputs["metadata"] == {"name": "amazon-vpc-cni", "namespace": "kube-system"}
    assert patch.inputs["data"] == {"enable-network-policy-controller": "true"}
    assert monitor.one(EKS).urn in patch.dependencies
    assert patch.provider.startswith(monitor.one(PROVIDER).urn + "::")
    assert store[0].network_policy_enforcement is not None


def test_get_token_uses_the_pulumi_aws_profile_and_region(run):
    exec_ = get_token(run(create(), config={"aws:profile": "deploy"}))

    assert exec_["env"] == [{"name": "AWS_PROFILE", "value": "deploy"}]
    assert exec_["args"][-2:] == ["--region", "us-east-1"]


def test_without_an_aws_profile_get_token_uses_the_ambient_credentials(run):
    exec_ = get_token(run(create()))

    assert "env" not in exec_
    assert exec_["args"][-2:] == ["--region", "us-east-1"]
