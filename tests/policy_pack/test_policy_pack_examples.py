"""Every example stack passes the whole pack under mocks: the resources its program registers,
as the engine would send them, checked by every policy at the enforcement level of the stack's
environment.

A prod stack must have no finding at all. A dev or staging stack's findings are advisory; each
must be one of the relaxations its environment's profile documents (stacks/*/settings.py
PROFILE), named by its config key, and nothing else. They are printed (`pytest -rP` shows them).
"""

from __future__ import annotations

import importlib

import pytest

from cli.render import example_stacks, load_stack_file
from tests.example_runs import stack
from tests.policy_pack.pack import Stage, from_registrations, run_pack

# Findings a relaxed profile causes by design: the policy, and the profile key (under the
# framework's section) whose relaxed value it reports.
RELAXATIONS = {"rds-deletion-protection": "database.deletion_protection"}


def profile(framework: str, environment: str) -> dict:
    return importlib.import_module(f"stacks.{framework}.settings").PROFILE.get(environment, {})


@pytest.mark.parametrize("name", example_stacks())
def test_the_example_stack_passes_the_whole_pack(name):
    config = load_stack_file(name).config
    stage = Stage(config["webstack:environment"], config["webstack:framework"])

    outcome = run_pack(from_registrations(stack(name).monitor.all()), stage)

    for f in outcome.advisory():
        print(f"{name}: advisory {f.policy}: {f.message}")
    assert [f"{f.policy}: {f.message}" for f in outcome.mandatory()] == []
    relaxed = profile(stage.framework, stage.environment)
    unexplained = []
    for f in outcome.advisory():
        key = f"{stage.framework}.{RELAXATIONS.get(f.policy, '?')}"
        if key not in relaxed or f"webstack:{key}" not in f.message:
            unexplained.append(f"{f.policy}: {f.message}")
    assert unexplained == []
