"""Synthetic series for `promtool test rules`: for each alert, a bad series that fires it and a
healthy one that keeps it silent (and, for the SLO alerts, no traffic at all).

The app is the kit's own: Deployment, Service (Prometheus' job) and HPA `web-app`, release Jobs
`web-migrate-<8 hex>` and `web-collectstatic-<8 hex>`, a database of 100 connections, the default
objectives (99.9% without 5xx; 99% within 500 ms). Error budgets: 0.1% and 1%.

Samples are a minute apart, except the ticket cases' (30 minutes): those read one to three days,
and at one-minute steps promtool would take seconds per case. A recorded ratio is compared
rounded to 0.001 (its float division is not exact).
"""

from __future__ import annotations

from rules_promtool import Case, Check, ExprCheck, Firing, counter, gauge

from observability.metrics import AppTarget, SloTargets

NS = "webstack-fastapi-local"
JOB = "web-app"
TARGET = AppTarget(namespace=NS, job=JOB, deployment="web-app", hpa="web-app", min_replicas=2,
                   max_replicas=10, release_job_prefixes=("web-migrate-", "web-collectstatic-"),
                   service_name="web-app", db_max_connections=100)
SLO = SloTargets()

APP = f'namespace="{NS}", job="{JOB}"'
KSM = f'namespace="{NS}", job="kube-state-metrics", instance="10.0.0.9:8080"'
ERRORS_5M = "round(namespace_job:webstack_http_errors:ratio_rate5m, 0.001)"
SLOW_5M = "round(namespace_job:webstack_http_slow:ratio_rate5m, 0.001)"

FAST_BURN = "WebAppErrorBudgetFastBurn"
SLOW_BURN = "WebAppErrorBudgetSlowBurn"
LATENCY_FAST = "WebAppLatencyBudgetFastBurn"
LATENCY_SLOW = "WebAppLatencyBudgetSlowBurn"


def app(severity: str, **labels: str) -> dict[str, str]:
    """An alert's labels: the app's namespace and job, its severity, and `labels`."""
    return {"namespace": NS, "job": JOB, "severity": severity, **labels}


def request_series(status: int, *, ns: str = NS) -> str:
    """http_requests_total of one route and status."""
    route = 'method="GET", route="/orders/{id}"'
    return f'http_requests_total{{namespace="{ns}", job="{JOB}", {route}, status="{status}"}}'


def requests(ok: float, errors: float, samples: int, *, ns: str = NS) -> dict[str, str]:
    """`ok` 200s and `errors` 500s each sample, steady."""
    return {request_series(200, ns=ns): counter((ok, samples)),
            request_series(500, ns=ns): counter((errors, samples))}


def durations(total: float, within: float, samples: int, *,
              bounds: tuple[str, ...] = ("0.5",)) -> dict[str, str]:
    """The duration histogram of one route: `total` requests a sample, `within` of them inside
    each bucket of `bounds` (and all of them in +Inf)."""
    where = f'{APP}, method="GET", route="/orders/{{id}}"'
    series = {f'http_request_duration_seconds_bucket{{{where}, le="{le}"}}': counter((within, samples))
              for le in bounds}
    series[f'http_request_duration_seconds_bucket{{{where}, le="+Inf"}}'] = counter((total, samples))
    series[f"http_request_duration_seconds_count{{{where}}}"] = counter((total, samples))
    return series


def up(*values: int, samples: int = 30, job: str = JOB) -> dict[str, str]:
    return {f'up{{namespace="{NS}", job="{job}", instance="10.0.0.{i}:8000"}}': gauge(v, samples)
            for i, v in enumerate(values, start=1)}


