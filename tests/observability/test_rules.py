"""The app's alert rules: Prometheus accepts them, each alert fires on a bad series and stays
silent on a healthy one (promtool's own rule engine decides), and the plan's properties a user
relies on: selectors pinned to the app, no alert for a feature the app lacks, two apps side by
side in one Prometheus.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import rules_cases as cases
from rules_promtool import Case, Check, ExprCheck, Firing, counter, dump, merge, require_promtool, run, unit_test_files

from observability.metrics import AppMetrics, AppTarget, SloTargets
from observability.rules import PAGE_BURNS, TICKET_BURNS, app_rules, bucket_bound_matcher

SEVERITIES = {"page", "ticket", "warning"}
SLO_ALERTS = {cases.FAST_BURN, cases.SLOW_BURN, cases.LATENCY_FAST, cases.LATENCY_SLOW}
MINIMAL = AppTarget(namespace="team-a", job="shop", deployment="shop", service_name="shop")
DJANGO = AppTarget(namespace="webstack-django-local", job="web-app", deployment="web-app", hpa="web-app",
                   min_replicas=2, max_replicas=6, service_name="web-app", db_max_connections=100,
                   release_job_prefixes=("web-migrate-", "web-collectstatic-"))
TARGETS = {
    "fastapi with HPA, release Jobs and a database": cases.TARGET,
    "django": DJANGO,
    "no HPA, no release Job, no database": MINIMAL,
    "a dotted Deployment name": MINIMAL.model_copy(update={"deployment": "shop.v2", "hpa": "shop.v2"}),
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_promtool()


def alerts(rules: dict) -> dict[str, dict]:
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def exprs(rules: dict) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def unit_tests(promtool: str, folder: Path, rules: dict, test_cases: tuple[Case, ...]):
    """Writes the rules and the cases' unit tests to `folder` and runs promtool on them."""
    (folder / "rules.yml").write_text(dump(rules))
    files = unit_test_files(test_cases, rules, "rules.yml", folder)
    return run(promtool, "test", "rules", *files, cwd=folder)


