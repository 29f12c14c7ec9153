"""The alert and recording rules of one app, as a pure plan.

`app_rules(target, slo, metrics)` returns `{"groups": [...]}`: the `spec` of a PrometheusRule and,
dumped as YAML, a Prometheus rule file (`promtool check rules` reads it). Every selector pins the
app's `namespace` and, for the app's own metrics, its `job`; every alert carries `namespace`, `job`
and `severity` labels, so Alertmanager can route by app, and two apps' rules can share one
Prometheus (group names hold namespace and job; recorded series keep both as labels).

Severities: `page` wakes someone (users are hurt now, or soon), `ticket` is for the next working
day (the budget is going, or a release is stuck), `warning` is a cause worth a look before it
becomes a symptom. docs/alerts.md explains each alert and what to do first.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import NamedTuple

from observability.metrics import AppMetrics, AppTarget, SloTargets

PAGE = "page"
TICKET = "ticket"
WARNING = "warning"

# Alert templates (Prometheus' Go templates, rendered when an alert fires).
PERCENT = "{{ $value | humanizePercentage }}"
NUMBER = "{{ $value | humanize }}"
COUNT = '{{ printf "%.0f" $value }}'  # increase() extrapolates: 12.2 restarts reads as 12


def label(name: str) -> str:
    return "{{ $labels.%s }}" % name


class Burn(NamedTuple):
    """Alert when the budget burns `factor` times too fast over both windows."""

    long: str
    short: str
    factor: Decimal


# Multiwindow, multi-burn-rate alerts for a 30-day SLO (Google SRE workbook, "Alerting on SLOs",
# table 5-8). A burn rate of 1 spends exactly the budget in 30 days. 14.4x over 1h spends 2% of the
# month's budget in that hour, 6x over 6h spends 5%: page. 3x over 1d and 1x over 3d each spend
# 10%: a ticket. Each long window has a short one 1/12 its length, so an alert stops minutes
# after the errors stop instead of holding for the whole long window.
PAGE_BURNS = (Burn("1h", "5m", Decimal("14.4")), Burn("6h", "30m", Decimal("6")))
TICKET_BURNS = (Burn("1d", "2h", Decimal("3")), Burn("3d", "6h", Decimal("1")))
# Every window a burn above reads, shortest first: one recording rule each.
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

# A container that restarts once (an OOM kill, a failed liveness probe during a spike) is worth a
# look on the dashboard, not an alert. More than 3 in an hour is a crash loop (the kubelet's
# back-off of 10s, 20s, 40s ... 5m still restarts it about a dozen times an hour) or repeated OOM.
POD_RESTARTS_MAX = 3
POD_RESTARTS_WINDOW = "1h"
# The HPA scales down 5 minutes after load falls (its default stabilization window), so touching
# the maximum for a burst is normal; 15 minutes at it means demand is above what it may add.
HPA_AT_MAX_FOR = "15m"
# Pools grow in a burst and shrink after their idle timeout: 10 minutes above 80% is the steady
# state, leaving room for a rollout's surge pods and a migration Job to connect. At 95% the next
# new pod (HPA scale-out, rollout) cannot get a connection, so the page waits only 5 minutes.
DB_WARNING_SHARE = Decimal("0.8")
DB_WARNING_FOR = "10m"
DB_CRITICAL_SHARE = Decimal("0.95")
DB_CRITICAL_FOR = "5m"
# Longer than a slow rollout or a restart of every pod, so only an app that never exports the
# contract's metrics (or a name the kit was not told) is reported.
METRICS_MISSING_FOR = "15m"
# One pod of many failing its scrape is noise (kubernetes-mixin's TargetDown uses 10% too); with
# 10 pods or fewer, any one pod counts. A new pod is a target before it answers (not-ready
# endpoints are scraped too): 5 minutes is longer than a pod takes to start.
TARGET_DOWN_SHARE = Decimal("0.1")
TARGET_DOWN_FOR = "5m"
# No pod answers /metrics: the SLO alerts read nothing, so this is the page for a dead app.
APP_DOWN_FOR = "5m"
# No scrape target at all: the ServiceMonitor selects nothing, or no pod exists. Longer than a
# first deploy takes to be discovered.
NOT_SCRAPED_FOR = "15m"

# Recorded series: `namespace_job:` says they are summed by those two labels, which they keep, so
# apps never overwrite each other's series. The dashboards may read them too.
ERROR_RECORD = "namespace_job:webstack_http_errors:ratio_rate{window}"
SLOW_RECORD = "namespace_job:webstack_http_slow:ratio_rate{window}"

_BY_APP = "sum by (namespace, job)"


def app_rules(target: AppTarget, slo: SloTargets, metrics: AppMetrics = AppMetrics()) -> dict:
    """The rule groups of one app: SLO records and burn alerts, then workload and scrape health."""
    app = _App(target, metrics)
    groups = [
        {"name": app.group("availability"), "rules": _availability(app, slo)},
        {"name": app.group("latency"), "rules": _latency(app, slo)},
        {"name": app.group("workload"), "rules": _workload(app)},
        {"name": app.group("scrape"), "rules": _scrape(app, slo)},
    ]
    return {"groups": [group for group in groups if group["rules"]]}


def bucket_bound_matcher(latency_ms: int) -> str:
    """The `le` matcher of the histogram bucket at `latency_ms`, as clients print bucket bounds.

    Prometheus and Go's client print 0.5 s as "0.5" and 1 s as "1"; Python's prometheus_client
    prints 1 s as "1.0". A fraction prints the same in both, so it is matched exactly; a whole
    number of seconds matches either spelling (an app exports one of them, never both).
    """
    bound = repr(latency_ms / 1000)  # the shortest round-trip digits, as both clients print them
    if bound.endswith(".0"):
        whole = bound.removesuffix(".0")
        return "le=~" + _quote(whole + "|" + whole + r"\.0")
    return f"le={_quote(bound)}"


class _App:
    """The selectors of one app's series."""

    def __init__(self, target: AppTarget, metrics: AppMetrics) -> None:
        self.target = target
        self.metrics = metrics
        self.name = f"{target.namespace}/{target.job}"

    def group(self, part: str) -> str:
        return f"webstack:{self.name}:{part}"

    def series(self, metric: str, *matchers: str) -> str:
        """`metric` of this app's scrape: pinned to its namespace and job."""
        pins = [f"namespace={_quote(self.target.namespace)}", f"job={_quote(self.target.job)}"]
        return f"{metric}{{{', '.join([*pins, *matchers])}}}"

    def cluster_series(self, metric: str, *matchers: str) -> str:
        """`metric` of kube-state-metrics about this app's objects: pinned to its namespace only
        (their `job` is kube-state-metrics')."""
        return f"{metric}{{{', '.join([f'namespace={_quote(self.target.namespace)}', *matchers])}}}"


