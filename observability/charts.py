"""The community charts the kit installs, pinned, and the values it gives them: pure functions from
the stack's settings to each release's values (rendered to `out/<stack>/config/helm/`).

Why these charts: kube-prometheus-stack is how most clusters run Prometheus (the operator,
Prometheus, Alertmanager, Grafana, kube-state-metrics, with the Kubernetes rules and dashboards);
the OpenTelemetry Collector chart is the project's own; Tempo (single binary) stores traces with
nothing else to run and is Grafana's native trace datasource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from components.types import NamespaceName
from observability.collector import SPAN_METRICS_PORT, collector_config


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str


PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"
# The operator's CRDs as their own chart, installed and upgraded before everything else: Helm never
# upgrades a chart's crds/ folder, and objects of a kind whose CRD is not registered yet fail with
# `no matches for kind "ServiceMonitor"` (pulumi/pulumi-kubernetes#1712). Same operator release
# (v0.93.1) as the stack chart below.
PROMETHEUS_CRDS = Chart("prometheus-operator-crds", "31.0.1", PROMETHEUS_COMMUNITY)
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.5.3", PROMETHEUS_COMMUNITY)
COLLECTOR_VERSION = "0.165.0"
OTEL_COLLECTOR = Chart("opentelemetry-collector", "0.170.0", "https://open-telemetry.github.io/opentelemetry-helm-charts")
# Moved from grafana/helm-charts to grafana-community in 2026.
TEMPO = Chart("tempo", "2.2.4", "https://grafana-community.github.io/helm-charts")

# Release names are Service names too: the collector is reached at otel-collector.<ns>:4318.
STACK_RELEASE = "kube-prometheus-stack"
COLLECTOR_RELEASE = "otel-collector"
TEMPO_RELEASE = "tempo"
COLLECTOR_OTLP_HTTP = 4318
COLLECTOR_OTLP_GRPC = 4317
TEMPO_OTLP_GRPC = 4317
TEMPO_HTTP = 3200
# Grafana's Service, as kube-prometheus-stack names it after the release (the port-forward target).
GRAFANA_SERVICE = f"{STACK_RELEASE}-grafana"


def collector_endpoint(namespace: str) -> str:
    """The OTLP/HTTP endpoint of the collector the kit installs in `namespace`."""
    return f"http://{COLLECTOR_RELEASE}.{namespace}.svc:{COLLECTOR_OTLP_HTTP}"


# kube-prometheus-stack's Prometheus selects ServiceMonitors, PodMonitors and rules by this label
# unless told otherwise; the kit tells it explicitly and puts the same label on the app's objects.
MONITOR_LABELS = {"release": STACK_RELEASE}
# Grafana's dashboard sidecar loads ConfigMaps with this label, from every namespace.
DASHBOARD_LABELS = {"grafana_dashboard": "1"}
PROMETHEUS_UID = "prometheus"
TEMPO_UID = "tempo"

# Restricted Pod Security for the containers whose charts leave it unset.
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"}}


class PrometheusArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(2, ge=1, le=5, description="Prometheus replicas, each scraping everything: one can "
                                                     "restart while the other keeps alerting. dev: 1.")
    retention_days: int = Field(30, ge=1, le=365, description="Days of metrics kept. dev: 7, staging: 15.")
    storage_gb: int = Field(100, ge=5, le=16_384, description="Volume per replica, GiB; the oldest blocks are "
                                                              "dropped at 90% of it. dev: 20, staging: 50.")
    memory_mib: int = Field(4096, ge=512, le=262_144, description="Memory request and limit, MiB (series "
                                                                  "are held in memory). dev: 1024.")
    cpu_millicores: int = Field(1000, ge=100, le=64_000, description="CPU request, millicores. dev: 250.")


class AlertmanagerArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(2, ge=1, le=5, description="Alertmanager replicas; they deduplicate notifications "
                                                     "between them. dev: 1.")


class TempoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_hours: int = Field(336, ge=1, le=8760, description="Hours of traces kept. dev: 72, staging: 168.")
    storage_gb: int = Field(50, ge=1, le=16_384, description="Volume for traces and the write-ahead log, GiB. "
                                                             "dev: 10.")
    memory_mib: int = Field(2048, ge=256, le=65_536, description="Memory request and limit, MiB. dev: 512.")


class CollectorArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(2, ge=1, le=20, description="Collector replicas behind one Service. dev: 1.")
    memory_mib: int = Field(1024, ge=128, le=32_768, description="Memory request and limit, MiB; the memory "
                                                                 "limiter refuses data before the limit. dev: 256.")


class MonitoringStackArgs(BaseModel):
    """What the kit installs in `install` mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: NamespaceName = Field("monitoring", description="Namespace of Prometheus, Grafana, the collector "
                                                               "and Tempo; Prometheus scrapes the app from it.")
    storage_class: str | None = Field(
        None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="StorageClass of the Prometheus, Alertmanager and Tempo volumes; default: the cluster's "
                    "default (the kit makes one on clusters it creates).")
    prometheus: PrometheusArgs = Field(default_factory=PrometheusArgs, description="Prometheus.")
    alertmanager: AlertmanagerArgs = Field(default_factory=AlertmanagerArgs, description="Alertmanager.")
    tempo: TempoArgs = Field(default_factory=TempoArgs, description="Tempo, the trace store.")
    collector: CollectorArgs = Field(default_factory=CollectorArgs, description="The OpenTelemetry Collector.")


