"""Turns validation failures into one line per problem, each naming the config key.

`webstack:django.database.storage_gb: must be 20..1024, got 5`
`webstack:fastapi.autoscalling: unknown key; did you mean 'autoscaling'?`
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

PROJECT = "webstack"


class ConfigError(pulumi.RunError):
    """Raised before any resource exists. Pulumi prints a RunError without a traceback."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{PROJECT}: {count} problem{'s' if count != 1 else ''} in the stack config, nothing was created:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class BuildError(pulumi.RunError):
    """A component refused what the validated config gave it: reported like a config error, one
    line per problem, since a traceback helps nobody deploying the kit. It means the loader let
    through something it should have refused, so the message asks for a report."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        head = (f"{PROJECT}: the stack could not be built from this config (the config was accepted, so "
                "this is a gap in the kit's checks: please report it):")
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


def build_problems(exc: Exception) -> list[str]:
    """One line per problem of an exception raised while building the stack."""
    if isinstance(exc, ValidationError):
        return [f"{PROJECT}: {exc.title}.{'.'.join(str(p) for p in err['loc'])}: "
                f"{err['msg'].removeprefix('Value error, ')}" for err in exc.errors(include_url=False)]
    return [f"{PROJECT}: {type(exc).__name__}: {exc}"]


def key(loc: Sequence[Any]) -> str:
    """('django', 'database', 'storage_gb') -> 'webstack:django.database.storage_gb'."""
    return f"{PROJECT}:" + ".".join(str(p) for p in loc)


def at(path: str, message: str) -> PydanticCustomError:
    """An error from a cross-field validator, pinned to the key it is about.

    `path` is relative to the validated section (`"cluster.mode"` at the top level,
    `"env.DB_PASSWORD"` inside `app`), so the user sees the exact key to change.
    """
    return PydanticCustomError("at_key", message.replace("{", "(").replace("}", ")"), {"path": path})


def set_command(loc: Sequence[Any], value: str = "<value>", *, secret: bool = False) -> str:
    flag = " --secret" if secret else ""
    path = " --path" if len(loc) > 1 else ""
    return f"pulumi config set{flag}{path} '{key(loc)}' {value}"


# --- walking the models along an error location ---------------------------------

def _unwrap(annotation: Any) -> Any:
    """Strips Annotated/Optional so the walker sees the model, dict or list inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
            else:
                return annotation
        else:
            return annotation


def _variants(annotation: Any) -> list[type[BaseModel]]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in map(_unwrap, typing.get_args(annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)]
    return []


def _tag_of(model: type[BaseModel]) -> Any:
    for name, info in model.model_fields.items():
        ann = info.annotation
        if typing.get_origin(ann) is typing.Literal and len(typing.get_args(ann)) == 1 and name in {
                "framework", "mode", "kind"}:
            return typing.get_args(ann)[0]
    return None


def walk(root: Any, loc: Sequence[Any]) -> tuple[Any, FieldInfo | None]:
    """Follows `loc` through models, unions, dicts and lists.

    Returns (the annotation found at loc, its FieldInfo when loc ends on a model field).
    Location parts that are union tags (pydantic inserts them) are consumed.
    """
    current: Any = root
    info: FieldInfo | None = None
    for part in loc:
        current = _unwrap(current)
        variants = _variants(current)
        if variants:
            match = [v for v in variants if _tag_of(v) == part]
            if match:
                current, info = match[0], None
                continue
            found = [v for v in variants if isinstance(part, str) and part in v.model_fields]
            if not found:
                return None, None
            current = found[0]
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return None, None
            info = current.model_fields[part]
            current = info.annotation
            continue
        origin = typing.get_origin(current)
        if origin in (dict, Mapping):
            current, info = typing.get_args(current)[1], None
        elif origin in (list, tuple, set, frozenset):
            current, info = typing.get_args(current)[0], None
        else:
            return None, None
    return current, info


def allowed_keys(root: Any, loc: Sequence[Any]) -> list[str]:
    target, _ = walk(root, loc)
    target = _unwrap(target)
    names: list[str] = []
    for model in _variants(target) or [target]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            names += [n for n in model.model_fields if n not in names]
    return names


def _bounds(info: FieldInfo | None) -> tuple[Any, Any]:
    lo = hi = None
    for meta in (info.metadata if info else []):
        lo = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else lo
        hi = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else hi
        if getattr(meta, "gt", None) is not None:
            lo = f">{meta.gt}"
        if getattr(meta, "lt", None) is not None:
            hi = f"<{meta.lt}"
    return lo, hi