def _availability(app: _App, slo: SloTargets) -> list[dict]:
    requests = app.metrics.requests_total
    status = app.metrics.status_label
    records = []
    for window in WINDOWS:
        total = f"{_BY_APP} (rate({app.series(requests)}[{window}]))"
        five_xx = f"{status}=~" + _quote("5..")
        errors = f"{_BY_APP} (rate({app.series(requests, five_xx)}[{window}]))"
        # `or 0 * total`: traffic without a single 5xx series yet is a ratio of 0, not no ratio.
        # `total > 0`: no traffic is no ratio at all (not NaN), so no alert fires on an idle app.
        records.append({
            "record": ERROR_RECORD.format(window=window),
            "expr": f"(\n  {errors}\n  or\n  0 * {total}\n)\n/\n({total} > 0)",
        })
    budget = _budget(slo.availability_percent)
    objective = f"{_number(Decimal(str(slo.availability_percent)))}% of requests answered without a 5xx"
    look = (f"Look first at which routes answer 5xx (the app's dashboard, `{requests}` by "
            f"`{app.metrics.route_label}` and `{status}`), the app's logs, and whether a release "
            f"or a dependency (database) changed at the start.")
    return records + [
        _burn_alert(app, "WebAppErrorBudgetFastBurn", PAGE, ERROR_RECORD, PAGE_BURNS, budget,
                    what="of requests failed with a 5xx", objective=objective, look=look),
        _burn_alert(app, "WebAppErrorBudgetSlowBurn", TICKET, ERROR_RECORD, TICKET_BURNS, budget,
                    what="of requests failed with a 5xx", objective=objective, look=look),
    ]


