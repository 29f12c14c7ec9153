"""The checks both reference apps' Dockerfiles pass (stacks/django/app, stacks/fastapi/app):
checkov's Dockerfile checks, and the properties the kit's pods rely on (non-root numeric user
matching the pod, base images by digest, a runtime stage without build tools, a build context of
only what the image copies).

A test module runs them all by `from dockerfile_checks import *` and names its app's folder (the
Dockerfile, .dockerignore and requirements.txt) as `APP_DIR`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from components.k8s_pod import RUN_AS_USER


__all__ = [
    "app_dir",
    "test_checkov_reports_no_failed_dockerfile_check",
    "test_every_base_image_is_pinned_by_digest",
    "test_the_image_runs_as_the_pods_non_root_user",
    "test_the_runtime_stage_has_no_compiler_and_no_test_packages",
    "test_the_build_context_holds_only_what_the_image_copies",
]


@pytest.fixture
def app_dir(request: pytest.FixtureRequest) -> Path:
    """The test module's APP_DIR."""
    return request.module.APP_DIR


def instructions(app_dir: Path) -> str:
    """The Dockerfile without comments, continuation lines joined."""
    text = (app_dir / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines).replace("\\\n", " ")


def final_stage(app_dir: Path) -> str:
    return instructions(app_dir).split("\nFROM ")[-1]


@pytest.mark.tools
def test_checkov_reports_no_failed_dockerfile_check(checkov, app_dir):
    result = subprocess.run([checkov, "--framework", "dockerfile", "--skip-download", "--compact", "--quiet",
                             "-f", str(app_dir / "Dockerfile")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout, result.stdout[-3000:]


def test_every_base_image_is_pinned_by_digest(app_dir):
    images = re.findall(r"^FROM\s+(\S+)", instructions(app_dir), re.M)
    assert len(images) >= 2  # builder + runtime
    for image in images:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image


def test_the_image_runs_as_the_pods_non_root_user(app_dir):
    users = re.findall(r"^USER\s+(\S+)", final_stage(app_dir), re.M)
    assert users == [f"{RUN_AS_USER}:{RUN_AS_USER}"]


def test_the_runtime_stage_has_no_compiler_and_no_test_packages(app_dir):
    runtime = final_stage(app_dir)
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|pip install)\b", runtime)
    requirements = (app_dir / "requirements.txt").read_text().lower()
    assert not re.search(r"^(pytest|moto|httpx|coverage)\b", requirements, re.M)
    assert "EXPOSE 8000" in runtime and "HEALTHCHECK" in runtime
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime and "PYTHONUNBUFFERED=1" in runtime


def test_the_build_context_holds_only_what_the_image_copies(app_dir):
    ignore = (app_dir / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*"  # deny everything, then allow the app
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set(re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+?)/? ", instructions(app_dir), re.M))
    assert copied and copied <= allowed, copied - allowed
