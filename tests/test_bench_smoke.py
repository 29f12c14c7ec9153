"""The benchmark runs (bench/run's --smoke: every setup once, 1 s runs), so it cannot rot unnoticed.

Not a timed test: it asserts that every setup started and answered, and that the outputs a reader
and the README use were written, never what the numbers are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from fastapi_app.harness import missing_app_venv, missing_postgres, require

ROOT = Path(__file__).resolve().parent.parent


def test_the_whole_benchmark_runs_at_a_tiny_size_and_writes_its_outputs(tmp_path):
    require(missing_app_venv() or missing_postgres())
    require(None if shutil.which("wrk") else "wrk not installed (tools/setup installs it)")
    require(None if Path("/usr/sbin/nginx").exists() else "nginx not installed (tools/setup installs it)")
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]

    [result_file] = tmp_path.glob("*.json")
    result = json.loads(result_file.read_text())
    runs = result["serve"]
    measured = {(r["suite"], r["role"], r["route"]) for r in runs}
    for suite, routes in (("fastapi", ("trivial", "io", "db")), ("django", ("trivial", "io", "db", "static"))):
        for role in ("naive", "kit"):
            for route in routes:
                assert (suite, role, route) in measured, f"{suite} {role} {route} was not measured"
        assert (suite, "limit", "trivial") in measured, f"{suite}: the bare app was not measured"
    assert ("fastapi", "tuned", "trivial") in measured
    assert ("limits", "limit", "trivial") in measured
    for run in runs:  # every setup answered: a server that failed every request would show here
        assert run["requests"] > 0 and run["non_2xx"] == 0, run
    assert {e["stack"] for e in result["render"]["examples"]}, "no example stack rendered"
    assert [s["services"] for s in result["render"]["synthetic"]] == [1, 2]
    assert result["targets"], "no target evaluated"

    table = result_file.with_suffix(".md").read_text()
    assert "## Targets" in table and "| suite | setup | route |" in table
    charts = sorted(p.name for p in tmp_path.glob("*.png"))
    assert charts and all(f"]({c})" in table for c in charts), (charts, table[-2000:])
