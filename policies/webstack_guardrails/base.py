"""What every guardrail shares: the stack's environment, reading resource properties, and
naming the kit's config key that fixes a finding.

The pack sees resources as the engine sends them: inputs with camelCase keys, wrapped by
pulumi-policy in read-only proxies (Mapping and Sequence, never dict or list) that raise
UnknownValueError when a value is not known yet (`pulumi preview` of a resource whose input
comes from another resource's output).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import UnknownValueError

T = TypeVar("T")

# The kit's own environments whose findings are advisory; any other value, or none, is held to
# the production bar (a platform team running the pack on a stack of another project, whose
# config has no webstack:environment, gets the strictest reading rather than none).
RELAXED_ENVIRONMENTS = ("dev", "staging")


@dataclass(frozen=True)
class Stage:
    """The stack under analysis, from its config: `webstack:environment` (dev, staging, prod) and
    `webstack:framework` (fastapi, django: where a fix's config key lives). None: not set."""

    environment: str | None
    framework: str | None = None

    @property
    def strict(self) -> bool:
        """True in prod, and whenever the environment is missing or not one of the kit's."""
        return self.environment not in RELAXED_ENVIRONMENTS

    @property
    def enforcement_level(self) -> EnforcementLevel:
        return EnforcementLevel.MANDATORY if self.strict else EnforcementLevel.ADVISORY

    def prod_only(self, args: Any) -> None:
        """Marks a prod-only rule not applicable to a dev or staging stack (ends the validation)."""
        if not self.strict:
            args.not_applicable(f"required in prod only; this stack's webstack:environment is {self.environment}")


# --- reading properties ----------------------------------------------------------------

def get(node: Any, *path: str | int, default: Any = None) -> Any:
    """The value at `path` under `node` (mappings by key, sequences by index), else `default`."""
    for step in path:
        if isinstance(step, int):
            if not is_list(node) or not -len(node) <= step < len(node):
                return default
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in node:
                return default
            node = node[step]
    return default if node is None else node


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def items(value: Any) -> list[Any]:
    """`value` as a list: a sequence's elements, nothing for None, else the value alone."""
    if value is None:
        return []
    return list(value) if is_list(value) else [value]


def known(read: Callable[[], T], default: T) -> T:
    """`read()`, or `default` when it touches a value unknown during preview. Stack policies use
    it: one unknown property would otherwise skip the whole policy for every resource."""
    try:
        return read()
    except UnknownValueError:
        return default


def json_document(value: Any) -> Mapping[str, Any] | None:
    """A policy document given as a JSON string or as a mapping; None if it is neither."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


# --- naming the resource and the fix ------------------------------------------------------

def type_chain(urn: str) -> list[str]:
    """The types of a URN's parents then its own: urn:pulumi:<stack>::<project>::<a$b$c>::<name>."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


# The kit's top-level components, and the framework section of the config each reads.
STACK_COMPONENTS = {"webstack:stacks:FastApiStack": "fastapi", "webstack:stacks:DjangoStack": "django"}


def kit_key(stage: Stage, urn: str, component: str, key: str) -> str | None:
    """The kit's config key (`webstack:...`) that sets what a finding is about, when the resource
    was created by the kit inside `component`; `{framework}` in `key` becomes the stack's
    framework section. None for resources the kit did not create."""
    chain = type_chain(urn)
    if component not in chain:
        return None
    framework = stage.framework or next((STACK_COMPONENTS[t] for t in chain if t in STACK_COMPONENTS), None)
    if "{framework}" in key and framework is None:
        return None
    return "webstack:" + key.format(framework=framework)


def config_fix(stage: Stage, urn: str, component: str, key: str, value: str, otherwise: str) -> str:
    """`pulumi config set ...` for the kit's key when the kit created the resource, else `otherwise`."""
    found = kit_key(stage, urn, component, key)
    if found is None:
        return otherwise
    return f"pulumi config set --path '{found}' {value}"


def what(resource_type: str, name: str) -> str:
    """How a finding names its resource: the kind (last part of the type token) and its name."""
    return f"{resource_type.rsplit(':', 1)[-1]} '{name}'"


def finding(resource_type: str, name: str, problem: str, fix: str) -> str:
    return f"{what(resource_type, name)}: {problem}. Fix: {fix}."


def reporter(report_violation: ReportViolation, urn: str | None = None) -> Callable[[str], None]:
    """A one-argument report; a stack policy passes the URN the finding is about."""
    return lambda message: report_violation(message, urn)


def type_policy(resource_type: str, name: str, description: str,
                check: Callable[[ResourceValidationArgs], Any]) -> ResourceValidationPolicy:
    """A policy on one resource type: `check(args)` yields (problem, fix) pairs, each reported
    as one finding naming the resource."""
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type == resource_type:
            for problem, fix in check(args):
                report_violation(finding(args.resource_type, args.name, problem, fix), None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)
