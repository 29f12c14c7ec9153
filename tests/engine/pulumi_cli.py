"""The Pulumi CLI that tools/build-engine built, and the project file schema compiled into it.

The CLI validates every Pulumi.yaml it loads against a JSON Schema embedded in its binary
(`//go:embed project.json` in the Pulumi Go SDK, sdk/go/common/workspace). Which SDK module
the binary was built with is recorded in the binary itself (Go build info, what
`go version -m` prints); the same module's source is in the build's module cache. So the
schema read here is byte for byte the one `pulumi` enforces, at the version tools/build-engine
pins, with no copy in this repo to fall behind.
"""

from __future__ import annotations

import mmap
import os
import re
from pathlib import Path

import pytest

from tests.engine.cluster import ENGINE_BIN, ENGINE_DIR

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tools" / "build-engine"
PULUMI = ENGINE_BIN / "pulumi"
PKG_MODULE = "github.com/pulumi/pulumi/pkg/v3"  # the CLI's main module
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"  # holds the schema
SCHEMA_IN_SDK = Path("go/common/workspace/project.json")

# Go build info (runtime/debug): a 32-byte header, then (Go >= 1.18) the Go version and the
# module info as varint-length-prefixed strings; the module info has 16-byte sentinels.
_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_FLAG_INLINE_STRINGS = 0x2


def require_engine(what: str) -> None:
    """The engine tests' rule for a missing tool: it skips the test when run
    directly with pytest, and fails it under WEBSTACK_ENGINE_REQUIRED=1 (tools/test, CI)."""
    message = f"{what}; run tools/build-engine"
    if os.environ.get("WEBSTACK_ENGINE_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def pinned_version() -> str:
    """PULUMI_VERSION as tools/build-engine pins it, e.g. v3.274.1."""
    found = re.search(r"^PULUMI_VERSION=(v[0-9][^\s#]*)", BUILD_SCRIPT.read_text(), re.M)
    assert found, f"no PULUMI_VERSION= line in {BUILD_SCRIPT}"
    return found.group(1)


def _uvarint(data, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def go_modules(binary: Path) -> dict[str, str]:
    """{module path: "path@version" compiled in its place} for each module a Go binary was built
    from, replacements applied; the value names the module's folder in a module cache."""
    with binary.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data.find(_BUILDINFO_MAGIC)
        assert start >= 0, f"{binary}: no Go build info"
        assert data[start + 15] & _FLAG_INLINE_STRINGS, f"{binary}: build info older than Go 1.18"
        go_version_length, pos = _uvarint(data, start + 32)
        length, pos = _uvarint(data, pos + go_version_length)
        info = bytes(data[pos + 16:pos + length - 16]).decode()
    modules: dict[str, str] = {}
    required = None
    for line in info.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep"):  # the main package's module, then the others
            required = fields[1]
            modules[required] = f"{fields[1]}@{fields[2]}"
        elif fields[0] == "=>" and required is not None:  # replaced: the replacement was compiled
            modules[required] = f"{fields[1]}@{fields[2]}"
    return modules


def embedded_project_schema() -> Path:
    """project.json of the SDK module the built `pulumi` embeds (fails or skips without it)."""
    if not PULUMI.is_file():
        require_engine(f"the Pulumi CLI is not built ({PULUMI} missing)")
    modules = go_modules(PULUMI)
    assert modules.get(PKG_MODULE) == f"{PKG_MODULE}@{pinned_version()}", (
        f"{PULUMI} was built from {modules.get(PKG_MODULE)}, but tools/build-engine pins "
        f"{pinned_version()}: run tools/build-engine")
    # The module cache spells each capital letter as "!" and its lower case.
    folder = re.sub(r"[A-Z]", lambda m: "!" + m.group().lower(), modules[SDK_MODULE])
    schema = ENGINE_DIR / "gomod" / folder / SCHEMA_IN_SDK
    if not schema.is_file():
        require_engine(f"the Go module cache of the build lacks {schema}")
    return schema


def broken_projects(project: dict) -> dict[str, tuple[dict, str]]:
    """Mistakes a Pulumi.yaml can make that the CLI's schema refuses: {what: (the project with
    that mistake, what the CLI's refusal says)}. Its messages are those of the pinned CLI."""
    framework = project["config"]["framework"]

    def declaring(declaration: dict) -> dict:
        return {**project, "config": {**project["config"], "framework": declaration}}

    return {
        "runtime not a name or an object": (
            {**project, "runtime": 42}, "#/runtime: expected string, but got number"),
        "a config type the CLI does not know": (
            declaring({**framework, "type": "enum"}), "#/config/framework/type: value must be one of"),
        "a misspelt key in a config declaration": (
            declaring({**framework, "descripton": "x"}),
            "#/config/framework: additionalProperties 'descripton' not allowed"),
    }
