"""Cluster: unsafe or contradictory config is refused with the field and value."""

import pytest
from pydantic import ValidationError

from components.cluster import Cluster, CreateClusterArgs, KubeconfigClusterArgs, StackReferenceClusterArgs


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


def test_a_stack_reference_needs_org_project_stack():
    with pytest.raises(ValidationError, match="stack"):
        StackReferenceClusterArgs(mode="stack_reference", stack="platform")


def test_create_mode_without_subnets_says_where_they_come_from(run):
    with pytest.raises(ValueError, match="subnet_ids is required with mode 'create'"):
        run(lambda: Cluster("eks", CreateClusterArgs()))


def test_kubeconfig_mode_without_the_secret_says_how_to_pass_it(run):
    with pytest.raises(ValueError, match="needs the kubeconfig keyword"):
        run(lambda: Cluster("eks", KubeconfigClusterArgs(mode="kubeconfig")))
