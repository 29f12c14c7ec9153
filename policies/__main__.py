"""The webstack policy pack: `pulumi preview --policy-pack policies` (see README.md here).

The pack reads the stack's `webstack:environment` when it starts: the Python language host
starts a policy pack only once the engine has sent it the stack's configuration, and hands
that to the pack as the program's config. Every policy gets the pack's enforcement level from
it (mandatory in prod, advisory in dev and staging), so a `--policy-pack-config` file can still
raise or lower any single policy.
"""

import pulumi
from pulumi_policy import PolicyPack

from webstack_guardrails import CONFIG_NAMESPACE, PACK_NAME, Stage, policies

config = pulumi.Config(CONFIG_NAMESPACE)
stage = Stage(config.get("environment"), config.get("framework"))

PolicyPack(
    name=PACK_NAME,
    description=f"webstack guardrails, {stage.enforcement_level.value} for this stack "
                f"(webstack:environment: {stage.environment or 'unset'})",
    enforcement_level=stage.enforcement_level,
    policies=policies(stage),
)
