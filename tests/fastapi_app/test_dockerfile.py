"""The FastAPI reference app's Dockerfile: the checks both reference apps pass
(tests/dockerfile_checks.py)."""

from __future__ import annotations

from dockerfile_checks import *  # noqa: F403 (its tests, on APP_DIR)
from harness import APP_DIR  # noqa: F401 (dockerfile_checks' app_dir)
