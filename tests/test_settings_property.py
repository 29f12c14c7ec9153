"""Stack files written from the kit's own JSON Schema: each renders, or stops with the kit's
config error. Never anything else.

The published schema (`python -m cli schema`) is what an editor checks a stack file against;
the loader is what `pulumi up` enforces; the components are what the settings then reach.
Hypothesis, with hypothesis-jsonschema, writes stack files the schema accepts and runs the
real program on each under mocks. A config may be refused (the schema cannot say every rule),
but only as `ConfigError`, one line per problem naming its key, before anything is created.
Anything else (a `BuildError`, a pydantic ValidationError or a KeyError from inside an Output)
means the schema, the loader and the components disagree about what is valid, and a user
would meet it as a traceback or a "please report it".

The loader property takes stack files drawn wholly from the schema. Few of those get past the
loader (one cross-field rule or another refuses them), so the render property starts from an
example stack file and redraws some of its keys from the schema: what the schema generated
then reaches the components, and a failure shrinks to "this example, with these keys changed".

Runs are reproducible (`derandomize=True`, no example database): CI and a laptop try the same
configs. A failure prints the stack file that broke the program, shrunk, as YAML.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from cli.mocks import RecordingMonitor
from cli.offline import run_started, start
from cli.render import PROGRAM, ROOT, example_stacks, load_stack_file
from cli.schema import stack_file_schema
from stacks.config import load_settings
from stacks.errors import PROJECT, ConfigError

SCHEMA = stack_file_schema()
DEFS = SCHEMA["$defs"]
VALIDATOR = Draft202012Validator(SCHEMA)
FRAMEWORKS = ("fastapi", "django")

# The schema admits any other namespace (`aws:region`, `kubernetes:context`, ...): those belong
# to providers, not to the kit. Only the one the program reads is drawn, from real regions.
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1")

# Hypothesis checks each run's duration and the size of what it drew; a program run under mocks
# takes 0.1-0.5 s, and a whole stack file is a large draw. Neither is a problem here.
# The explain phase would list the lines only failing examples ran: pages of Pulumi internals.
PROPERTY = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


@functools.cache
def _variant(framework: str) -> dict[str, Any]:
    """The schema of the `config:` map of one framework's stack file, without other namespaces."""
    [variant] = [v for v in SCHEMA["properties"]["config"]["oneOf"]
                 if v["properties"][f"{PROJECT}:framework"].get("const") == framework]
    variant = copy.deepcopy(variant)
    variant.pop("patternProperties")
    return _as_an_editor_reads_it(variant)


# JSON Schema regexes are ECMA-262 (what an editor runs): there `\d` and `\w` are ASCII, and
# `\s` includes U+FEFF. Python's `re`, which hypothesis-jsonschema generates with, reads `\d`
# as any Unicode digit. Generating from the ECMA meaning writes only what every reader of the
# schema accepts.
_ECMA = {"d": "0-9", "w": "A-Za-z0-9_", "s": "\\s\ufeff"}


def _ecma_pattern(pattern: str) -> str:
    out, in_class, i = [], False, 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            escape = pattern[i:i + 2]
            body = _ECMA.get(escape[1])
            out.append(escape if body is None else body if in_class else f"[{body}]")
            i += 2
            continue
        in_class = (in_class or pattern[i] == "[") and not (in_class and pattern[i] == "]")
        out.append(pattern[i])
        i += 1
    return "".join(out)


