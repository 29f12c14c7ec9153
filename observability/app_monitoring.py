"""AppMonitoring: one app's ServiceMonitor, alert rules and Grafana dashboard, labelled for the
Prometheus and Grafana that should pick them up."""

from __future__ import annotations

import json
from typing import Any, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from components.types import LabelKey, LabelValue, NamespaceName, UrlPath
from observability.dashboards import ScrapeJobs, app_dashboard
from observability.metrics import AppMetrics, AppTarget, SloTargets
from observability.rules import app_rules

MONITORING_API = "monitoring.coreos.com/v1"


class AppMonitoringArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: AppTarget = Field(description="Where the app's series live and what bounds it.")
    slo: SloTargets = Field(default_factory=SloTargets, description="The objectives the alerts defend.")
    metrics: AppMetrics = Field(default_factory=AppMetrics, description="The app's metric names.")
    service_labels: dict[LabelKey, LabelValue] = Field(min_length=1, description="Labels selecting the app's "
                                                                                  "Service.")
    metrics_port: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=15,
                              description="Name of the Service port serving metrics.")
    metrics_path: UrlPath = Field("/metrics", description="Path of the metrics.")
    scrape_interval_seconds: int = Field(
        30, ge=5, le=300, description="Seconds between scrapes. 30 s: the shortest alert window (5 m) holds 10 "
                                      "samples, enough for rate() to ride out a missed scrape.")
    monitor_labels: dict[LabelKey, LabelValue] = Field(min_length=1, description="Labels the Prometheus' "
                                                                                 "serviceMonitorSelector matches.")
    rule_labels: dict[LabelKey, LabelValue] = Field(min_length=1, description="Labels its ruleSelector matches.")
    dashboard_labels: dict[LabelKey, LabelValue] = Field(min_length=1, description="Labels Grafana's sidecar "
                                                                                   "loads dashboards by.")
    dashboards_namespace: NamespaceName = Field(description="Namespace of the dashboard ConfigMap.")
    title: str = Field(min_length=1, max_length=200, description="The dashboard's title.")
    scrape_jobs: ScrapeJobs = Field(default_factory=ScrapeJobs, description="The `job` labels of the series the "
                                                                            "app does not export (kube-state-metrics, "
                                                                            "the kubelet, the collector).")


def service_monitor_spec(args: AppMonitoringArgs) -> dict[str, Any]:
    seconds = args.scrape_interval_seconds
    return {
        "selector": {"matchLabels": dict(args.service_labels)},
        "namespaceSelector": {"matchNames": [args.target.namespace]},
        "endpoints": [{"port": args.metrics_port, "path": args.metrics_path, "interval": f"{seconds}s",
                       # A scrape that outlives its interval would overlap the next one.
                       "scrapeTimeout": f"{min(10, seconds)}s"}],
    }


class AppMonitoring(pulumi.ComponentResource):
    """A ServiceMonitor for the app's Service, a PrometheusRule with its SLO and health alerts and a
    dashboard ConfigMap; they wait for `depends_on` (the CRDs and the operator, when the kit installs them)."""

    def __init__(self, name: str, args: AppMonitoringArgs, *, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("webstack:observability:AppMonitoring", name, None, opts)
        opts_after = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        t = args.target
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor", api_version=MONITORING_API, kind="ServiceMonitor",
            metadata={"name": t.job, "namespace": t.namespace, "labels": dict(args.monitor_labels)},
            spec=service_monitor_spec(args), opts=opts_after)
        k8s.apiextensions.CustomResource(
            f"{name}-rules", api_version=MONITORING_API, kind="PrometheusRule",
            metadata={"name": t.job, "namespace": t.namespace, "labels": dict(args.rule_labels)},
            spec=app_rules(t, args.slo, args.metrics), opts=opts_after)
        dashboard = app_dashboard(t, args.slo, args.metrics, title=args.title, jobs=args.scrape_jobs)
        # One ConfigMap per app, named after its namespace: two stacks' dashboards never collide.
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata={"name": f"{t.namespace}-{t.job}-dashboard"[:253], "namespace": args.dashboards_namespace,
                      "labels": dict(args.dashboard_labels)},
            data={f"{t.namespace}-{t.job}.json": json.dumps(dashboard, indent=2, sort_keys=True) + "\n"},
            opts=opts_after)
        self.register_outputs({})
