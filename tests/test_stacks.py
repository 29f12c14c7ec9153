"""Each example stack under mocks: the properties a user relies on."""

from __future__ import annotations

import json
import re
import runpy

import pytest
from example_runs import stack

from cli.offline import run_started, start
from cli.render import PROGRAM, example_stacks, load_stack_file
from stacks.errors import ConfigError

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"
# Everything that makes pods. A type the program starts to create must be listed here, or the
# pod properties below silently skip it (test_every_pod_making_type_is_checked guards that).
WORKLOADS = (DEPLOYMENT, "kubernetes:apps/v1:StatefulSet", JOB, "kubernetes:batch/v1:CronJob",
             "kubernetes:apps/v1:DaemonSet", "kubernetes:core/v1:Pod", "kubernetes:apps/v1:ReplicaSet")
MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def pod_specs(mon) -> list[tuple[str, dict]]:
    """(resource name, pod spec) of every workload a stack creates."""
    pods = []
    for reg in (r for t in WORKLOADS for r in mon.all(t)):
        spec = reg.inputs["spec"]
        if reg.type.endswith(":CronJob"):
            spec = spec["jobTemplate"]["spec"]
        pods.append((reg.name, spec if reg.type.endswith(":Pod") else spec["template"]["spec"]))
    return pods


def containers(pod: dict) -> list[dict]:
    return pod["containers"] + pod.get("initContainers", [])


def offline_secrets(value, found=None) -> list[str]:
    """The stand-ins the offline render puts where a stack file has `secure:` values."""
    found = [] if found is None else found
    if isinstance(value, str) and value.startswith("offline-secret-"):
        found.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            offline_secrets(v, found)
    elif isinstance(value, list):
        for v in value:
            offline_secrets(v, found)
    return found


@pytest.mark.parametrize("name,lo,hi", [("fastapi-dev", 1, 3), ("fastapi-prod", 2, 10),
                                        ("django-dev", 1, 3), ("django-prod", 2, 10)])
def test_hpa_bounds_follow_the_environment_profile(name, lo, hi):
    hpa = stack(name).monitor.one(HPA)
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (lo, hi)
    assert "replicas" not in stack(name).monitor.one(DEPLOYMENT).inputs["spec"], "the HPA owns replicas"


def test_every_pod_making_type_is_checked():
    """The pod tests below walk WORKLOADS; a stack creating pods some other way escapes them."""
    for name in example_stacks():
        made = {r.type for r in stack(name).monitor.all() if r.custom and r.type.startswith("kubernetes:")
                and any(k in r.inputs.get("spec", {}) for k in ("template", "jobTemplate", "containers"))}
        assert made <= set(WORKLOADS), f"{name}: {made - set(WORKLOADS)}"


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod", "fastapi-local",
                                  "django-dev", "django-prod", "django-local"])
