"""Fixture of the engine tests: one control plane for the whole session.

The binaries come from tools/build-engine (tools/test runs it first). Run directly with pytest
and without them, these tests are skipped, unless WEBSTACK_ENGINE_REQUIRED=1 (tools/test sets
it), which turns a missing tool into a failure: CI never skips them silently.
"""

from __future__ import annotations

import pytest

from tests.engine.cluster import ENGINE_BIN, Cluster, missing_tools
from tests.engine.pulumi_cli import require_engine


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    missing = missing_tools()
    if missing:
        require_engine(f"engine tools not built ({', '.join(missing)} missing in {ENGINE_BIN})")
    c = Cluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c
    finally:
        c.stop()