# promtool: the real rule engine


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
@pytest.mark.parametrize("slo", [
    SloTargets(), SloTargets(availability_percent=99.99, latency_ms=1000, latency_percent=50),
], ids=["default slo", "extreme slo"])
def test_promtool_accepts_the_rule_file(promtool, tmp_path, target, slo):
    (tmp_path / "rules.yml").write_text(dump(app_rules(target, slo)))
    result = run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_a_bad_series_and_stays_silent_on_a_healthy_one(promtool, tmp_path):
    result = unit_tests(promtool, tmp_path, app_rules(cases.TARGET, cases.SLO), cases.CASES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_of_the_plan_has_a_firing_and_a_silent_case():
    checks = [(case, check) for case in cases.CASES for check in case.checks]
    firing = {check.alert for _, check in checks if check.fires}
    silent = {check.alert for _, check in checks if not check.fires}
    idle = {check.alert for case, check in checks if case.zero_traffic and not check.fires}
    planned = set(alerts(app_rules(cases.TARGET, cases.SLO)))
    assert planned - firing == set(), "alerts no case fires"
    assert planned - silent == set(), "alerts no case keeps silent"
    assert SLO_ALERTS <= planned
    assert SLO_ALERTS - idle == set(), "SLO alerts not proved silent without traffic"


def test_a_wrong_expectation_fails_promtool(promtool, tmp_path):
    """The harness can fail: the 5% error case, expected silent, and expected at another value."""
    case = cases.AVAILABILITY[0]
    fired = case.checks[0]
    wrong_value = dataclasses.replace(fired, fires=(Firing(cases.app("page"), "6%"),))
    for n, wrong in enumerate((dataclasses.replace(fired, fires=()), wrong_value)):
        folder = tmp_path / str(n)
        folder.mkdir()
        result = unit_tests(promtool, folder, app_rules(cases.TARGET, cases.SLO),
                           (dataclasses.replace(case, checks=(wrong,), exprs=()),))
        assert result.returncode != 0
        assert cases.FAST_BURN in result.stdout + result.stderr


def test_two_apps_in_one_prometheus_keep_their_series_and_alerts_apart(promtool, tmp_path):
    """The same job name in two namespaces, and a second job in the first namespace: one rule
    file, and only the failing app alerts, with its own labels; each app's ratio is its own."""
    admin = cases.TARGET.model_copy(update={"job": "web-admin", "deployment": "web-admin", "hpa": None})
    rules = merge(*(app_rules(target, cases.SLO) for target in (cases.TARGET, DJANGO, admin)))
    (tmp_path / "rules.yml").write_text(dump(rules))
    checked = run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    admin_requests = {cases.request_series(200).replace(f'job="{cases.JOB}"', 'job="web-admin"'):
                      counter((100, 20))}
    side_by_side = Case(
        "the fastapi app fails, the django app and the admin job are healthy",
        {**cases.requests(95, 5, 20), **cases.requests(100, 0, 20, ns=DJANGO.namespace), **admin_requests},
        checks=(Check("10m", cases.FAST_BURN, (Firing(cases.app("page"), "5%"),)),),
        exprs=(ExprCheck("10m", cases.ERRORS_5M, {
            f'{{namespace="{cases.NS}", job="web-app"}}': 0.05,
            f'{{namespace="{DJANGO.namespace}", job="web-app"}}': 0,
            f'{{namespace="{cases.NS}", job="web-admin"}}': 0,
        }),))
    result = unit_tests(promtool, tmp_path, rules, (side_by_side,))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("bound", ["1", "1.0"], ids=["Go client", "Python client"])
def test_a_whole_second_threshold_matches_either_client_spelling_of_the_bucket(promtool, tmp_path, bound):
    slo = SloTargets(latency_ms=1000)
    slow = Case(f'20% slower than 1 s, bucket le="{bound}"', cases.durations(100, 80, 20, bounds=(bound,)),
                checks=(Check("10m", cases.LATENCY_FAST, (Firing(cases.app("page"), "20%"),)),))
    result = unit_tests(promtool, tmp_path, app_rules(cases.TARGET, slo), (slow,))
    assert result.returncode == 0, result.stdout + result.stderr


# Properties of the plan

SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
# What may stay in an expression once its selectors, label lists, numbers and durations are gone:
# an unbraced metric name would be left over, selecting every app's series.
PROMQL_WORDS = {"sum", "max", "avg", "count", "by", "on", "rate", "increase", "absent", "round",
                "and", "or", "unless"}


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
def test_every_selector_pins_the_namespace_and_app_metrics_pin_the_job(target):
    for expr in exprs(app_rules(target, SloTargets())):
        selectors = SELECTOR.findall(expr)
        assert selectors, expr
        for metric, matchers in selectors:
            assert f'namespace="{target.namespace}"' in matchers, expr
            if not metric.startswith("kube_"):
                assert f'job="{target.job}"' in matchers, expr
        rest = SELECTOR.sub(" ", expr)
        rest = re.sub(r"\((?:[a-z_]+, )*[a-z_]+\)|\[\w+\]|\b\d+(\.\d+)?\b", " ", rest)
        assert set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rest)) <= PROMQL_WORDS, expr


def test_kube_state_metrics_selectors_pick_the_apps_own_objects():
    rules = alerts(app_rules(cases.TARGET, cases.SLO))
    assert 'pod=~"web-app-[a-z0-9]+-[a-z0-9]+"' in rules["WebAppPodRestarting"]["expr"]
    assert 'horizontalpodautoscaler="web-app"' in rules["WebAppHpaAtMaxReplicas"]["expr"]
    assert 'job_name=~"web-migrate-.*|web-collectstatic-.*"' in rules["WebAppReleaseJobFailed"]["expr"]
    dotted = alerts(app_rules(TARGETS["a dotted Deployment name"], SloTargets()))
    assert r'pod=~"shop\\.v2-[a-z0-9]+-[a-z0-9]+"' in dotted["WebAppPodRestarting"]["expr"]


@pytest.mark.parametrize(("update", "gone", "metric"), [
    ({"hpa": None}, {"WebAppHpaAtMaxReplicas"}, "kube_horizontalpodautoscaler"),
    ({"release_job_prefixes": ()}, {"WebAppReleaseJobFailed"}, "kube_job"),
    ({"db_max_connections": None}, {"WebAppDbConnectionsHigh", "WebAppDbConnectionsCritical"},
     "db_client_connections"),
], ids=["no hpa", "no release job", "no database"])
def test_a_feature_the_app_lacks_has_no_alert(update, gone, metric):
    full = app_rules(cases.TARGET, cases.SLO)
    without = app_rules(cases.TARGET.model_copy(update=update), cases.SLO)
    assert set(alerts(full)) - set(alerts(without)) == gone
    assert not any(metric in expr for expr in exprs(without))


