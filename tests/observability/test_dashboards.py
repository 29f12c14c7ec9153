"""The app dashboard (observability/dashboards.py): first as a plan (deterministic, every selector
pinned to the app's namespace and job, panels only for what the app has), then proved against the
real thing: both reference apps run as the kit renders them (tests/observability/dash_apps.py),
with real PostgreSQL, take a few hundred requests, and Debian's Prometheus scrapes them every
second with the labels the kit's ServiceMonitor gives their series (job = the Service's name,
namespace = the app's). Then every panel query must parse, every app metric a panel reads must be
one the app exported (and one the contract names), and the core panels must show the traffic sent.

Series of the other sources (kube-state-metrics, cAdvisor, the collector's span metrics) do not
exist on loopback: their queries are only checked to parse, and listed in the output (-s).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from dash_apps import RunningApp, django_local, fastapi_local, load, open_connections
from dash_prometheus import SCRAPE_INTERVAL_SECONDS, Prometheus, missing_prometheus, static_job
from django_app import shop_app
from harness import missing_app_venv, missing_postgres, require, wait_until
from nginx_fixtures import nginx_bin, nginx_user  # noqa: F401 (fixtures)

from observability import dashboards
from observability.dashboards import (
    DB_CONNECTIONS,
    ERROR_RATIO,
    LATENCY,
    METRIC_SOURCES,
    REPLICAS,
    REPLICAS_FIXED,
    REQUEST_RATE,
    ScrapeJobs,
    app_dashboard,
    dashboard_uid,
    panel_queries,
)
from observability.metrics import AppMetrics, AppTarget, SloTargets

TARGET = AppTarget(namespace="webstack-fastapi-prod", job="web-app", deployment="web-app", hpa="web-app",
                   min_replicas=3, max_replicas=12, release_job_prefixes=("web-migrate-",),
                   service_name="orders-api", db_max_connections=400)
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
# Grafana's interval for rate(): here long enough to hold every sample since Prometheus started.
RATE_INTERVAL = "5m"
# Requests of each path per app: a few hundred in all, DB-bound routes, a 404 on a route
# (a missing item) and one no route matches. Neither app has a route that fails on purpose.
FASTAPI_PATHS = ("/items?limit=5", "/items/424242", "/healthz", "/readyz", "/no/such/route")
DJANGO_PATHS = ("/", "/healthz", "/readyz", "/no/such/page")
ROUNDS = 40


def metric_names(expr: str) -> list[str]:
    return [name for name, _ in SELECTOR.findall(expr)]


def dashboard(target: AppTarget = TARGET, **kw) -> dict:
    return app_dashboard(target, SloTargets(), title="orders-api (prod)", **kw)


def titles(board: dict) -> list[str]:
    return [panel["title"] for panel in board["panels"]]


# --- the plan -------------------------------------------------------------------------------

def test_the_same_values_give_the_same_json_and_a_short_stable_uid():
    assert dashboard() == dashboard()
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert ids == list(range(1, len(ids) + 1))  # unique, in reading order
    uid = dashboard()["uid"]
    assert uid == dashboard_uid(TARGET) and len(uid) <= 40
    long = TARGET.model_copy(update={"namespace": "n" * 63})
    other = TARGET.model_copy(update={"namespace": "n" * 62 + "x"})
    assert len(dashboard_uid(long)) <= 40 and dashboard_uid(long) != dashboard_uid(other)
    assert dashboard_uid(TARGET.model_copy(update={"job": "api"})) != uid


def test_every_selector_pins_the_apps_namespace_and_job_or_its_sources():
    jobs = ScrapeJobs()
    for title, expr in panel_queries(dashboard()):
        for name, matchers in SELECTOR.findall(expr):
            source = METRIC_SOURCES[name]
            namespace = jobs.collector_namespace if source == "collector" else TARGET.namespace
            job = {"app": TARGET.job, "kube-state-metrics": jobs.kube_state_metrics, "cadvisor": jobs.kubelet,
                   "collector": jobs.collector}[source]
            assert f'namespace="{namespace}"' in matchers and f'job="{job}"' in matchers, (title, expr)


def test_every_metric_a_query_reads_has_a_known_source():
    for title, expr in panel_queries(dashboard()):
        assert metric_names(expr), (title, expr)
        for name in metric_names(expr):
            assert name in METRIC_SOURCES, (title, name)


def test_the_latency_objective_reads_the_bucket_at_its_threshold():
    def fast(slo: SloTargets) -> str:
        board = app_dashboard(TARGET, slo, title="t")
        return next(e for t, e in panel_queries(board) if t == dashboards.FAST_REQUESTS)

    assert 'le="0.5"' in fast(SloTargets())
    assert 'le="0.25"' in fast(SloTargets(latency_ms=250))
    # Go clients write a whole second as "1", Python's as "1.0": either is matched.
    assert 'le=~"1|1\\\\.0"' in fast(SloTargets(latency_ms=1000))


def test_the_database_panel_and_the_autoscaler_bounds_appear_only_for_an_app_that_has_them():
    assert DB_CONNECTIONS in titles(dashboard()) and REPLICAS in titles(dashboard())
    bare = TARGET.model_copy(update={"hpa": None, "db_max_connections": None})
    assert DB_CONNECTIONS not in titles(dashboard(bare))
    assert REPLICAS not in titles(dashboard(bare)) and REPLICAS_FIXED in titles(dashboard(bare))
    assert not any("horizontalpodautoscaler" in e for _, e in panel_queries(dashboard(bare)))
    db = next(p for p in dashboard()["panels"] if p["title"] == DB_CONNECTIONS)
    assert [s["value"] for s in db["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 400]


def test_span_latency_shows_exemplars_of_the_apps_server_spans_and_slow_traces_come_from_tempo():
    board = dashboard(prometheus_uid="prom-1", tempo_uid="tempo-1")
    spans = next(p for p in board["panels"] if p["title"] == dashboards.TRACE_LATENCY)
    assert spans["targets"] and all(t["exemplar"] is True for t in spans["targets"])
    assert all('service_name="orders-api"' in t["expr"] for t in spans["targets"])
    assert spans["datasource"] == {"type": "prometheus", "uid": "prom-1"}
    slow = next(p for p in board["panels"] if p["title"] == dashboards.SLOW_TRACES)
    assert slow["datasource"] == {"type": "tempo", "uid": "tempo-1"}
    assert slow["targets"][0]["query"] == '{resource.service.name="orders-api" && kind=server && duration>500ms}'


# --- against the running apps ---------------------------------------------------------------

@dataclass
class Observed:
    prometheus: Prometheus
    apps: dict[str, tuple[RunningApp, dict]]  # stack -> (the app, its dashboard)
    sent: dict[str, dict[tuple[str, int], int]]  # stack -> (path, status) -> requests


@pytest.fixture(scope="module")
def observed(nginx_bin, nginx_user, tmp_path_factory) -> Iterator[Observed]:  # noqa: F811 (fixtures)
    for reason in (missing_prometheus(), missing_app_venv(), shop_app.missing_venv(), missing_postgres()):
        require(reason)
    work = tmp_path_factory.mktemp("dashboards")
    with ExitStack() as cleanup:
        apps = {"fastapi-local": cleanup.enter_context(fastapi_local(work / "fastapi")),
                "django-local": cleanup.enter_context(django_local(work / "django", nginx_bin, nginx_user))}
        prometheus = Prometheus(work / "prometheus", [
            static_job(stack, app.scrape_target, {"job": app.target.job, "namespace": app.target.namespace},
                       proxy_url=app.proxy_url) for stack, app in apps.items()])
        cleanup.callback(prometheus.stop)
        wait_until(lambda: len(prometheus.vector("up == 1")) == len(apps), 20, "both apps scraped",
                   logs=prometheus.logs)

        def scraped_after(moment: float) -> None:
            wait_until(lambda: min(float(s["value"][1]) for s in prometheus.vector("timestamp(up)"))
                       > moment + SCRAPE_INTERVAL_SECONDS, 10, "a scrape after the requests", logs=prometheus.logs)

        # rate() counts only what a series gained between two scrapes: one round first, so each
        # route's series exists in a scrape before the rest of the load adds to it.
        paths = {"fastapi-local": FASTAPI_PATHS, "django-local": DJANGO_PATHS}
        sent = {stack: load(app, paths[stack], 1) for stack, app in apps.items()}
        scraped_after(time.time())
        for stack, app in apps.items():
            for key, count in load(app, paths[stack], ROUNDS - 1).items():
                sent[stack][key] = sent[stack].get(key, 0) + count
        scraped_after(time.time())
        yield Observed(prometheus, {stack: (app, app_dashboard(app.target, SloTargets(), title=stack))
                                    for stack, app in apps.items()}, sent)


def promql(expr: str) -> str:
    """A panel's query as Grafana sends it, with its interval variable filled in."""
    filled = expr.replace("$__rate_interval", RATE_INTERVAL)
    assert "$" not in filled, f"a Grafana variable the test does not fill: {expr}"
    return filled


