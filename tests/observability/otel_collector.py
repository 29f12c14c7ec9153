"""The OpenTelemetry Collector on loopback for the tests: the binary tools/build-engine builds
(otelcol-webstack), a config written to a file exactly as a plan rendered it, the collector run
until stopped, and a stand-in for the trace store that hands every span it receives to the
tests' OTLP receiver (tests/fastapi_app/otlp_receiver.py), which writes one JSON line per span.

    app --OTLP/HTTP--> the kit's collector --OTLP gRPC--> stand-in trace store (a second
    collector: otlp receiver, otlp_http exporter) --OTLP/HTTP--> OtlpReceiver (spans.jsonl)

The stand-in is a collector because the kit's exporter speaks OTLP gRPC, as Tempo does, and the
app venv's OpenTelemetry packages have no gRPC server; it changes nothing in what it forwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fastapi_app"))

from harness import HOST, Server, free_port  # noqa: E402

ENGINE_DIR = Path(os.environ.get("WEBSTACK_ENGINE_DIR") or Path.home() / ".cache" / "webstack-engine")
OTELCOL = ENGINE_DIR / "bin" / "otelcol-webstack"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"


def require_otelcol() -> Path:
    """The collector's path. Missing, the test skips with how to build it; under CI (CI=true) or
    tools/test (WEBSTACK_ENGINE_REQUIRED=1) it fails instead: tools/test builds it before pytest,
    and a skipped check there would pass silently."""
    if not OTELCOL.is_file():
        reason = f"{OTELCOL} is not built: run tools/build-engine otelcol (tools/test does)"
        if os.environ.get("CI", "").lower() == "true" or os.environ.get("WEBSTACK_ENGINE_REQUIRED") == "1":
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)
    return OTELCOL


def write_config(config: dict[str, Any], path: Path) -> Path:
    """The config as the chart's ConfigMap carries it: the plan's dict as YAML, nothing added."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def validate(config_file: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """`otelcol-webstack validate --config FILE` with only `env` set: resolves the config, builds
    every component's settings and checks the pipelines, without starting anything."""
    return subprocess.run([str(OTELCOL), "validate", f"--config={config_file}"], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", **(env or {})})


class Collector(Server):
    """The collector running `config_file`, ready when its health_check extension (on
    `health_port`) answers 200; stopped (SIGTERM, then SIGKILL of its group) by stop()."""

    def __init__(self, config_file: Path, *, health_port: int, log_dir: Path, name: str) -> None:
        super().__init__([str(OTELCOL), f"--config={config_file}"], env={}, cwd=config_file.parent,
                         port=health_port, log_dir=log_dir, ready_path="/", ready_timeout=20, name=name)


def trace_store_stand_in(*, forward_to: str, work_dir: Path) -> tuple[Collector, str]:
    """Starts the stand-in trace store: OTLP gRPC in on a free loopback port, everything it
    receives sent on by OTLP/HTTP to `forward_to`. Returns it and its `host:port` endpoint."""
    grpc_port, health_port = free_port(), free_port()
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{HOST}:{grpc_port}"}}}},
        # No batching or retry tuning: spans go on as they come.
        "exporters": {"otlp_http": {"endpoint": forward_to}},
        "extensions": {"health_check": {"endpoint": f"{HOST}:{health_port}"}},
        "service": {"extensions": ["health_check"],
                    "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_http"]}},
                    # Its own metrics would take a port (8888 by default): off.
                    "telemetry": {"metrics": {"level": "none"}}},
    }
    path = write_config(config, work_dir / "trace-store.yaml")
    collector = Collector(path, health_port=health_port, log_dir=work_dir, name="trace-store")
    collector.start()
    return collector, f"{HOST}:{grpc_port}"


def scrape(port: int) -> str:
    """The Prometheus exporter's page in the OpenMetrics format (the only one with exemplars), as
    Prometheus asks for it."""
    request = urllib.request.Request(f"http://{HOST}:{port}/metrics", headers={"Accept": OPENMETRICS})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def openmetrics_samples(text: str, name: str) -> list[tuple[dict[str, str], float, dict[str, str] | None]]:
    """Samples of metric `name`: (labels, value, the exemplar's labels or None)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, exemplar = line.partition(" # ")
        head, value = sample.rsplit(" ", 1) if "}" not in sample else sample.rsplit("} ", 1)
        metric, _, labels = head.partition("{")
        if metric != name:
            continue
        out.append((parse_labels(labels), float(value.split()[0]),
                    parse_labels(exemplar[1:exemplar.index("}")]) if exemplar else None))
    return out


def parse_labels(text: str) -> dict[str, str]:
    """`a="x",b="y, z"` -> {"a": "x", "b": "y, z"} (values may hold commas and escaped quotes)."""
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        key = text[i:eq].strip().lstrip(",").strip()
        j = eq + 2  # past ="
        value = []
        while text[j] != '"':
            if text[j] == "\\":
                j += 1
            value.append(text[j])
            j += 1
        labels[key] = "".join(value)
        i = j + 1
        while i < len(text) and text[i] in ", ":
            i += 1
    return labels
