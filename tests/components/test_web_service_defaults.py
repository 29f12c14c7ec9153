"""WebService: the defaults are the secure, zero-downtime ones."""

import json

import pulumi

from components.release_job import ReleaseJob, ReleaseJobArgs
from components.web_service import (
    AlbIngress, Autoscaling, ClassIngress, ConfigFiles, ExtraContainer, WebService, WebServiceArgs,
    termination_grace_period,
)

IMAGE = "registry.example.com/shop@sha256:" + "a" * 64
NGINX = "registry.example.com/nginx@sha256:" + "b" * 64
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def web(**overrides):
    kwargs = {k: overrides.pop(k) for k in ("secrets", "depends_on", "service_account_annotations")
              if k in overrides}
    return lambda: WebService("web", WebServiceArgs(**{"image": IMAGE, **overrides}), namespace="shop", **kwargs)


def pod(monitor):
    return monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]


def container(monitor, name="app"):
    return next(c for c in pod(monitor)["containers"] if c["name"] == name)


def test_the_hpa_owns_the_replica_count_and_keeps_at_least_two_pods(run):
    monitor = run(web())
    assert "replicas" not in monitor.one(DEPLOYMENT).inputs["spec"]
    spec = monitor.one(HPA).inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    [cpu] = spec["metrics"]
    assert cpu["containerResource"] == {"name": "cpu", "container": "app",
                                        "target": {"type": "Utilization", "averageUtilization": 70}}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_a_memory_target_adds_a_second_hpa_metric(run):
    monitor = run(web(autoscaling=Autoscaling(memory_target_percent=80)))
    names = [m["containerResource"]["name"] for m in monitor.one(HPA).inputs["spec"]["metrics"]]
    assert names == ["cpu", "memory"]


def test_without_autoscaling_the_deployment_sets_a_fixed_replica_count_and_no_hpa(run):
    monitor = run(web(autoscaling=None, replicas=3))
    assert monitor.one(DEPLOYMENT).inputs["spec"]["replicas"] == 3
    assert monitor.all(HPA) == []


def test_a_rollout_never_takes_a_serving_pod_away_before_its_replacement_is_ready(run):
    strategy = run(web()).one(DEPLOYMENT).inputs["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}


def test_node_drains_evict_one_pod_at_a_time_and_are_never_blocked_by_unhealthy_pods(run):
    spec = run(web()).one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pods_spread_over_nodes_strictly_and_over_zones_when_possible(run):
    spread = {c["topologyKey"]: c for c in pod(run(web()))["topologySpreadConstraints"]}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert all(c["maxSkew"] == 1 and c["matchLabelKeys"] == ["pod-template-hash"] for c in spread.values())


def test_startup_readiness_and_liveness_are_three_separate_probes(run):
    app = container(run(web(port=8000)))
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8000, "scheme": "HTTP"}
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Liveness is more patient than readiness: an overloaded pod leaves rotation before it is restarted.
    assert app["livenessProbe"]["failureThreshold"] > app["readinessProbe"]["failureThreshold"]
    assert app["startupProbe"]["periodSeconds"] * app["startupProbe"]["failureThreshold"] == 60


def test_every_container_has_requests_and_limits(run):
    monitor = run(web(extra_containers=[ExtraContainer(name="nginx", image=NGINX, port=8080)]))
    for c in pod(monitor)["containers"]:
        assert set(c["resources"]["requests"]) == {"cpu", "memory"}
        assert set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert container(monitor)["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_pods_run_restricted_non_root_with_a_read_only_root_filesystem(run):
    monitor = run(web(extra_containers=[ExtraContainer(name="nginx", image=NGINX, port=8080)]))
    spec = pod(monitor)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] >= 10000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True


