"""Cluster: unsafe or contradictory config is refused with the field and value."""

import pytest
from pydantic import ValidationError

from components.cluster import Cluster, CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs

RUNNERS = ["203.0.113.0/24"]


def test_an_api_endpoint_open_to_the_internet_is_refused():
    with pytest.raises(ValidationError, match=r"endpoint_public_access_cidrs\.0\n  Value error, '0\.0\.0\.0/0' allows the whole internet"):
        CreateClusterArgs(endpoint_public_access_cidrs=["0.0.0.0/0"])


def test_a_malformed_cidr_is_refused():
    with pytest.raises(ValidationError, match=r"endpoint_public_access_cidrs\.0\n  Value error, '1\.2\.3' is not an IPv4 CIDR"):
        CreateClusterArgs(endpoint_public_access_cidrs=["1.2.3"])


def test_an_admin_that_is_not_an_iam_arn_is_refused():
    with pytest.raises(ValidationError, match="admin_principal_arns"):
        CreateClusterArgs(admin_principal_arns=["alice"])


def test_dropping_the_audit_log_is_refused():
    with pytest.raises(ValidationError, match=r"control_plane_logs: must include \['audit'\]"):
        CreateClusterArgs(control_plane_logs=["api", "authenticator"])


def test_a_version_that_is_not_a_minor_is_refused():
    with pytest.raises(ValidationError, match="version"):
        CreateClusterArgs(version="1.33.2")


def test_a_private_endpoint_the_program_cannot_reach_is_refused_with_both_keys_and_the_fix():
    # The same `pulumi up` creates Kubernetes objects through the API: from a laptop or a
    # hosted CI runner a private endpoint times out on the first object.
    with pytest.raises(ValidationError, match=r"endpoint_public_access_cidrs is empty.*deploy_from_vpc is false.*"
                                              r"list the egress CIDRs.*or set deploy_from_vpc: true"):
        CreateClusterArgs()


def test_a_private_endpoint_is_accepted_when_the_program_runs_inside_the_vpc():
    assert CreateClusterArgs(deploy_from_vpc=True).endpoint_public_access_cidrs == []


def test_deploy_from_vpc_with_public_cidrs_is_refused_as_doing_nothing():
    # The private endpoint is always on: a program inside the VPC reaches it whatever the CIDRs.
    with pytest.raises(ValidationError, match=r"deploy_from_vpc: only matters when endpoint_public_access_cidrs is empty"):
        CreateClusterArgs(endpoint_public_access_cidrs=RUNNERS, deploy_from_vpc=True)


def test_a_stack_reference_needs_org_project_stack():
    with pytest.raises(ValidationError, match="stack"):
        StackReferenceClusterArgs(mode="stack_reference", stack="platform")


def test_create_mode_without_subnets_says_where_they_come_from(run):
    with pytest.raises(ValueError, match="subnet_ids is required with mode 'create'"):
        run(lambda: Cluster("eks", CreateClusterArgs(endpoint_public_access_cidrs=RUNNERS)))


def test_kubeconfig_mode_without_the_secret_says_how_to_pass_it(run):
    with pytest.raises(ValueError, match="needs the kubeconfig keyword"):
        run(lambda: Cluster("eks", KubeconfigClusterArgs(mode="kubeconfig")))


def test_a_cluster_without_the_general_purpose_pool_is_refused():
    # Only the tainted system pool: the app's pods and metrics-server would stay Pending.
    with pytest.raises(ValidationError, match=r"node_pools\n  Value error, must include 'general-purpose'"):
        CreateClusterArgs(deploy_from_vpc=True, node_pools=["system"])