def _claim(size_gb: int, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{size_gb}Gi"}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"volumeClaimTemplate": {"spec": spec}}


def _memory(mib: int, cpu_m: int) -> dict[str, Any]:
    # Memory request = limit: a monitoring pod evicted under node pressure is the one you need then.
    # No CPU limit: throttling a scraper makes it miss scrapes; the request reserves its share.
    return {"requests": {"cpu": f"{cpu_m}m", "memory": f"{mib}Mi"}, "limits": {"memory": f"{mib}Mi"}}


def kube_prometheus_stack_values(args: MonitoringStackArgs, *, grafana_secret: str) -> dict[str, Any]:
    """Prometheus selects what carries MONITOR_LABELS in every namespace; Grafana's password comes
    from `grafana_secret` (keys admin-user, admin-password); nothing is exposed outside the cluster."""
    p = args.prometheus
    selector = {"matchLabels": dict(MONITOR_LABELS)}
    prometheus_spec = {
        "replicas": p.replicas,
        "retention": f"{p.retention_days}d",
        # Below the volume's size, so a full disk never stops ingestion: the oldest blocks go first.
        "retentionSize": f"{int(p.storage_gb * 0.9)}GB",
        "resources": _memory(p.memory_mib, p.cpu_millicores),
        "storageSpec": _claim(p.storage_gb, args.storage_class),
        # Explicit selectors (not "nil uses Helm values"): the same labels the kit puts on the
        # app's ServiceMonitor and PrometheusRule, in any namespace.
        **{f"{kind}SelectorNilUsesHelmValues": False for kind in ("serviceMonitor", "podMonitor", "rule")},
        "serviceMonitorSelector": selector, "podMonitorSelector": selector, "ruleSelector": selector,
        "serviceMonitorNamespaceSelector": {}, "podMonitorNamespaceSelector": {}, "ruleNamespaceSelector": {},
        # Exemplars: a latency panel's dots link to the trace that made them.
        "enableFeatures": ["exemplar-storage"],
        "exemplars": {"maxSize": 100_000},
    }
    datasources = [{
        "name": "Tempo", "uid": TEMPO_UID, "type": "tempo", "access": "proxy",
        "url": f"http://{TEMPO_RELEASE}.{args.namespace}.svc:{TEMPO_HTTP}",
        "jsonData": {"serviceMap": {"datasourceUid": PROMETHEUS_UID},
                     "tracesToMetrics": {"datasourceUid": PROMETHEUS_UID},
                     "nodeGraph": {"enabled": True}},
    }]
    off = {"enabled": False}
    return {
        "crds": off,  # the CRDs come from their own release, first
        # EKS runs the control plane: its controller-manager, scheduler, etcd and proxy cannot be
        # scraped, and their rules would only say "target down" for ever.
        "kubeControllerManager": off, "kubeScheduler": off, "kubeEtcd": off, "kubeProxy": off,
        "defaultRules": {"rules": {"etcd": False, "kubeControllerManager": False, "kubeSchedulerAlerting": False,
                                   "kubeSchedulerRecording": False, "kubeProxy": False}},
        # node-exporter needs the host's network, PID namespace and filesystem (privileged Pod
        # Security); the app's saturation comes from the kubelet's cAdvisor metrics instead.
        "nodeExporter": off, "windowsMonitoring": off,
        "prometheus": {"ingress": off, "service": {"type": "ClusterIP"}, "prometheusSpec": prometheus_spec},
        "alertmanager": {"ingress": off, "alertmanagerSpec": {
            "replicas": args.alertmanager.replicas, "storage": _claim(2, args.storage_class),
            "resources": _memory(128, 50)}},
        "grafana": {
            "ingress": off, "service": {"type": "ClusterIP"},
            "admin": {"existingSecret": grafana_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            # Dashboards and datasources are code (ConfigMaps): nothing to keep on a volume.
            "persistence": off,
            "sidecar": {"dashboards": {"enabled": True, **_sidecar_label(DASHBOARD_LABELS), "searchNamespace": "ALL"},
                        "datasources": {"exemplarTraceIdDestinations": {"datasourceUid": TEMPO_UID,
                                                                        "traceIdLabelName": "trace_id"}}},
            "additionalDataSources": datasources,
            "resources": _memory(256, 100),
        },
        "prometheusOperator": {"resources": _memory(256, 100)},
        "kube-state-metrics": {"resources": _memory(256, 50)},
    }


def _sidecar_label(labels: dict[str, str]) -> dict[str, str]:
    (key, value), = labels.items()
    return {"label": key, "labelValue": value}


def tempo_values(args: MonitoringStackArgs) -> dict[str, Any]:
    t = args.tempo
    persistence: dict[str, Any] = {"enabled": True, "size": f"{t.storage_gb}Gi", "accessModes": ["ReadWriteOnce"]}
    if args.storage_class:
        persistence["storageClassName"] = args.storage_class
    return {
        "tempo": {
            "retention": f"{t.retention_hours}h",
            # Traces come from the collector only, over OTLP gRPC.
            "receivers": {"jaeger": None, "otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{TEMPO_OTLP_GRPC}"}}}},
            "reportingEnabled": False,  # no usage reports leave the cluster
            "resources": _memory(t.memory_mib, 100),
            "securityContext": RESTRICTED_CONTAINER,
        },
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "persistence": persistence,
    }