def _latency(app: _App, slo: SloTargets) -> list[dict]:
    histogram = app.metrics.request_duration
    le = bucket_bound_matcher(slo.latency_ms)
    records = []
    for window in WINDOWS:
        total = f"{_BY_APP} (rate({app.series(f'{histogram}_count')}[{window}]))"
        fast = f"{_BY_APP} (rate({app.series(f'{histogram}_bucket', le)}[{window}]))"
        # Slow = all requests minus those in the bucket at the threshold; no traffic, no ratio.
        records.append({
            "record": SLOW_RECORD.format(window=window),
            "expr": f"(\n  {total}\n  -\n  {fast}\n)\n/\n({total} > 0)",
        })
    budget = _budget(slo.latency_percent)
    objective = (f"{_number(Decimal(str(slo.latency_percent)))}% of requests answered within "
                 f"{slo.latency_ms} ms")
    what = f"of requests took longer than {slo.latency_ms} ms"
    look = (f"Look first at which routes are slow (the app's dashboard, `{histogram}` by "
            f"`{app.metrics.route_label}`), CPU throttling and the replica count, and the "
            f"database's slow queries.")
    return records + [
        _burn_alert(app, "WebAppLatencyBudgetFastBurn", PAGE, SLOW_RECORD, PAGE_BURNS, budget,
                    what=what, objective=objective, look=look),
        _burn_alert(app, "WebAppLatencyBudgetSlowBurn", TICKET, SLOW_RECORD, TICKET_BURNS, budget,
                    what=what, objective=objective, look=look),
    ]


def _burn_alert(app: _App, name: str, severity: str, record: str, burns: tuple[Burn, ...],
                budget: Decimal, *, what: str, objective: str, look: str) -> dict:
    branches = []
    for burn in burns:
        # A ratio cannot pass 1: with a loose objective (say 50%) 14.4x the budget is out of
        # reach, so the threshold stops at "every request", which `>=` still lets fire.
        threshold = _number(min(burn.factor * budget, Decimal(1)))
        long = app.series(record.format(window=burn.long))
        short = app.series(record.format(window=burn.short))
        branches.append(f"(\n  {long} >= {threshold}\n  and\n  {short} >= {threshold}\n)")
    pace = " or ".join(f"{_number(b.factor)}x over {b.long} (and {b.short})" for b in burns)
    longs = " or ".join(b.long for b in burns)
    return {
        "alert": name,
        "expr": "\nor\n".join(branches),
        "labels": {"severity": severity},
        "annotations": {
            "summary": f"{app.name}: {PERCENT} {what}; the error budget burns too fast",
            "description": f"{PERCENT} {what} over the last {longs} (namespace "
                           f"{app.target.namespace}, job {app.target.job}). The objective is "
                           f"{objective} over 30 days, a budget of {_percent(budget)}; this alert "
                           f"fires at a burn of {pace}. {look}",
        },
    }


def _workload(app: _App) -> list[dict]:
    target = app.target
    rules = [_pod_restarts(app)]
    if target.hpa is not None:
        rules.append(_hpa_at_max(app, target.hpa))
    if target.release_job_prefixes:
        rules.append(_release_job_failed(app, target.release_job_prefixes))
    if target.db_max_connections is not None:
        rules += _db_connections(app, target.db_max_connections)
    return rules


def _pod_restarts(app: _App) -> dict:
    # A Deployment's pods are `<deployment>-<pod-template-hash>-<5 random>`: two dash-free parts
    # after the name, so another Deployment `<deployment>-worker` never matches.
    pods = f"pod=~{_quote(_regex_literal(app.target.deployment) + '-[a-z0-9]+-[a-z0-9]+')}"
    restarts = app.cluster_series("kube_pod_container_status_restarts_total", pods)
    return {
        "alert": "WebAppPodRestarting",
        "expr": f"sum by (namespace, pod, container) (increase({restarts}[{POD_RESTARTS_WINDOW}]))"
                f" > {POD_RESTARTS_MAX}",
        "labels": {"severity": WARNING, **_app_job(app)},
        "annotations": {
            "summary": f"{app.name}: container {label('container')} of pod {label('pod')} "
                       f"restarted {COUNT} times in {POD_RESTARTS_WINDOW}",
            "description": f"Container {label('container')} of pod {label('pod')} "
                           f"(Deployment {app.target.deployment}, namespace {app.target.namespace}) "
                           f"restarted {COUNT} times in the last {POD_RESTARTS_WINDOW} (alert "
                           f"above {POD_RESTARTS_MAX}). Look first at `kubectl -n "
                           f"{app.target.namespace} describe pod {label('pod')}` "
                           f"(Last State: OOMKilled means raise the memory limit; a failed liveness "
                           f"probe means a slow or stuck worker) and the previous container's logs "
                           f"(`kubectl logs --previous`).",
        },
    }


