"""What every framework stack has: a name, its settings, and the outputs it exports."""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.settings import StackSettings


class WebStack(pulumi.ComponentResource):
    """Base of FastApiStack and DjangoStack: subclasses add their children, then `_finish()`."""

    namespace: str

    def __init__(self, type_token: str, name: str, settings: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_token, name, None, opts)
        self.settings = settings
        self.namespace = settings.k8s_namespace(pulumi.get_stack())
        self._exports: dict[str, Any] = {
            "framework": settings.framework,
            "environment": settings.environment,
            "target": settings.target,
            "namespace": self.namespace,
        }

    def exports(self) -> dict[str, Any]:
        """Stack outputs, as `pulumi stack output` will show them."""
        return dict(self._exports)

    def _finish(self) -> None:
        self.register_outputs(self._exports)