def panel_results(observed: Observed, stack: str, title: str) -> list[list[dict]]:
    return [observed.prometheus.vector(promql(e)) for t, e in panel_queries(observed.apps[stack][1]) if t == title]


def test_every_panel_query_is_valid_promql(observed):
    not_on_loopback = []
    for stack, (_, board) in observed.apps.items():
        for title, expr in panel_queries(board):
            status, answer = observed.prometheus.query(promql(expr))
            assert (status, answer.get("status")) == (200, "success"), f"{stack} '{title}': {expr}\n{answer}"
            sources = {METRIC_SOURCES.get(name, "unknown") for name in metric_names(expr)}
            if sources != {"app"}:
                not_on_loopback.append(f"{stack} '{title}' ({', '.join(sorted(sources))}): {expr}")
    print("parsed only (series of these sources don't exist on loopback):", *not_on_loopback, sep="\n  ")
    assert not_on_loopback, "the saturation and trace panels read other sources"


def test_every_app_metric_a_panel_reads_is_one_the_app_exports_and_the_contract_names(observed):
    contract = AppMetrics()
    named = {contract.requests_total, contract.db_connections,
             *(contract.request_duration + suffix for suffix in ("_bucket", "_count"))}
    for stack, (app, board) in observed.apps.items():
        exported = observed.prometheus.names(f'{{namespace="{app.target.namespace}", job="{app.target.job}"}}')
        assert exported, f"nothing scraped from {stack}"
        for title, expr in panel_queries(board):
            names = metric_names(expr)
            # A name of no known source counts as the app's: then it must be the contract's.
            if any(METRIC_SOURCES.get(name, "app") == "app" for name in names):
                assert set(names) <= named, f"{stack} '{title}' reads a metric the contract does not name: {expr}"
                assert set(names) <= exported, f"{stack} '{title}': {sorted(set(names) - exported)} not exported"


