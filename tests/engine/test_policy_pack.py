"""The policy pack (policies/) under the real engine: `pulumi preview --policy-pack` on every
`*-local` example stack, against the test cluster.

Per stack: the stack as it is (dev) passes, every policy having run (none skipped on a value a
preview cannot know); switched to prod (the app image by digest, as the kit requires there), the
same preview fails, the pack naming the policy, the resource and the config key that fixes it;
with that key set, the prod preview passes. So the stack's `webstack:environment` reaches the pack
through the engine, and decides what blocks.

The pack is given to `--policy-pack` as the executable tests/engine/policy_host.py writes: the
Python language host that can be built here cannot start a policy pack folder (that module says
why); the executable starts it as a current host does.
"""

from __future__ import annotations

import re

import pytest

from tests.engine.policy_host import launcher
from tests.engine.workspace import Result, StackWorkspace, local_stacks

pytestmark = pytest.mark.engine

PACK = "webstack-guardrails@v0.1.0"
DIGEST = "@sha256:" + "5e" * 32
POSTGRES = "web-postgres-statefulset"  # the in-cluster PostgreSQL of the local target


@pytest.fixture(scope="module", params=local_stacks())
def stack(request, cluster, tmp_path_factory):
    ws = StackWorkspace(request.param, tmp_path_factory.mktemp(f"policy-{request.param}"), cluster)
    ws.init()
    return ws


def preview(ws: StackWorkspace, *, check: bool = True) -> Result:
    pack = launcher(ws.project / "policies")
    return ws.pulumi("preview", "--policy-pack", str(pack), timeout=300, check=check)


def findings(result: Result) -> list[tuple[str, str, str]]:
    """(level, policy, resource) of each finding in the preview's Policies section."""
    return re.findall(r"- \[(advisory|mandatory)\]\s+(\S+)\s+\((\S+: \S+)\)", result.stdout)


def by_digest(image: str) -> str:
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return repository + DIGEST


def test_the_local_stack_passes_the_pack_with_every_policy_run(stack):
    result = preview(stack)

    assert PACK in result.stdout, result.explain()
    assert findings(result) == [], result.explain()
    assert "can't run policy" not in result.stdout + result.stderr, result.explain()


def test_in_prod_the_preview_fails_naming_the_policy_the_resource_and_the_key_that_fixes_it(stack):
    framework = stack.config()["webstack:framework"]["value"]
    image = stack.image()
    key = f"webstack:{framework}.database.local_image"
    stack.pulumi("config", "set", "webstack:environment", "prod", timeout=60)
    stack.set_image(by_digest(image))
    try:
        failed = preview(stack, check=False)
        stack.pulumi("config", "set", "--path", key, "docker.io/library/postgres" + DIGEST, timeout=60)
        fixed = preview(stack, check=False)
    finally:
        stack.pulumi("config", "set", "webstack:environment", "dev", timeout=60)
        stack.set_image(image)
        stack.pulumi("config", "rm", "--path", key, timeout=60)

    assert not failed.ok, failed.explain()
    assert findings(failed) == [
        ("mandatory", "pods-images-by-digest", f"kubernetes:apps/v1:StatefulSet: {POSTGRES}")], failed.explain()
    assert f"pulumi config set --path '{key}' <repository>@sha256:<digest>" in failed.stdout, failed.explain()
    assert fixed.ok, fixed.explain()
    assert findings(fixed) == [], fixed.explain()
