"""RDS as components/database.py builds it: encrypted, not publicly accessible, with automated
backups; deletion protection outside dev and a multi-AZ standby in prod (the profiles relax
them, see stacks/*/settings.py PROFILE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cli.verify.model import Check, Outcome, deletion_protection, failed, passed, skipped
from cli.verify.storage import drift_fix

if TYPE_CHECKING:
    from cli.verify.outputs import StackOutputs
    from cli.verify.run import Context

# Days of point-in-time restore prod needs at least; the kit's prod default is 14.
PROD_MIN_BACKUP_DAYS = 7


def encrypted_outcome(db: Mapping[str, Any], stack: str) -> Outcome:
    if db.get("StorageEncrypted") is True:
        return passed(f"storage encrypted (KMS key {db.get('KmsKeyId', '?')})")
    return failed("storage is not encrypted; snapshots and replicas are not either",
                  "RDS cannot encrypt an instance in place: restore an encrypted copy of a snapshot "
                  "(copy-db-snapshot --kms-key-id), point the stack at it, and delete this one")


def private_outcome(db: Mapping[str, Any], stack: str) -> Outcome:
    if db.get("PubliclyAccessible") is False:
        return passed("not publicly accessible")
    return failed("publicly accessible: the instance has a public address", drift_fix(stack))


def deletion_protection_outcome(db: Mapping[str, Any], environment: str, stack: str) -> Outcome:
    return deletion_protection(db.get("DeletionProtection") is True, environment=environment, what="database",
                               fix=f"webstack:<framework>.database.deletion_protection: true, or {drift_fix(stack)}")


def backups_outcome(db: Mapping[str, Any], environment: str, stack: str) -> Outcome:
    days = int(db.get("BackupRetentionPeriod") or 0)
    need = PROD_MIN_BACKUP_DAYS if environment == "prod" else 1
    if days >= need:
        return passed(f"automated backups kept {days} days")
    what = "automated backups are off" if days == 0 else f"automated backups kept {days} days"
    return failed(f"{what}; {environment} needs at least {need}",
                  f"webstack:<framework>.database.backup_retention_days: {max(need, 14)} (the kit's prod "
                  f"default), or {drift_fix(stack)}")


def multi_az_outcome(db: Mapping[str, Any], environment: str, stack: str) -> Outcome:
    if db.get("MultiAZ") is True:
        return passed("multi-AZ standby")
    fix = f"webstack:<framework>.database.multi_az: true, or {drift_fix(stack)}"
    if environment != "prod":
        return skipped(f"single-AZ; {environment} does not need a standby (prod does)", fix)
    return failed("single-AZ: an AZ outage or a host failure takes the database down", fix)


def instance(ctx: "Context") -> Mapping[str, Any]:
    ident = ctx.outputs.text("db_instance_identifier")
    answer = ctx.aws.call("rds", "describe_db_instances", subject=f"DB instance {ident}",
                          DBInstanceIdentifier=ident) or {}
    found = answer.get("DBInstances") or []
    return found[0] if found else {}


def has_database(outputs: "StackOutputs") -> str | None:
    if "database_host" not in outputs and "db_instance_identifier" not in outputs:
        return "the stack has no database (no database_host output)"
    return None


DB = ("db_instance_identifier",)
CHECKS = [
    Check("rds.encrypted", "storage encrypted at rest", DB,
          lambda ctx: encrypted_outcome(instance(ctx), ctx.outputs.stack), applies=has_database),
    Check("rds.private", "not publicly accessible", DB,
          lambda ctx: private_outcome(instance(ctx), ctx.outputs.stack), applies=has_database),
    Check("rds.deletion-protection", "deletion protection on (outside dev)", DB,
          lambda ctx: deletion_protection_outcome(instance(ctx), ctx.outputs.environment, ctx.outputs.stack),
          applies=has_database),
    Check("rds.backups", f"automated backups: at least 1 day, {PROD_MIN_BACKUP_DAYS} in prod", DB,
          lambda ctx: backups_outcome(instance(ctx), ctx.outputs.environment, ctx.outputs.stack),
          applies=has_database),
    Check("rds.multi-az", "a multi-AZ standby (prod)", DB,
          lambda ctx: multi_az_outcome(instance(ctx), ctx.outputs.environment, ctx.outputs.stack),
          applies=has_database),
]
