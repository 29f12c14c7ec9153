"""Each example stack under mocks: the properties a user relies on."""

from __future__ import annotations

import pytest
from example_runs import stack

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
JOB = "kubernetes:batch/v1:Job"


@pytest.mark.parametrize("name,lo,hi", [("fastapi-dev", 1, 3), ("fastapi-prod", 2, 10),
                                        ("django-dev", 1, 3), ("django-prod", 2, 10)])
def test_hpa_bounds_follow_the_environment_profile(name, lo, hi):
    hpa = stack(name).monitor.one(HPA)
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (lo, hi)
    assert "replicas" not in stack(name).monitor.one(DEPLOYMENT).inputs["spec"], "the HPA owns replicas"


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod", "fastapi-local",
                                  "django-dev", "django-prod", "django-local"])
def test_every_stack_runs_restricted_pods_in_a_restricted_namespace(name):
    mon = stack(name).monitor
    ns = mon.one("kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = mon.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
    strategy = mon.one(DEPLOYMENT).inputs["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


@pytest.mark.parametrize("name", ["fastapi-prod", "django-prod"])
def test_probes_hit_the_app_paths_and_the_grace_period_covers_the_server(name):
    pod = stack(name).monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    app = next(c for c in pod["containers"] if c["name"] == "app")
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    graceful = int(app["command"][app["command"].index(
        "--timeout-graceful-shutdown" if name.startswith("fastapi") else "--graceful-timeout") + 1])
    assert pod["terminationGracePeriodSeconds"] > graceful


@pytest.mark.parametrize("name", ["django-dev", "django-prod", "django-local"])
def test_django_rollout_waits_for_the_migration_job(name):
    mon = stack(name).monitor
    job = mon.one(JOB)
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python", "manage.py", "migrate", "--noinput"]
    deployment = mon.one(DEPLOYMENT)
    assert job.urn in deployment.dependencies or any(
        mon.by_urn(d).type == "webstack:components:ReleaseJob" for d in deployment.dependencies)


def test_prod_images_are_pinned_by_digest_and_dev_accepts_a_tag():
    prod = stack("fastapi-prod").monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]["containers"][0]
    assert "@sha256:" in prod["image"]
    dev = stack("fastapi-dev").monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]["containers"][0]
    assert dev["image"].endswith(":0.4.1")


def test_a_tag_in_prod_is_refused_before_anything_is_created():
    from cli.render import ROOT
    from cli.offline import run_program
    import runpy

    config = {"webstack:framework": "fastapi", "webstack:environment": "prod",
              "webstack:app": {"image": "ghcr.io/acme/api:1.0"}}
    with pytest.raises(Exception, match="digest"):
        run_program("fastapi-prod", config, lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))


def test_prod_stateful_resources_are_protected_and_dev_ones_are_not():
    prod = stack("django-prod").monitor
    dev = stack("django-dev").monitor
    for mon, expected in ((prod, True), (dev, False)):
        assert mon.one("aws:rds/instance:Instance").protect is expected
        assert mon.one("aws:s3/bucket:Bucket").protect is expected


def test_aws_resources_carry_the_default_tags_through_the_provider():
    import json

    providers = stack("django-prod").monitor.all("pulumi:providers:aws")
    assert len(providers) == 1, "every AWS resource goes through the one tagged provider"
    tags = providers[0].inputs["defaultTags"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    assert tags == {"tags": {"project": "webstack", "stack": "django-prod", "environment": "prod",
                             "managed-by": "pulumi"}}


def test_secrets_reach_the_cluster_only_as_secrets():
    mon = stack("fastapi-prod").monitor
    secret = next(r for r in mon.all("kubernetes:core/v1:Secret"))
    assert secret.inputs["stringData"] == "[secret]"
