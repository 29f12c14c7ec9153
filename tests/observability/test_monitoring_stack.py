"""The observability section under mocks: what `install` mode installs and in which order, what
`existing` mode leaves alone, the labels both sides of a selector agree on, the Grafana password,
and the per-environment sizes."""

from __future__ import annotations

import re

import pytest
from example_runs import stack
from test_fastapi_stack import run_with

from cli.mocks import SECRET_MARK
from observability import charts
from stacks.config import load_settings
from stacks.errors import ConfigError

RELEASE = "kubernetes:helm.sh/v3:Release"
MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SECRET = "kubernetes:core/v1:Secret"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
EXAMPLES = ["fastapi-dev", "fastapi-prod", "fastapi-local", "django-dev", "django-prod", "django-local"]
EXISTING = {"observability": {"mode": "existing", "namespace": "platform-monitoring",
                              "monitor_labels": {"prometheus": "platform"},
                              "otlp_endpoint": "http://collector.telemetry:4318"}}


def releases(run) -> dict[str, object]:
    return {r.inputs["name"]: r for r in run.monitor.all(RELEASE)}


def short(urn: str) -> str:
    return urn.split("::")[-1]


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_chart_is_pinned_to_an_exact_version_from_its_https_repository(name):
    found = releases(stack(name))
    assert set(found) == {"prometheus-operator-crds", "kube-prometheus-stack", "otel-collector", "tempo"}
    for release in found.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", release.inputs["version"]), release.inputs["version"]
        assert release.inputs["repositoryOpts"]["repo"].startswith("https://")
        # A failed upgrade rolls back instead of leaving a half-applied release for the next `up`.
        assert release.inputs["atomic"] is True


@pytest.mark.parametrize("name", ["fastapi-dev", "django-prod"])
def test_the_crds_are_installed_first_and_everything_of_their_kinds_waits_for_them(name):
    run = stack(name)
    found = releases(run)
    crds = found["prometheus-operator-crds"].urn
    stack_release = found["kube-prometheus-stack"]
    # kube-prometheus-stack would otherwise create its own Prometheus objects before their CRDs
    # are registered (pulumi/pulumi-kubernetes#1712): it skips its crds/ and waits.
    assert stack_release.inputs["skipCrds"] is True
    assert stack_release.inputs["values"]["crds"] == {"enabled": False}
    assert crds in stack_release.dependencies
    assert crds in found["otel-collector"].dependencies  # its ServiceMonitor
    for kind in (MONITOR, RULE):
        obj = run.monitor.one(kind)
        assert crds in obj.dependencies and stack_release.urn in obj.dependencies, short(obj.urn)


def test_prometheus_selects_exactly_the_labels_the_app_objects_carry():
    run = stack("fastapi-prod")
    spec = releases(run)["kube-prometheus-stack"].inputs["values"]["prometheus"]["prometheusSpec"]
    monitor, rule = run.monitor.one(MONITOR), run.monitor.one(RULE)
    for kind, labels in (("serviceMonitor", monitor.inputs["metadata"]["labels"]),
                         ("rule", rule.inputs["metadata"]["labels"])):
        # Explicit selectors: the chart's "nil uses Helm values" would select its own release label.
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        selector = spec[f"{kind}Selector"]["matchLabels"]
        assert selector.items() <= labels.items(), (kind, selector, labels)
        assert spec[f"{kind}NamespaceSelector"] == {}  # the app lives in its own namespace


@pytest.mark.parametrize("name,port", [("fastapi-local", "http"), ("django-local", "metrics")])
def test_the_service_monitor_scrapes_the_port_the_service_names_for_metrics(name, port):
    run = stack(name)
    monitor = run.monitor.one(MONITOR).inputs
    service = next(r for r in run.monitor.all("kubernetes:core/v1:Service")
                   if r.inputs["metadata"].get("name") == monitor["metadata"]["name"]).inputs
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert port in [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["endpoints"][0]["port"] == port
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [monitor["metadata"]["namespace"]]}


def test_existing_mode_installs_nothing_and_labels_the_app_objects_as_told():
    run = run_with("fastapi-prod", **EXISTING)
    assert run.monitor.all(RELEASE) == []
    assert "grafana_admin_password" not in run.outputs
    assert run.monitor.one(MONITOR).inputs["metadata"]["labels"] == {"prometheus": "platform"}
    assert run.monitor.one(RULE).inputs["metadata"]["labels"] == {"prometheus": "platform"}
    dashboard = next(r for r in run.monitor.all(CONFIG_MAP) if r.name.endswith("-dashboard"))
    assert dashboard.inputs["metadata"]["namespace"] == "platform-monitoring"
    assert dashboard.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.monitor.all(POLICY)}
    # Scrapes from the platform's Prometheus; traces to the collector's namespace and port only.
    assert policies["allow-metrics"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform-monitoring"}}}]
    assert policies["allow-telemetry"]["egress"] == [{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "telemetry"}}}],
        "ports": [{"protocol": "TCP", "port": 4318}]}]