def _hpa_at_max(app: _App, hpa: str) -> dict:
    by_hpa = "max by (namespace, horizontalpodautoscaler)"
    on_hpa = "on (namespace, horizontalpodautoscaler)"

    def ksm(metric: str) -> str:
        return f"{by_hpa} ({app.cluster_series(metric, f'horizontalpodautoscaler={_quote(hpa)}')})"

    current = ksm("kube_horizontalpodautoscaler_status_current_replicas")
    max_ = ksm("kube_horizontalpodautoscaler_spec_max_replicas")
    min_ = ksm("kube_horizontalpodautoscaler_spec_min_replicas")
    # An HPA with min == max is always at its maximum: that is a fixed size, not a shortage.
    return {
        "alert": "WebAppHpaAtMaxReplicas",
        "expr": f"{current}\n>= {on_hpa}\n{max_}\nand {on_hpa}\n({min_} < {on_hpa} {max_})",
        "for": HPA_AT_MAX_FOR,
        "labels": {"severity": WARNING, **_app_job(app)},
        "annotations": {
            "summary": f"{app.name}: the autoscaler {hpa} has run at its maximum "
                       f"({NUMBER} replicas) for {HPA_AT_MAX_FOR}",
            "description": f"HorizontalPodAutoscaler {hpa} in namespace {app.target.namespace} has kept "
                           f"{NUMBER} replicas, its maximum, for {HPA_AT_MAX_FOR}: demand is above what it "
                           f"may add, and latency or errors follow. Look first at the latency SLO and CPU "
                           f"per pod: if the load is real, raise the stack's autoscaling max_replicas (mind "
                           f"the database's connection limit); if it is not, find what got slower.",
        },
    }


def _release_job_failed(app: _App, prefixes: tuple[str, ...]) -> dict:
    names = "|".join(f"{_regex_literal(prefix)}.*" for prefix in prefixes)
    # kube_job_failed is the Job's Failed condition. Not kube_job_status_failed: that counts
    # failed pods, which is 1 for a Job whose first pod failed and whose retry (backoffLimit 1)
    # succeeded, a release that went fine.
    failed = app.cluster_series("kube_job_failed", f"job_name=~{_quote(names)}", 'condition="true"')
    return {
        "alert": "WebAppReleaseJobFailed",
        "expr": f"max by (namespace, job_name) ({failed}) > 0",
        "labels": {"severity": TICKET, **_app_job(app)},
        "annotations": {
            "summary": f"{app.name}: release Job {label('job_name')} failed",
            "description": f"Release Job {label('job_name')} in namespace "
                           f"{app.target.namespace} failed (its retries or deadline ran out), so "
                           f"`pulumi up` stopped before the rollout: the previous release still "
                           f"serves. Look first at `kubectl -n {app.target.namespace} logs "
                           f"job/{label('job_name')}`; fix the step (a migration must work "
                           f"against the running release) and run `pulumi up` again, which "
                           f"replaces the Job and clears this alert.",
        },
    }


def _db_connections(app: _App, max_connections: int) -> list[dict]:
    # Used and idle connections both hold one of the server's max_connections.
    share = f"{_BY_APP} ({app.series(app.metrics.db_connections)}) / {max_connections}"
    alerts = []
    for name, severity, threshold, for_ in (
        ("WebAppDbConnectionsHigh", WARNING, DB_WARNING_SHARE, DB_WARNING_FOR),
        ("WebAppDbConnectionsCritical", PAGE, DB_CRITICAL_SHARE, DB_CRITICAL_FOR),
    ):
        alerts.append({
            "alert": name,
            "expr": f"{share} > {_number(threshold)}",
            "for": for_,
            "labels": {"severity": severity},
            "annotations": {
                "summary": f"{app.name}: the app holds {PERCENT} of the database's "
                           f"{max_connections} connections",
                "description": f"The pods of {app.name} hold {PERCENT} of the database's max_connections "
                               f"({max_connections}, used and idle) for {for_} (alert above "
                               f"{_percent(threshold)}). New pods (scale-out, rollout) and release Jobs need "
                               f"free connections. Look first at pool size x replicas (it must stay under "
                               f"{max_connections}), idle connections held open, and long transactions "
                               f"(pg_stat_activity).",
            },
        })
    return alerts


