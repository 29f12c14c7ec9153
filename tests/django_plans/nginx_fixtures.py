"""Debian's nginx as fixtures, for every folder of tests that runs the Django pod's Nginx
(django_plans, django_app's kit pod, byo_app's Django stack): a conftest imports them.

A missing binary skips with the reason; under CI (CI=true) it fails instead (harness.require),
because .ci/run installs everything (tools/setup) and a skipped check there would pass silently.
"""

from __future__ import annotations

import pytest
from harness import require
from plans_harness import nginx_path, nginx_run_as


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    """Debian's nginx (plans_harness.nginx_path)."""
    found = nginx_path()
    require(None if found else "nginx not found: apt-get install nginx (tools/setup does, as root)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def nginx_user() -> tuple[int, int] | None:
    """(uid, gid) Nginx runs as: `nobody` when the tests run as root, as the pod runs it non-root;
    else None (the caller's)."""
    try:
        return nginx_run_as()
    except KeyError:
        require("running as root with no 'nobody' user to run Nginx as")
        raise
