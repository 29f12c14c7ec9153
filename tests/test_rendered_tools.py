"""Every example stack's rendered Kubernetes objects, checked by the real tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.render import example_stacks, render

KUBERNETES_VERSION = "1.34.0"  # the minor version the kit targets (EKS, kube-apiserver tests)
TOOLS = Path(sys.executable).parent


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("tools")
    for stack in example_stacks():
        render(stack, out)
    files = sorted(out.glob("*/manifests/*.yaml"))
    assert files, "the example stacks render Kubernetes objects"
    return files


def test_every_manifest_passes_strict_kubernetes_schema_validation(manifests):
    tool = shutil.which("kubernetes-validate", path=str(TOOLS)) or shutil.which("kubernetes-validate")
    assert tool, "kubernetes-validate is installed by requirements-dev.txt"
    # A Helm release's file records the chart, its version and values for review: not an object
    # of the API (the chart's own objects are rendered by Helm in the cluster).
    objects = [m for m in manifests if "apiVersion" in yaml.safe_load(m.read_text())]
    assert len(objects) < len(manifests), "the example stacks install charts"
    result = subprocess.run([tool, "--strict", "-k", KUBERNETES_VERSION, *map(str, objects)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_reports_no_failed_kubernetes_check(checkov, manifests):
    root = manifests[0].parent.parent.parent
    result = subprocess.run([checkov, "--framework", "kubernetes", "--skip-download", "--compact", "--quiet",
                             "-d", str(root)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout or result.stdout.strip() == "", result.stdout[-3000:]


def test_promtool_accepts_every_rendered_rule_file(manifests):
    """The PrometheusRule of each example stack, as render writes it (config/prometheus-rules/),
    is a rule file Prometheus loads."""
    sys.path.insert(0, str(Path(__file__).parent / "observability"))
    from rules_promtool import require_promtool

    promtool = require_promtool()
    root = manifests[0].parent.parent.parent
    files = sorted(root.glob("*/config/prometheus-rules/*.yaml"))
    assert len(files) == len(example_stacks()), "one rule file per example stack"
    result = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
