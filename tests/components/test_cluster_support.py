"""Cluster: the default Kubernetes version has EKS standard support left, and what pins to it keeps up.

These tests read today's date: they start failing when the EKS release calendar in
components/cluster.py says the default is getting old, which is the point.
"""

import datetime

import pytest
from pydantic import ValidationError

from components import cluster, namespace
from components.cluster import CreateClusterArgs

# Enough for a release cycle: a stack created today is not upgraded by EKS within a quarter.
MIN_DAYS_LEFT = 90
# The cluster must be reachable for the model to be valid; these tests are about the version.
REACHABLE = {"endpoint_public_access_cidrs": ["203.0.113.0/24"]}


def default_version() -> str:
    return CreateClusterArgs.model_fields["version"].default


def test_the_default_version_has_at_least_90_days_of_standard_support_left():
    version = default_version()
    today = datetime.date.today()

    ends = cluster.EKS_STANDARD_SUPPORT_ENDS[version]

    assert (ends - today).days >= MIN_DAYS_LEFT, (
        f"EKS standard support for the default {version} ends on {ends}, {(ends - today).days} days from "
        f"{today}: add the newer minors to EKS_STANDARD_SUPPORT_ENDS (EKS release calendar) and move the default")


def test_pod_security_is_pinned_to_the_default_cluster_minor():
    assert namespace.POD_SECURITY_VERSION == f"v{default_version()}"


def test_a_version_past_its_standard_support_is_refused_with_its_end_date_and_the_newest():
    today = datetime.date.today()
    newest = max((v for v, ends in cluster.EKS_STANDARD_SUPPORT_ENDS.items() if ends > today),
                 key=lambda v: tuple(map(int, v.split("."))))

    # 1.31's standard support ended on 2025-11-26, whatever day the suite runs.
    with pytest.raises(ValidationError, match=rf"version\n  Value error, .*1\.31.*2025-11-26.*{newest}"):
        CreateClusterArgs(version="1.31", **REACHABLE)


def test_a_version_the_calendar_does_not_list_is_refused_with_the_listed_ones():
    with pytest.raises(ValidationError, match=r"version\n  Value error, '1\.99' is not in the EKS release calendar"):
        CreateClusterArgs(version="1.99", **REACHABLE)


def test_every_version_with_standard_support_left_is_accepted():
    today = datetime.date.today()
    for version, ends in cluster.EKS_STANDARD_SUPPORT_ENDS.items():
        if ends > today:
            assert CreateClusterArgs(version=version, **REACHABLE).version == version