def test_existing_mode_without_a_collector_opens_no_egress_for_traces_and_exports_none():
    run = run_with("fastapi-prod", observability={"mode": "existing"})
    assert "allow-telemetry" not in [r.inputs["metadata"]["name"] for r in run.monitor.all(POLICY)]
    env = {e["name"]: e.get("value") for e in run.monitor.one("kubernetes:apps/v1:Deployment")
           .inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OTEL_TRACES_EXPORTER"] == "none"


@pytest.mark.parametrize("name", ["fastapi-local", "django-prod"])
def test_installed_mode_sends_the_apps_traces_to_the_collector_it_installs(name):
    run = stack(name)
    containers = run.monitor.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]["containers"]
    envs = [{e["name"]: e.get("value") for e in c.get("env") or []} for c in containers]
    endpoint = next(e["OTEL_EXPORTER_OTLP_ENDPOINT"] for e in envs if "OTEL_EXPORTER_OTLP_ENDPOINT" in e)
    assert endpoint == "http://otel-collector.monitoring.svc:4318"
    collector = releases(run)["otel-collector"].inputs["values"]
    receivers = collector["config"]["receivers"]
    assert receivers["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.monitor.all(POLICY)}
    assert policies["allow-telemetry"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 4318}]


def test_grafana_is_reachable_only_inside_the_cluster_with_a_generated_secret_password():
    run = stack("fastapi-prod")
    values = releases(run)["kube-prometheus-stack"].inputs["values"]
    grafana = values["grafana"]
    assert grafana["ingress"] == {"enabled": False} and grafana["service"]["type"] == "ClusterIP"
    assert values["prometheus"]["ingress"] == {"enabled": False}
    assert "adminPassword" not in grafana  # the password never sits in the release's values
    secret = next(r for r in run.monitor.all(SECRET) if r.inputs["metadata"].get("name") == grafana["admin"]["existingSecret"])
    assert secret.inputs["stringData"] == SECRET_MARK or secret.inputs["stringData"]["admin-password"] == SECRET_MARK
    assert run.outputs["grafana_admin_password"] == SECRET_MARK
    assert secret.inputs["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize("name,prometheus,tempo_hours,collectors", [
    ("fastapi-dev", {"replicas": 1, "retention": "7d"}, "72h", 1),
    ("fastapi-prod", {"replicas": 2, "retention": "30d"}, "336h", 2),
])
def test_retention_and_replicas_follow_the_environment(name, prometheus, tempo_hours, collectors):
    found = releases(stack(name))
    spec = found["kube-prometheus-stack"].inputs["values"]["prometheus"]["prometheusSpec"]
    assert {k: spec[k] for k in prometheus} == prometheus
    assert found["tempo"].inputs["values"]["tempo"]["retention"] == tempo_hours
    assert found["otel-collector"].inputs["values"]["replicaCount"] == collectors
    # Oldest blocks go before the volume is full.
    size = int(spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"].removesuffix("Gi"))
    assert int(spec["retentionSize"].removesuffix("GB")) < size


def test_a_created_cluster_gets_an_encrypted_default_storage_class_the_volumes_wait_for():
    run = stack("fastapi-prod")
    sc = run.monitor.one(STORAGE_CLASS)
    assert sc.inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert sc.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    found = releases(run)
    for release in ("kube-prometheus-stack", "tempo"):
        assert sc.urn in found[release].dependencies, release


def test_the_monitoring_namespace_refuses_privileged_pods_and_the_stack_needs_no_host_access():
    run = stack("fastapi-prod")
    ns = next(r for r in run.monitor.all("kubernetes:core/v1:Namespace")
              if r.inputs["metadata"]["name"] == "monitoring").inputs["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ns["pod-security.kubernetes.io/warn"] == "restricted"
    values = releases(run)["kube-prometheus-stack"].inputs["values"]
    assert values["nodeExporter"] == {"enabled": False}  # hostNetwork, hostPID, hostPath


@pytest.mark.parametrize("name", ["fastapi-prod", "django-prod"])
def test_the_app_rules_and_dashboard_name_this_apps_namespace_job_and_bounds(name):
    run = stack(name)
    ns = run.outputs["namespace"]
    rules = run.monitor.one(RULE).inputs["spec"]["groups"]
    exprs = [r["expr"] for g in rules for r in g["rules"]]
    assert exprs and all(f'namespace="{ns}"' in e for e in exprs if "kube_" in e or "http_" in e)
    dashboard = next(r for r in run.monitor.all(CONFIG_MAP) if r.name.endswith("-dashboard"))
    assert dashboard.inputs["metadata"]["labels"] == charts.DASHBOARD_LABELS
    assert dashboard.inputs["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize("changes,message", [
    ({"observability.mode": "existing", "observability.prometheus": {"replicas": 2}},
     "observability.prometheus"),
    ({"observability.monitor_labels": {"release": "x"}}, "observability.monitor_labels"),
    ({"observability.mode": "existing", "observability.monitor_labels": {"bad key!": "x"}},
     "observability.monitor_labels"),
    ({"observability.prometheus": {"retention_days": 0}}, "observability.prometheus.retention_days"),
    ({"observability.mode": "grafana-cloud"}, "observability"),
])
def test_bad_observability_config_names_the_key(changes, message):
    from cli.render import load_stack_file
    sf = load_stack_file("fastapi-prod")
    values = {k.removeprefix("webstack:"): v for k, v in sf.config.items() if k.startswith("webstack:")}
    obs = dict(values.get("observability") or {})
    for key, value in changes.items():
        obs[key.split(".", 1)[1]] = value
    values["observability"] = obs
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(values, sf.secret_keys)


def test_existing_mode_does_not_size_what_it_does_not_install_even_in_dev():
    from cli.render import load_stack_file
    sf = load_stack_file("fastapi-dev")
    values = {k.removeprefix("webstack:"): v for k, v in sf.config.items() if k.startswith("webstack:")}
    values["observability"] = {"mode": "existing"}
    settings = load_settings(values, sf.secret_keys)
    assert settings.observability.mode == "existing"
    assert settings.observability.trace_sample_ratio == 1.0  # the dev profile still applies to shared keys
