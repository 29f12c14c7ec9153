"""MonitoringStack: Prometheus, Alertmanager, Grafana, an OpenTelemetry Collector and Tempo,
installed from their pinned community charts into one namespace."""

from __future__ import annotations

from typing import Any, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.namespace import POD_SECURITY_VERSION
from observability.charts import (COLLECTOR_RELEASE, KUBE_PROMETHEUS_STACK, OTEL_COLLECTOR,
                                  PROMETHEUS_CRDS, STACK_RELEASE, TEMPO, TEMPO_RELEASE, Chart, MonitoringStackArgs,
                                  collector_endpoint, collector_values, kube_prometheus_stack_values,
                                  tempo_values)

GRAFANA_SECRET = "grafana-admin"
GRAFANA_USER = "admin"
# Seconds a release may take to become ready. A first install on a fresh EKS Auto Mode cluster waits
# for nodes to be launched and volumes to be created: minutes, not seconds.
RELEASE_TIMEOUT = 900
# The charts' pods are third-party: baseline refuses host access and privileged containers outright;
# restricted is audited and warned about (kubectl and `pulumi up` print the warnings), because a
# chart upgrade that drops a securityContext field must not stop monitoring from starting.
POD_SECURITY = {"enforce": "baseline", "audit": "restricted", "warn": "restricted"}


class MonitoringStack(pulumi.ComponentResource):
    """The monitoring namespace and four Helm releases: the operator's CRDs first, then
    kube-prometheus-stack, Tempo and the collector. Nothing is exposed outside the cluster (reach
    Grafana with `kubectl port-forward`); Grafana's admin password is generated and kept as a secret."""

    namespace: pulumi.Output[str]
    otlp_endpoint: str
    grafana_admin_password: pulumi.Output[str]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: MonitoringStackArgs, *, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`depends_on`: what the cluster needs first (e.g. the StorageClass the volumes use)."""
        super().__init__("webstack:observability:MonitoringStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": args.namespace, "labels": {
            "app.kubernetes.io/managed-by": "webstack",
            **{f"pod-security.kubernetes.io/{mode}": level for mode, level in POD_SECURITY.items()},
            **{f"pod-security.kubernetes.io/{mode}-version": POD_SECURITY_VERSION for mode in POD_SECURITY},
        }}, opts=child)
        namespace = ns.metadata.apply(lambda m: m.name)

        # Helm creates CRDs, it never upgrades or waits for them; their own release goes first, and
        # every release or object with a monitoring.coreos.com kind depends on it.
        crds = self._release(f"{name}-crds", PROMETHEUS_CRDS, namespace, {}, depends_on=[ns])
        password = random.RandomPassword(f"{name}-grafana-password", length=32, special=False, opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin", metadata={"name": GRAFANA_SECRET, "namespace": namespace},
            string_data={"admin-user": GRAFANA_USER, "admin-password": password.result}, opts=child)
        stack = self._release(f"{name}-stack", KUBE_PROMETHEUS_STACK, namespace,
                              kube_prometheus_stack_values(args, grafana_secret=GRAFANA_SECRET),
                              depends_on=[crds, secret, *depends_on], release=STACK_RELEASE, skip_crds=True)
        tempo = self._release(f"{name}-tempo", TEMPO, namespace, tempo_values(args), depends_on=[ns, *depends_on],
                              release=TEMPO_RELEASE)
        # Its ServiceMonitor needs the CRDs; its exporter needs Tempo's Service to resolve.
        collector = self._release(f"{name}-collector", OTEL_COLLECTOR, namespace, collector_values(args),
                                  depends_on=[crds, tempo], release=COLLECTOR_RELEASE)

        self.namespace = namespace
        self.otlp_endpoint = collector_endpoint(args.namespace)
        self.grafana_admin_password = pulumi.Output.secret(password.result)
        # An app's ServiceMonitor and rules need the CRDs, and the operator to act on them.
        self.ready = [crds, stack, collector]
        self.register_outputs({"namespace": self.namespace, "otlp_endpoint": self.otlp_endpoint})

    def _release(self, name: str, chart: Chart, namespace: pulumi.Input[str], values: dict[str, Any], *,
                 depends_on: Sequence[pulumi.Resource], release: str | None = None,
                 skip_crds: bool = False) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            name, name=release or chart.name, chart=chart.name, version=chart.version,
            repository_opts={"repo": chart.repo}, namespace=namespace, values=values,
            skip_crds=skip_crds, timeout=RELEASE_TIMEOUT,
            # A failed install or upgrade is rolled back, not left half-applied for the next `up`.
            atomic=True, cleanup_on_fail=True, max_history=5,
            # `null` in the values removes a chart default (the collector's unused receivers).
            allow_null_values=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)))