def _scrape(app: _App, slo: SloTargets) -> list[dict]:
    up = app.series("up")
    requests = app.series(app.metrics.requests_total)
    durations = app.series(f"{app.metrics.request_duration}_count")
    le = bucket_bound_matcher(slo.latency_ms)
    buckets = app.series(f"{app.metrics.request_duration}_bucket", le)
    contract = (f"Look first at the app's /metrics: export the names the kit reads (docs/alerts.md, "
                f"observability/metrics.py), or tell the kit yours with `observability.metrics.*`.")
    return [
        {
            "alert": "WebAppMetricsMissing",
            "expr": f"max by (namespace, job) ({up}) == 1\nunless on (namespace, job)\n(\n"
                    f"  count by (namespace, job) ({requests})\n  and on (namespace, job)\n"
                    f"  count by (namespace, job) ({durations})\n)",
            "for": METRICS_MISSING_FOR,
            "labels": {"severity": TICKET},
            "annotations": {
                "summary": f"{app.name}: scraped, but without {app.metrics.requests_total} or "
                           f"{app.metrics.request_duration}",
                "description": f"{app.name} answers its scrape, but for {METRICS_MISSING_FOR} it "
                               f"has exported no `{app.metrics.requests_total}` counter or no "
                               f"`{app.metrics.request_duration}` histogram, so the availability "
                               f"and latency alerts and dashboards see nothing. {contract}",
            },
        },
        {
            "alert": "WebAppLatencyBucketMissing",
            "expr": f"count by (namespace, job) ({durations})\nunless on (namespace, job)\n"
                    f"count by (namespace, job) ({buckets})",
            "for": METRICS_MISSING_FOR,
            "labels": {"severity": TICKET},
            "annotations": {
                "summary": f"{app.name}: {app.metrics.request_duration} has no bucket at the "
                           f"latency objective",
                "description": f"{app.name} exports `{app.metrics.request_duration}`, but for "
                               f"{METRICS_MISSING_FOR} without a bucket whose bound is the latency objective "
                               f"({le}), so the latency alerts see nothing. Look first at the app's "
                               f"histogram buckets: add one at {slo.latency_ms} ms, or set the latency "
                               f"objective to a bound the histogram has.",
            },
        },
        {
            "alert": "WebAppTargetDown",
            "expr": f"1 - avg by (namespace, job) ({up}) > {_number(TARGET_DOWN_SHARE)}",
            "for": TARGET_DOWN_FOR,
            "labels": {"severity": WARNING},
            "annotations": {
                "summary": f"{app.name}: {PERCENT} of its scrape targets are down",
                "description": f"{PERCENT} of the pods of {app.name} have not answered Prometheus' scrape of "
                               f"/metrics for {TARGET_DOWN_FOR}. Look first at the Prometheus targets page "
                               f"(the scrape error), then at those pods: not ready, stuck, or a "
                               f"NetworkPolicy that blocks Prometheus.",
            },
        },
        {
            "alert": "WebAppDown",
            "expr": f"max by (namespace, job) ({up}) == 0",
            "for": APP_DOWN_FOR,
            "labels": {"severity": PAGE},
            "annotations": {
                "summary": f"{app.name}: no pod answers its scrape",
                "description": f"No pod of {app.name} has answered Prometheus' scrape of /metrics "
                               f"for {APP_DOWN_FOR}; the app is probably down, and its SLO alerts "
                               f"are blind. Look first at `kubectl -n {app.target.namespace} get "
                               f"pods` (crash loops, pending pods) and the Prometheus targets page "
                               f"(the scrape error).",
            },
        },
        {
            "alert": "WebAppNotScraped",
            "expr": f"absent({up})",
            "for": NOT_SCRAPED_FOR,
            "labels": {"severity": TICKET},
            "annotations": {
                "summary": f"{app.name}: Prometheus scrapes no target of this app",
                "description": f"For {NOT_SCRAPED_FOR} Prometheus has had no scrape target with "
                               f"namespace {app.target.namespace} and job {app.target.job}: every "
                               f"alert of this app is blind. Look first at whether pods of "
                               f"Deployment {app.target.deployment} exist and whether the "
                               f"ServiceMonitor selects the Service (Prometheus' "
                               f"serviceMonitorSelector, the Service's labels and port name).",
            },
        },
    ]


def _app_job(app: _App) -> dict[str, str]:
    """The app's `job` for alerts on kube-state-metrics series, whose own `job` is summed away:
    every alert routes by the app's namespace and job."""
    return {"job": app.target.job}


def _budget(percent: float) -> Decimal:
    """The share of requests allowed to miss: 99.9 -> 0.001 (Decimal: 1 - 0.999 is not 0.001
    in binary floating point)."""
    return (Decimal(100) - Decimal(str(percent))) / 100


def _number(value: Decimal) -> str:
    """A plain decimal PromQL reads: 0.0144, 1, 6 (never 1.44E-2)."""
    return format(value.normalize(), "f")


def _percent(share: Decimal) -> str:
    return f"{_number(share * 100)}%"


def _quote(value: str) -> str:
    """A PromQL string literal: PromQL reads Go's string escapes, and JSON's are among them."""
    return json.dumps(value)


def _regex_literal(text: str) -> str:
    """`text` matched literally inside a PromQL (RE2) regex: Kubernetes names may hold dots."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)
