"""webstack: load the stack config, build the stack `framework` names, export its outputs."""

import pulumi

from stacks import build_stack
from stacks.config import settings_from_config

settings = settings_from_config(pulumi.Config())
stack = build_stack(settings)
for name, value in stack.exports().items():
    pulumi.export(name, value)
