"""Running the policy pack outside the engine: its policies' validate functions called with the
arguments pulumi-policy builds from what the engine sends (inputs behind its unknown-checking
proxies, resource options, the stack's resources linked to their parents and dependencies).

The pack is its own program (the language host runs `policies/` with that folder on sys.path),
so its package is imported the same way here.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "policies"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))

from pulumi_policy import (EnforcementLevel, PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions,  # noqa: E402
                           ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs)
from pulumi_policy.policy import _NotApplicableError  # noqa: E402  (what args.not_applicable() raises)
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402

from webstack_guardrails import Stage, policies  # noqa: E402

STACK = "test"


def urn(resource_type: str, name: str, parents: Iterable[str] = ()) -> str:
    chain = "$".join([*parents, resource_type])
    return f"urn:pulumi:{STACK}::webstack::{chain}::{name}"


@dataclass(frozen=True)
class Resource:
    """One resource as the engine describes it to a policy pack."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    protect: bool = False
    parent: str | None = None
    dependencies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.urn:
            object.__setattr__(self, "urn", urn(self.type, self.name))

    def options(self) -> PolicyResourceOptions:
        return PolicyResourceOptions(self.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], self.parent)

    def proxied_props(self) -> Mapping[str, Any]:
        return unknown_checking_proxy(copy.deepcopy(dict(self.props)))


@dataclass
class Finding:
    policy: str
    level: EnforcementLevel
    message: str
    urn: str


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    not_applicable: dict[str, str] = field(default_factory=dict)  # policy -> reason

    def messages(self, policy: str | None = None) -> list[str]:
        return [f.message for f in self.findings if policy is None or f.policy == policy]

    def mandatory(self) -> list[Finding]:
        return [f for f in self.findings if f.level == EnforcementLevel.MANDATORY]

    def advisory(self) -> list[Finding]:
        return [f for f in self.findings if f.level == EnforcementLevel.ADVISORY]


def policy_named(name: str, stage: Stage):
    found = [p for p in policies(stage) if p.name == name]
    assert len(found) == 1, f"no policy {name!r} in the pack"
    return found[0]


def stack_args(resources: list[Resource]) -> StackValidationArgs:
    built = {r.urn: PolicyResource(r.type, r.proxied_props(), r.urn, r.name, r.options(), None, None, [], {})
             for r in resources}
    for r in resources:
        built[r.urn].parent = built.get(r.parent) if r.parent else None
        built[r.urn].dependencies = [built[d] for d in r.dependencies if d in built]
    return StackValidationArgs(list(built.values()))


def run(policy, resources: list[Resource], stage: Stage, outcome: Outcome | None = None) -> Outcome:
    """Runs one policy as the engine would: a resource policy on each resource, a stack policy
    once on all of them. Findings get the pack's enforcement level for `stage`."""
    outcome = outcome if outcome is not None else Outcome()

    def report(message: str, urn: str | None = None, *, about: str = "") -> None:
        outcome.findings.append(Finding(policy.name, stage.enforcement_level, message, urn or about))

    try:
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.type, r.proxied_props(), r.urn, r.name, r.options(), None)
                try:
                    policy.validate(args, lambda m, u=None, r=r: report(m, u, about=r.urn))
                except _NotApplicableError as e:
                    outcome.not_applicable[policy.name] = e.reason or ""
        else:
            policy.validate(stack_args(resources), report)
    except _NotApplicableError as e:
        outcome.not_applicable[policy.name] = e.reason or ""
    return outcome


def run_pack(resources: list[Resource], stage: Stage) -> Outcome:
    outcome = Outcome()
    for policy in policies(stage):
        run(policy, resources, stage, outcome)
    return outcome


def from_registrations(registrations) -> list[Resource]:
    """The resources of a program run under mocks (cli.mocks.Registration), as the engine would
    send them: inputs with secrets revealed, protect, parent and dependencies."""
    return [Resource(type=r.type, name=r.name, props=r.plain_inputs, urn=r.urn, protect=r.protect,
                     parent=r.parent, dependencies=tuple(r.dependencies)) for r in registrations]
