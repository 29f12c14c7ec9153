"""SecretsManagerEnv: settings the driver or the kubelet would refuse at deploy time are refused before anything is created."""

import pytest
from pydantic import ValidationError

from components.secrets_store import (SecretsManagerEnv, SecretsManagerEnvArgs, provider_class_spec,
                                      secret_arn_problem)

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-abc-123456"


def test_a_bad_env_var_name_is_refused():
    with pytest.raises(ValidationError, match=r"keys\.1PASSWORD\.\[key\]\n  Value error, '1PASSWORD' is not an "
                                              r"environment variable name"):
        SecretsManagerEnvArgs(keys={"1PASSWORD": "password"}, region="us-east-1")


def test_a_relative_mount_path_is_refused():
    with pytest.raises(ValidationError, match=r"mount_path\n  Value error, 'secrets' is not an absolute path"):
        SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="us-east-1", mount_path="secrets")


@pytest.mark.parametrize("path", ["/", "/var/run/secrets", "/var/run/secrets/", "/var/run/secrets/kubernetes.io",
                                  "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/db"])
def test_a_mount_path_that_would_hide_the_service_account_tokens_is_refused(path):
    with pytest.raises(ValidationError, match=r"mount_path\n  Value error, .* would hide or write into the token "
                                              r"directory"):
        SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="us-east-1", mount_path=path)


def test_no_keys_at_all_is_refused():
    with pytest.raises(ValidationError, match=r"keys\n  Dictionary should have at least 1 item"):
        SecretsManagerEnvArgs(keys={}, region="us-east-1")


def test_an_empty_json_key_is_refused():
    with pytest.raises(ValidationError, match=r"keys\.PGPASSWORD\n  String should have at least 1 character"):
        SecretsManagerEnvArgs(keys={"PGPASSWORD": ""}, region="us-east-1")


def test_a_region_that_is_not_a_region_is_refused():
    with pytest.raises(ValidationError, match=r"region\n  String should match pattern"):
        SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="US East")


def test_an_unknown_key_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="mountpath"):
        SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="us-east-1", mountpath="/db")


def test_a_secret_in_another_region_is_refused_as_the_provider_would():
    assert "set region to the secret's region" in secret_arn_problem(SECRET_ARN, "eu-west-1")
    assert "not a Secrets Manager secret ARN" in secret_arn_problem(
        "arn:aws:ssm:us-east-1:123456789012:parameter/db", "us-east-1")
    assert secret_arn_problem(SECRET_ARN, "us-east-1") is None


def test_a_secret_in_another_region_is_refused_before_anything_is_created():
    args = SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="eu-west-1")

    with pytest.raises(ValueError, match="is in region 'us-east-1' but region is 'eu-west-1'"):
        SecretsManagerEnv("web-db", args, namespace="web", secret_arn=SECRET_ARN)


def test_an_arn_known_only_at_deploy_time_is_checked_when_it_resolves():
    args = SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="eu-west-1")

    with pytest.raises(ValueError, match="is in region 'us-east-1' but region is 'eu-west-1'"):
        provider_class_spec(args, SECRET_ARN, "web-db-env", {})


def test_a_name_that_cannot_name_kubernetes_objects_is_refused():
    args = SecretsManagerEnvArgs(keys={"PGPASSWORD": "password"}, region="us-east-1")

    with pytest.raises(ValueError, match=r"SecretsManagerEnv 'Web_DB': the name becomes Kubernetes object names"):
        SecretsManagerEnv("Web_DB", args, namespace="web", secret_arn=SECRET_ARN)
