"""PodIdentity: one role per service account, trusted only by the Pod Identity agent, scoped to named resources."""

import json

from components.pod_identity import (PodIdentity, PodIdentityArgs, secret_read_statements,
                                     static_upload_statements)

BUCKET_ARN = "arn:aws:s3:::webstack-prod-static-20250101000000123456789012"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-abc-123456"
ARGS = PodIdentityArgs(namespace="web", service_account="collectstatic")


def identity(statements):
    return lambda: PodIdentity("collectstatic", ARGS, cluster_name="webstack-prod-eks", statements=statements)


def test_role_is_assumable_only_by_the_pod_identity_agent_of_this_account(run):
    monitor = run(identity(static_upload_statements(BUCKET_ARN)))

    trust = json.loads(monitor.one("aws:iam/role:Role").inputs["assumeRolePolicy"])["Statement"]
    assert len(trust) == 1
    assert trust[0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust[0]["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_association_binds_the_role_to_one_service_account(run):
    monitor = run(identity(static_upload_statements(BUCKET_ARN)))

    association = monitor.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("web", "collectstatic")
    assert association.inputs["clusterName"] == "webstack-prod-eks"
    assert association.inputs["roleArn"] == monitor.one("aws:iam/role:Role").state["arn"]


def test_collectstatic_may_write_only_objects_of_its_bucket(run):
    monitor = run(identity(static_upload_statements(BUCKET_ARN)))

    statements = json.loads(monitor.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ListStaticBucket"] == {"Sid": "ListStaticBucket", "Effect": "Allow",
                                          "Action": ["s3:ListBucket"], "Resource": [BUCKET_ARN]}
    assert set(by_sid["WriteStaticObjects"]["Action"]) == {"s3:GetObject", "s3:PutObject"}
    assert by_sid["WriteStaticObjects"]["Resource"] == [f"{BUCKET_ARN}/*"]
    assert not [a for s in statements for a in s["Action"] if "Acl" in a or a.endswith("*")]


def test_the_app_may_read_exactly_the_database_secret(run):
    monitor = run(identity(secret_read_statements(SECRET_ARN)))

    (statement,) = json.loads(monitor.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    assert statement["Resource"] == [SECRET_ARN]
    assert set(statement["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
