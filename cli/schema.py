"""JSON Schema of `Pulumi.<stack>.yaml`, generated from the settings models.

Editors (VS Code's YAML extension, JetBrains) check a stack file against it as it is
typed: unknown keys, wrong types, out-of-range values and plaintext secrets are
flagged before `pulumi up`. Point the editor at it with a modeline on the first line:
`# yaml-language-server: $schema=./webstack.schema.json`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import TypeAdapter

from stacks.errors import PROJECT
from stacks.config import profile_defaults
from stacks.django.settings import DjangoSettings
from stacks.fastapi.settings import FastApiSettings

# A value set with `pulumi config set --secret` is stored as {secure: <ciphertext>}.
SECURE_VALUE = {"type": "object", "properties": {"secure": {"type": "string"}},
                "required": ["secure"], "additionalProperties": False,
                "description": "Encrypted by `pulumi config set --secret`."}


def _variant(model: type, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    props = {f"{PROJECT}:{name}": sub for name, sub in schema["properties"].items()}
    required = [f"{PROJECT}:{name}" for name in schema.get("required", [])]
    return {"type": "object", "title": schema.get("title"), "properties": props, "required": required,
            # Other namespaces (aws:region, kubernetes:context, ...) belong to providers.
            "patternProperties": {rf"^(?!{PROJECT}:)[A-Za-z0-9_.-]+:.+$": {}},
            "additionalProperties": False}


def _secrets_as_ciphertext(node: Any) -> Any:
    """In the stack file a secret is never a plain string: only {secure: ...} is valid."""
    if isinstance(node, dict):
        if node.get("x-webstack-secret"):
            return {**SECURE_VALUE, "description": node.get("description", SECURE_VALUE["description"])}
        return {k: _secrets_as_ciphertext(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_secrets_as_ciphertext(v) for v in node]
    return node


def _only_named_keys(node: Any) -> Any:
    """A map whose keys have a pattern (env var names) refuses other keys, as the loader does:
    pydantic writes the pattern as patternProperties, which alone lets any other name through."""
    if isinstance(node, dict):
        node = {k: _only_named_keys(v) for k, v in node.items()}
        if "patternProperties" in node and "propertyNames" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_only_named_keys(v) for v in node]
    return node


def stack_file_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    variants = [_variant(FastApiSettings, defs), _variant(DjangoSettings, defs)]
    config = {"oneOf": variants}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://webstack.dev/schemas/stack-config.json",
        "title": f"Pulumi.<stack>.yaml for the {PROJECT} project",
        "description": "Environment profiles (dev, staging) relax these production defaults: "
                       + json.dumps({env: profile_defaults(env) for env in ("dev", "staging", "prod")},
                                    sort_keys=True),
        "type": "object",
        "properties": {
            "config": config,
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "$defs": defs,
    }
    return _only_named_keys(_secrets_as_ciphertext(copy.deepcopy(schema)))


def stack_file_schema_text() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
