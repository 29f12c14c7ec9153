"""The EKS control plane: an API endpoint not open to the internet, Secrets encrypted with a
KMS key, audit logs on."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from webstack_guardrails.base import Stage, finding, get, items, kit_key, type_policy

EKS_CLUSTER = "aws:eks/cluster:Cluster"
CLUSTER = "webstack:components:Cluster"
ANYWHERE = ("0.0.0.0/0", "::/0")


def eks_policy(name: str, description: str, check) -> ResourceValidationPolicy:
    return type_policy(EKS_CLUSTER, name, description, check)


def eks_endpoint_not_public(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        vpc = get(args.props, "vpcConfig", default={})
        # EKS's defaults: the public endpoint on, open to 0.0.0.0/0.
        if get(vpc, "endpointPublicAccess", default=True) is False:
            return
        cidrs = items(get(vpc, "publicAccessCidrs"))
        open_to = [c for c in cidrs if c in ANYWHERE] or ([] if cidrs else ["0.0.0.0/0 (publicAccessCidrs unset)"])
        if not open_to:
            return
        if kit_key(stage, args.urn, CLUSTER, "cluster.endpoint_public_access_cidrs"):
            fix = ("pulumi config set --path 'webstack:cluster.endpoint_public_access_cidrs[0]' <your egress CIDR> "
                   "(or, to run `pulumi up` from inside the VPC, a private endpoint: an empty list and "
                   "webstack:cluster.deploy_from_vpc: true)")
        else:
            fix = ("set vpcConfig.publicAccessCidrs to the egress ranges of your CI runners and VPN, or "
                   "endpointPublicAccess: false")
        yield f"the public API endpoint admits {', '.join(open_to)}", fix
    return eks_policy("eks-endpoint-not-public", "The EKS API endpoint is not open to the whole internet.", check)


def eks_secrets_encrypted(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        configs = items(get(args.props, "encryptionConfig"))
        if not any("secrets" in items(get(c, "resources")) and get(c, "provider", "keyArn") for c in configs):
            yield ("Kubernetes Secrets are not envelope-encrypted with a KMS key (encryptionConfig)",
                   "set encryptionConfig: {resources: [secrets], provider: {keyArn: <a KMS key>}}")
    return eks_policy("eks-secrets-encrypted", "EKS encrypts Kubernetes Secrets with a KMS key.", check)


def eks_audit_logs(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        if "audit" not in items(get(args.props, "enabledClusterLogTypes")):
            yield ("the control plane's audit log is off: who changed what in the cluster goes unrecorded",
                   "add 'audit' to enabledClusterLogTypes")
    return eks_policy("eks-audit-logs", "EKS sends its audit log to CloudWatch Logs.", check)


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# An exact chart release (semver, no range): what was reviewed is what installs. A range, or no
# version, takes whatever the repository serves on the day of the `pulumi up`.
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def helm_charts_pinned(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != HELM_RELEASE:
            return
        chart, version = get(args.props, "chart", default=""), get(args.props, "version", default="")
        repo = get(args.props, "repositoryOpts", "repo", default="")
        problems = []
        if not EXACT_VERSION.match(str(version)):
            problems.append((f"chart {chart!r} is not pinned to an exact version (version: {version or 'unset'})",
                             "set version to one release, e.g. 88.5.3, and bump it in a reviewed change"))
        if repo and not str(repo).startswith(("https://", "oci://")):
            problems.append((f"chart {chart!r} comes from {repo}, which is not HTTPS or OCI: a network "
                             "attacker could serve another chart", "use the repository's https:// address"))
        for problem, fix in problems:
            report_violation(finding(args.resource_type, args.name, problem, fix), None)

    return ResourceValidationPolicy(name="helm-charts-pinned", validate=validate,
                                    description="Helm releases install one exact chart version from an HTTPS repository.")


POLICIES = (eks_endpoint_not_public, eks_secrets_encrypted, eks_audit_logs, helm_charts_pinned)
