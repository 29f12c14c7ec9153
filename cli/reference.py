"""The config reference in README.md, generated from the settings models.

A test keeps README.md's copy identical to `python -m cli reference`, so the
documented keys, types, defaults and descriptions can't drift from the code.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from stacks.errors import PROJECT, _tag_of, _unwrap, _variants
from stacks.config import PROFILES
from stacks.django.settings import DjangoSettings
from stacks.fastapi.settings import FastApiSettings
from stacks.settings import StackSettings

START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def _type_name(annotation: Any) -> str:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if annotation is SecretStr:
        return "secret string"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        variants = _variants(annotation)
        if variants:
            return "one of: " + ", ".join(f"`{_tag_of(v)}`" for v in variants)
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is dict:
        return f"map of {_type_name(typing.get_args(annotation)[1])}"
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _default_instance(info: FieldInfo) -> BaseModel | None:
    """A section's default when it is an instance whose values differ from its class's own
    (e.g. the Nginx container's smaller resources)."""
    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        try:
            value = info.default_factory()
        except ValueError:
            return None
    return value if isinstance(value, BaseModel) else None


def _default(info: FieldInfo, parent: BaseModel | None = None, name: str = "") -> str:
    if parent is not None:
        value = getattr(parent, name)
        if isinstance(value, BaseModel):
            return "see below"
        return f"`{json.dumps(value)}`"
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        try:
            value = info.default_factory()
        except ValueError:
            # A default that is only valid with more keys set (the cluster the kit creates needs to
            # know how `pulumi up` reaches it): its keys are documented below.
            return "see below"
    else:
        return "**required**"
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value)}`"


def _rows(model: type[BaseModel], prefix: str, seen: set[str],
          defaults: BaseModel | None = None) -> list[tuple[str, str, str, str]]:
    """`defaults`: the section's default instance, whose values the rows show."""
    rows = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if path in seen:
            continue
        seen.add(path)
        desc = (info.description or "").replace("\n", " ").replace("|", "\\|")
        rows.append((path, _type_name(info.annotation), _default(info, defaults, name), desc))
        inner = _unwrap(info.annotation)
        for variant in _variants(inner):
            tag = _tag_of(variant)
            doc = (variant.__doc__ or "").strip().splitlines()[0]
            tag_field = _tag_field(variant)
            rows.append((f"{path}.{tag_field}: {tag}", "object", "", doc))
            rows += _rows(variant, f"{path}.", {f"{path}.{tag_field}"})
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested = getattr(defaults, name) if defaults is not None else _default_instance(info)
            rows += _rows(inner, f"{path}.", seen, nested if isinstance(nested, BaseModel) else None)
        elif typing.get_origin(inner) is list:
            item = _unwrap(typing.get_args(inner)[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                # Each list item's keys, as `path[].key` (set with --path 'webstack:path[0].key').
                rows += _rows(item, f"{path}[].", seen)
    return rows


def _tag_field(model: type[BaseModel]) -> str:
    return next(n for n in model.model_fields if n in {"mode", "kind", "framework"})


def reference_markdown() -> str:
    seen: set[str] = set()
    rows = _rows(StackSettings, "", seen)
    for model in (FastApiSettings, DjangoSettings):
        rows += _rows(model, "", seen)
    lines = [START, "", f"All keys live under `{PROJECT}:`. Nested keys are set with "
             f"`pulumi config set --path '{PROJECT}:app.port' 8080`.", "",
             "| key | type | default (prod) | description |", "|---|---|---|---|"]
    lines += [f"| `{p}` | {t} | {d} | {desc} |" for p, t, d, desc in rows]
    lines += ["", "Environment profiles: where the stack file leaves a key unset, "
              "`dev` and `staging` use these instead of the production default.", "",
              "| key | dev | staging |", "|---|---|---|"]
    keys = sorted({k for env in ("dev", "staging") for k in PROFILES[env]})
    for k in keys:
        cells = [f"`{json.dumps(PROFILES[env][k])}`" if k in PROFILES[env] else "(prod)" for env in ("dev", "staging")]
        lines.append(f"| `{k}` | {cells[0]} | {cells[1]} |")
    lines += ["", END, ""]
    return "\n".join(lines)
