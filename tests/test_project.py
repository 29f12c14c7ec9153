"""The project's contract with Pulumi, editors and readers."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from cli.reference import END, START, reference_markdown
from cli.render import ROOT, example_stacks, run_stack
from cli.schema import stack_file_schema
from tests.engine.pulumi_cli import broken_projects, embedded_project_schema

# A copy some checkouts have beside the repo; checked too when present, never needed.
SHARED_SCHEMA = ROOT.parent / "shared" / "schemas" / "pulumi-project.schema.json"


@pytest.mark.engine
def test_pulumi_yaml_matches_the_project_schema_the_pulumi_cli_enforces():
    """The schema compiled into the `pulumi` that tools/build-engine builds, at its pinned
    version (tests/engine/pulumi_cli.py). tests/engine/test_project_file.py runs that CLI on it."""
    schemas = {"the CLI's": json.loads(embedded_project_schema().read_text())}
    if SHARED_SCHEMA.is_file():
        schemas["../shared's"] = json.loads(SHARED_SCHEMA.read_text())
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for which, schema in schemas.items():
        validator = jsonschema.Draft202012Validator(schema)
        assert [e.message for e in validator.iter_errors(project)] == [], f"{which} schema"
        # Mistakes the CLI refuses must fail here too, or passing proves nothing.
        for mistake, (broken, _) in broken_projects(project).items():
            assert list(validator.iter_errors(broken)), f"{which} schema accepts {mistake}"
    assert project["name"] == "webstack"
    assert project["runtime"]["name"] == "python"


def test_every_declared_key_has_a_description_and_exists_in_the_settings():
    from stacks.settings import StackSettings

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for name, decl in project["config"].items():
        assert decl.get("description"), name
        assert name in StackSettings.model_fields, f"Pulumi.yaml declares {name}, the settings don't"


@pytest.mark.parametrize("stack", example_stacks())
def test_every_declared_key_without_a_default_is_set_by_each_example_stack(stack):
    """The Pulumi CLI refuses a stack missing a declared key that has no default
    ("Stack '...' is missing configuration value '...'"), before the program runs."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    required = {k for k, decl in project["config"].items() if "default" not in decl}
    stack_config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    missing = sorted(k for k in required if f"webstack:{k}" not in stack_config)
    assert not missing, f"Pulumi.{stack}.yaml lacks declared keys {missing}"


def test_runtime_requirements_are_pinned():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    names = {re.split(r"==", line)[0].lower() for line in lines}
    assert {"pulumi", "pulumi-aws", "pulumi-kubernetes", "pydantic"} <= names
    assert all("==" in line for line in lines), lines


@pytest.mark.parametrize("stack", example_stacks())
def test_every_example_stack_file_passes_the_generated_editor_schema(stack):
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    jsonschema.validate(doc, stack_file_schema())


def test_the_editor_schema_flags_a_plaintext_secret_and_an_unknown_key():
    validator = jsonschema.Draft202012Validator(stack_file_schema())
    base = {"webstack:framework": "fastapi", "webstack:environment": "dev"}
    plaintext = {"config": {**base, "webstack:app": {"image": "x:1", "secrets": {"TOKEN": "abc"}}}}
    typo = {"config": {**base, "webstack:app": {"image": "x:1", "prot": 1}}}
    encrypted = {"config": {**base, "webstack:app": {"image": "x:1", "secrets": {"TOKEN": {"secure": "v1:x"}}}}}
    assert list(validator.iter_errors(plaintext))
    assert list(validator.iter_errors(typo))
    assert not list(validator.iter_errors(encrypted))


def test_the_readme_config_reference_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(START), readme.index(END) + len(END)
    assert readme[start:end] + "\n" == reference_markdown(), \
        "README.md's config reference is stale: replace it with `python -m cli reference`"


def test_the_readme_names_exactly_two_quickstart_commands_that_exist():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:sh|bash)\n(.+?)\n```", quick, re.S)
    assert len(commands) == 2, commands
    assert "python -m cli render" in commands[0]
    assert "tools/test" in commands[1]
    assert (ROOT / "tools" / "test").stat().st_mode & 0o111


@pytest.mark.parametrize("stack", ["fastapi-prod", "django-local"])
def test_main_exports_the_documented_outputs(stack):
    run = run_stack(stack)
    assert {"framework", "environment", "target", "namespace"} <= set(run.outputs)
    assert run.outputs["framework"] == stack.split("-")[0]
    assert run.outputs["namespace"] == f"webstack-{stack}"


def test_the_editor_schema_refuses_an_env_name_the_loader_refuses():
    validator = jsonschema.Draft202012Validator(stack_file_schema())
    base = {"webstack:framework": "fastapi", "webstack:environment": "dev"}
    bad = {"config": {**base, "webstack:app": {"image": "x:1", "env": {"1BAD": "x"}}}}
    good = {"config": {**base, "webstack:app": {"image": "x:1", "env": {"GOOD_1": "x"}}}}
    assert list(validator.iter_errors(bad))
    assert not list(validator.iter_errors(good))
