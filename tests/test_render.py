"""Offline render: every example stack renders, deterministically, and bad config writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.render import ROOT, example_stacks, render

EXAMPLES = ["django-dev", "django-local", "django-prod", "fastapi-dev", "fastapi-local", "fastapi-prod"]


def test_all_six_example_stacks_exist():
    assert set(EXAMPLES) <= set(example_stacks())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    for stack in example_stacks():
        render(stack, out)
    return out


@pytest.mark.parametrize("stack", EXAMPLES)
def test_every_example_stack_renders_the_documented_layout(rendered, stack):
    d = rendered / stack
    assert (d / "resources.json").is_file() and (d / "resources.md").is_file()
    assert (d / "manifests").is_dir() and (d / "config").is_dir()
    doc = json.loads((d / "resources.json").read_text())
    assert doc["stack"] == stack
    assert doc["resources"], "a stack registers at least its framework component"
    for res in doc["resources"]:
        assert {"name", "type", "parent", "dependencies", "protect", "retain_on_delete", "inputs"} <= set(res)


def _assert_same_files(first: Path, again: Path) -> None:
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), f"{first.name}/{rel} differs"


def test_render_is_byte_identical_for_the_same_config(rendered, tmp_path):
    for stack in example_stacks():
        _assert_same_files(rendered / stack, render(stack, tmp_path))


def test_secure_values_never_appear_in_a_render(rendered):
    import re

    ciphertexts = set()
    for stack in example_stacks():
        ciphertexts |= set(re.findall(r"secure: (\S+)", (ROOT / f"Pulumi.{stack}.yaml").read_text()))
    assert ciphertexts, "the example stacks carry secrets"
    for path in rendered.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "offline-secret-" not in text, f"secret stand-in leaked into {path}"
            assert not [c for c in ciphertexts if c in text], f"ciphertext copied into {path}"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_bad_config_exits_non_zero_with_the_message_and_writes_nothing(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv*", "out", ".git", "__pycache__"))
    (project / "Pulumi.broken.yaml").write_text(
        "config:\n  webstack:framework: fastapi\n  webstack:environment: prod\n"
        "  webstack:app:\n    image: ghcr.io/acme/api:1\n    prot: 8080\n")
    result = _cli("render", "broken", "--out", str(tmp_path / "out"), cwd=project)
    assert result.returncode == 2
    assert "webstack:app.prot: unknown key; did you mean 'port'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "broken").exists()


def test_the_cli_renders_the_default_stack_into_out(tmp_path):
    """`python -m cli render` with no arguments: fastapi-dev, into ./out of the working dir."""
    result = subprocess.run([sys.executable, "-m", "cli", "render"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["fastapi-dev"]
    assert (tmp_path / "out" / "fastapi-dev" / "resources.json").is_file()


def test_the_cli_render_equals_the_program_run_in_process(rendered, tmp_path):
    """`python -m cli render` loads the SDKs through cli/sdk_imports.py; this process does not."""
    result = _cli("render", "--all", "--out", str(tmp_path), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for stack in example_stacks():
        _assert_same_files(rendered / stack, tmp_path / stack)
