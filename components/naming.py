"""Physical AWS names derived from project, stack and role, always within AWS limits.

AWS names are a contract with the outside world (dashboards, IAM conditions, runbooks),
and each service has its own length limit. A 40-character stack name is enough to break
a naive f"{project}-{stack}-{role}", so every derived name goes through `physical_name`,
which keeps the readable start and swaps the overflow for a stable 6-character hash.

This module also derives the aliases that keep stateful children (an RDS instance,
a bucket) attached to their state when the component that owns them is renamed or
moved under a new parent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Literal

import pulumi

# Limits quoted from the AWS API errors they prevent.
RDS_IDENTIFIER_MAX = 63  # "DBInstanceIdentifier ... must contain from 1 to 63 letters, numbers, or hyphens"
S3_BUCKET_MAX = 63  # "Bucket name must be between 3 (min) and 63 (max) characters long"
# Prefix-named resources get a 26-character unique suffix from the provider
# (terraform-plugin-sdk id.PrefixedUniqueId), so their prefix must leave room for it.
UNIQUE_SUFFIX_LEN = 26
RDS_IDENTIFIER_PREFIX_MAX = RDS_IDENTIFIER_MAX - UNIQUE_SUFFIX_LEN  # 37
S3_BUCKET_PREFIX_MAX = S3_BUCKET_MAX - UNIQUE_SUFFIX_LEN  # 37
IAM_ROLE_NAME_MAX = 64
IAM_NAME_PREFIX_MAX = IAM_ROLE_NAME_MAX - UNIQUE_SUFFIX_LEN  # 38
SECURITY_GROUP_NAME_PREFIX_MAX = 255 - UNIQUE_SUFFIX_LEN
EKS_CLUSTER_NAME_MAX = 100
CLOUDFRONT_OAC_NAME_MAX = 64
CLOUDFRONT_POLICY_NAME_MAX = 128
WAF_NAME_MAX = 128
LOG_DELIVERY_NAME_MAX = 60  # CloudWatch Logs delivery sources and destinations: [\w-]{1,60}
RDS_SNAPSHOT_IDENTIFIER_MAX = 255
# The retention periods CloudWatch Logs accepts (days), from a week up; 1-5 days are too short
# to investigate anything.
LogRetentionDays = Literal[7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]

_HASH_LEN = 6


def physical_name(*parts: str, max_length: int, lowercase: bool = True) -> str:
    """Joins `parts` with '-', keeps [a-z0-9-] only, and fits it in `max_length`.

    Too-long names keep their start and end with '-<hash of the full name>', so two
    long names that differ only at the end still differ.
    """
    full = "-".join(p for p in parts if p)
    if lowercase:
        full = full.lower()
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", full)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-")
    # RDS and S3 names must start with a letter or digit; RDS needs a letter.
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"w-{cleaned}".rstrip("-")
    if len(cleaned) <= max_length:
        return cleaned
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_LEN]
    head = cleaned[: max_length - _HASH_LEN - 1].rstrip("-")
    return f"{head}-{digest}"


def stack_prefix(role: str, *, max_length: int) -> str:
    """`<project>-<stack>-<role>-`, a name prefix (AWS appends a unique suffix) that does
    not depend on the component's logical name, so renaming the component keeps it."""
    return physical_name(pulumi.get_project(), pulumi.get_stack(), role, max_length=max_length - 1) + "-"


def child_aliases(component_type: str, name: str, role: str,
                  opts: pulumi.ResourceOptions | None) -> list[pulumi.Alias]:
    """Aliases for the child `f"{name}-{role}"` of a component created with `opts`.

    When the component is renamed (`Alias(name="old")`) or moved (`Alias(parent=...)`),
    the child's old URN is `<old component URN>$<child type>::<old name>-<role>`. The
    engine derives this too for children whose name starts with the parent's; stating
    it explicitly keeps the guarantee visible in the child's own registration.
    """
    found: list[pulumi.Alias] = []
    for alias in (opts.aliases if opts and opts.aliases else []):
        if not isinstance(alias, pulumi.Alias):
            continue  # a URN string alias of the component says nothing about its children
        old_name = name if alias.name is ... else alias.name
        old_type = component_type if alias.type_ is ... else alias.type_
        old_parent = (opts.parent if opts else None) if alias.parent is ... else alias.parent
        project = None if alias.project is ... else alias.project
        stack = None if alias.stack is ... else alias.stack
        old_component = pulumi.create_urn(old_name, old_type, parent=old_parent,
                                          project=project, stack=stack)
        kwargs = {}
        if project is not None:
            kwargs["project"] = project
        if stack is not None:
            kwargs["stack"] = stack
        found.append(pulumi.Alias(name=f"{old_name}-{role}", parent=old_component, **kwargs))
    return found


def child_opts(component: pulumi.Resource, component_type: str, name: str, role: str,
               opts: pulumi.ResourceOptions | None, **extra) -> pulumi.ResourceOptions:
    """ResourceOptions for a stateful child: parent=component plus rename-safe aliases."""
    return pulumi.ResourceOptions(parent=component,
                                  aliases=child_aliases(component_type, name, role, opts),
                                  **extra)


def is_write_action(action: str) -> bool:
    """True for IAM actions that change something (anything not Get/List/Describe/Head)."""
    if action == "*":
        return True
    _, _, op = action.partition(":")
    read = ("Get", "List", "Describe", "Head", "BatchGet", "Search", "Lookup")
    return not op.startswith(read)


def service_trust_policy(service: str, account: pulumi.Input[str] | None, *,
                         actions: Sequence[str] = ("sts:AssumeRole",),
                         source_arn: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """A role trust policy for an AWS service acting for this account only: SourceAccount (and
    SourceArn, when the resource is known) stop another account's use of the same service from
    assuming the role (the confused deputy). `account=None` leaves the condition out, for the
    services that do not send aws:SourceAccount when they assume a role (EKS for its cluster
    role, EC2 for an instance profile)."""
    def render(values: list) -> str:
        statement: dict = {"Effect": "Allow", "Principal": {"Service": service},
                           "Action": actions[0] if len(actions) == 1 else list(actions)}
        condition: dict = {}
        if values[0] is not None:
            condition["StringEquals"] = {"aws:SourceAccount": values[0]}
        if values[1] is not None:
            condition["ArnLike"] = {"aws:SourceArn": values[1]}
        if condition:
            statement["Condition"] = condition
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)

    return pulumi.Output.all(account, source_arn).apply(render)


def wildcard_write_problems(document: dict) -> list[str]:
    """Statements of an IAM policy document that Allow a write action on Resource '*'."""
    problems = []
    statements = document.get("Statement", [])
    for stmt in statements if isinstance(statements, list) else [statements]:
        if stmt.get("Effect") != "Allow" or "Resource" not in stmt:
            continue
        actions = _as_list(stmt.get("Action", []))
        resources = _as_list(stmt["Resource"])
        writes = [a for a in actions if is_write_action(a)]
        if writes and any(r == "*" for r in resources):
            problems.append(f"{writes} on Resource '*'")
    return problems


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
