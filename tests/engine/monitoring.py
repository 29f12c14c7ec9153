"""A Prometheus Operator on the engine's cluster, with a Prometheus configured as the
kube-prometheus-stack chart configures its own, so the engine tests can see whether that
Prometheus would pick up what a stack creates.

The operator is the real program (tools/build-engine builds it, pinned at the chart's
appVersion) and the monitoring.coreos.com CRDs are those of the same release. The operator does
what it does in a cluster: it selects ServiceMonitors and PrometheusRules with the Prometheus'
selectors and writes the resulting Prometheus configuration into the Secret `prometheus-<name>`
and the rule files into the ConfigMaps `prometheus-<name>-rulefiles-<n>`. Those are read back
here; no Prometheus runs (KWOK stands in for the StatefulSet's pod).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import urllib.error
from dataclasses import dataclass

import yaml

from tests.engine.cluster import ENGINE_BIN, ENGINE_DIR, Cluster, Process, free_port, wait_for

OPERATOR = "prometheus-operator"
CRDS = ENGINE_DIR / "crds" / "prometheus-operator"
MONITORING_API = "/apis/monitoring.coreos.com/v1"

# kube-prometheus-stack installed as its docs do (`helm install kube-prometheus-stack ...` into
# `monitoring`): its templates name the Prometheus `<fullname>-prometheus`, and the fullname is the
# release name when that contains the chart name.
NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
PROMETHEUS = f"{RELEASE}-prometheus"
# What its selectors match by default (values.yaml: *SelectorNilUsesHelmValues: true).
RELEASE_LABELS = {"release": RELEASE}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML 1.1's `=` "value" type has no constructor in PyYAML: a plain `=` (an enum value in
    the CRDs' schemas, e.g. relabeling's `action`) would fail to load. Here it is a string,
    as for the API server, the operator and Prometheus (Go YAML readers)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, one resolver less


def missing() -> list[str]:
    """What tools/build-engine has not built for this harness."""
    out = [] if (ENGINE_BIN / OPERATOR).is_file() else [OPERATOR]
    if not sorted(CRDS.glob("monitoring.coreos.com_*.yaml")):
        out.append(f"CRDs in {CRDS}")
    return out


def kube_prometheus_stack_prometheus() -> dict:
    """The Prometheus object chart kube-prometheus-stack 88.x renders with its default values
    (templates/prometheus/prometheus.yaml), for release kube-prometheus-stack in `monitoring`:
    every selector matches `release: kube-prometheus-stack`, every namespace selector is `{}`
    (all namespaces). The fields that only shape the pod are kept as rendered too, so the
    operator generates the configuration it generates in such a cluster."""
    selector = {"matchLabels": dict(RELEASE_LABELS)}
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "namespace": NAMESPACE,
                     "labels": {"app": f"{RELEASE}-prometheus", "release": RELEASE,
                                "app.kubernetes.io/managed-by": "Helm"}},
        "spec": {
            "alerting": {"alertmanagers": [{"namespace": NAMESPACE, "name": f"{RELEASE}-alertmanager",
                                            "port": "http-web", "pathPrefix": "/", "apiVersion": "v2"}]},
            "image": "quay.io/prometheus/prometheus:v3.14.0-distroless",
            "version": "v3.14.0-distroless",
            "externalUrl": f"http://{RELEASE}-prometheus.{NAMESPACE}:9090",
            "paused": False, "replicas": 1, "shards": 1,
            "logLevel": "info", "logFormat": "logfmt",
            "listenLocal": False, "enableOTLPReceiver": False, "enableAdminAPI": False,
            "retention": "10d", "walCompression": True, "routePrefix": "/", "portName": "http-web",
            "serviceAccountName": PROMETHEUS,
            "serviceMonitorSelector": selector, "serviceMonitorNamespaceSelector": {},
            "podMonitorSelector": selector, "podMonitorNamespaceSelector": {},
            "probeSelector": selector, "probeNamespaceSelector": {},
            "ruleSelector": selector, "ruleNamespaceSelector": {},
            "scrapeConfigSelector": selector, "scrapeConfigNamespaceSelector": {},
            "securityContext": {"runAsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000,
                                "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
            "hostNetwork": False,
        },
    }


def scrape_job(namespace: str, service_monitor: str, endpoint: int = 0) -> str:
    """The job_name the operator gives a ServiceMonitor endpoint's scrape config."""
    return f"serviceMonitor/{namespace}/{service_monitor}/{endpoint}"


