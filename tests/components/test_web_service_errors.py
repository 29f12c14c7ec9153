"""WebService: impossible or unsafe settings are refused, naming the field and the value."""

import pytest
from pydantic import ValidationError

from components.web_service import (
    AlbIngress, Autoscaling, ConfigFiles, ExtraContainer, HealthChecks, Resources, WebService, WebServiceArgs,
)

IMAGE = "registry.example.com/shop@sha256:" + "a" * 64


def test_min_replicas_above_max_replicas_is_refused_naming_both():
    with pytest.raises(ValidationError, match=r"min_replicas \(5\) is above max_replicas \(3\)"):
        Autoscaling(min_replicas=5, max_replicas=3)


def test_a_memory_limit_below_its_request_is_refused_naming_both():
    with pytest.raises(ValidationError, match=r"memory_limit \(256Mi\) is below memory_request \(512Mi\)"):
        Resources(memory_request="512Mi", memory_limit="256Mi")


def test_limits_are_compared_as_quantities_not_as_strings():
    assert Resources(cpu_request="500m", cpu_limit="1").cpu_limit == "1"
    assert Resources(memory_request="900Mi", memory_limit="1Gi").memory_limit == "1Gi"
    with pytest.raises(ValidationError, match=r"cpu_limit \(200m\) is below cpu_request \(0.5\)"):
        Resources(cpu_request="0.5", cpu_limit="200m")


def test_a_quantity_kubernetes_would_not_parse_is_refused():
    with pytest.raises(ValidationError, match=r"memory_request\n  Value error, '512MB' is not a Kubernetes quantity"):
        Resources(memory_request="512MB")


def test_a_probe_path_that_is_not_a_path_is_refused():
    with pytest.raises(ValidationError, match=r"readiness_path\n  Value error, 'readyz' is not a URL path starting with '/'"):
        HealthChecks(readiness_path="readyz")
    with pytest.raises(ValidationError, match="liveness_path"):
        HealthChecks(liveness_path="http://localhost/livez")


def test_a_probe_timeout_longer_than_its_period_is_refused():
    with pytest.raises(ValidationError, match=r"timeout_seconds \(20\) is above period_seconds \(10\)"):
        HealthChecks(timeout_seconds=20)


def test_an_image_pinned_by_tag_is_refused_when_a_digest_is_required():
    with pytest.raises(ValidationError, match=r"image: 'shop:1.2' is pinned by tag only"):
        WebServiceArgs(image="shop:1.2")


def test_an_unpinned_or_latest_image_is_refused_even_in_dev():
    with pytest.raises(ValidationError, match=r"image\n  Value error, 'shop' has neither a tag nor a digest"):
        WebServiceArgs(image="shop", require_digest=False, allow_single_replica=True)
    with pytest.raises(ValidationError, match=r"image\n  Value error, 'shop:latest' uses the moving tag 'latest'"):
        WebServiceArgs(image="shop:latest", require_digest=False)


def test_a_registry_port_is_not_mistaken_for_a_tag():
    with pytest.raises(ValidationError, match="neither a tag nor a digest"):
        WebServiceArgs(image="registry.local:5000/shop", require_digest=False)


def test_an_extra_container_image_must_be_pinned_too():
    with pytest.raises(ValidationError, match=r"extra_containers.nginx.image: 'nginx:1.27' is pinned by tag only"):
        WebServiceArgs(image=IMAGE, extra_containers=[ExtraContainer(name="nginx", image="nginx:1.27", port=8080)])


def test_a_single_replica_is_refused_unless_explicitly_allowed():
    with pytest.raises(ValidationError, match=r"autoscaling.min_replicas: 1 is below 2"):
        WebServiceArgs(image=IMAGE, autoscaling=Autoscaling(min_replicas=1))
    with pytest.raises(ValidationError, match=r"replicas: 1 is below 2"):
        WebServiceArgs(image=IMAGE, autoscaling=None, replicas=1)
    assert WebServiceArgs(image=IMAGE, autoscaling=None, replicas=1, allow_single_replica=True).replicas == 1


def test_serving_from_a_container_that_does_not_exist_is_refused():
    with pytest.raises(ValidationError, match=r"serve_from: 'nginx' is not a container of the pod \['app'\]"):
        WebServiceArgs(image=IMAGE, serve_from="nginx")


def test_config_files_for_an_unknown_container_are_refused():
    files = ConfigFiles(role="nginx", mount_path="/etc/nginx/conf.d", files={"a.conf": ""}, containers=["nginx"])
    with pytest.raises(ValidationError, match=r"config_files.nginx.containers: \['nginx'\] are not containers"):
        WebServiceArgs(image=IMAGE, config_files=[files])


def test_containers_that_share_a_port_are_refused():
    with pytest.raises(ValidationError, match=r"ports \[8000, 8000\] collide"):
        WebServiceArgs(image=IMAGE, extra_containers=[
            ExtraContainer(name="nginx", image=IMAGE, port=8000)])


def test_an_ingress_kind_that_does_not_exist_is_refused():
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        WebServiceArgs(image=IMAGE, ingress={"kind": "nlb"})


def test_a_certificate_that_is_not_an_acm_arn_is_refused():
    with pytest.raises(ValidationError, match=r"certificate_arn\n  String should match pattern '\^arn:aws\[a-z-\]\*:acm:"):
        AlbIngress(certificate_arn="shop-cert")


def test_an_unknown_key_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="autoscalling"):
        WebServiceArgs(image=IMAGE, autoscalling=None)


def test_args_are_frozen():
    args = WebServiceArgs(image=IMAGE)
    with pytest.raises(ValidationError, match="frozen"):
        args.port = 9000


def test_a_secret_that_is_also_a_plain_env_var_is_refused(run):
    with pytest.raises(ValueError, match=r"secrets: \['TOKEN'\] are also plain env vars"):
        run(lambda: WebService("web", WebServiceArgs(image=IMAGE, env={"TOKEN": "x"}),
                               namespace="shop", secrets={"TOKEN": "y"}))


def test_a_secret_name_that_is_not_an_env_var_name_is_refused(run):
    with pytest.raises(ValueError, match=r"secrets: \['api-token'\] are not environment variable names"):
        run(lambda: WebService("web", WebServiceArgs(image=IMAGE), namespace="shop", secrets={"api-token": "y"}))


def test_pod_field_env_accepts_only_fields_the_downward_api_gives_and_names_kept_in_one_place(run):
    with pytest.raises(ValidationError, match=r"pod_field_env\.POD_IP"):
        WebServiceArgs(image=IMAGE, pod_field_env={"POD_IP": "status.podIPs"})
    with pytest.raises(ValidationError, match=r"pod_field_env\.pod-name\.\[key\]\n  Value error, 'pod-name' is not an environment variable name"):
        WebServiceArgs(image=IMAGE, pod_field_env={"pod-name": "metadata.name"})
    with pytest.raises(ValidationError, match=r"pod_field_env: \['POD_NAME'\] are also plain env vars"):
        WebServiceArgs(image=IMAGE, pod_field_env={"POD_NAME": "metadata.name"}, env={"POD_NAME": "x"})
    with pytest.raises(ValueError, match=r"secrets: \['POD_NAME'\] are also plain env vars"):
        run(lambda: WebService("web", WebServiceArgs(image=IMAGE, pod_field_env={"POD_NAME": "metadata.name"}),
                               namespace="shop", secrets={"POD_NAME": "y"}))
