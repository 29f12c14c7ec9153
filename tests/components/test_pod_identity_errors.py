"""PodIdentity: a write action on Resource '*' never gets created."""

import json

import pulumi
import pytest
from pydantic import ValidationError

from components.pod_identity import PodIdentity, PodIdentityArgs, Statement, render_policy


def test_a_write_action_on_every_resource_is_refused():
    with pytest.raises(ValueError, match=r"statement 'Upload': write actions \['s3:PutObject'\] on Resource '\*'"):
        Statement("Upload", ["s3:PutObject"], ["*"])


def test_an_action_wildcard_on_every_resource_is_refused():
    with pytest.raises(ValueError, match="write actions"):
        Statement("Everything", ["s3:*"], ["*"])


def test_a_wildcard_that_only_arrives_as_an_output_is_refused_once_known():
    statement = Statement("Upload", ["s3:PutObject"], [pulumi.Output.from_input("*")])

    with pytest.raises(ValueError, match=r"statement 'Upload': write actions \['s3:PutObject'\] on Resource"):
        render_policy([statement], [["*"]])


def test_reads_on_every_resource_are_allowed():
    statement = Statement("Describe", ["ec2:DescribeInstances"], ["*"])

    [rendered] = json.loads(render_policy([statement], [["*"]]))["Statement"]
    assert (rendered["Action"], rendered["Resource"]) == (["ec2:DescribeInstances"], ["*"])


def test_a_role_without_statements_is_refused(run):
    with pytest.raises(ValueError, match="statements is empty"):
        run(lambda: PodIdentity("job", PodIdentityArgs(namespace="web", service_account="job"),
                                cluster_name="c", statements=[]))


def test_a_service_account_name_kubernetes_would_reject_is_refused():
    with pytest.raises(ValidationError, match="service_account"):
        PodIdentityArgs(namespace="web", service_account="Collect_Static")