def test_every_stack_runs_restricted_pods_in_a_restricted_namespace(name):
    mon = stack(name).monitor
    # The app's namespace (the monitoring stack's has its own level: tests/observability).
    ns = mon.one("kubernetes:core/v1:Namespace", "web-ns-namespace")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = pod_specs(mon)
    for reg in (r for t in WORKLOADS for r in mon.all(t)):
        assert reg.inputs["metadata"]["namespace"] == ns.inputs["metadata"]["name"], reg.name
    # What Pod Security "restricted" admits, and the kit's read-only root filesystem on top.
    for pod_name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, pod_name
        for c in containers(pod):
            sc = c["securityContext"]
            where = f"{pod_name}/{c['name']}"
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            seccomp = sc.get("seccompProfile") or pod["securityContext"].get("seccompProfile") or {}
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where
    strategy = mon.one(DEPLOYMENT).inputs["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


@pytest.mark.parametrize("name", ["fastapi-prod", "django-prod"])
def test_probes_hit_the_app_paths_and_the_grace_period_covers_the_server(name):
    pod = stack(name).monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    app = next(c for c in pod["containers"] if c["name"] == "app")
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    if name.startswith("fastapi"):
        graceful = int(app["command"][app["command"].index("--timeout-graceful-shutdown") + 1])
    else:  # Gunicorn reads it from the rendered gunicorn.conf.py
        conf = next(m.inputs["data"]["gunicorn.conf.py"] for m in stack(name).monitor.all(CONFIG_MAP)
                    if "gunicorn.conf.py" in m.inputs["data"])
        graceful = int(re.search(r"^graceful_timeout = ([0-9]+)\b", conf, re.MULTILINE).group(1))
    assert pod["terminationGracePeriodSeconds"] > graceful


@pytest.mark.parametrize("name", ["django-dev", "django-prod", "django-local"])
def test_django_rollout_waits_for_the_migration_job(name):
    mon = stack(name).monitor
    [job] = [j for j in mon.all(JOB)
             # The command's end: it runs under the migration guard (tests/test_migration_guard.py).
             if j.inputs["spec"]["template"]["spec"]["containers"][0]["command"][-len(MIGRATE):] == MIGRATE]
    release = mon.by_urn(job.parent)
    assert release.type == "webstack:components:ReleaseJob", "the migration Job belongs to a ReleaseJob"
    deployment = mon.one(DEPLOYMENT)
    # On the Job itself, or on the ReleaseJob that owns it (the engine waits for its children);
    # a dependency on another Job or component would let the rollout start mid-migration.
    assert {job.urn, release.urn} & set(deployment.dependencies), \
        f"the Deployment does not wait for {job.name}: {deployment.dependencies}"


@pytest.mark.parametrize("name", ["fastapi-prod", "django-prod"])
def test_every_image_a_prod_stack_runs_is_pinned_by_digest(name):
    images = {c["image"] for _, pod in pod_specs(stack(name).monitor) for c in containers(pod)}
    assert images
    assert not [i for i in images if not DIGEST.search(i)], images


def test_a_dev_stack_runs_the_tag_its_stack_file_names():
    image = load_stack_file("fastapi-dev").config["webstack:app"]["image"]
    assert not DIGEST.search(image), "the dev example pins by tag"
    pod = stack("fastapi-dev").monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert next(c for c in pod["containers"] if c["name"] == "app")["image"] == image


@pytest.mark.parametrize("name", ["fastapi-prod", "django-prod"])
def test_a_tag_in_prod_is_refused_before_anything_is_created(name):
    stack_file = load_stack_file(name)
    app = stack_file.config["webstack:app"]
    config = {**stack_file.config, "webstack:app": {**app, "image": DIGEST.sub(":1.0", app["image"])}}
    monitor = start(name, config, stack_file.secret_keys)
    with pytest.raises(ConfigError) as refused:
        run_started(monitor, lambda: runpy.run_path(str(PROGRAM), run_name="__main__"))
    [problem] = refused.value.problems  # the rest of the example is valid: only the image is named
    assert problem.startswith("webstack:app.image:") and "digest" in problem, problem
    assert monitor.all() == [], "nothing may be registered once the config is refused"


def test_prod_stateful_resources_are_protected_and_dev_ones_are_not():
    prod = stack("django-prod").monitor
    dev = stack("django-dev").monitor
    for mon, expected in ((prod, True), (dev, False)):
        assert mon.one("aws:rds/instance:Instance").protect is expected
        buckets = mon.all("aws:s3/bucket:Bucket")  # static files and media
        assert len(buckets) == 2 and {b.protect for b in buckets} == {expected}


def test_a_prod_cluster_refuses_deletion_and_a_dev_one_does_not():
    eks = "aws:eks/cluster:Cluster"
    assert stack("fastapi-prod").monitor.one(eks).inputs["deletionProtection"] is True
    assert stack("fastapi-dev").monitor.one(eks).inputs["deletionProtection"] is False


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod", "django-dev", "django-prod"])
def test_aws_resources_carry_the_default_tags_through_the_provider(name):
    mon = stack(name).monitor
    [provider] = mon.all("pulumi:providers:aws")
    tags = provider.inputs["defaultTags"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    assert tags == {"tags": {"project": "webstack", "stack": name, "environment": name.split("-")[1],
                             "managed-by": "pulumi"}}
    resources = [r for r in mon.all() if r.custom and r.type.startswith("aws:")]
    assert resources
    untagged = [r.name for r in resources if (r.provider or "").rsplit("::", 1)[0] != provider.urn]
    assert not untagged, f"created through another (untagged) provider: {untagged}"


@pytest.mark.parametrize("name", [n for n in example_stacks() if load_stack_file(n).secret_keys])
def test_secrets_reach_the_cluster_only_as_secrets(name):
    mon = stack(name).monitor
    values = offline_secrets(load_stack_file(name).config)
    assert values
    for reg in mon.all():
        for value in values:
            # Wherever a secret flows, the program marked it secret...
            assert value not in json.dumps(reg.inputs), f"{value} in plain text in {reg.type} {reg.name}"
            # ...and the only objects that carry it are Secrets (not a ConfigMap, env value, tag...).
            if value in json.dumps(reg.plain_inputs):
                assert reg.type == SECRET, f"{value} reaches {reg.type} {reg.name}"
    secrets = mon.all(SECRET)
    assert all(s.inputs["stringData"] == "[secret]" for s in secrets)
    # The app's own secrets reach its container by reference to one of those Secrets.
    names = {n for n in load_stack_file(name).config["webstack:app"].get("secrets", {})}
    pod = mon.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    app = next(c for c in pod["containers"] if c["name"] == "app")
    env = {e["name"]: e for e in app["env"]}
    secret_names = {s.state["metadata"]["name"] for s in secrets}
    for secret_name in names:
        ref = env[secret_name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] in secret_names and ref["key"] == secret_name
