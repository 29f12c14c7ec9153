"""The app's Grafana dashboard, as a pure plan: values in, the dashboard's JSON model out (built with
grafana-foundation-sdk, Grafana 11.6's schema).

One dashboard per app, read top to bottom in an incident: traffic (rate, 5xx ratio, latency per
route), the objectives (availability and latency over 30 days against their targets, the error
budget left), saturation (CPU and memory of the pods against their limits, replicas against the
autoscaler's bounds, restarts), the database's connections against max_connections, and latency
from the traces' span metrics with exemplars, next to the slowest traces in Tempo.

Every selector names its `namespace` and `job`, so two apps (or two stacks) in one Prometheus
never mix. The series come from four sources (METRIC_SOURCES): the app's own `/metrics` (the
contract in observability/metrics.py), kube-state-metrics and the kubelet's cAdvisor (both from
kube-prometheus-stack), and the OpenTelemetry Collector's span metrics. An exemplar's link to its
trace is the Prometheus datasource's setting (`exemplarTraceIdDestinations`, label `trace_id`, in
observability/charts.py); the queries here only ask for exemplars.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row, ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.tempo import TempoQuery
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode
from pydantic import BaseModel, ConfigDict, Field

from observability.charts import COLLECTOR_RELEASE
from observability.collector import SERVER_SPAN_KIND, SERVICE_LABEL, SPAN_DURATION_BUCKET, SPAN_KIND_LABEL
from observability.metrics import AppMetrics, AppTarget, SloTargets

Source = Literal["app", "kube-state-metrics", "cadvisor", "collector"]

# The collector's spanmetrics connector, through its Prometheus exporter: a histogram in
# milliseconds, labelled service_name, span_name, span_kind, status_code.

# Series the dashboard reads that the app does not export, by where they come from.
PLATFORM_METRICS: Mapping[str, Source] = {
    "container_cpu_usage_seconds_total": "cadvisor",
    "container_memory_working_set_bytes": "cadvisor",
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_current_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_spec_min_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_spec_max_replicas": "kube-state-metrics",
    SPAN_DURATION_BUCKET: "collector",
}


def app_metric_names(metrics: AppMetrics) -> frozenset[str]:
    """The series names the dashboard reads from the app's scrape: the contract's, with the
    suffixes Prometheus gives a histogram."""
    return frozenset({metrics.requests_total, f"{metrics.request_duration}_bucket",
                      f"{metrics.request_duration}_count", metrics.db_connections})


def metric_sources(metrics: AppMetrics = AppMetrics()) -> dict[str, Source]:
    """Every series name the dashboard's queries use -> its source."""
    return {**PLATFORM_METRICS, **dict.fromkeys(sorted(app_metric_names(metrics)), "app")}


METRIC_SOURCES: Mapping[str, Source] = metric_sources()

# Panel titles a reader (and the tests) look panels up by.
REQUEST_RATE = "Requests per second by route"
ERROR_RATIO = "5xx ratio by route"
LATENCY = "Latency by route (p50, p90, p99)"
AVAILABILITY = "Availability, 30 days"
FAST_REQUESTS = "Requests within the latency objective, 30 days"
ERROR_BUDGET = "Error budget left, 30 days"
CPU = "CPU per pod vs limit"
MEMORY = "Memory per pod vs limit"
REPLICAS = "Replicas vs autoscaler bounds"
REPLICAS_FIXED = "Replicas"
RESTARTS = "Container restarts"
DB_CONNECTIONS = "Database connections vs max_connections"
TRACE_LATENCY = "Server latency from traces (exemplars)"
SLOW_TRACES = "Traces slower than the latency objective"

UID_MAX = 40  # Grafana refuses a longer dashboard uid