def restarts(pod: str, every: int, minutes: int = 60, *, ns: str = NS) -> dict[str, str]:
    """A container restarting once every `every` minutes."""
    steps = " ".join(f"{n}x{every - 1}" for n in range(minutes // every + 1))
    where = f'namespace="{ns}", job="kube-state-metrics", pod="{pod}", container="app"'
    return {f"kube_pod_container_status_restarts_total{{{where}}}": steps}


def hpa(current: int, min_: int, max_: int, samples: int = 30) -> dict[str, str]:
    where = f'{KSM}, horizontalpodautoscaler="web-app"'
    return {f"kube_horizontalpodautoscaler_status_current_replicas{{{where}}}": gauge(current, samples),
            f"kube_horizontalpodautoscaler_spec_min_replicas{{{where}}}": gauge(min_, samples),
            f"kube_horizontalpodautoscaler_spec_max_replicas{{{where}}}": gauge(max_, samples)}


def job_failed(job_name: str, *, ns: str = NS) -> dict[str, str]:
    """kube-state-metrics' series of a Job whose Failed condition is true."""
    where = f'namespace="{ns}", job="kube-state-metrics", job_name="{job_name}"'
    return {f'kube_job_failed{{{where}, condition="{c}"}}': gauge(v, 10)
            for c, v in (("true", 1), ("false", 0), ("unknown", 0))}


def connections(used: int, idle: int, *, job: str = JOB, instance: str = "10.0.0.1:8000") -> dict[str, str]:
    where = f'namespace="{NS}", job="{job}", instance="{instance}"'
    return {f'db_client_connections_usage{{{where}, state="used"}}': gauge(used, 30),
            f'db_client_connections_usage{{{where}, state="idle"}}': gauge(idle, 30)}


AVAILABILITY = (
    Case("a 5% error rate pages within minutes",
         requests(95, 5, 60),
         checks=(Check("10m", FAST_BURN, (Firing(app("page"), "5%"),)),),
         exprs=(ExprCheck("10m", ERRORS_5M, {f"{{{APP}}}": 0.05}),)),
    Case("a 1% error rate pages through the 6h window (below 14.4x, above 6x)",
         requests(99, 1, 60),
         checks=(Check("30m", FAST_BURN, (Firing(app("page"), "1%"),)),)),
    Case("the page clears within minutes of the errors stopping, though the hour still holds them",
         {request_series(200): counter((95, 70)), request_series(500): counter((5, 30), (0, 40))},
         checks=(Check("20m", FAST_BURN, (Firing(app("page"), "5%"),)),
                 Check("65m", FAST_BURN))),
    Case("traffic without a single 5xx series is a ratio of 0, and no alert",
         {request_series(200): counter((100, 20))},
         checks=(Check("10m", FAST_BURN),),
         exprs=(ExprCheck("10m", ERRORS_5M, {f"{{{APP}}}": 0}),)),
)

LATENCY = (
    Case("20% of requests slower than 500 ms pages within minutes",
         durations(100, 80, 60),
         checks=(Check("10m", LATENCY_FAST, (Firing(app("page"), "20%"),)),),
         exprs=(ExprCheck("10m", SLOW_5M, {f"{{{APP}}}": 0.2}),)),
    Case("8% slow pages through the 6h window (below 14.4x, above 6x)",
         durations(100, 92, 60),
         checks=(Check("30m", LATENCY_FAST, (Firing(app("page"), "8%"),)),)),
)

HEALTHY_AND_IDLE = (
    Case("a healthy app (0.05% errors, 0.5% slow) pages no one",
         {**requests(1999, 1, 120), **durations(2000, 1990, 120)},
         checks=tuple(Check("2h", name) for name in (FAST_BURN, SLOW_BURN, LATENCY_FAST, LATENCY_SLOW))),
    Case("no traffic at all is no ratio and no alert (no division by zero)",
         {**requests(0, 0, 120), **durations(0, 0, 120)},
         checks=tuple(Check("1h", name) for name in (FAST_BURN, SLOW_BURN, LATENCY_FAST, LATENCY_SLOW)),
         exprs=(ExprCheck("1h", ERRORS_5M), ExprCheck("1h", SLOW_5M)),
         zero_traffic=True),
)

# Half-hour samples: the values are per half hour.
TICKETS = (
    Case("0.4% errors and 4% slow for a day (3-4x the budget) open tickets and page no one",
         {**requests(9960, 40, 50), **durations(10000, 9600, 50)},
         checks=(Check("1d", SLOW_BURN, (Firing(app("ticket"), "0.4%"),)),
                 Check("1d", FAST_BURN),
                 Check("1d", LATENCY_SLOW, (Firing(app("ticket"), "4%"),)),
                 Check("1d", LATENCY_FAST)),
         interval="30m"),
    Case("0.2% errors and 2% slow for three days (2x) open tickets through the 3d window",
         {**requests(9980, 20, 146), **durations(10000, 9800, 146)},
         checks=(Check("3d", SLOW_BURN, (Firing(app("ticket"), "0.2%"),)),
                 Check("3d", LATENCY_SLOW, (Firing(app("ticket"), "2%"),))),
         interval="30m"),
    Case("half the budget for three days opens no ticket",
         {**requests(9995, 5, 146), **durations(10000, 9950, 146)},
         checks=(Check("3d", SLOW_BURN), Check("3d", LATENCY_SLOW)),
         interval="30m"),
)

CRASH_POD = "web-app-7d9f8b6c5d-x2x9k"
WORKLOAD = (
    Case("a crash-looping pod of the Deployment warns; other Deployments and namespaces do not",
         {**restarts(CRASH_POD, 5), **restarts("web-app-7d9f8b6c5d-q7w4z", 30),
          **restarts("web-app-canary-6c8b9d7f4-x2x9k", 5), **restarts(CRASH_POD, 5, ns="other")},
         checks=(Check("60m", "WebAppPodRestarting", (
             Firing(app("warning", pod=CRASH_POD, container="app"), "12"),)),)),
    Case("two restarts in an hour (an OOM kill or two) are not an alert",
         restarts("web-app-7d9f8b6c5d-q7w4z", 30),
         checks=(Check("60m", "WebAppPodRestarting"),)),
    Case("an HPA at its maximum for 15 minutes warns",
         hpa(10, 2, 10),
         checks=(Check("10m", "WebAppHpaAtMaxReplicas"),
                 Check("20m", "WebAppHpaAtMaxReplicas", (
                     Firing(app("warning", horizontalpodautoscaler="web-app"), "10"),)))),
    Case("an HPA below its maximum is silent", hpa(6, 2, 10),
         checks=(Check("20m", "WebAppHpaAtMaxReplicas"),)),
    Case("an HPA pinned at min = max is a fixed size, not a shortage", hpa(3, 3, 3),
         checks=(Check("20m", "WebAppHpaAtMaxReplicas"),)),
    Case("failed release Jobs (either prefix) open a ticket; other Jobs and namespaces do not",
         {**job_failed("web-migrate-1a2b3c4d"), **job_failed("web-collectstatic-9f8e7d6c"),
          **job_failed("nightly-report-28812345"), **job_failed("web-migrate-1a2b3c4d", ns="other")},
         checks=(Check("5m", "WebAppReleaseJobFailed", (
             Firing(app("ticket", job_name="web-migrate-1a2b3c4d")),
             Firing(app("ticket", job_name="web-collectstatic-9f8e7d6c")))),)),
    Case("a release Job whose first pod failed and whose retry succeeded is not a failure",
         {f'kube_job_status_failed{{{KSM}, job_name="web-migrate-1a2b3c4d"}}': gauge(1, 10),
          f'kube_job_status_succeeded{{{KSM}, job_name="web-migrate-1a2b3c4d"}}': gauge(1, 10),
          f'kube_job_failed{{{KSM}, job_name="web-migrate-1a2b3c4d", condition="false"}}': gauge(0, 10)},
         checks=(Check("5m", "WebAppReleaseJobFailed"),)),
    Case("85% of max_connections for 10 minutes warns (another app's connections not counted)",
         {**connections(40, 5), **connections(30, 10, instance="10.0.0.2:8000"),
          **connections(60, 0, job="web-admin")},
         checks=(Check("15m", "WebAppDbConnectionsHigh", (Firing(app("warning"), "85%"),)),
                 Check("15m", "WebAppDbConnectionsCritical"))),
    Case("97% of max_connections for 5 minutes pages",
         connections(90, 7),
         checks=(Check("10m", "WebAppDbConnectionsCritical", (Firing(app("page"), "97%"),)),
                 Check("10m", "WebAppDbConnectionsHigh", (Firing(app("warning"), "97%"),)))),
    Case("half the connections is silent",
         connections(40, 10),
         checks=(Check("20m", "WebAppDbConnectionsHigh"), Check("20m", "WebAppDbConnectionsCritical"))),
)

SCRAPE = (
    Case("an app that is scraped but exports no request counter is reported",
         up(1),
         checks=(Check("10m", "WebAppMetricsMissing"),
                 Check("20m", "WebAppMetricsMissing", (Firing(app("ticket")),)),
                 Check("20m", "WebAppNotScraped"), Check("20m", "WebAppDown"))),
    Case("an app with the counter but no duration histogram is reported",
         {**up(1), **requests(10, 0, 30)},
         checks=(Check("20m", "WebAppMetricsMissing", (Firing(app("ticket")),)),
                 Check("20m", "WebAppLatencyBucketMissing"))),
    Case("an app that follows the metric contract is not reported",
         {**up(1), **requests(10, 0, 30), **durations(10, 10, 30)},
         checks=(Check("20m", "WebAppMetricsMissing"), Check("20m", "WebAppLatencyBucketMissing"))),
    Case("a histogram without a bucket at 500 ms is reported",
         {**up(1), **requests(10, 0, 30), **durations(10, 10, 30, bounds=("0.25", "1.0"))},
         checks=(Check("20m", "WebAppLatencyBucketMissing", (Firing(app("ticket")),)),)),
    Case("one target of three down for 5 minutes warns, and pages no one",
         up(1, 1, 0, samples=15),
         checks=(Check("10m", "WebAppTargetDown", (Firing(app("warning"), "33.33%"),)),
                 Check("10m", "WebAppDown"), Check("10m", "WebAppNotScraped"))),
    Case("every target down for 5 minutes pages",
         up(0, 0, samples=15),
         checks=(Check("3m", "WebAppDown"),
                 Check("10m", "WebAppDown", (Firing(app("page")),)),
                 Check("10m", "WebAppTargetDown", (Firing(app("warning"), "100%"),)))),
    Case("all targets up is silent",
         up(1, 1, samples=15),
         checks=(Check("10m", "WebAppTargetDown"),)),
    Case("no target of the app at all for 15 minutes is reported (another job's are not it)",
         up(1, job="web-admin"),
         checks=(Check("10m", "WebAppNotScraped"),
                 Check("20m", "WebAppNotScraped", (Firing(app("ticket")),)))),
)

CASES = AVAILABILITY + LATENCY + HEALTHY_AND_IDLE + TICKETS + WORKLOAD + SCRAPE
