"""Debian's real Prometheus on loopback for the dashboard tests: a static scrape config, its TSDB in a
temp dir, a free port, and the HTTP API's answers as they come (a parse error included).

Plain classes, no pytest: the fixtures in test_dashboards.py own the process and stop it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from harness import HOST, free_port, stop_process, wait_until

PROMETHEUS = "/usr/bin/prometheus"  # Debian's package (tools/setup installs it); 2.42 here
SCRAPE_INTERVAL_SECONDS = 1


def missing_prometheus() -> str | None:
    if shutil.which(PROMETHEUS) is None:
        return f"{PROMETHEUS} not found: apt-get install prometheus (tools/setup does, as root)"
    return None


def static_job(name: str, target: str, labels: Mapping[str, str], *, proxy_url: str | None = None) -> dict[str, Any]:
    """One scrape job of `target` (host:port, path /metrics) whose series get `labels`. A static
    `job` label wins over the job's name, as a ServiceMonitor's `job` (the Service's name) does;
    `proxy_url` sends the scrape through that HTTP proxy, with `target` in the request line and
    its Host header."""
    job: dict[str, Any] = {"job_name": name, "metrics_path": "/metrics",
                           "static_configs": [{"targets": [target], "labels": dict(labels)}]}
    if proxy_url:
        job["proxy_url"] = proxy_url
    return job


class Prometheus:
    """`/usr/bin/prometheus` scraping `jobs` every second, until `stop()`."""

    def __init__(self, work_dir: Path, jobs: Sequence[Mapping[str, Any]]) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        config = work_dir / "prometheus.yml"
        interval = f"{SCRAPE_INTERVAL_SECONDS}s"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "scrape_configs": [dict(job) for job in jobs]}, sort_keys=False))
        self.log = work_dir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={work_dir / 'data'}",
                 f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until(lambda: self._get("/-/ready")[0] == 200, 30, "Prometheus ready", popen=self.proc,
                       name="prometheus", logs=self.logs)
        except BaseException:
            self.stop()
            raise

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> tuple[int, Any]:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:  # 400 bad_data, 422 execution errors: the answer we test
            body, status = err.read(), err.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def query(self, expr: str) -> tuple[int, dict[str, Any]]:
        """An instant query now: (HTTP status, the API's JSON answer)."""
        return self._get("/api/v1/query", [("query", expr)])

    def vector(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query that must succeed."""
        status, answer = self.query(expr)
        assert status == 200 and answer.get("status") == "success", (expr, status, answer)
        return answer["data"]["result"]

    def names(self, selector: str) -> set[str]:
        """Metric names of the series `selector` matches (/api/v1/label/__name__/values)."""
        status, answer = self._get("/api/v1/label/__name__/values", [("match[]", selector)])
        assert status == 200 and answer.get("status") == "success", (status, answer)
        return set(answer["data"])

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