@dataclass
class Monitoring:
    """The operator and its Prometheus on one Cluster: `Monitoring(cluster).start()`. The
    operator process is the cluster's, so `Cluster.stop()` ends it with the rest."""

    cluster: Cluster
    startup_timeout: float = 90
    process: Process | None = None

    def start(self) -> "Monitoring":
        api = self.cluster.api
        # The CRDs first: every stack's ServiceMonitor and PrometheusRule need them, and the
        # operator checks at start which of its resources the API server serves.
        names = []
        for path in sorted(CRDS.glob("monitoring.coreos.com_*.yaml")):
            crd = load_yaml(path.read_text())
            api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            names.append(crd["metadata"]["name"])
        for name in names:
            wait_for(f"CRD {name} Established", lambda name=name: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                .get("status", {}).get("conditions", [])), self.startup_timeout)
        api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        # The chart's ServiceAccount for Prometheus: without it the StatefulSet's pod is refused.
        api.create(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": PROMETHEUS}})

        self.process = self.cluster.spawn(
            OPERATOR,
            # Its /metrics and /healthz, unused here: loopback only.
            f"--web.listen-address=127.0.0.1:{free_port()}",
            # No --kubelet-service: the kubelet Endpoints controller stays off (KWOK's nodes
            # have no kubelet to scrape). The admission webhook is a separate program, not run.
            "--log-level=info",
            env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)})
        api.create(f"{MONITORING_API}/namespaces/{NAMESPACE}/prometheuses", kube_prometheus_stack_prometheus())
        wait_for("prometheus-operator: generated configuration Secret",
                 lambda: self._alive() and self.config() is not None, self.startup_timeout)
        return self

    def _alive(self) -> bool:
        if self.process.popen.poll() is not None:
            raise RuntimeError(f"{OPERATOR} exited with {self.process.popen.returncode}:\n{self.process.tail(30)}")
        return True

    def logs(self, lines: int = 30) -> str:
        """The operator's last lines, without its informers' start-up chatter."""
        text = self.process.log.read_text(errors="replace").splitlines()
        said = [line for line in text if "Caches are synced" not in line and "Waiting for caches" not in line]
        return f"--- {OPERATOR} (last lines)\n" + "\n".join(said[-lines:])

    # -- what the operator generated ---------------------------------------------------------
    def config(self) -> dict | None:
        """The Prometheus configuration the operator generated, or None before it wrote one."""
        secret = self.cluster.api.get_or_none(f"/api/v1/namespaces/{NAMESPACE}/secrets/prometheus-{PROMETHEUS}")
        if secret is None or "prometheus.yaml.gz" not in secret.get("data", {}):
            return None
        return load_yaml(gzip.decompress(base64.b64decode(secret["data"]["prometheus.yaml.gz"])).decode())

    def scrape_jobs(self) -> dict[str, dict]:
        """{job_name: scrape config} of the generated configuration."""
        self._alive()
        return {job["job_name"]: job for job in (self.config() or {}).get("scrape_configs") or []}

    def rule_files(self) -> dict[str, dict]:
        """{file name: rule file} of the rule ConfigMaps the operator generated; a selected
        PrometheusRule is the file `<namespace>-<name>-<uid>.yaml`."""
        self._alive()
        files: dict[str, dict] = {}
        for cm in self.cluster.api.items(f"/api/v1/namespaces/{NAMESPACE}/configmaps"):
            if cm["metadata"]["name"].startswith(f"prometheus-{PROMETHEUS}-rulefiles-"):
                files.update({k: load_yaml(v) for k, v in (cm.get("data") or {}).items()})
        return files

    def rule_file_name(self, namespace: str, name: str) -> str | None:
        """The file a PrometheusRule becomes when selected (None: no such object)."""
        try:
            rule = self.cluster.api.get(f"{MONITORING_API}/namespaces/{namespace}/prometheusrules/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return f"{namespace}-{name}-{rule['metadata']['uid']}.yaml"

    def targets(self, job: dict) -> list[dict[str, str]]:
        """The targets Prometheus would scrape for one generated scrape config: what its
        Kubernetes service discovery (role `endpoints`, the operator's default) finds in the
        cluster now, through the config's relabelling. Each: the final labels, `__address__`
        and `__metrics_path__` included."""
        assert [sd["role"] for sd in job["kubernetes_sd_configs"]] == ["endpoints"], job["kubernetes_sd_configs"]
        out = []
        for sd in job["kubernetes_sd_configs"]:
            for ns in sd["namespaces"]["names"]:
                for meta in self._endpoints_targets(ns):
                    labels = relabel({**meta, "job": job["job_name"], "__metrics_path__": job.get("metrics_path", "/metrics")},
                                     job.get("relabel_configs") or [])
                    if labels is not None:
                        out.append(labels)
        return out

    def _endpoints_targets(self, ns: str) -> list[dict[str, str]]:
        """The labels Prometheus' `endpoints` discovery gives each ready address and port of
        each Service's Endpoints in `ns` (the subset of its __meta_ labels relabelling uses)."""
        api = self.cluster.api
        services = {s["metadata"]["name"]: s for s in api.items(f"/api/v1/namespaces/{ns}/services")}
        pods = {p["metadata"]["name"]: p for p in api.items(f"/api/v1/namespaces/{ns}/pods")}
        out = []
        for ep in api.items(f"/api/v1/namespaces/{ns}/endpoints"):
            svc = services.get(ep["metadata"]["name"])
            svc_meta = {"__meta_kubernetes_service_name": ep["metadata"]["name"]}
            for k, v in ((svc or {}).get("metadata", {}).get("labels") or {}).items():
                svc_meta[f"__meta_kubernetes_service_label_{_label_name(k)}"] = v
                svc_meta[f"__meta_kubernetes_service_labelpresent_{_label_name(k)}"] = "true"
            for subset in ep.get("subsets") or []:
                for address in subset.get("addresses") or []:
                    ref = address.get("targetRef") or {}
                    pod = pods.get(ref.get("name", "")) if ref.get("kind") == "Pod" else None
                    for port in subset.get("ports") or []:
                        meta = {**svc_meta, "__address__": f"{address['ip']}:{port['port']}",
                                "__meta_kubernetes_namespace": ns,
                                "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                                "__meta_kubernetes_endpoint_ready": "true",
                                "__meta_kubernetes_endpoint_address_target_kind": ref.get("kind", ""),
                                "__meta_kubernetes_endpoint_address_target_name": ref.get("name", "")}
                        if pod is not None:
                            meta["__meta_kubernetes_pod_name"] = pod["metadata"]["name"]
                            meta["__meta_kubernetes_pod_phase"] = pod["status"].get("phase", "")
                            for c in pod["spec"]["containers"]:
                                for cp in c.get("ports") or []:
                                    if cp["containerPort"] == port["port"]:
                                        meta["__meta_kubernetes_pod_container_name"] = c["name"]
                                        meta["__meta_kubernetes_pod_container_port_name"] = cp.get("name", "")
                                        meta["__meta_kubernetes_pod_container_port_number"] = str(cp["containerPort"])
                        out.append(meta)
        return out

    def settled(self, namespace: str, timeout: float = 60) -> tuple[dict[str, dict], dict[str, dict]]:
        """(scrape jobs, rule files) as the operator generates them once it has seen every
        ServiceMonitor and PrometheusRule change made in `namespace` before this call.

        An absence can't be waited for, so a marker ServiceMonitor and PrometheusRule, both
        selected, are created there now: each informer delivers a kind's changes in the order the
        API server made them, so a configuration that has the marker was generated from a view
        holding every earlier change of that kind. The markers are deleted before returning and
        are left out of what is returned."""
        api = self.cluster.api
        marker = "webstack-selection-marker"
        sm_path = f"{MONITORING_API}/namespaces/{namespace}/servicemonitors"
        rule_path = f"{MONITORING_API}/namespaces/{namespace}/prometheusrules"
        labels = dict(RELEASE_LABELS)
        try:
            api.create(sm_path, {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": {"name": marker, "labels": labels},
                # Selects no Service: the job exists, with no targets.
                "spec": {"selector": {"matchLabels": {"webstack.test/selects": "nothing"}},
                         "endpoints": [{"port": "none"}]}})
            api.create(rule_path, {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": {"name": marker, "labels": labels},
                "spec": {"groups": [{"name": marker, "rules": [{"record": "webstack:marker", "expr": "vector(1)"}]}]}})
            marker_job = scrape_job(namespace, marker)
            marker_file = self.rule_file_name(namespace, marker)
            jobs = wait_for(f"operator: {marker_job} in the generated configuration",
                            lambda: (j := self.scrape_jobs()).get(marker_job) and j, timeout)
            files = wait_for(f"operator: {marker_file} in the rule files",
                             lambda: (f := self.rule_files()).get(marker_file) and f, timeout)
        finally:
            api.delete(f"{sm_path}/{marker}")
            api.delete(f"{rule_path}/{marker}")
        del jobs[marker_job], files[marker_file]
        return jobs, files


# -- Prometheus' relabelling, for the actions the operator's scrape configs use --------------------
def _label_name(name: str) -> str:
    """A Kubernetes label key as a Prometheus label name suffix (invalid characters to `_`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _expand(template: str, match: re.Match) -> str:
    """Prometheus' replacement syntax ($1, ${1}, ${name}); an unknown group is empty."""
    def group(m: re.Match) -> str:
        ref = m.group(1) or m.group(2)
        try:
            return match.group(int(ref) if ref.isdigit() else ref) or ""
        except IndexError:  # no such group (Python raises IndexError for a missing name too)
            return ""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", group, template)


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Applies relabel_configs as Prometheus does (keep, drop, replace, hashmod; anchored
    regexes, `;` separator). None: the target is dropped. `$(SHARD)` is 0, as the operator's
    config reloader substitutes it for the first (here only) shard. Labels starting with `__`
    are dropped after relabelling, except `__address__` and `__metrics_path__`."""
    labels = dict(labels)
    for cfg in configs:
        cfg = {k: v.replace("$(SHARD)", "0") if isinstance(v, str) else v for k, v in cfg.items()}
        action = cfg.get("action", "replace").lower()
        value = cfg.get("separator", ";").join(labels.get(s, "") for s in cfg.get("source_labels") or [])
        regex = re.compile(str(cfg.get("regex", "(.*)")))
        if action == "keep" and not regex.fullmatch(value):
            return None
        if action == "drop" and regex.fullmatch(value):
            return None
        if action == "replace":
            match = regex.fullmatch(value)
            if match:
                result = _expand(str(cfg.get("replacement", "$1")), match)
                target = _expand(cfg["target_label"], match)
                if result:
                    labels[target] = result
                else:
                    labels.pop(target, None)
        elif action == "hashmod":
            digest = hashlib.md5(value.encode()).digest()
            labels[cfg["target_label"]] = str(int.from_bytes(digest[8:], "big") % int(cfg["modulus"]))
        elif action not in ("keep", "drop"):
            raise AssertionError(f"relabel action {action!r} is not modelled here: {cfg}")
    return {k: v for k, v in labels.items() if not k.startswith("__") or k in ("__address__", "__metrics_path__")}