class ScrapeJobs(BaseModel):
    """The `job` labels of the series the app does not export (kube-prometheus-stack's names by
    default), and where the collector runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kube_state_metrics: str = Field("kube-state-metrics", description="Job of kube-state-metrics' scrape; its "
                                    "series keep the object's own `namespace` label (honorLabels).")
    kubelet: str = Field("kubelet", description="Job of the kubelet's scrape; the cAdvisor endpoint's series carry "
                         "metrics_path=\"/metrics/cadvisor\" and the container's `namespace`.")
    collector: str = Field(COLLECTOR_RELEASE, description="Job of the OpenTelemetry Collector's Prometheus "
                           "exporter (span metrics): the Service its ServiceMonitor selects.")
    collector_namespace: str = Field("monitoring", description="The collector's namespace: the `namespace` label "
                                     "its scrape gives the span metrics of every app (service_name tells them "
                                     "apart).")


def dashboard_uid(target: AppTarget) -> str:
    """Stable per namespace and job, at most 40 characters: readable, with a hash so that two
    long names cut to the same prefix still differ."""
    digest = hashlib.sha256(f"{target.namespace}/{target.job}".encode()).hexdigest()[:8]
    return f"{f'{target.namespace}-{target.job}'[:UID_MAX - 9]}-{digest}"


def app_dashboard(target: AppTarget, slo: SloTargets, metrics: AppMetrics = AppMetrics(), *, title: str,
                  prometheus_uid: str = "prometheus", tempo_uid: str = "tempo",
                  jobs: ScrapeJobs = ScrapeJobs()) -> dict[str, Any]:
    """The dashboard's JSON model (what Grafana's sidecar loads from a ConfigMap). The same values
    give the same JSON; the database panel is there only with `target.db_max_connections`, the
    autoscaler's bounds only with `target.hpa`."""
    q = _Queries(target, slo, metrics, jobs)
    prometheus = DataSourceRef(type_val="prometheus", uid=prometheus_uid)

    def promql(expr: str, legend: str, ref: str = "A", *, instant: bool = False, exemplar: bool = False) -> Dataquery:
        query = Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(prometheus).exemplar(exemplar)
        return query.instant() if instant else query.range()

    def series(title_: str, description: str, unit: str, *targets: Dataquery, width: int = 12) -> TimeSeries:
        panel = TimeSeries().title(title_).description(description).datasource(prometheus)
        for target_ in targets:
            panel = panel.with_target(target_)
        return panel.unit(unit).min(0).span(width).height(8)

    def stat(title_: str, description: str, unit: str, steps: list[Threshold], *targets: Dataquery) -> Stat:
        panel = Stat().title(title_).description(description).datasource(prometheus)
        for target_ in targets:
            panel = panel.with_target(target_)
        return (panel.unit(unit).decimals(2).span(8).height(5)
                .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
                .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)))

    ms = slo.latency_ms
    route = "{{" + metrics.route_label + "}}"
    traffic = [
        series(REQUEST_RATE, "Requests answered per second, by route template.", "reqps",
               promql(q.request_rate(), route)),
        series(ERROR_RATIO, "Share of each route's requests answered with a 5xx; 0 when a route answered none.",
               "percentunit", promql(q.error_ratio(), route)),
        series(LATENCY, "Request duration quantiles from the app's histogram, per route.", "s",
               *(promql(q.latency_quantile(quantile), f"{route} p{round(quantile * 100)}", ref)
                 for ref, quantile in (("A", 0.5), ("B", 0.9), ("C", 0.99))), width=24),
    ]

    objectives = [
        stat(AVAILABILITY, f"Share of the last 30 days' requests not answered with a 5xx. Objective: "
                           f"{slo.availability_percent}%.", "percentunit",
             [Threshold(None, "red"), Threshold(slo.availability_percent / 100, "green")],
             promql(q.availability(), "availability", instant=True)),
        stat(FAST_REQUESTS, f"Share of the last 30 days' requests answered within {ms} ms. Objective: "
                            f"{slo.latency_percent}%.", "percentunit",
             [Threshold(None, "red"), Threshold(slo.latency_percent / 100, "green")],
             promql(q.fast_share(), f"within {ms} ms", instant=True)),
        stat(ERROR_BUDGET, "What is left of the failures (5xx) and slow requests the objectives allow in 30 "
                           "days: 100% none spent, 0 all spent, below 0 an objective is missed.", "percentunit",
             [Threshold(None, "red"), Threshold(0, "orange"), Threshold(0.25, "green")],
             promql(q.availability_budget(), "availability", "A", instant=True),
             promql(q.latency_budget(), "latency", "B", instant=True)),
    ]

    if target.hpa:
        replicas = series(
            REPLICAS, f"Pods available, and the autoscaler's current replicas between its bounds "
                      f"({target.min_replicas}..{target.max_replicas}). Current at max: the app can't scale out.",
            "none", promql(q.replicas_available(), "available"),
            *(promql(q.hpa(metric), legend, ref) for ref, metric, legend in (
                ("B", "status_current_replicas", "current"), ("C", "spec_min_replicas", "min"),
                ("D", "spec_max_replicas", "max"))))
    else:
        replicas = series(REPLICAS_FIXED, "Pods available, and the replicas the Deployment asks for (no autoscaler).",
                          "none", promql(q.replicas_available(), "available"),
                          promql(q.replicas_wanted(), "wanted", "B"))
    saturation = [
        series(CPU, "CPU cores used by each pod's containers, and the pods' limit (no line: no CPU limit is set).",
               "none", promql(q.cpu_used(), "{{pod}}"), promql(q.limit("cpu"), "limit per pod", "B")),
        series(MEMORY, "Working set of each pod's containers (what the OOM killer counts), and the pods' limit.",
               "bytes", promql(q.memory_used(), "{{pod}}"), promql(q.limit("memory"), "limit per pod", "B")),
        replicas,
        series(RESTARTS, "Container restarts per pod and container (crashes, OOM kills, failed liveness probes).",
               "none", promql(q.restarts(), "{{pod}} {{container}}")),
    ]

    database = []
    if target.db_max_connections:
        database.append(
            series(DB_CONNECTIONS, f"Connections the app's processes hold open (used: lent to a request; idle: "
                                   f"waiting in a pool), over all pods. The red line is the server's max_connections "
                                   f"({target.db_max_connections}): past it, new logins are refused.", "none",
                   promql(q.db_connections(), "{{state}}"), width=24)
            .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
                [Threshold(None, "green"), Threshold(target.db_max_connections, "red")]))
            .thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE))
            .axis_soft_max(target.db_max_connections))

    tempo = DataSourceRef(type_val="tempo", uid=tempo_uid)
    traces = [
        series(TRACE_LATENCY, f"p99 and p50 of {target.service_name}'s server spans, by span name, from the "
                              f"collector's span metrics. The dots are exemplars: each opens its trace in Tempo.",
               "ms", promql(q.span_quantile(0.99), "{{span_name}} p99", exemplar=True),
               promql(q.span_quantile(0.5), "{{span_name}} p50", "B", exemplar=True)),
        Table().title(SLOW_TRACES).datasource(tempo).span(12).height(8)
        .description(f"The latest of {target.service_name}'s requests that took longer than {ms} ms.")
        .with_target(TempoQuery().ref_id("A").datasource(tempo).query_type("traceql").limit(20)
                     .query(f"{{resource.service.name={_string(target.service_name)} && kind=server "
                            f"&& duration>{ms}ms}}")),
    ]

    board = (Dashboard(title).uid(dashboard_uid(target)).tags(["webstack", target.namespace])
             .description(f"{target.job} in {target.namespace}: generated by webstack (observability/dashboards.py)")
             .time("now-6h", "now").refresh("30s").timezone("browser")
             # Provisioned from a ConfigMap: an edit saved in Grafana would be lost at the next sync.
             .readonly())
    for heading, panels in (("Traffic", traffic), ("Objectives", objectives), ("Saturation", saturation),
                            ("Database", database), ("Traces", traces)):
        if panels:
            board.with_row(Row(heading))
            for panel in panels:
                board.with_panel(panel)
    model = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    for number, panel in enumerate(_panels(model["panels"]), start=1):  # ids in reading order
        panel["id"] = number
    return model


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every Prometheus query in the dashboard, in order."""
    return [(panel["title"], target["expr"]) for panel in _panels(dashboard["panels"])
            for target in panel.get("targets") or [] if "expr" in target]


def _panels(panels: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # a collapsed row holds its panels


def _string(value: str) -> str:
    """A double-quoted PromQL (and TraceQL) string: JSON's escapes are Go's."""
    return json.dumps(value)


def _regex_literal(name: str) -> str:
    """`name` as a regex matching itself: Kubernetes names hold `.` and `-`; only `.` is special."""
    return name.replace(".", "\\.")


def _le(seconds: float) -> str:
    """A bucket's `le` matcher. Clients write a whole number of seconds differently: Go's `1`,
    Python's `1.0`; anything else they write alike (`0.5`)."""
    if seconds == int(seconds):
        return f'le=~"{int(seconds)}|{int(seconds)}\\\\.0"'
    return f"le={_string(repr(seconds))}"


