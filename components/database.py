"""RDS PostgreSQL in private subnets, reachable only from the cluster's pods; RDS manages the password.

Credentials: `manage_master_user_password=True` makes RDS generate the master password,
store it in Secrets Manager (encrypted with KMS) and rotate it (every 7 days by default).
Pulumi never sees it, so it is in no state file, render or log. The application receives
it at run time: give its pod a `PodIdentity` with `secret_read_statements(db.secret_arn)`
(GetSecretValue on exactly this secret) and read the JSON secret ({"username", "password"})
at start-up, or sync it into a Kubernetes Secret with External Secrets. After a rotation,
new connections with the old password fail: re-read the secret on an authentication error
(or restart pods), which the reference apps do.

What the instance waits for on a first `up` (RDS checks each at create time):
- the monitoring role's policy attachment, not only the role: RDS refuses a role that cannot
  publish yet ("InvalidParameterValue: IAM role ARN value is invalid or does not include the
  required permissions for: ENHANCED_MONITORING"). The provider retries that error briefly for
  IAM's propagation delay, which covers a new attachment, not one still being created;
- the subnet group, security group and parameter group it names.

Final snapshot: each incarnation of the instance gets its own name (`<project>-<stack>-<name>-final-
<8 hex>`), so destroy, recreate and destroy again does not fail with "DBSnapshotAlreadyExists".
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.naming import (IAM_NAME_PREFIX_MAX, RDS_IDENTIFIER_PREFIX_MAX, RDS_SNAPSHOT_IDENTIFIER_MAX,
                               SECURITY_GROUP_NAME_PREFIX_MAX, child_opts, physical_name, service_trust_policy,
                               stack_prefix)

TYPE = "webstack:components:Database"
PORT = 5432
# Random bytes at the end of the final snapshot's name (8 hex digits): a name taken by an earlier
# instance's snapshot is drawn again with odds of 1 in 4 billion.
SNAPSHOT_SUFFIX_BYTES = 4


class DatabaseArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    engine_version: str = Field("17", pattern=r"^1[4-9](\.[0-9]+)?$",
                                description="PostgreSQL major (minor upgrades are automatic) or major.minor, 14+.")
    instance_class: str = Field("db.m7g.large", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
                                description="RDS instance class, e.g. 'db.t4g.small' (dev) or 'db.m7g.large'.")
    storage_gb: int = Field(50, ge=20, le=65536, description="Allocated gp3 storage, GiB.")
    max_storage_gb: int = Field(200, ge=20, le=65536,
                                description="Storage autoscaling ceiling, GiB (>= storage_gb; equal disables autoscaling).")
    multi_az: bool = Field(True, description="Synchronous standby in a second AZ; failover in ~1-2 minutes.")
    backup_retention_days: int = Field(14, ge=1, le=35, description="Automated backups (point-in-time restore) kept, days.")
    deletion_protection: bool = Field(True, description="RDS refuses to delete the instance.")
    final_snapshot: bool = Field(True, description="Take a snapshot when the instance is deleted.")
    protect: bool = Field(True, description="Pulumi refuses to delete the instance (`protect` option).")
    database_name: str = Field("app", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Initial database created in the instance.")
    master_username: str = Field("app_admin", pattern=r"^[a-z][a-z0-9_]{0,15}$",
                                 description="Master user name (its password is generated and kept by RDS).")
    performance_insights_retention_days: Literal[7, 31, 62, 93, 186, 372, 731] = Field(
        7, description="Performance Insights history, days (7 is the free tier).")
    log_exports: list[Literal["postgresql", "upgrade", "iam-db-auth-error"]] = Field(
        default_factory=lambda: ["postgresql", "upgrade"], description="Logs exported to CloudWatch Logs.")
    enhanced_monitoring_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = Field(
        60, description="Enhanced Monitoring: the instance's OS metrics (per-process CPU and memory, disk and "
        "network I/O) every N seconds, in CloudWatch Logs for 30 days; 0 turns it off.")

    @model_validator(mode="after")
    def _storage_ceiling(self) -> "DatabaseArgs":
        if self.max_storage_gb < self.storage_gb:
            raise ValueError(f"max_storage_gb: must be >= storage_gb ({self.storage_gb}), got {self.max_storage_gb}")
        return self


class Database(pulumi.ComponentResource):
    """Encrypted Postgres in private subnets, open only to the cluster's pods; password managed by RDS."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, *,
                 vpc_id: pulumi.Input[str],
                 subnet_ids: pulumi.Input[list[str]],
                 client_security_group_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`client_security_group_id`: the only source allowed in (the cluster security group,
        which EKS Auto Mode nodes and their pods use)."""
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = stack_prefix("db", max_length=RDS_IDENTIFIER_PREFIX_MAX)

        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=subnet_ids,
                                      description=f"Private subnets of {name}", opts=child)
        # Terraform-based providers remove the default allow-all egress rule of a new group;
        # a database never starts connections, so none is added back.
        sg = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id, description=f"PostgreSQL {name}: pods only",
                                   name_prefix=stack_prefix("db", max_length=SECURITY_GROUP_NAME_PREFIX_MAX),
                                   opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-from-pods", security_group_id=sg.id, ip_protocol="tcp",
                                         from_port=PORT, to_port=PORT,
                                         referenced_security_group_id=client_security_group_id,
                                         description="PostgreSQL from the cluster's pods", opts=child)
        monitoring = self._monitoring_role(name) if args.enhanced_monitoring_seconds else None
        major = args.engine_version.split(".")[0]
        params = aws.rds.ParameterGroup(
            f"{name}-params", family=f"postgres{major}", description=f"{name}: TLS only, slow query log",
            parameters=[
                # Refuse unencrypted connections, even from inside the VPC.
                {"name": "rds.force_ssl", "value": "1"},
                # Statements slower than 1 s land in the exported postgresql log.
                {"name": "log_min_duration_statement", "value": "1000"},
            ], opts=child)

        instance = aws.rds.Instance(
            f"{name}-db",
            # A prefix from project+stack (not the logical name): renaming the component keeps
            # the instance; RDS appends a unique suffix, kept in state.
            identifier_prefix=prefix,
            engine="postgres", engine_version=args.engine_version, instance_class=args.instance_class,
            db_name=args.database_name, username=args.master_username,
            # RDS generates, stores (Secrets Manager) and rotates the password: Pulumi never holds it.
            manage_master_user_password=True,
            port=PORT, db_subnet_group_name=subnets.name, vpc_security_group_ids=[sg.id],
            parameter_group_name=params.name,
            publicly_accessible=False,
            storage_type="gp3", allocated_storage=args.storage_gb,
            max_allocated_storage=args.max_storage_gb if args.max_storage_gb > args.storage_gb else None,
            # Encrypted at rest (the account's aws/rds key); snapshots and replicas inherit it.
            storage_encrypted=True,
            multi_az=args.multi_az,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=self._final_snapshot_name(name, args, prefix, opts) if args.final_snapshot
            else None,
            performance_insights_enabled=True,
            performance_insights_retention_period=args.performance_insights_retention_days,
            enabled_cloudwatch_logs_exports=list(args.log_exports),
            monitoring_interval=args.enhanced_monitoring_seconds,
            monitoring_role_arn=monitoring[0].arn if monitoring else None,
            auto_minor_version_upgrade=True,
            # Major upgrades break extensions and plans: do them on purpose, not on `up`.
            allow_major_version_upgrade=False,
            # Changes wait for the maintenance window rather than restarting mid-day.
            apply_immediately=False,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            # The role alone is not enough: RDS checks at create time that it can publish.
            opts=child_opts(self, TYPE, name, "db", opts, protect=args.protect,
                            depends_on=[monitoring[1]] if monitoring else None))

        self.address = instance.address
        self.identifier = instance.identifier
        self.port = instance.port
        self.database_name = pulumi.Output.from_input(args.database_name)
        self.secret_arn = instance.master_user_secrets.apply(lambda s: s[0].secret_arn)
        self.security_group_id = sg.id
        self.register_outputs({"identifier": self.identifier, "address": self.address, "port": self.port, "secret_arn": self.secret_arn,
                               "security_group_id": self.security_group_id})

    def _final_snapshot_name(self, name: str, args: DatabaseArgs, prefix: str,
                             opts: pulumi.ResourceOptions | None) -> pulumi.Output[str]:
        """`<project>-<stack>-<name>-final-<8 hex>`, the hex drawn once per incarnation of the instance.

        A fixed name is taken by the first deletion's snapshot, and the next instance's deletion
        fails ("DBSnapshotAlreadyExists"). The bytes are drawn again when the stack is destroyed
        and created anew, and when the instance is replaced: `keepers` are its name prefix and the
        inputs set here that replace it (`db_name`, `username`: ForceNew in the provider's schema;
        `engine` and `storage_encrypted`, also ForceNew, are constants). The instance's generated
        identifier would do too, but an input cannot depend on its own resource's output. A new
        name here only updates the provider's state (the provider makes no ModifyDBInstance call
        for it): existing instances are neither modified nor replaced.
        """
        suffix = random.RandomId(
            f"{name}-final-snapshot", byte_length=SNAPSHOT_SUFFIX_BYTES,
            keepers={"identifierPrefix": prefix, "dbName": args.database_name, "username": args.master_username},
            opts=child_opts(self, TYPE, name, "final-snapshot", opts))
        head = physical_name(pulumi.get_project(), pulumi.get_stack(), name, "final",
                             max_length=RDS_SNAPSHOT_IDENTIFIER_MAX - 1 - 2 * SNAPSHOT_SUFFIX_BYTES)
        return pulumi.Output.concat(head, "-", suffix.hex)

    def _monitoring_role(self, name: str) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
        """The role RDS's monitoring agent assumes to write OS metrics (AWS's managed policy:
        the RDSOSMetrics log group only); only for this account's instances (confused deputy).
        Returns the role and its policy attachment, which the instance must wait for."""
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        role = aws.iam.Role(f"{name}-monitoring",
                            assume_role_policy=service_trust_policy("monitoring.rds.amazonaws.com", account),
                            name_prefix=stack_prefix(f"{name}-monitoring", max_length=IAM_NAME_PREFIX_MAX),
                            description="RDS Enhanced Monitoring", opts=pulumi.ResourceOptions(parent=self))
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring", role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"),
            opts=pulumi.ResourceOptions(parent=self))
        return role, attachment