def collector_values(args: MonitoringStackArgs) -> dict[str, Any]:
    c = args.collector
    config = collector_config(trace_store_endpoint=f"{TEMPO_RELEASE}.{args.namespace}.svc:{TEMPO_OTLP_GRPC}",
                              memory_limit_mib=c.memory_mib, metrics_port=SPAN_METRICS_PORT)
    # The chart merges `config` into its own default, which also receives Jaeger, Zipkin and its own
    # metrics into a debug exporter: null removes what the kit does not run.
    for name in ("jaeger", "zipkin", "prometheus"):
        config.setdefault("receivers", {}).setdefault(name, None)
    pipelines = config.setdefault("service", {}).setdefault("pipelines", {})
    pipelines.setdefault("logs", None)
    closed = {"enabled": False}
    return {
        # The Service (and so the endpoint and the scrape job) is `otel-collector`, not the chart's
        # `<release>-opentelemetry-collector`.
        "fullnameOverride": COLLECTOR_RELEASE,
        "mode": "deployment",
        # spanmetrics and the prometheus exporter are in the contrib distribution.
        # The collector release tools/build-engine builds and the tests run this config through
        # (core v0.165.0); the chart's default would be its own appVersion, 0.158.0.
        "image": {"repository": "otel/opentelemetry-collector-contrib", "tag": COLLECTOR_VERSION},
        "replicaCount": c.replicas,
        "config": config,
        "ports": {"jaeger-compact": closed, "jaeger-thrift": closed, "jaeger-grpc": closed, "zipkin": closed,
                  "spanmetrics": {"enabled": True, "containerPort": SPAN_METRICS_PORT,
                                  "servicePort": SPAN_METRICS_PORT, "protocol": "TCP"}},
        "serviceMonitor": {"enabled": True, "metricsEndpoints": [{"port": "spanmetrics"}],
                           "extraLabels": dict(MONITOR_LABELS)},
        "resources": _memory(c.memory_mib, 100),
        "securityContext": RESTRICTED_CONTAINER,
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "podDisruptionBudget": {"enabled": c.replicas > 1, "minAvailable": 1},
    }
