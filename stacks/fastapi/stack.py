"""FastApiStack: the FastAPI service's home."""

from __future__ import annotations

import pulumi

from stacks.base import WebStack
from stacks.settings import FastApiSettings


class FastApiStack(WebStack):
    """FastAPI on Uvicorn in Kubernetes."""

    def __init__(self, name: str, settings: FastApiSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:stacks:FastApiStack", name, settings, opts)
        self._finish()