def test_every_alert_says_how_bad_which_app_and_what_to_look_at_first():
    for target in TARGETS.values():
        for name, rule in alerts(app_rules(target, SloTargets())).items():
            assert rule["labels"]["severity"] in SEVERITIES, name
            summary, description = rule["annotations"]["summary"], rule["annotations"]["description"]
            assert f"{target.namespace}/{target.job}" in summary, name
            assert target.namespace in description, name
            assert "Look first at" in description, name
            if "$value" in summary:
                assert "$value" in description, name


def test_group_and_alert_names_are_unique_and_two_apps_share_no_group():
    one, other = app_rules(cases.TARGET, cases.SLO), app_rules(DJANGO, cases.SLO)
    names = [rule.get("alert") or rule["record"] for g in one["groups"] for rule in g["rules"]]
    assert len(names) == len(set(names))
    assert not {g["name"] for g in one["groups"]} & {g["name"] for g in other["groups"]}


def _thresholds(expr: str) -> list[str]:
    return re.findall(r">= ([0-9.]+)", expr)


def test_burn_thresholds_are_the_workbook_factors_times_the_budget():
    rules = alerts(app_rules(cases.TARGET, SloTargets(availability_percent=99.9, latency_percent=99)))
    assert _thresholds(rules[cases.FAST_BURN]["expr"]) == ["0.0144"] * 2 + ["0.006"] * 2
    assert _thresholds(rules[cases.SLOW_BURN]["expr"]) == ["0.003"] * 2 + ["0.001"] * 2
    assert _thresholds(rules[cases.LATENCY_FAST]["expr"]) == ["0.144"] * 2 + ["0.06"] * 2
    assert [(b.long, b.short, float(b.factor)) for b in PAGE_BURNS + TICKET_BURNS] == [
        ("1h", "5m", 14.4), ("6h", "30m", 6.0), ("1d", "2h", 3.0), ("3d", "6h", 1.0)]


def test_a_loose_objective_still_pages_when_every_request_misses():
    """50% within the threshold: 14.4x the budget is 7.2, a ratio never reached; the threshold
    stops at 1 (every request slow) instead of never firing."""
    rules = alerts(app_rules(cases.TARGET, SloTargets(latency_percent=50)))
    assert _thresholds(rules[cases.LATENCY_FAST]["expr"]) == ["1"] * 4
    assert _thresholds(rules[cases.LATENCY_SLOW]["expr"]) == ["1"] * 2 + ["0.5"] * 2


@pytest.mark.parametrize(("latency_ms", "matcher"), [
    (500, 'le="0.5"'), (250, 'le="0.25"'), (5, 'le="0.005"'), (1500, 'le="1.5"'),
    (1000, r'le=~"1|1\\.0"'), (60_000, r'le=~"60|60\\.0"'),
])
def test_the_latency_bucket_is_matched_as_clients_print_its_bound(latency_ms, matcher):
    assert bucket_bound_matcher(latency_ms) == matcher


def test_the_apps_own_metric_names_replace_the_defaults():
    metrics = AppMetrics(requests_total="shop_requests_total", request_duration="shop_latency_seconds",
                         status_label="code", db_connections="shop_db_pool")
    text = "\n".join(exprs(app_rules(cases.TARGET, cases.SLO, metrics)))
    for name in ("shop_requests_total{", 'code=~"5.."', "shop_latency_seconds_bucket{",
                 "shop_latency_seconds_count{", "shop_db_pool{"):
        assert name in text
    for default in ("http_requests_total", "http_request_duration_seconds", "status=",
                    "db_client_connections"):
        assert default not in text


def test_the_alerts_page_lists_exactly_the_alerts_of_the_plan():
    page = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    listed = set(re.findall(r"^\| `(WebApp\w+)` \|", page, flags=re.MULTILINE))
    assert listed == set(alerts(app_rules(cases.TARGET, cases.SLO)))
