"""WebService's specs as pure functions: values in, Kubernetes specs out, no engine needed."""

from __future__ import annotations

import json

import pytest

from components.k8s_pod import expand_env
from components.web_service import (AlbIngress, Autoscaling, ClassIngress, ConfigFiles, ExtraContainer,
                                    WebServiceArgs, app_env, deployment_spec, hpa_spec, ingress_annotations,
                                    ingress_spec, pod_spec, service_spec)

IMAGE = "ghcr.io/acme/shop@sha256:" + "b" * 64
SELECTOR = {"app.kubernetes.io/name": "web"}


def pod(args: WebServiceArgs, **kwargs):
    return pod_spec(args, service_account_name="web", selector=SELECTOR, **kwargs)


def test_env_lists_pod_fields_and_secrets_then_each_value_after_what_it_refers_to():
    args = WebServiceArgs(image=IMAGE, pod_field_env={"POD_NAME": "metadata.name"},
                          env={"A_URL": "postgresql://$(B_USER)@$(DATABASE_HOST)/x", "B_USER": "app",
                               "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=$(POD_NAME)"})
    env = app_env(args, [{"name": "DATABASE_HOST", "valueFrom": {"secretKeyRef": {"name": "s", "key": "H"}}}])
    assert [e["name"] for e in env] == ["POD_NAME", "DATABASE_HOST", "B_USER", "OTEL_RESOURCE_ATTRIBUTES", "A_URL"]
    expanded = expand_env(env, {"POD_NAME": "web-1", "DATABASE_HOST": "db"})
    assert expanded["A_URL"] == "postgresql://app@db/x"
    assert expanded["OTEL_RESOURCE_ATTRIBUTES"] == "k8s.pod.name=web-1"


def test_expansion_follows_the_kubelet_escaped_unknown_and_later_names_stay_literal():
    env = [{"name": "A", "value": "$(B)-$$(B)-$(NOPE)"}, {"name": "B", "value": "b"}, {"name": "C", "value": "$(B)"}]
    assert expand_env(env) == {"A": "$(B)-$(B)-$(NOPE)", "B": "b", "C": "b"}


def test_grace_period_covers_prestop_and_the_servers_drain():
    spec = pod(WebServiceArgs(image=IMAGE, prestop_delay_seconds=15, server_graceful_timeout_seconds=30,
                              shutdown_margin_seconds=5))
    assert spec["terminationGracePeriodSeconds"] == 50
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}


def test_every_container_is_restricted_and_writes_only_to_its_emptydirs():
    args = WebServiceArgs(image=IMAGE, extra_containers=[ExtraContainer(name="nginx", image=IMAGE, port=8080,
                                                                        writable_paths=["/tmp", "/var/cache/nginx"])])
    spec = pod(args)
    assert spec["securityContext"]["runAsNonRoot"] is True
    for c in spec["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    nginx = spec["containers"][1]
    empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    assert sorted(m["mountPath"] for m in nginx["volumeMounts"] if m["name"] in empty) == ["/tmp", "/var/cache/nginx"]


def test_config_files_mount_read_only_into_the_containers_that_ask_for_them():
    args = WebServiceArgs(image=IMAGE, config_files=[ConfigFiles(role="uvicorn", mount_path="/etc/app",
                                                                 files={"logging.json": "{}"})])
    spec = pod(args, config_maps={"uvicorn": "web-uvicorn-1234"})
    assert {"name": "config-uvicorn", "configMap": {"name": "web-uvicorn-1234"}} in spec["volumes"]
    assert {"name": "config-uvicorn", "mountPath": "/etc/app", "readOnly": True} in spec["containers"][0]["volumeMounts"]


def test_the_hpa_owns_replicas_and_a_fixed_count_is_set_only_without_one():
    auto = deployment_spec(WebServiceArgs(image=IMAGE), labels=SELECTOR, selector=SELECTOR, pod={})
    fixed = deployment_spec(WebServiceArgs(image=IMAGE, autoscaling=None, replicas=3), labels=SELECTOR,
                            selector=SELECTOR, pod={})
    assert "replicas" not in auto and fixed["replicas"] == 3
    assert auto["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_hpa_scales_on_the_app_container_and_scales_in_one_pod_a_minute():
    spec = hpa_spec(Autoscaling(min_replicas=2, max_replicas=7, memory_target_percent=80), deployment_name="web")
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 7)
    assert [m["containerResource"]["container"] for m in spec["metrics"]] == ["app", "app"]
    assert spec["behavior"]["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def test_the_service_targets_the_serving_container_and_exposes_metrics_apart():
    args = WebServiceArgs(image=IMAGE, port=8000, metrics_port=9100, serve_from="nginx",
                          extra_containers=[ExtraContainer(name="nginx", image=IMAGE, port=8080)])
    ports = {p["name"]: p["targetPort"] for p in service_spec(args, selector=SELECTOR)["ports"]}
    assert ports == {"http": 8080, "metrics": 9100}


def test_alb_annotations_target_pods_and_redirect_to_modern_tls():
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c"
    args = WebServiceArgs(image=IMAGE, ingress=AlbIngress(host="api.example.com", certificate_arn=arn))
    a = ingress_annotations(args)
    assert a["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert a["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert json.loads(a["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert a["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    # The ALB stops sending no later than the pod stops serving.
    assert a["alb.ingress.kubernetes.io/target-group-attributes"] == "deregistration_delay.timeout_seconds=45"


@pytest.mark.parametrize("ingress,tls", [(ClassIngress(host="shop.test", tls_secret_name="shop-tls"), True),
                                         (ClassIngress(), False),
                                         (AlbIngress(host="shop.example.com"), False)])
def test_ingress_spec_routes_everything_to_the_http_port(ingress, tls):
    spec = ingress_spec(ingress, service_name="web")
    path = spec["rules"][0]["http"]["paths"][0]
    assert path["backend"]["service"] == {"name": "web", "port": {"name": "http"}}
    assert ("tls" in spec) is tls
    annotations = ingress_annotations(WebServiceArgs(image=IMAGE, ingress=ingress))
    if isinstance(ingress, ClassIngress):
        assert annotations == {}, "in-cluster controllers get no ALB annotations"
    else:
        assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}], \
            "no certificate, no HTTPS listener"
