"""The reference project (stacks/django/app) in the kit's pod: its image as django_pod.Pod runs
it, and the one config addition its example stacks need to start it."""

from __future__ import annotations

import re
from pathlib import Path

from django_pod import render_stack
from kubelet import Image, Render

from .shop_app import APP_DIR, BIN


def image_env(dockerfile: Path) -> dict[str, str]:
    """The final stage's ENV, but PATH (the image's Python is Image.bin here)."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    final = "\n".join(lines).replace("\\\n", " ").split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for instruction in re.findall(r"^ENV\s+(.+)$", final, re.M):
        for pair in instruction.split():
            name, _, value = pair.partition("=")
            if name != "PATH":
                env[name] = value
    return env


# The image: `COPY` of the project to /app, `WORKDIR /app`, its ENV; its venv is .venv-django here.
IMAGE = Image(APP_DIR, workdir="/app", env=image_env(APP_DIR / "Dockerfile"), bin=BIN)


def render_example(stack: str, dest: Path) -> Render:
    """An example stack rendered as `python -m cli render` does."""
    return render_stack(stack, dest)