class _Queries:
    """The PromQL of each panel; `$__rate_interval` is Grafana's (at least four scrape intervals)."""

    RATE = "[$__rate_interval]"
    WINDOW = "[30d]"  # the objectives' window (SloTargets: "over 30 days")

    def __init__(self, target: AppTarget, slo: SloTargets, metrics: AppMetrics, jobs: ScrapeJobs) -> None:
        self.t, self.slo, self.m, self.jobs = target, slo, metrics, jobs
        self.pods = f"{_regex_literal(target.deployment)}-[a-z0-9]+-[a-z0-9]+"

    def _sel(self, name: str, *extra: str, namespace: str | None = None, job: str | None = None) -> str:
        pinned = [f"namespace={_string(namespace or self.t.namespace)}", f"job={_string(job or self.t.job)}"]
        return f"{name}{{{', '.join(pinned + list(extra))}}}"

    # -- the app's own series ----------------------------------------------------------------

    def _requests(self, *extra: str, window: str = RATE) -> str:
        return f"{self._sel(self.m.requests_total, *extra)}{window}"

    def _errors(self) -> str:
        return f'{self.m.status_label}=~"5.."'

    def request_rate(self) -> str:
        return f"sum by ({self.m.route_label}) (rate({self._requests()}))"

    def error_ratio(self) -> str:
        by = f"sum by ({self.m.route_label})"
        # A route that answered no 5xx has no 5xx series: `or` gives it 0 instead of no line.
        return (f"({by} (rate({self._requests(self._errors())})) or 0 * {by} (rate({self._requests()})))"
                f" / {by} (rate({self._requests()}))")

    def latency_quantile(self, quantile: float) -> str:
        buckets = f"{self._sel(self.m.request_duration + '_bucket')}{self.RATE}"
        return f"histogram_quantile({quantile}, sum by (le, {self.m.route_label}) (rate({buckets})))"

    def _error_share(self) -> str:
        errors = f"sum(increase({self._requests(self._errors(), window=self.WINDOW)}))"
        return f"(({errors} or vector(0)) / sum(increase({self._requests(window=self.WINDOW)})))"

    def availability(self) -> str:
        return f"1 - {self._error_share()}"

    def fast_share(self) -> str:
        fast = self._sel(self.m.request_duration + "_bucket", _le(self.slo.latency_ms / 1000))
        total = self._sel(self.m.request_duration + "_count")
        return f"sum(increase({fast}{self.WINDOW})) / sum(increase({total}{self.WINDOW}))"

    def availability_budget(self) -> str:
        allowed = _number(1 - self.slo.availability_percent / 100)
        return f"1 - {self._error_share()} / {allowed}"

    def latency_budget(self) -> str:
        allowed = _number(1 - self.slo.latency_percent / 100)
        return f"1 - (1 - {self.fast_share()}) / {allowed}"

    def db_connections(self) -> str:
        return f"sum by (state) ({self._sel(self.m.db_connections)})"

    # -- kube-state-metrics and cAdvisor -----------------------------------------------------

    def _containers(self, name: str) -> str:
        # container="" is cAdvisor's pod-level total and "POD" the pause container: both would count twice.
        return self._sel(name, 'metrics_path="/metrics/cadvisor"', f"pod=~{_string(self.pods)}", 'container!=""',
                         'container!="POD"', job=self.jobs.kubelet)

    def _ksm(self, name: str, *extra: str) -> str:
        return self._sel(name, *extra, job=self.jobs.kube_state_metrics)

    def cpu_used(self) -> str:
        return f"sum by (pod) (rate({self._containers('container_cpu_usage_seconds_total')}{self.RATE}))"

    def memory_used(self) -> str:
        return f"sum by (pod) ({self._containers('container_memory_working_set_bytes')})"

    def limit(self, resource: str) -> str:
        limits = self._ksm("kube_pod_container_resource_limits", f"pod=~{_string(self.pods)}",
                           f"resource={_string(resource)}")
        # Every pod of the Deployment has the same limit: one line, not one per pod.
        return f"max(sum by (pod) ({limits}))"

    def replicas_available(self) -> str:
        return f"sum({self._ksm('kube_deployment_status_replicas_available', self._deployment())})"

    def replicas_wanted(self) -> str:
        return f"sum({self._ksm('kube_deployment_spec_replicas', self._deployment())})"

    def _deployment(self) -> str:
        return f"deployment={_string(self.t.deployment)}"

    def hpa(self, metric: str) -> str:
        hpa = f"horizontalpodautoscaler={_string(self.t.hpa or '')}"
        return f"sum({self._ksm('kube_horizontalpodautoscaler_' + metric, hpa)})"

    def restarts(self) -> str:
        restarts = self._ksm("kube_pod_container_status_restarts_total", f"pod=~{_string(self.pods)}")
        return f"sum by (pod, container) (increase({restarts}{self.RATE}))"

    # -- the collector's span metrics --------------------------------------------------------

    def span_quantile(self, quantile: float) -> str:
        buckets = self._sel(SPAN_DURATION_BUCKET, f"{SERVICE_LABEL}={_string(self.t.service_name)}",
                            f'{SPAN_KIND_LABEL}="{SERVER_SPAN_KIND}"', namespace=self.jobs.collector_namespace,
                            job=self.jobs.collector)
        return f"histogram_quantile({quantile}, sum by (le, span_name) (rate({buckets}{self.RATE})))"


def _number(value: float) -> str:
    """A float as PromQL reads it, without binary noise (1 - 0.999 is 0.0010000000000000009)."""
    return f"{value:.10g}"