def test_each_writable_path_is_an_emptydir_since_the_root_filesystem_is_read_only(run):
    spec = pod(run(web(writable_paths=["/tmp", "/app/.cache"])))
    mounts = {m["mountPath"]: m["name"] for m in container_of(spec, "app")["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in ("/tmp", "/app/.cache"):
        assert volumes[mounts[path]]["emptyDir"] == {"sizeLimit": "256Mi"}


def container_of(spec, name):
    return next(c for c in spec["containers"] if c["name"] == name)


def test_the_service_account_token_is_not_mounted(run):
    monitor = run(web(service_account_annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}))
    account = monitor.one("kubernetes:core/v1:ServiceAccount")
    assert account.inputs["automountServiceAccountToken"] is False
    assert account.inputs["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}
    assert pod(monitor)["automountServiceAccountToken"] is False
    assert pod(monitor)["serviceAccountName"] == "web"


def test_shutdown_waits_for_endpoint_removal_then_for_the_server_to_drain(run):
    monitor = run(web(prestop_delay_seconds=20, server_graceful_timeout_seconds=40, shutdown_margin_seconds=5))
    assert container(monitor)["lifecycle"] == {"preStop": {"sleep": {"seconds": 20}}}
    # preStop time counts against the grace period: 20 s serving + 40 s draining + 5 s margin.
    assert pod(monitor)["terminationGracePeriodSeconds"] == 65 == termination_grace_period(20, 40, 5)


def test_the_service_is_cluster_internal_and_targets_the_serving_container(run):
    monitor = run(web(port=8000, metrics_port=9090,
                      extra_containers=[ExtraContainer(name="nginx", image=NGINX, port=8080)], serve_from="nginx"))
    spec = monitor.one("kubernetes:core/v1:Service").inputs["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                             {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]
    assert spec["selector"] == monitor.one(DEPLOYMENT).inputs["spec"]["selector"]["matchLabels"]


def test_an_extra_container_gets_probes_the_same_security_and_the_shutdown_delay(run):
    monitor = run(web(extra_containers=[ExtraContainer(name="nginx", image=NGINX, port=8080,
                                                       health_path="/nginx-health")]))
    nginx = container(monitor, "nginx")
    assert nginx["readinessProbe"]["httpGet"]["path"] == "/nginx-health"
    assert nginx["livenessProbe"]["httpGet"]["port"] == 8080
    assert nginx["lifecycle"]["preStop"]["sleep"]["seconds"] == 15
    assert nginx["securityContext"]["readOnlyRootFilesystem"] is True


def test_a_changed_config_file_renames_its_configmap_so_the_pods_roll(run):
    def names(content):
        files = ConfigFiles(role="nginx", mount_path="/etc/nginx/conf.d", files={"default.conf": content})
        monitor = run(web(config_files=[files]))
        cm = monitor.one("kubernetes:core/v1:ConfigMap")
        volume = next(v for v in pod(monitor)["volumes"] if v["name"] == "config-nginx")
        mount = next(m for m in container(monitor)["volumeMounts"] if m["name"] == "config-nginx")
        assert cm.inputs["immutable"] is True
        assert mount == {"name": "config-nginx", "mountPath": "/etc/nginx/conf.d", "readOnly": True}
        return cm.inputs["metadata"]["name"], volume["configMap"]["name"]

    first, second = names("server { listen 8080; }"), names("server { listen 8081; }")
    assert first[0] == first[1] and second[0] == second[1]
    assert first[0] != second[0]
    assert names("server { listen 8080; }") == first


def test_secrets_stay_secret_and_reach_the_app_as_read_only_files(run):
    monitor = run(web(secrets={"SECRET_KEY": pulumi.Output.secret("s3cr3t")}))
    secret = monitor.one("kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == "[secret]"
    assert secret.plain_inputs["stringData"] == {"SECRET_KEY": "s3cr3t"}
    app = container(monitor)
    assert app["env"] == []
    assert {"name": "app-secrets", "mountPath": "/var/run/secrets/app", "readOnly": True} in app["volumeMounts"]


def test_a_plain_string_given_as_a_secret_is_still_stored_as_a_secret(run):
    secret = run(web(secrets={"SECRET_KEY": "not-marked"})).one("kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == "[secret]"


def test_secrets_as_env_uses_secret_refs_and_records_the_checkov_skip(run):
    monitor = run(web(secrets_as="env", secrets={"SECRET_KEY": pulumi.Output.secret("s")}))
    secret_name = monitor.one("kubernetes:core/v1:Secret").state["metadata"]["name"]
    assert container(monitor)["env"] == [
        {"name": "SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "SECRET_KEY"}}}]
    annotations = monitor.one(DEPLOYMENT).inputs["metadata"]["annotations"]
    assert list(annotations.values()) == [
        "CKV_K8S_35=secrets_as is env: the app reads its settings from environment variables by explicit opt-in"]


def test_pod_fields_come_first_so_plain_env_values_can_refer_to_them(run):
    monitor = run(web(pod_field_env={"POD_NAME": "metadata.name", "NODE_NAME": "spec.nodeName"},
                      env={"A_LABEL": "pod=$(POD_NAME)"}))
    assert container(monitor)["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "A_LABEL", "value": "pod=$(POD_NAME)"}]


def test_an_image_by_digest_needs_no_checkov_skip(run):
    metadata = run(web()).one(DEPLOYMENT).inputs["metadata"]
    assert "annotations" not in metadata
    assert container(run(web()))["imagePullPolicy"] == "Always"


def test_a_tag_is_accepted_in_dev_with_a_warning_and_a_recorded_skip(run, caplog):
    monitor = run(web(image="registry.example.com/shop:1.4.2", require_digest=False,
                      autoscaling=Autoscaling(min_replicas=1, max_replicas=2), allow_single_replica=True))
    assert container(monitor)["image"] == "registry.example.com/shop:1.4.2"
    skip = monitor.one(DEPLOYMENT).inputs["metadata"]["annotations"]["checkov.io/skip1"]
    assert skip.startswith("CKV_K8S_43=dev image pinned by tag")
    assert "'registry.example.com/shop:1.4.2' is pinned by tag, not digest" in caplog.text


def test_the_rollout_waits_for_the_release_jobs_it_is_given(run):
    def program():
        job = ReleaseJob("migrate", ReleaseJobArgs(image=IMAGE, command=["migrate"]), namespace="shop")
        WebService("web", WebServiceArgs(image=IMAGE), namespace="shop", depends_on=[job])

    monitor = run(program)
    job = monitor.one("kubernetes:batch/v1:Job")
    assert job.urn in monitor.one(DEPLOYMENT).dependencies


def test_an_alb_ingress_targets_pod_ips_checks_readiness_and_redirects_to_https(run):
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    monitor = run(web(ingress=AlbIngress(host="shop.example.com", certificate_arn=cert)))
    ingress = monitor.one("kubernetes:networking.k8s.io/v1:Ingress").inputs
    a = ingress["metadata"]["annotations"]
    assert a["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert a["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert a["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    assert a["alb.ingress.kubernetes.io/certificate-arn"] == cert
    assert json.loads(a["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert a["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert "TLS13" in a["alb.ingress.kubernetes.io/ssl-policy"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "shop.example.com"
    assert rule["http"]["paths"][0]["backend"] == {"service": {"name": "web", "port": {"name": "http"}}}


def test_an_alb_without_a_certificate_listens_on_http_only(run):
    a = run(web(ingress=AlbIngress())).one("kubernetes:networking.k8s.io/v1:Ingress").inputs["metadata"]["annotations"]
    assert json.loads(a["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}]
    assert "alb.ingress.kubernetes.io/ssl-redirect" not in a


def test_a_class_ingress_uses_the_configured_class_and_tls_secret(run):
    ingress = run(web(ingress=ClassIngress(ingress_class_name="traefik", host="shop.localtest.me",
                                           tls_secret_name="shop-tls"))).one("kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.inputs["spec"]["ingressClassName"] == "traefik"
    assert ingress.inputs["spec"]["tls"] == [{"secretName": "shop-tls", "hosts": ["shop.localtest.me"]}]
    assert "annotations" not in ingress.inputs["metadata"]


def test_every_child_is_parented_named_after_the_component_and_in_the_namespace(run):
    monitor = run(web(secrets={"K": "v"}, ingress=ClassIngress(host="shop.localtest.me"),
                      config_files=[ConfigFiles(role="app", mount_path="/etc/app", files={"a.toml": "x=1"})]))
    component = monitor.one("webstack:components:WebService", "web")
    children = [r for r in monitor.all() if r.type.startswith("kubernetes:")]
    assert len(children) == 8  # account, secret, config, deployment, service, hpa, pdb, ingress
    for reg in children:
        assert reg.parent == component.urn
        assert reg.name.startswith("web-")
        assert reg.inputs["metadata"]["namespace"] == "shop"
        assert reg.inputs["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "webstack"
    assert component.outputs["service_name"] == "web"
    assert component.outputs["url"] == "http://shop.localtest.me"


def test_the_url_is_the_load_balancer_address_without_a_host_and_in_cluster_without_an_ingress(run):
    component = run(web(ingress=AlbIngress())).one("webstack:components:WebService")
    host = component.outputs["ingress_hostname"]
    assert host.endswith(".elb.amazonaws.com")
    assert component.outputs["url"] == f"http://{host}"
    internal = run(web()).one("webstack:components:WebService").outputs
    assert internal["url"] == "http://web.shop.svc.cluster.local:80"
    assert internal.get("ingress_hostname") is None


def manifests(monitor):
    """Each Kubernetes object as the API server would receive it (auto-names filled in)."""
    for reg in monitor.all():
        if reg.type.startswith("kubernetes:") and reg.custom:
            obj = {**reg.inputs, "metadata": {**reg.inputs["metadata"], "name": reg.state["metadata"]["name"]}}
            if obj.get("stringData") == "[secret]":
                obj["stringData"] = {}
            yield obj


def test_every_manifest_passes_the_strict_kubernetes_1_34_schema(run):
    import kubernetes_validate

    def program():
        WebService("web", WebServiceArgs(
            image=IMAGE, metrics_port=9090, autoscaling=Autoscaling(memory_target_percent=80),
            extra_containers=[ExtraContainer(name="nginx", image=NGINX, port=8080, health_path="/healthz")],
            serve_from="nginx",
            config_files=[ConfigFiles(role="nginx", mount_path="/etc/nginx/conf.d", files={"a.conf": "x"},
                                      containers=["nginx"])],
            ingress=AlbIngress(host="shop.example.com",
                               certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc")),
            namespace="shop", secrets={"SECRET_KEY": "s"})
        WebService("dev", WebServiceArgs(image="shop:1.0", require_digest=False, autoscaling=None, replicas=1,
                                         allow_single_replica=True, secrets_as="env",
                                         ingress=ClassIngress(host="shop.localtest.me", tls_secret_name="tls")),
                   namespace="shop", secrets={"SECRET_KEY": "s"})

    objects = list(manifests(run(program)))
    assert len(objects) == 14
    for obj in objects:
        kubernetes_validate.validate(obj, "1.34.0", strict=True)
