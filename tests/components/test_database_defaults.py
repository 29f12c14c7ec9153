"""Database: private, encrypted, TLS-only Postgres; prod is protected, dev is cheap to throw away."""

import json
import re

import pulumi

from components.database import Database, DatabaseArgs

RDS = "aws:rds/instance:Instance"
PODS_SG = "sg-0pods1234567890ab"
DEV = DatabaseArgs(instance_class="db.t4g.small", multi_az=False, backup_retention_days=1, deletion_protection=False,
                   final_snapshot=False, protect=False, storage_gb=20, max_storage_gb=50)


def database(args=None, name="orders"):
    def program():
        db = Database(name, args or DatabaseArgs(), vpc_id="vpc-0abc12345",
                      subnet_ids=["subnet-0bbb11111", "subnet-0bbb22222"], client_security_group_id=PODS_SG)
        pulumi.export("secret_arn", db.secret_arn)
    return program


def test_prod_database_is_multi_az_protected_and_keeps_a_final_snapshot(run):
    rds = run(database(), stack="prod").one(RDS)

    assert rds.protect is True
    assert rds.inputs["multiAz"] is True
    assert rds.inputs["deletionProtection"] is True
    assert rds.inputs["skipFinalSnapshot"] is False
    assert rds.inputs["finalSnapshotIdentifier"].startswith("webstack-prod-orders-final")
    assert rds.inputs["backupRetentionPeriod"] >= 14


def test_dev_profile_turns_the_safety_nets_off(run):
    rds = run(database(DEV), stack="dev").one(RDS)

    assert rds.protect is False
    assert rds.inputs["multiAz"] is False
    assert rds.inputs["deletionProtection"] is False
    assert rds.inputs["skipFinalSnapshot"] is True


def test_database_is_private_and_encrypted(run):
    rds = run(database()).one(RDS)

    assert rds.inputs["publiclyAccessible"] is False
    assert rds.inputs["storageEncrypted"] is True
    assert rds.inputs["engine"] == "postgres"


def test_password_is_managed_by_rds_and_never_an_input(run):
    monitor = run(database())

    rds = monitor.one(RDS)
    assert rds.inputs["manageMasterUserPassword"] is True
    assert "password" not in rds.plain_inputs and "passwordWo" not in rds.plain_inputs
    assert not monitor.all("random:index/randomPassword:RandomPassword")


def test_only_the_pods_security_group_reaches_port_5432(run):
    monitor = run(database())

    rule = monitor.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["referencedSecurityGroupId"] == PODS_SG
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule.inputs
    sg = monitor.one("aws:ec2/securityGroup:SecurityGroup")
    assert not sg.inputs.get("ingress") and not sg.inputs.get("egress")
    assert monitor.one(RDS).inputs["vpcSecurityGroupIds"] == [sg.id]


def test_connections_must_use_tls(run):
    params = run(database()).one("aws:rds/parameterGroup:ParameterGroup")

    assert {"name": "rds.force_ssl", "value": "1"} in [
        {"name": p["name"], "value": p["value"]} for p in params.inputs["parameters"]]
    assert params.inputs["family"] == "postgres17"


def test_performance_insights_and_logs_are_on(run):
    rds = run(database()).one(RDS)

    assert rds.inputs["performanceInsightsEnabled"] is True
    assert set(rds.inputs["enabledCloudwatchLogsExports"]) == {"postgresql", "upgrade"}


def test_major_upgrades_never_happen_on_their_own(run):
    rds = run(database()).one(RDS)

    assert rds.inputs["allowMajorVersionUpgrade"] is False
    assert rds.inputs["autoMinorVersionUpgrade"] is True


def test_secret_arn_is_the_rds_managed_secret():
    from cli.offline import run_program

    result = run_program("prod", {}, database())

    [managed] = result.monitor.one(RDS).state["masterUserSecrets"]
    assert result.outputs["secret_arn"] == managed["secretArn"]


def test_physical_identifier_does_not_depend_on_the_logical_name(run):
    first = run(database(name="orders"), stack="prod").one(RDS).inputs["identifierPrefix"]
    second = run(database(name="billing"), stack="prod").one(RDS).inputs["identifierPrefix"]

    assert first == second == "webstack-prod-db-"


def test_enhanced_monitoring_sends_os_metrics_every_minute_through_a_role_only_rds_monitoring_assumes(run):
    monitor = run(database(), stack="prod")
    rds = monitor.one(RDS)
    role = monitor.one("aws:iam/role:Role", "orders-monitoring")

    assert rds.inputs["monitoringInterval"] == 60
    assert rds.inputs["monitoringRoleArn"] == role.state["arn"]
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    attachment = monitor.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "orders-monitoring")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def test_enhanced_monitoring_can_be_turned_off_and_then_needs_no_role(run):
    monitor = run(database(DatabaseArgs(enhanced_monitoring_seconds=0)))

    assert monitor.one(RDS).inputs["monitoringInterval"] == 0
    assert not monitor.all("aws:iam/role:Role")


def test_the_instance_waits_for_the_monitoring_policy_attachment_not_only_the_role(run):
    """RDS checks at create time that the role can publish: "InvalidParameterValue: IAM role ARN value
    is invalid or does not include the required permissions for: ENHANCED_MONITORING"."""
    monitor = run(database(), stack="prod")

    attachment = monitor.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "orders-monitoring")
    assert attachment.urn in monitor.one(RDS).dependencies


def test_each_incarnation_of_the_instance_gets_its_own_final_snapshot_name(run):
    """A fixed name fails the second deletion ("DBSnapshotAlreadyExists"): the name ends in random
    bytes that are drawn again whenever the instance is replaced, or destroyed and created anew."""
    monitor = run(database(), stack="prod")
    rds = monitor.one(RDS)
    suffix = monitor.one("random:index/randomId:RandomId", "orders-final-snapshot")

    assert rds.inputs["finalSnapshotIdentifier"] == f"webstack-prod-orders-final-{suffix.state['hex']}"
    assert re.fullmatch(r"[0-9a-f]{8}", suffix.state["hex"])
    # A replacement of the instance replaces the random bytes too: they are keyed on its name
    # prefix and on the inputs that force a new instance (db_name, username).
    assert suffix.inputs["keepers"] == {"identifierPrefix": rds.inputs["identifierPrefix"],
                                        "dbName": rds.inputs["dbName"], "username": rds.inputs["username"]}


def test_the_final_snapshot_name_is_valid_for_rds_and_stable_between_runs(run):
    """RDS: 1-255 letters, digits or hyphens, a letter first, no '--', no trailing hyphen."""
    long_name = "orders-" + "x" * 300
    first = run(database(name=long_name), stack="prod").one(RDS).inputs["finalSnapshotIdentifier"]
    second = run(database(name=long_name), stack="prod").one(RDS).inputs["finalSnapshotIdentifier"]

    assert first == second
    assert len(first) <= 255
    assert re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", first) and "--" not in first


def test_without_a_final_snapshot_no_snapshot_name_is_drawn(run):
    monitor = run(database(DEV), stack="dev")

    assert "finalSnapshotIdentifier" not in monitor.one(RDS).inputs
    assert not monitor.all("random:index/randomId:RandomId")
