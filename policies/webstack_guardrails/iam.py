"""IAM: no identity policy allows write actions by wildcard, or on every resource.

What counts as a read is the action's verb (Get, List, Describe, ...); every other action can
change something and counts as a write. The kit's own policies pass: each names its actions
and resources (components/pod_identity.py, the flow-logs role in components/network.py), and
the roles of the EKS cluster and nodes use AWS's narrow managed policies. Resource policies
(S3 bucket policies, KMS key policies) are out of scope: a key policy always says Resource "*",
meaning the key itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from webstack_guardrails.base import Stage, finding, get, items, json_document

# Identity policies: the type and where its document is.
DOCUMENTS = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"  # inlinePolicies[].policy, managedPolicyArns
ATTACHMENTS = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/userPolicyAttachment:UserPolicyAttachment",
               "aws:iam/groupPolicyAttachment:GroupPolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")

READ_VERBS = ("get", "list", "describe", "batchget", "head", "lookup", "search", "query", "scan", "select",
              "view", "read")
# Writes that AWS authorizes on Resource "*" only (no resource-level permissions exist for them).
STAR_ONLY_ACTIONS = ("cloudwatch:putmetricdata", "xray:puttracesegments", "xray:puttelemetryrecords")
# AWS managed policies that allow every action of a service, or of all of them.
BROAD_MANAGED = re.compile(
    r"^arn:aws[a-z-]*:iam::aws:policy/(.*/)?(AdministratorAccess|PowerUserAccess|[A-Za-z0-9]*FullAccess)$")


def operation(action: str) -> str:
    return action.partition(":")[2].lower() if ":" in action else action.lower()


def is_read(action: str) -> bool:
    """Whether `action` (a pattern, possibly with '*') can only match read actions."""
    op = operation(action)
    fixed = op.split("*", 1)[0]  # the part before any wildcard
    return any(fixed.startswith(verb) for verb in READ_VERBS)


def statement_problems(statement: Mapping[str, Any], label: str) -> list[str]:
    if get(statement, "Effect") != "Allow":
        return []
    if get(statement, "NotAction") is not None:
        return [f"{label} allows NotAction, i.e. every other action, writes included"]
    actions = [str(a) for a in items(get(statement, "Action"))]
    wild = [a for a in actions if "*" in a and not is_read(a)]
    problems = []
    if wild:
        problems.append(f"{label} allows write actions by wildcard: {', '.join(wild)}")
    resources = [str(r) for r in items(get(statement, "Resource"))]
    everywhere = "*" in resources or get(statement, "NotResource") is not None
    writes = [a for a in actions if "*" not in a and not is_read(a) and a.lower() not in STAR_ONLY_ACTIONS]
    if everywhere and writes and not get(statement, "Condition"):
        problems.append(f"{label} allows write actions on every resource ('*'): {', '.join(writes)}")
    return problems


def document_problems(document: Mapping[str, Any]) -> list[str]:
    found = []
    for i, statement in enumerate(items(get(document, "Statement"))):
        found += statement_problems(statement, f"statement {get(statement, 'Sid', default=f'#{i}')!r}")
    return found


def iam_no_wildcard_writes(stage: Stage) -> ResourceValidationPolicy:
    fix = ("list the actions it needs and the ARNs they act on (read-only wildcards such as s3:Get* are fine), "
           "as the kit's PodIdentity component does")

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        kind, props = args.resource_type, args.props
        documents: list[tuple[str, Any]] = []
        if kind in DOCUMENTS:
            documents.append(("", get(props, DOCUMENTS[kind])))
        elif kind == ROLE:
            documents += [(f"inline policy {get(p, 'name', default='?')!r}: ", get(p, "policy"))
                          for p in items(get(props, "inlinePolicies"))]
        arns = ([get(props, "policyArn")] if kind in ATTACHMENTS else
                items(get(props, "managedPolicyArns")) if kind == ROLE else [])
        for prefix, raw in documents:
            document = json_document(raw)
            for problem in document_problems(document) if document is not None else []:
                report_violation(finding(kind, args.name, prefix + problem, fix), None)
        for arn in arns:
            if isinstance(arn, str) and BROAD_MANAGED.match(arn):
                report_violation(finding(
                    kind, args.name, f"attaches {arn}, which allows every action of a service (or of all)",
                    "attach a policy of your own that lists the actions and resources needed"), None)

    return ResourceValidationPolicy(name="iam-no-wildcard-writes", description="IAM policies grant no write "
                                    "action by wildcard or on every resource.", validate=validate)


POLICIES = (iam_no_wildcard_writes,)
