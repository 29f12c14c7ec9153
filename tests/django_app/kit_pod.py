"""The reference project (stacks/django/app) in the kit's pod: its image as django_pod.Pod runs
it, the one config addition its example stacks need to start it, and django-local's pod with its
release steps run (`local_pod`)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django_pod import Pod, create_role, render_stack, rendered_value
from harness import Postgres
from kubelet import Image, Local, Render

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


def render_example(stack: str, dest: Path, changes: Mapping[str, object] | None = None) -> Render:
    """An example stack rendered as `python -m cli render` does (with `changes` to its config)."""
    return render_stack(stack, dest, changes=changes)


@contextmanager
def local_pod(dest: Path, nginx_bin: str, nginx_user: tuple[int, int] | None, *,
              changes: Mapping[str, object] | None = None, extra_env: Mapping[str, str] | None = None,
              ) -> Iterator[tuple[Pod, dict[str, tuple[subprocess.CompletedProcess, Local]]]]:
    """django-local (rendered into `dest`) as its pod is before its containers start: the kit's
    database created in a PostgreSQL of its own (the in-cluster server's user, database and
    password), its release Job and init container run, each required to succeed. Yields the pod
    (not started) and those two steps by name, "migrate" and "init" (a step's result, what it was
    given); the pod and PostgreSQL are removed on exit."""
    render = render_example("django-local", dest, changes)
    with ExitStack() as cleanup:
        pg = Postgres()
        cleanup.callback(pg.close)
        app = render.container("Deployment-*.app.json")
        create_role(pg, rendered_value(app, "DATABASE_USER"), rendered_value(app, "DATABASE_PASSWORD"),
                    rendered_value(app, "DATABASE_NAME"))
        pod = Pod(render, IMAGE, pg, nginx_bin, nginx_user, extra_env=dict(extra_env or {}))
        cleanup.callback(pod.close)
        jobs = {"migrate": pod.run_job("Job-web-migrate-*.release.json"),
                "init": pod.run_job("Deployment-*.init.json")}
        for name, (result, _) in jobs.items():
            assert result.returncode == 0, f"{name}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        yield pod, jobs
