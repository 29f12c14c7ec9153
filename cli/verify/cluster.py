"""EKS as components/cluster.py builds it: API endpoint private (or public to an allowlist only),
audit logs on, Secrets envelope-encrypted with KMS, a Kubernetes version with standard support
left, upgrade policy STANDARD, deletion protection outside dev."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from cli.verify.model import Check, Outcome, deletion_protection, failed, passed, skipped
from cli.verify.storage import drift_fix
from components.cluster import EKS_STANDARD_SUPPORT_ENDS

if TYPE_CHECKING:
    from cli.verify.run import Context

REQUIRED_LOGS = ("api", "audit", "authenticator")
OPEN_TO_ALL = ("0.0.0.0/0", "::/0")


def _minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"^(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def version_support_outcome(version: str, today: date,
                            table: Mapping[str, date] = EKS_STANDARD_SUPPORT_ENDS) -> Outcome:
    """Standard support left at `today`, from the dated table: the kit's one copy of the EKS
    release calendar (components/cluster.py, which also refuses to create an unsupported
    version). Support ends on the table's date. A version newer than the last row is assumed
    supported until that row's date, and no later."""
    minor = _minor(version)
    if minor is None:
        return skipped(f"EKS reported version {version!r}, which is not MAJOR.MINOR")
    rows = sorted(((_minor(v), v, end) for v, end in table.items()), key=lambda r: r[0] or (0, 0))
    supported = [v for m, v, end in rows if end > today]
    upgrade = (f"upgrade one minor at a time (webstack:cluster.version, then `pulumi up`) to "
               f"{supported[0] if supported else 'the newest EKS version'} or newer; check for removed APIs first")
    key = f"{minor[0]}.{minor[1]}"
    if key in table:
        end = table[key]
        if today < end:
            return passed(f"Kubernetes {key}: standard support until {end} ({(end - today).days} days left)")
        return failed(f"Kubernetes {key} left standard support on {end}: EKS bills extended support or "
                      "upgrades the cluster on its own schedule", upgrade)
    newest_minor, newest, newest_end = rows[-1]
    if newest_minor is not None and minor > newest_minor:
        if today < newest_end:
            return passed(f"Kubernetes {key}: newer than {newest}, whose standard support lasts until {newest_end}")
        return skipped(f"Kubernetes {key} is newer than the support table (last row {newest}); it cannot tell",
                       "add the version to EKS_STANDARD_SUPPORT_ENDS in components/cluster.py from the EKS "
                       "release calendar")
    return failed(f"Kubernetes {key} is older than {rows[0][1]}, out of standard support since before "
                  f"{rows[0][2]}", upgrade)


def endpoint_outcome(cluster: Mapping[str, Any], stack: str) -> Outcome:
    vpc = cluster.get("resourcesVpcConfig") or {}
    fix = ("webstack:cluster.endpoint_public_access_cidrs: only your CI and VPN egress CIDRs (empty: private "
           f"endpoint only), or {drift_fix(stack)}")
    if vpc.get("endpointPrivateAccess") is not True:
        return failed("the private API endpoint is off: nodes and pods reach the API over the internet", fix)
    if vpc.get("endpointPublicAccess") is not True:
        return passed("API endpoint private only")
    cidrs = list(vpc.get("publicAccessCidrs") or ["0.0.0.0/0"])
    wide = [c for c in cidrs if c in OPEN_TO_ALL]
    if wide:
        return failed(f"the public API endpoint is open to {', '.join(wide)}", fix)
    return passed(f"public API endpoint limited to {', '.join(cidrs)}")


def logs_outcome(cluster: Mapping[str, Any], stack: str) -> Outcome:
    entries = (cluster.get("logging") or {}).get("clusterLogging") or []
    enabled = {t for e in entries if e.get("enabled") for t in e.get("types") or []}
    missing = [t for t in REQUIRED_LOGS if t not in enabled]
    if missing:
        return failed(f"control-plane logs off for {', '.join(missing)}: who did what to the API is not recorded",
                      f"webstack:cluster.control_plane_logs must include {', '.join(REQUIRED_LOGS)}; "
                      f"{drift_fix(stack)}")
    return passed(f"control-plane logs on: {', '.join(sorted(enabled))}")


def secrets_encryption_outcome(cluster: Mapping[str, Any], stack: str) -> Outcome:
    for entry in cluster.get("encryptionConfig") or []:
        key = (entry.get("provider") or {}).get("keyArn")
        if "secrets" in (entry.get("resources") or []) and key:
            return passed(f"Secrets envelope-encrypted with {key}")
    return failed("Kubernetes Secrets are not envelope-encrypted with a KMS key: an etcd backup reveals them",
                  "`aws eks associate-encryption-config` adds it to a running cluster (it cannot be removed later); "
                  f"the kit's Cluster sets it at creation: {drift_fix(stack)}")


def upgrade_policy_outcome(cluster: Mapping[str, Any], stack: str) -> Outcome:
    policy = cluster.get("upgradePolicy")
    if policy is None:
        return skipped("the API answer has no upgradePolicy (an endpoint that does not report it?)")
    support = policy.get("supportType")
    if support == "STANDARD":
        return passed("upgrade policy STANDARD: no extended-support billing; EKS upgrades at end of support")
    return failed(f"upgrade policy {support}: the cluster may stay on a version past standard support, billed at "
                  "6x the cluster-hour price", drift_fix(stack))


def deletion_protection_outcome(cluster: Mapping[str, Any], environment: str, stack: str) -> Outcome:
    enabled = cluster.get("deletionProtection") is True if "deletionProtection" in cluster else None
    return deletion_protection(enabled, environment=environment, what="cluster",
                               fix=f"webstack:cluster.deletion_protection: true, or {drift_fix(stack)}")


def describe(ctx: "Context") -> Mapping[str, Any]:
    name = ctx.outputs.text("cluster_name")
    answer = ctx.aws.call("eks", "describe_cluster", subject=f"EKS cluster {name}", name=name) or {}
    return answer.get("cluster") or {}


CLUSTER = ("cluster_name",)
CHECKS = [
    Check("eks.endpoint-access", "API endpoint private, or public to listed CIDRs only", CLUSTER,
          lambda ctx: endpoint_outcome(describe(ctx), ctx.outputs.stack)),
    Check("eks.control-plane-logs", f"control-plane logs {', '.join(REQUIRED_LOGS)} on", CLUSTER,
          lambda ctx: logs_outcome(describe(ctx), ctx.outputs.stack)),
    Check("eks.secrets-encryption", "Secrets envelope-encrypted with a KMS key", CLUSTER,
          lambda ctx: secrets_encryption_outcome(describe(ctx), ctx.outputs.stack)),
    Check("eks.version-support", "the Kubernetes version has standard support left today", CLUSTER,
          lambda ctx: version_support_outcome(str(describe(ctx).get("version", "")), ctx.today)),
    Check("eks.upgrade-policy", "upgrade policy STANDARD (no extended-support billing)", CLUSTER,
          lambda ctx: upgrade_policy_outcome(describe(ctx), ctx.outputs.stack)),
    Check("eks.deletion-protection", "deletion protection on (outside dev)", CLUSTER,
          lambda ctx: deletion_protection_outcome(describe(ctx), ctx.outputs.environment, ctx.outputs.stack)),
]