def test_the_core_panels_show_the_requests_sent(observed):
    for stack in observed.apps:
        sent = observed.sent[stack]
        assert not [key for key in sent if key[1] >= 500], f"{stack} answered 5xx: {sent}"
        assert any(status == 404 for _, status in sent), sent

        (rates,) = panel_results(observed, stack, REQUEST_RATE)
        by_route = {s["metric"].get("route"): float(s["value"][1]) for s in rates}
        expected = {"fastapi-local": {"/items", "/items/{item_id}", "/healthz", "/readyz", "<unmatched>"},
                    "django-local": {"/", "/healthz", "/readyz", "<unmatched>"}}[stack]
        assert expected <= set(by_route), by_route
        assert all(by_route[route] > 0 for route in expected), by_route
        assert not any("424242" in route or "no/such" in route for route in by_route), by_route

        (ratios,) = panel_results(observed, stack, ERROR_RATIO)
        # No 5xx was sent: every route shows 0, not a missing line.
        assert {s["metric"].get("route") for s in ratios} >= expected
        assert all(float(s["value"][1]) == 0 for s in ratios), ratios

        quantiles = panel_results(observed, stack, LATENCY)
        assert len(quantiles) == 3
        for result in quantiles:
            values = {s["metric"].get("route"): float(s["value"][1]) for s in result}
            assert expected <= set(values), values
            assert all(math.isfinite(values[r]) and 0 < values[r] < 10 for r in expected), values


def connections_by_state(observed: Observed, stack: str) -> dict[str, float]:
    (result,) = panel_results(observed, stack, DB_CONNECTIONS)
    return {s["metric"]["state"]: float(s["value"][1]) for s in result}


@pytest.mark.parametrize(("stack", "at_rest"), [
    ("fastapi-local", lambda open_: {"used": 0, "idle": open_}),  # a pool: connections wait in it
    ("django-local", lambda open_: {"used": open_, "idle": 0}),  # a connection per thread, no pool
])
def test_the_connections_panel_counts_the_connections_postgresql_sees(observed, stack, at_rest):
    app = observed.apps[stack][0]
    # Nothing in flight now: the gauge, summed over the workers, settles on PostgreSQL's count.
    wait_until(lambda: sum(connections_by_state(observed, stack).values()) == open_connections(app) > 0, 15,
               f"{stack}: the panel's connections = pg_stat_activity's")
    assert connections_by_state(observed, stack) == at_rest(open_connections(app))
