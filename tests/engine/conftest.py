"""Fixture of the engine tests: one control plane for the whole session.

The binaries come from tools/build-engine (tools/test runs it first). Run directly with pytest
and without them, these tests are skipped, unless WEBSTACK_ENGINE_REQUIRED=1 (tools/test sets
it), which turns a missing tool into a failure: CI never skips them silently.

Every cluster comes with the Prometheus Operator and a kube-prometheus-stack-shaped Prometheus
(tests/engine/monitoring.py): every local stack creates a ServiceMonitor and a PrometheusRule,
whose kinds exist only once the operator's CRDs are installed.
"""

from __future__ import annotations

import pytest

from tests.engine import monitoring
from tests.engine.cluster import ENGINE_BIN, Cluster, missing_tools
from tests.engine.pulumi_cli import require_engine


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    missing = missing_tools() + monitoring.missing()
    if missing:
        require_engine(f"engine tools not built ({', '.join(missing)} missing in {ENGINE_BIN.parent})")
    c = Cluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield c, monitoring.Monitoring(c).start()
    finally:
        c.stop()


@pytest.fixture(scope="session")
def cluster(engine) -> Cluster:
    return engine[0]


@pytest.fixture(scope="session")
def prometheus(engine) -> monitoring.Monitoring:
    """The operator and its Prometheus: what it generated from the objects it selected."""
    return engine[1]