def _as_an_editor_reads_it(node: Any) -> Any:
    """ECMA regexes; and a map keyed by a pattern (`app.env`, `app.secrets`) holds only keys
    that match it. The schema lets other names through (the loader refuses them, one problem
    each); drawn here, they would stop nearly every config at the loader."""
    if isinstance(node, list):
        return [_as_an_editor_reads_it(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_an_editor_reads_it(v) for k, v in node.items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _ecma_pattern(out["pattern"])
    if isinstance(node.get("patternProperties"), dict):
        out["patternProperties"] = {_ecma_pattern(k): _as_an_editor_reads_it(v)
                                    for k, v in node["patternProperties"].items()}
        out.setdefault("additionalProperties", False)
    return out


EDITOR_DEFS = _as_an_editor_reads_it(DEFS)


# A stack file sets some of the optional keys, and lists a few items, not dozens: with every key
# as likely as not, and long lists, nearly every config breaks one cross-field rule or another
# and few reach the components. Both shrink toward leaving things out.
_SETS_OPTIONAL_KEY = st.sampled_from([False, False, True])
_MORE_ITEMS = 3


@st.composite
def _object(draw: st.DrawFn, required: dict[str, st.SearchStrategy[Any]],
            optional: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    out = {k: draw(v) for k, v in required.items()}
    for k, v in optional.items():
        if draw(_SETS_OPTIONAL_KEY):
            out[k] = draw(v)
    return out


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values `schema` accepts. hypothesis-jsonschema draws every value; an object with a fixed
    set of keys, a list, and a choice between variants are put together here one part at a
    time: hypothesis-jsonschema would re-canonicalise the whole stack file's schema at every
    draw (about 0.15 s a config, more than the runs of the program cost)."""
    if "$ref" in schema:
        return _values(EDITOR_DEFS[schema["$ref"].rsplit("/", 1)[-1]])
    for choice in ("anyOf", "oneOf"):
        if choice in schema:
            # The kit's oneOf variants are told apart by a const tag (or, for the default
            # variant, by leaving it out): a value of one never matches another. The
            # validation in stack_files would say so if one did.
            return st.one_of([_values(s) for s in schema[choice]])
    if (schema.get("type") == "object" and schema.get("additionalProperties") is False
            and "properties" in schema and not schema.get("patternProperties")):
        required = set(schema.get("required", ()))
        props = schema["properties"]
        return _object({k: _values(v) for k, v in props.items() if k in required},
                       {k: _values(v) for k, v in props.items() if k not in required})
    if (schema.get("type") == "array" and isinstance(schema.get("items"), dict)
            and set(schema) <= {"type", "items", "minItems", "maxItems", "title", "description",
                                "default", "examples"}):
        least = schema.get("minItems", 0)
        return st.lists(_values(schema["items"]), min_size=least,
                        max_size=min(schema.get("maxItems", least + _MORE_ITEMS), least + _MORE_ITEMS))
    if "$ref" in json.dumps(schema):
        return from_schema({**schema, "$defs": EDITOR_DEFS})
    # Without `$defs`, hypothesis-jsonschema has far less to canonicalise at each draw.
    return from_schema(schema)


@functools.cache
def _example_configs(framework: str) -> list[dict[str, Any]]:
    """The `config:` maps of the example stack files of `framework`, as written (secrets encrypted)."""
    configs = [(yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text()) or {}).get("config") or {}
               for name in example_stacks()]
    return [c for c in configs if c.get(f"{PROJECT}:framework") == framework]


# Where an example stack file sets a key: keep its value, blend into it (objects), or draw a new
# one from the schema. Where it does not: now and then, draw one. Shrinks toward the example, so
# a failing config is reported as an example stack file with the fewest keys changed.
_KEEP_OR_DRAW = st.sampled_from(["example", "example", "generated"])
_KEEP_BLEND_OR_DRAW = st.sampled_from(["example", "blend", "blend", "generated"])
_ADDS_KEY = st.sampled_from([False, False, False, False, False, True])


def _blend(draw: st.DrawFn, example: Any, schema: dict[str, Any]) -> Any:
    """`example`, with some of its keys (at any depth) set to values drawn from `schema`. Inside
    a choice of variants, keys are blended within the example's variant. The kit's object
    schemas have no rule across keys, so the result is valid (stack_files checks it)."""
    within = _resolve(schema)
    if isinstance(example, dict):
        for choice in ("anyOf", "oneOf"):
            if choice in within:
                matching = [v for v in within[choice] if _is(v, example)]
                within = _resolve(matching[0]) if len(matching) == 1 else within
    obj = _plain_object(within)
    if obj is None or not isinstance(example, dict):
        return example if draw(_KEEP_OR_DRAW) == "example" else draw(_cached_values(schema))
    out = {}
    for key, sub in obj["properties"].items():
        if key not in example:
            if draw(_ADDS_KEY):
                out[key] = draw(_cached_values(sub))
            continue
        how = draw(_KEEP_BLEND_OR_DRAW if isinstance(example[key], dict) else _KEEP_OR_DRAW)
        if how == "example":
            out[key] = example[key]
        elif how == "blend":
            out[key] = _blend(draw, example[key], sub)
        else:
            out[key] = draw(_cached_values(sub))
    return out


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = EDITOR_DEFS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _plain_object(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` (through its `$ref`) if it is an object with a fixed set of keys."""
    schema = _resolve(schema)
    if (schema.get("type") == "object" and schema.get("additionalProperties") is False
            and "properties" in schema and not schema.get("patternProperties")):
        return schema
    return None


def _is(schema: dict[str, Any], value: Any) -> bool:
    return Draft202012Validator({**schema, "$defs": DEFS}).is_valid(value)


_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def _cached_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """`_values(schema)`, built once: Hypothesis keeps what it learns about a strategy it meets again."""
    key = json.dumps(schema, sort_keys=True)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _values(schema)
    return _STRATEGIES[key]


@st.composite
def stack_files(draw: st.DrawFn, framework: str, *, from_examples: bool) -> dict[str, Any]:
    """A `Pulumi.<stack>.yaml` document the published schema accepts. `from_examples`: one of the
    example stack files with keys drawn from the schema, so that most of the config is one the
    loader accepts and what the schema generated reaches the components."""
    if from_examples:
        example = draw(st.sampled_from(_example_configs(framework)))
        config = {**{k: v for k, v in example.items() if not k.startswith(f"{PROJECT}:")},
                  **_blend(draw, example, _variant(framework))}
    else:
        config = draw(_cached_values(_variant(framework)))
    if draw(st.booleans()):
        config["aws:region"] = draw(st.sampled_from(REGIONS))
    doc = {"config": config}
    # The generator may only narrow the schema, never step outside it.
    problems = [e.message for e in VALIDATOR.iter_errors(doc)]
    assert not problems, problems
    return doc


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory) -> Path:
    """A project directory holding the real Pulumi.yaml; each example writes its stack file here."""
    path = tmp_path_factory.mktemp("generated-stacks")
    shutil.copy(ROOT / "Pulumi.yaml", path / "Pulumi.yaml")
    return path


def write_stack_file(root: Path, stack: str, doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, sort_keys=True, allow_unicode=False)
    assert yaml.safe_load(text) == doc, "the stack file must read back as written"
    (root / f"Pulumi.{stack}.yaml").write_text(text)
    note(f"Pulumi.{stack}.yaml:\n{text}")


def program() -> None:
    runpy.run_path(str(PROGRAM), run_name="__main__")


def run_to_the_end(monitor: RecordingMonitor) -> None:
    """Runs the program under the mocks `start` set up; raises what it raised."""
    run_started(monitor, program)


# `webstack:django.database.storage_gb: must be 20..1024, got 5`
PROBLEM = re.compile(rf"{PROJECT}:[^\s:]+: \S")


def assert_names_every_key(refused: ConfigError) -> None:
    assert refused.problems, "a ConfigError names at least one problem"
    unnamed = [p for p in refused.problems if not PROBLEM.match(p)]
    assert not unnamed, f"every problem starts with the key it is about: {unnamed}"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_a_stack_file_the_schema_accepts_renders_or_is_refused_as_config(framework, project_dir, data):
    stack = f"{framework}-generated"
    doc = data.draw(stack_files(framework, from_examples=True), label="stack file")
    write_stack_file(project_dir, stack, doc)
    stack_file = load_stack_file(stack, project_dir)
    monitor = start(stack, stack_file.config, stack_file.secret_keys)
    try:
        run_to_the_end(monitor)
    except ConfigError as refused:
        event("refused")
        assert_names_every_key(refused)
        assert monitor.all() == [], "nothing may be registered once the config is refused"
        return
    event("rendered")
    assert monitor.all(), "a config that renders creates something"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@settings(PROPERTY, max_examples=60)
@given(data=st.data())
def test_the_loader_accepts_what_the_schema_accepts_or_names_each_problem(framework, project_dir, data):
    stack = f"{framework}-loaded"
    doc = data.draw(stack_files(framework, from_examples=False), label="stack file")
    write_stack_file(project_dir, stack, doc)
    stack_file = load_stack_file(stack, project_dir)
    prefix = f"{PROJECT}:"
    values = {k[len(prefix):]: v for k, v in stack_file.config.items() if k.startswith(prefix)}
    secret = {k[len(prefix):] for k in stack_file.secret_keys if k.startswith(prefix)}
    try:
        loaded = load_settings(values, secret)
    except ConfigError as refused:
        event("refused")
        assert_names_every_key(refused)
        return
    event("loaded")
    assert loaded.framework == framework
