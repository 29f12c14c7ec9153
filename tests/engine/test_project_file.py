"""The real Pulumi CLI on the project's Pulumi.yaml: it loads the file and applies its
declarations, and it refuses a copy with a schema mistake, naming the key.

tests/test_project.py checks the file as data against the schema this CLI embeds; this checks
what the user meets. `pulumi stack ls` and `pulumi config` are the cheapest commands that load
the project: no language host, no plugin, no cluster.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.engine.pulumi_cli import PULUMI, broken_projects, require_engine
from tests.engine.workspace import NOT_PROGRAM, ROOT, cli_env

pytestmark = pytest.mark.engine

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


@pytest.fixture
def project(tmp_path):
    """A copy of the project, with its own PULUMI_HOME and file backend beside it."""
    if not PULUMI.is_file():
        require_engine(f"the Pulumi CLI is not built ({PULUMI} missing)")
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*NOT_PROGRAM))
    (tmp_path / "state").mkdir()
    return copy


def pulumi(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PULUMI), *args, "--non-interactive", "--color", "never"], cwd=project,
                          env=cli_env(project.parent), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


def test_the_pulumi_cli_loads_pulumi_yaml_and_applies_its_declared_defaults(project):
    listed = pulumi(project, "stack", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []

    created = pulumi(project, "stack", "init", "ci")
    assert created.returncode == 0, created.stderr
    config = pulumi(project, "config", "--json")
    assert config.returncode == 0, config.stderr
    defaults = {f"webstack:{key}": {"value": decl["default"], "secret": False}
                for key, decl in PROJECT["config"].items() if "default" in decl}
    assert defaults, "Pulumi.yaml declares defaults"
    assert json.loads(config.stdout) == defaults


@pytest.mark.parametrize("mistake", list(broken_projects(PROJECT)))
def test_the_pulumi_cli_refuses_a_pulumi_yaml_with_a_schema_mistake_naming_it(project, mistake):
    broken, message = broken_projects(PROJECT)[mistake]
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))

    result = pulumi(project, "stack", "ls")

    assert result.returncode != 0, result.stdout
    assert f"could not validate '{project / 'Pulumi.yaml'}'" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
