"""The Django reference project's Dockerfile: the checks both reference apps pass
(tests/dockerfile_checks.py), and no collectstatic at build time."""

from __future__ import annotations

import re

from dockerfile_checks import *  # noqa: F403 (its tests, on APP_DIR)
from dockerfile_checks import instructions

from .shop_app import APP_DIR


def test_commands_are_exec_form_and_static_files_are_collected_at_release_not_build():
    text = instructions(APP_DIR)
    # Exec form: Gunicorn is PID 1 and gets the kubelet's SIGTERM itself, no shell in between.
    for instruction in re.findall(r"^(?:CMD|ENTRYPOINT)\s+(.*)$", text, re.M) + \
            re.findall(r"^HEALTHCHECK .*? CMD\s+(.*)$", text, re.M):
        assert instruction.startswith("["), instruction
    # With S3 it needs the bucket and credentials; the kit runs it as a release step.
    assert "collectstatic" not in text
