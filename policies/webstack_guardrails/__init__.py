"""The webstack guardrails: the policies a platform team enforces on stacks built with the kit
(or any stack creating the same kinds of resources).

Enforcement follows the stack's `webstack:environment`: mandatory in prod (a violation fails
`pulumi preview` and stops `pulumi up`), advisory in dev and staging (reported, not blocking).
A few rules are prod-only by nature (multi-AZ, images by digest, two pods minimum, `protect`,
CloudFront's TLS floor with its default certificate); outside prod they report "not applicable".
"""

from __future__ import annotations

from pulumi_policy import Policy

from webstack_guardrails import cluster, iam, protection, storage, workloads
from webstack_guardrails.base import Stage

PACK_NAME = "webstack-guardrails"
CONFIG_NAMESPACE = "webstack"

FACTORIES = (*storage.POLICIES, *cluster.POLICIES, *workloads.POLICIES, *iam.POLICIES, *protection.POLICIES)


def policies(stage: Stage) -> list[Policy]:
    """Every policy of the pack, for a stack in `stage`."""
    return [make(stage) for make in FACTORIES]


__all__ = ["CONFIG_NAMESPACE", "PACK_NAME", "Stage", "policies"]
