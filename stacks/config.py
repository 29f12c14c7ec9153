"""The stack config loader: every `webstack:` key into one validated settings model.

`settings_from_config(pulumi.Config())` reads every `webstack:` key, applies the
environment profile, validates, and either returns a `FastApiSettings` / `DjangoSettings`
or raises `ConfigError` listing every problem at once. It runs before any resource is
created, so bad config creates nothing.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Union

import pulumi
from pydantic import Field, TypeAdapter, ValidationError

from components.types import AWS_REGION_PATTERN
from stacks import settings as shared
from stacks.django import settings as django
from stacks.django.settings import DjangoSettings
from stacks.errors import ConfigError, key, problems_from
from stacks.fastapi import settings as fastapi
from stacks.fastapi.settings import FastApiSettings
from stacks.settings import FRAMEWORKS, SecretValue, StackSettings

_REGION = re.compile(AWS_REGION_PATTERN)
AnyStack = Annotated[Union[FastApiSettings, DjangoSettings], Field(discriminator="framework")]
_ADAPTER: TypeAdapter = TypeAdapter(AnyStack)

# --- environment profiles ----------------------------------------------------------
# Production is the model default. A profile lists what dev and staging relax; each
# entry applies only where the stack file leaves the key unset.
PROFILES: dict[str, dict[str, Any]] = {
    env: {k: v for module in (shared, fastapi, django) for k, v in module.PROFILE.get(env, {}).items()}
    for env in ("dev", "staging", "prod")}


def settings_from_config(config: pulumi.Config | None = None) -> FastApiSettings | DjangoSettings:
    """Reads every `webstack:` key the Pulumi CLI passed to this program."""
    namespace = (config.name if config is not None else None) or pulumi.get_project()
    values, secret_keys = _read_namespace(namespace)
    return load_settings(values, secret_keys, aws_region=pulumi.Config("aws").get("region"))


def load_settings(values: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset(), *,
                  aws_region: str | None = None) -> FastApiSettings | DjangoSettings:
    """Validates `{key: value}` (keys without the `webstack:` prefix), and `aws:region`, which the kit's
    AWS provider uses, when given. Raises ConfigError."""
    raw = {k: _mark_secrets(v) if k in secret_keys else v for k, v in values.items()}
    given = copy.deepcopy(raw)  # what the stack file says, before profiles fill in defaults
    misplaced = _misplaced_sections(raw)
    for section in misplaced:
        raw.pop(section)
    problems = list(misplaced.values())
    if aws_region is not None and not _REGION.fullmatch(aws_region):
        problems.append(f"aws:region: {aws_region!r} is not an AWS region (e.g. eu-west-1); "
                        "set it: pulumi config set aws:region <region>")
    # No observability section at all: the kit installs the monitoring stack.
    raw.setdefault("observability", {})
    # `mode` may be left out: the default is to create the VPC or cluster, to install monitoring.
    for section, mode in (("network", "create"), ("cluster", "create"), ("observability", "install")):
        if isinstance(raw.get(section), dict):
            raw[section] = {"mode": mode, **raw[section]}
    if "cluster" not in raw:
        # No cluster section: on aws the kit creates one (its settings are then checked like any
        # other, e.g. how `pulumi up` reaches its API); on local, the kubeconfig's current context.
        raw["cluster"] = {"mode": "context" if raw.get("target") == "local" else "create"}
    _apply_profile(raw)
    try:
        settings = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems += problems_from(exc, AnyStack)
        if raw.get("framework") not in FRAMEWORKS:
            # Without a framework the union says only that; check the keys both frameworks share too.
            problems += [p for p in _shared_problems(raw) if p not in problems]
        raise ConfigError(problems) from None
    problems += [f"{key(path.split('.'))}: {reason}" for path, reason in settings.unused_keys().items()
                 if _is_set(given, path)]
    if problems:
        raise ConfigError(problems)
    return settings


def _shared_problems(raw: dict[str, Any]) -> list[str]:
    """Problems in the keys every stack has, for a config whose framework is missing or unknown."""
    shared_raw = {k: v for k, v in raw.items() if k not in FRAMEWORKS}
    shared_raw["framework"] = "unset"  # already reported
    try:
        StackSettings.model_validate(shared_raw)
    except ValidationError as exc:
        return problems_from(exc, StackSettings)
    return []


def _is_set(given: Mapping[str, Any], path: str) -> bool:
    node: Any = given
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def profile_defaults(environment: str) -> dict[str, Any]:
    return dict(PROFILES.get(environment, {}))


INSTALL_ONLY = ("prometheus", "alertmanager", "tempo", "collector")


def _apply_profile(raw: dict[str, Any]) -> None:
    env, framework, target = raw.get("environment"), raw.get("framework"), raw.get("target", "aws")
    for dotted, value in profile_defaults(env if isinstance(env, str) else "").items():
        path = dotted.split(".")
        if path[0] in FRAMEWORKS and path[0] != framework:
            continue
        if path[0] in ("network", "cluster"):
            section = raw.get(path[0], {})
            # These profile keys exist only where the kit creates the VPC or the cluster.
            if target != "aws" or not isinstance(section, dict) or section.get("mode", "create") != "create":
                continue
            raw.setdefault(path[0], {}).setdefault("mode", "create")
        if path[0] == "observability" and path[1] in INSTALL_ONLY:
            section = raw.get("observability")
            # Sizes of what the kit installs; nothing to size when a platform team runs it.
            if not isinstance(section, dict) or section.get("mode") != "install":
                continue
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(path[-1], value)


def _misplaced_sections(raw: dict[str, Any]) -> dict[str, str]:
    """A framework section on the other framework's stack is a contradiction, said plainly."""
    framework = raw.get("framework")
    found: dict[str, str] = {}
    if framework not in FRAMEWORKS:
        return found
    for other in FRAMEWORKS:
        if other != framework and other in raw:
            found[other] = (
                f"{key((other,))}: this section configures framework '{other}', but "
                f"{key(('framework',))} is '{framework}'; remove the section, or set "
                f"{key(('framework',))} to {other}")
    return found


def _mark_secrets(value: Any) -> Any:
    """Pulumi marks a whole top-level key secret when any value under it is; mark its strings."""
    if isinstance(value, dict):
        return {k: _mark_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_secrets(v) for v in value]
    if isinstance(value, str):
        return SecretValue(value)
    return value


def _read_namespace(namespace: str) -> tuple[dict[str, Any], set[str]]:
    """All `<namespace>:<key>` values the Pulumi CLI passed, objects decoded from JSON."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_full = set(runtime_config.get_config_secret_keys_env())
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    prefix = f"{namespace}:"
    for full_key, text in merged.items():
        if not full_key.startswith(prefix):
            continue
        name = full_key[len(prefix):]
        values[name] = _decode(text)
        if full_key in secret_full or runtime_config.is_config_secret(full_key):
            secrets.add(name)
    return values, secrets


def _decode(text: Any) -> Any:
    """Objects and lists arrive as JSON text; scalars stay as the string the user typed."""
    if isinstance(text, str) and text[:1] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text
