"""The program `pulumi up` runs: the config loader (`config.py`), what both framework stacks
share (`settings.py`, `platform.py`), and one package per framework (`fastapi/`, `django/`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

if TYPE_CHECKING:
    from stacks.django.settings import DjangoSettings
    from stacks.django.stack import DjangoStack
    from stacks.fastapi.settings import FastApiSettings
    from stacks.fastapi.stack import FastApiStack


def build_stack(settings: FastApiSettings | DjangoSettings) -> FastApiStack | DjangoStack:
    """The stack `settings.framework` names, as one component called `web`. A component that
    refuses its arguments stops the program with the same one-line messages as the config."""
    from stacks.errors import BuildError, build_problems

    try:
        if settings.framework == "fastapi":
            from stacks.fastapi.stack import FastApiStack

            return FastApiStack("web", settings)
        from stacks.django.stack import DjangoStack

        return DjangoStack("web", settings)
    except pulumi.RunError:
        raise
    except Exception as exc:  # noqa: BLE001 (every other error becomes one line per problem)
        raise BuildError(build_problems(exc)) from None
