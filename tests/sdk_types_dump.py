"""Prints, as JSON, every type the Pulumi SDK resolves for the SDK classes a render uses.

Run in a fresh process, once plain and once with `--postponed` (cli.sdk_imports installed):
`tests/test_sdk_imports.py` compares the two. It renders every example stack first so that
exactly the SDK modules the kit imports are loaded, then asks the SDK, for every input type,
output type and resource class in them, the questions it asks while running a program: the
raw property annotations, the unwrapped property types, and the Python/Pulumi name tables.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

if "--postponed" in sys.argv:
    from cli import sdk_imports

    assert sdk_imports.install(cache_dir=Path(sys.argv[-1]))

import pulumi  # noqa: E402
from pulumi import _types  # noqa: E402

from cli.render import example_stacks, render  # noqa: E402

SDK = ("pulumi_aws", "pulumi_kubernetes")


def questions(cls: type) -> dict[str, object] | None:
    if _types.is_input_type(cls):
        answers = {"types": _types.input_type_types(cls),
                   "py_to_pulumi": _types.input_type_py_to_pulumi_names(cls)}
    elif _types.is_output_type(cls):
        answers = {"types": _types.output_type_types(cls)}
    elif isinstance(cls, type) and issubclass(cls, pulumi.Resource):
        answers = {"types": _types.resource_types(cls),
                   "pulumi_to_py": _types.resource_pulumi_to_py_names(cls)}
    else:
        return None
    answers["raw"] = _types._raw_return_hints(cls)
    return {k: {name: repr(t) for name, t in sorted(v.items())} for k, v in answers.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        for stack in example_stacks():
            render(stack, Path(out))
    modules = sorted(name for name in sys.modules if name.partition(".")[0] in SDK)
    # A getter's return annotation as the module left it: a string only when postponed.
    getter = sys.modules["pulumi_kubernetes.core.v1"].Pod.metadata.fget
    dump: dict[str, object] = {"annotation_kind": type(getter.__annotations__["return"]).__name__,
                               "modules": modules, "classes": {}}
    for name in modules:
        for attr, cls in sorted(vars(sys.modules[name]).items()):
            if isinstance(cls, type) and cls.__module__ == name:
                answers = questions(cls)
                if answers is not None:
                    dump["classes"][f"{name}.{attr}"] = answers
    json.dump(dump, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
