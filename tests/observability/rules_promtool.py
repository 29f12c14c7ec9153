"""promtool for the rule tests: find it, write rule and unit-test files, run it.

A unit-test case (`Case`) is synthetic input series plus checks: at `at`, alert `alert` fires with
exactly these alerts (`Firing`), or none. promtool compares annotations too, so a firing's
annotations are the rule's own templates with `$value` and `$labels` filled in: the case states
the value a reader would see ("5%"), and a template that renders anything else fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

PROMTOOL_TIMEOUT_S = 60


def require_promtool() -> str:
    """promtool's path. Missing, the test skips with how to get it; under CI (CI=true) it fails,
    because tools/setup installs it there and a skipped check would pass silently."""
    tool = shutil.which("promtool")
    if tool is None:
        reason = ("promtool is not on PATH: it comes with Debian's `prometheus` package, which "
                  "tools/setup installs (apt-get install prometheus)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run this test: {reason}")
        pytest.skip(reason)
    return tool


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=PROMTOOL_TIMEOUT_S, check=False)


def dump(rules: Mapping) -> str:
    return yaml.safe_dump(dict(rules), sort_keys=False)


def merge(*rule_files: Mapping) -> dict:
    """Several apps' rules in one rule file, as one Prometheus loads them."""
    return {"groups": [group for rules in rule_files for group in rules["groups"]]}


@dataclass(frozen=True)
class Firing:
    """One firing alert: its full label set (severity included) and what `$value` renders to."""

    labels: Mapping[str, str]
    value: str = ""


@dataclass(frozen=True)
class Check:
    """At `at`, alert `alert` fires exactly `fires` (none: it is silent)."""

    at: str
    alert: str
    fires: tuple[Firing, ...] = ()


@dataclass(frozen=True)
class ExprCheck:
    """At `at`, `expr` returns exactly `samples` (series text -> value)."""

    at: str
    expr: str
    samples: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """Synthetic series (selector text -> promtool values notation) and what the rules make of
    them. `interval` spaces the samples and the rule evaluations."""

    name: str
    series: Mapping[str, str]
    checks: tuple[Check, ...] = ()
    exprs: tuple[ExprCheck, ...] = ()
    interval: str = "1m"
    zero_traffic: bool = False


def counter(*phases: tuple[float, int]) -> str:
    """promtool values of a counter from 0 growing by `per_sample` for `samples` samples, phase
    after phase: counter((5, 30), (0, 40)) grows 5 a sample for 30 samples, then stays."""
    parts, value = ["0"], 0.0
    for per_sample, samples in phases:
        parts.append(f"{_num(value + per_sample)}+{_num(per_sample)}x{samples - 1}")
        value += per_sample * samples
    return " ".join(parts)


def gauge(value: float, samples: int) -> str:
    return f"{_num(value)}x{samples}"


def _num(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(value)


_VALUE = re.compile(r"\{\{[^}]*\$value[^}]*\}\}")
_LABEL = re.compile(r"\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def expected_annotations(rule: Mapping, firing: Firing) -> dict[str, str]:
    """The rule's annotations as Prometheus renders them for `firing`."""
    rendered = {}
    for key, template in rule.get("annotations", {}).items():
        text = _VALUE.sub(lambda _: firing.value, template)
        text = _LABEL.sub(lambda m: firing.labels[m.group(1)], text)
        assert "{{" not in text, f"the harness cannot render {key} of {rule['alert']}: {template!r}"
        rendered[key] = text
    return rendered


def unit_test_files(cases: Iterable[Case], rules: Mapping, rule_file: str, folder: Path) -> list[str]:
    """One promtool unit-test file per sample interval (evaluation_interval is per file), written
    to `folder`; returns their names."""
    alerts: dict[str, list[Mapping]] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.setdefault(rule["alert"], []).append(rule)
    by_interval: dict[str, list[dict]] = {}
    for case in cases:
        by_interval.setdefault(case.interval, []).append(_test(case, alerts))
    names = []
    for interval, tests in sorted(by_interval.items()):
        name = f"tests-{interval}.yml"
        body = {"rule_files": [rule_file], "evaluation_interval": interval, "tests": tests}
        (folder / name).write_text(yaml.safe_dump(body, sort_keys=False))
        names.append(name)
    return names


def _rule_for(rules: list[Mapping], labels: Mapping[str, str]) -> Mapping:
    """Of several apps' rules with one alert name, the one whose firing has `labels`: its
    selectors pin that namespace and job (kube-state-metrics' rules set the job as a label)."""
    found = [rule for rule in rules
             if f'namespace="{labels["namespace"]}"' in rule["expr"]
             and (f'job="{labels["job"]}"' in rule["expr"] or rule["labels"].get("job") == labels["job"])]
    assert len(found) == 1, f"{len(found)} rules could fire {labels}"
    return found[0]


def _test(case: Case, alerts: Mapping[str, list[Mapping]]) -> dict:
    test: dict = {
        "name": case.name,
        "interval": case.interval,
        "input_series": [{"series": series, "values": values} for series, values in case.series.items()],
    }
    if case.checks:
        test["alert_rule_test"] = [{
            "eval_time": check.at,
            "alertname": check.alert,
            "exp_alerts": [{"exp_labels": dict(firing.labels),
                            "exp_annotations": expected_annotations(
                                _rule_for(alerts[check.alert], firing.labels), firing)}
                           for firing in check.fires],
        } for check in case.checks]
    if case.exprs:
        test["promql_expr_test"] = [{
            "expr": check.expr,
            "eval_time": check.at,
            "exp_samples": [{"labels": labels, "value": value} for labels, value in check.samples.items()],
        } for check in case.exprs]
    return test