def _example(info: FieldInfo | None, annotation: Any = None) -> str | None:
    """The field's own example, else one its type carries (the shared types in components/types.py
    keep theirs in their Annotated metadata, which pydantic does not merge through `X | None`)."""
    if info is not None and info.examples:
        return str(info.examples[0])
    for node in _annotated_chain(annotation if annotation is not None else getattr(info, "annotation", None)):
        for meta in typing.get_args(node)[1:]:
            if isinstance(meta, FieldInfo):
                extra = meta.json_schema_extra if isinstance(meta.json_schema_extra, dict) else {}
                found = meta.examples or extra.get("examples")
                if found:
                    return str(found[0])
    return None


def _annotated_chain(annotation: Any) -> list[Any]:
    """Every Annotated[...] met while unwrapping Optional/Annotated layers."""
    found = []
    while annotation is not None:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            found.append(annotation)
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else None
        else:
            break
    return found


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# --- one line per pydantic error ---------------------------------------------------

def describe(root: Any, loc: tuple, err: dict[str, Any]) -> str:
    kind, given, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    # A dict key's own error: pydantic locates it at (..., key, "[key]").
    loc = tuple(p for p in loc if p != "[key]")
    annotation, info = walk(root, loc)
    shown_loc = _display_loc(root, loc)
    here = key(shown_loc)

    if kind == "at_key":
        full = (*shown_loc, *ctx["path"].split("."))
        return f"{key(full)}: {err['msg']}"
    if kind == "extra_forbidden":
        parent = loc[:-1]
        name = str(loc[-1])
        allowed = allowed_keys(root, parent)
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "remove it"
        return f"{here}: unknown key; {hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        example = _example(info)
        fix = f"; set it: {set_command(shown_loc, example or '<value>')}"
        return f"{here}: required but not set{fix}"
    if kind == "plaintext_secret":
        return (f"{here}: a secret given in plaintext; store it encrypted instead: "
                f"{set_command(shown_loc, '<value>', secret=True)}")
    if kind in {"literal_error", "enum"}:
        expected = ctx.get("expected", "")
        return f"{here}: must be one of {expected}, got {_shown(given)}"
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        tag = ctx.get("discriminator", "").strip("'")
        target, _ = walk(root, loc)
        expected = ctx.get("expected_tags") or ", ".join(
            repr(_tag_of(v)) for v in _variants(target if loc else root))
        tag_loc = (*shown_loc, tag)
        got = f", got {ctx['tag']!r}" if "tag" in ctx else " but not set"
        return (f"{key(tag_loc)}: must be one of {expected}{got}; "
                f"e.g. {set_command(tag_loc, expected.split(',')[0].strip(chr(39) + ' '))}")
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        lo, hi = _bounds(info)
        if lo is not None and hi is not None:
            rng = f"{lo}..{hi}"
        else:
            rng = {"greater_than_equal": f">= {ctx.get('ge')}", "less_than_equal": f"<= {ctx.get('le')}",
                   "greater_than": f"> {ctx.get('gt')}", "less_than": f"< {ctx.get('lt')}"}[kind]
        return f"{here}: must be {rng}, got {_shown(given)}"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"{here}: must be a whole number, got {_shown(given)}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"{here}: must be true or false, got {_shown(given)}"
    if kind in {"float_parsing", "float_type"}:
        return f"{here}: must be a number, got {_shown(given)}"
    if kind in {"string_type"}:
        return f"{here}: must be a string, got {_shown(given)}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"{here}: must be an object (a map of keys), got {_shown(given)}"
    if kind in {"list_type"}:
        return f"{here}: must be a list, got {_shown(given)}"
    if kind == "string_pattern_mismatch":
        example = _example(info, annotation)
        eg = f"; e.g. {example}" if example else ""
        return f"{here}: {_shown(given)} does not match {ctx.get('pattern')}{eg}"
    if kind in {"string_too_long", "string_too_short", "too_long", "too_short"}:
        return f"{here}: {err['msg'].lower()}, got {_shown(given)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{here}: {msg}"


def _display_loc(root: Any, loc: Sequence[Any]) -> tuple:
    """Drops the union tags pydantic adds to locations ('fastapi', 'app', ...) -> ('app', ...)."""
    shown: list[Any] = []
    current: Any = root
    for part in loc:
        current_u = _unwrap(current)
        variants = _variants(current_u)
        if variants and any(_tag_of(v) == part for v in variants):
            current = next(v for v in variants if _tag_of(v) == part)
            continue
        shown.append(part)
        current, _ = walk(current, [part])
    return tuple(shown)


def problems_from(exc: ValidationError, root: Any) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        line = describe(root, tuple(err["loc"]), err)
        if line not in lines:
            lines.append(line)
    return lines
