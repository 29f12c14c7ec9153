"""DjangoStack: the Django project's home."""

from __future__ import annotations

import pulumi

from stacks.base import WebStack
from stacks.settings import DjangoSettings


class DjangoStack(WebStack):
    """Django on Gunicorn in Kubernetes."""

    def __init__(self, name: str, settings: DjangoSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:DjangoStack", name, settings, opts)
        self._finish()
