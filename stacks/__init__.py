"""webstack's stacks: one ComponentResource per framework, chosen by `webstack:framework`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.base import WebStack
    from stacks.settings import DjangoSettings, FastApiSettings


def build_stack(settings: "FastApiSettings | DjangoSettings") -> "WebStack":
    """The stack `settings.framework` names, as one component called `web`."""
    if settings.framework == "fastapi":
        from stacks.fastapi.stack import FastApiStack

        return FastApiStack("web", settings)
    from stacks.django.stack import DjangoStack

    return DjangoStack("web", settings)
