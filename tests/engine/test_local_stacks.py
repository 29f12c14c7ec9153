"""The real engine on every `*-local` example stack: the Pulumi CLI, the Python language host
and the Kubernetes provider against a real kube-apiserver (tests/engine/cluster.py).

Per stack, in order: an up with a mistyped key, which must fail on its message alone and
create nothing; preview; up, after which the cluster's Prometheus (kube-prometheus-stack's, run by
the real Prometheus Operator: tests/engine/monitoring.py) scrapes the app and loads its rules;
a second up that changes nothing; an up with monitor labels that Prometheus does not select,
which leaves the app unscraped; a new image that runs the release Jobs before the Deployment
rolls; a release Job that fails, which must fail the update and leave the old pods serving;
destroy. What a stack has (Jobs, Deployments, namespace) is read from its state, not
hard-coded, so a stack that gains a release Job is covered by the same tests.
"""

from __future__ import annotations

import json
import re
import urllib.error

import pytest

from tests.engine.cluster import FAIL_MARKER, KubeApi, wait_for
from tests.engine.monitoring import MONITORING_API, Monitoring, scrape_job
from tests.engine.workspace import StackWorkspace, local_stacks, read_event_log

pytestmark = pytest.mark.engine

JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NAMESPACE = "kubernetes:core/v1:Namespace"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
# The app's Deployment, Service, ServiceMonitor and PrometheusRule share this name; the Service's
# name is the `job` label Prometheus gives the app's series, which its rules select.
APP = "web-app"
# Where each reference app serves /metrics: FastAPI on its http port, Django on the second Nginx
# listener (the app contract).
METRICS_PORT = {"fastapi": 8000, "django": 9000}
# How long the operator may take to act on a change (it does within a second here).
OPERATOR_TIMEOUT = 60


@pytest.fixture(scope="module", params=local_stacks())
def stack(request, cluster, tmp_path_factory):
    ws = StackWorkspace(request.param, tmp_path_factory.mktemp(request.param), cluster)
    ws.init()
    yield ws
    # Leave the shared cluster clean for the next stack, whatever failed.
    if ws.resources():
        ws.pulumi("destroy", "--yes", "--skip-preview", timeout=300, check=False)


# -- helpers -------------------------------------------------------------------------
def with_tag_suffix(image: str, suffix: str) -> str:
    """Another image of the same repository: the tag with a suffix, or another digest."""
    if "@sha256:" in image:
        repo, digest = image.split("@sha256:")
        return f"{repo}@sha256:{(suffix.encode().hex() + digest)[:64]}"
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag:  # no tag: `latest`
        repo, tag = image, "latest"
    return f"{repo}:{tag}-{suffix}"


def meta(outputs: dict) -> tuple[str, str]:
    return outputs["metadata"]["namespace"], outputs["metadata"]["name"]


def images(template_spec: dict) -> set[str]:
    return {c["image"] for c in template_spec["containers"]}


def app_deployments(ws: StackWorkspace, image: str) -> list[tuple[str, str]]:
    """The stack's Deployments that run the app image (a stack may add others, e.g. a database)."""
    return [meta(d) for d in ws.live(DEPLOYMENT) if image in images(d["spec"]["template"]["spec"])]


def release_jobs(ws: StackWorkspace, image: str) -> list[tuple[str, str]]:
    return [meta(j) for j in ws.live(JOB) if image in images(j["spec"]["template"]["spec"])]


def replica_sets(api: KubeApi, ns: str, deployment: str) -> list[dict]:
    uid = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{deployment}")["metadata"]["uid"]
    return [rs for rs in api.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
            if any(o["uid"] == uid for o in rs["metadata"].get("ownerReferences", []))]


def ready_pods(api: KubeApi, ns: str, rs: dict) -> list[dict]:
    uid = rs["metadata"]["uid"]
    return [p for p in api.items(f"/api/v1/namespaces/{ns}/pods")
            if any(o["uid"] == uid for o in p["metadata"].get("ownerReferences", []))
            and p["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def job_condition(job: dict, type_: str) -> dict | None:
    return next((c for c in job.get("status", {}).get("conditions", [])
                 if c["type"] == type_ and c["status"] == "True"), None)


def event_order(events: list[dict]) -> list[tuple[str, str, str]]:
    """(event kind, op, urn) for each resource event of an `--event-log`, in engine order."""
    order = []
    for e in events:
        for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
            if kind in e:
                m = e[kind].get("metadata", {})
                order.append((kind, m.get("op", ""), m.get("urn", "")))
    return order


def wait_selected(prometheus: Monitoring, api: KubeApi, ns: str) -> tuple[dict, dict]:
    """(the app's scrape config, its rule file) once the operator generated them; fails with
    what the objects carry and what the operator said, if it never does."""
    job = scrape_job(ns, APP)
    try:
        jobs = wait_for(f"{job} in the generated configuration",
                        lambda: (j := prometheus.scrape_jobs()).get(job) and j, OPERATOR_TIMEOUT)
        rule_file = prometheus.rule_file_name(ns, APP)
        assert rule_file, f"the stack has no PrometheusRule {ns}/{APP}"
        files = wait_for(f"{rule_file} in the generated rule files",
                         lambda: (f := prometheus.rule_files()).get(rule_file) and f, OPERATOR_TIMEOUT)
    except TimeoutError as exc:
        found = {kind: api.get_or_none(f"{MONITORING_API}/namespaces/{ns}/{kind}/{APP}")
                 for kind in ("servicemonitors", "prometheusrules")}
        labels = {kind: obj and obj["metadata"].get("labels") for kind, obj in found.items()}
        pytest.fail(f"{exc}\nthe stack's objects' labels: {labels}\n{prometheus.logs()}")
    return jobs[job], files[rule_file]


def rule_names(spec: dict) -> set[tuple[str, str]]:
    return {(g["name"], r.get("alert") or r["record"]) for g in spec["groups"] for r in g["rules"]}


def label_values(exprs, name: str) -> set[str]:
    """The values a label is matched with (`name="value"`) in PromQL expressions."""
    return {m for e in exprs for m in re.findall(rf'\b{name}\s*=\s*"([^"]*)"', e)}


# -- the tests, in the order they run per stack ------------------------------------------
def test_a_mistyped_key_fails_up_with_only_its_message_and_creates_nothing(stack):
    stack.pulumi("config", "set", "--path", "webstack:app.prot", "8080", timeout=60)
    try:
        result = stack.up(timeout=240, check=False)
    finally:
        stack.pulumi("config", "rm", "--path", "webstack:app.prot", timeout=60)
    assert not result.ok, result.explain()
    output = result.stdout + result.stderr
    assert "webstack:app.prot: unknown key; did you mean 'port'?" in output, result.explain()
    assert "nothing was created" in output
    assert "Traceback" not in output and 'File "' not in output, result.explain()
    assert not stack.created(), "a bad config must create nothing"


def test_preview_plans_the_whole_stack(stack):
    result = stack.pulumi("preview", "--json", timeout=240)
    plan = json.loads(result.stdout)
    created = {s["urn"].split("::")[-2].split("$")[-1] for s in plan["steps"] if s["op"] == "create"}
    assert {NAMESPACE, DEPLOYMENT} <= created, created
    assert not stack.created(), "preview must create nothing"


def test_up_creates_the_stack_in_a_restricted_namespace(stack, cluster):
    stack.up()
    api = cluster.api
    outputs = stack.outputs()
    ns = outputs["namespace"]
    labels = api.get(f"/api/v1/namespaces/{ns}")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # Every app pod was admitted by the real API server under `restricted` and is Ready.
    image = stack.image()
    deployments = app_deployments(stack, image)
    assert deployments, "no Deployment runs the app image"
    for dns, name in deployments:
        dep = api.get(f"/apis/apps/v1/namespaces/{dns}/deployments/{name}")
        assert dep["status"].get("readyReplicas", 0) >= 1, dep["status"]
        assert dep["status"]["readyReplicas"] == dep["status"]["replicas"], dep["status"]
    # ...and the namespace really enforces it: a root pod is refused.
    root_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root-probe"},
                "spec": {"containers": [{"name": "c", "image": image,
                                         "securityContext": {"runAsUser": 0}}]}}
    with pytest.raises(urllib.error.HTTPError) as refused:
        api.create(f"/api/v1/namespaces/{ns}/pods?dryRun=All", root_pod)
    assert refused.value.code == 403
    assert "violates PodSecurity" in refused.value.read().decode()


def test_the_clusters_prometheus_scrapes_the_app_and_loads_its_rules(stack, cluster, prometheus):
    """kube-prometheus-stack's Prometheus selects the stack's ServiceMonitor and PrometheusRule
    as the kit labels them by default; the scrape config it gets finds every app pod where the
    app serves /metrics, and names their series' job as the rules query it."""
    api = cluster.api
    outputs = stack.outputs()
    ns = outputs["namespace"]
    job, rule_file = wait_selected(prometheus, api, ns)

    deployment = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{APP}")
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    pods = [p for p in api.items(f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}")
            if p["status"].get("phase") == "Running"]
    assert len(pods) == deployment["status"]["readyReplicas"] >= 1, [p["status"] for p in pods]
    port = METRICS_PORT[outputs["framework"]]
    targets = prometheus.targets(job)
    assert {t["__address__"] for t in targets} == {f"{p['status']['podIP']}:{port}" for p in pods}, targets
    assert {t["__metrics_path__"] for t in targets} == {"/metrics"}
    assert {(t["job"], t["namespace"]) for t in targets} == {(APP, ns)}, targets

    live = api.get(f"{MONITORING_API}/namespaces/{ns}/prometheusrules/{APP}")["spec"]
    # Every rule reached Prometheus: the operator drops a rule file that fails to parse.
    assert rule_names(rule_file) == rule_names(live) and rule_names(live), (rule_names(rule_file), rule_names(live))
    exprs = [r["expr"] for g in rule_file["groups"] for r in g["rules"]]
    assert APP in label_values(exprs, "job") and ns in label_values(exprs, "namespace"), \
        "the rules must select the series of the job Prometheus scrapes the app as"


def test_grafana_finds_the_apps_dashboard(stack, cluster):
    """kube-prometheus-stack's Grafana loads every ConfigMap labelled grafana_dashboard: "1", in
    any namespace (its sidecar's defaults), each JSON value as a dashboard."""
    dashboards = []
    for m in stack.live(CONFIG_MAP):
        ns, name = meta(m)
        live = cluster.api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")
        if (live["metadata"].get("labels") or {}).get("grafana_dashboard") == "1":
            dashboards += [(key, json.loads(text)) for key, text in live["data"].items()]
    assert dashboards, "no ConfigMap of the stack is labelled for Grafana's dashboard sidecar"
    for key, dashboard in dashboards:
        assert key.endswith(".json") and dashboard["title"] and dashboard["panels"], key


def test_second_up_changes_nothing(stack):
    stack.up("--expect-no-changes")


def test_monitor_labels_prometheus_does_not_select_leave_the_app_unscraped(stack, cluster, prometheus):
    """The same stack labelled for another release: that Prometheus neither scrapes the app nor
    loads its rules. So a kit that labelled its objects other than monitor_labels says, or put the
    labels on one object only, fails this test or the one above."""
    api = cluster.api
    ns = stack.outputs()["namespace"]
    stack.pulumi("config", "set", "--path", "webstack:observability.monitor_labels.release", "another-release",
                 timeout=60)
    try:
        stack.up()
        for kind in ("servicemonitors", "prometheusrules"):
            labels = api.get(f"{MONITORING_API}/namespaces/{ns}/{kind}/{APP}")["metadata"]["labels"]
            assert labels.get("release") == "another-release", (kind, labels)
        jobs, rule_files = prometheus.settled(ns, timeout=OPERATOR_TIMEOUT)
        assert scrape_job(ns, APP) not in jobs, sorted(jobs)
        assert prometheus.rule_file_name(ns, APP) not in rule_files, sorted(rule_files)
    finally:
        # Back to the default labels; the next test's up puts them on the objects again.
        stack.pulumi("config", "rm", "--path", "webstack:observability.monitor_labels", timeout=60)


def test_new_image_runs_release_jobs_before_the_deployment_rolls(stack, cluster, tmp_path):
    api = cluster.api
    old = stack.image()
    new = with_tag_suffix(old, "r2")
    deployments = app_deployments(stack, old)
    old_jobs = set(release_jobs(stack, old))
    stack.set_image(new)
    log = tmp_path / "events.jsonl"
    stack.up(event_log=log)

    for ns, name in deployments:
        dep = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
        assert images(dep["spec"]["template"]["spec"]) >= {new}
        assert dep["status"].get("updatedReplicas") == dep["status"].get("replicas") == dep["status"]["readyReplicas"]

    jobs = release_jobs(stack, new)
    if not jobs:
        pytest.skip(f"{stack.stack} has no release Job (the rollout itself was checked)")
    # A new Job (its name hashes the image), not the old one patched.
    assert not set(jobs) & old_jobs, (jobs, old_jobs)
    new_rs = [rs for ns, name in deployments for rs in replica_sets(api, ns, name)
              if new in images(rs["spec"]["template"]["spec"])]
    assert new_rs
    for ns, name in jobs:
        job = api.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")
        assert job_condition(job, "Complete"), job["status"]
        # The new ReplicaSet was made only after the Job completed (second precision)...
        for rs in new_rs:
            assert job["status"]["completionTime"] <= rs["metadata"]["creationTimestamp"]
    # ...and the engine finished each Job before it touched a Deployment.
    order = event_order(read_event_log(log))
    job_done = [i for i, (kind, _, urn) in enumerate(order) if kind == "resOutputsEvent" and f"{JOB}::" in urn]
    dep_start = [i for i, (kind, op, urn) in enumerate(order)
                 if kind == "resourcePreEvent" and f"{DEPLOYMENT}::" in urn and op != "same"]
    assert job_done and dep_start, order
    assert max(job_done) < min(dep_start), order


def test_failed_release_job_fails_the_update_and_old_pods_keep_serving(stack, cluster, tmp_path):
    api = cluster.api
    serving = stack.image()
    assert stack.created(), "the stack is not up: an earlier step failed"
    if not release_jobs(stack, serving):
        pytest.skip(f"{stack.stack} has no release Job")
    deployments = app_deployments(stack, serving)
    before = {(ns, name): api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")["metadata"]["generation"]
              for ns, name in deployments}
    broken = with_tag_suffix(serving, FAIL_MARKER)
    stack.set_image(broken)
    log = tmp_path / "events.jsonl"
    result = stack.up(event_log=log, timeout=300, check=False)

    assert not result.ok, "an update whose release Job failed must fail"
    # A failed pod fails a guarded migrate Job at once (backoffLimit 0: the guard retries only lock
    # timeouts, inside the pod), other release Jobs after two (backoffLimit 1); Kubernetes decides
    # within seconds, long before the Job's deadline (activeDeadlineSeconds 600) or Pulumi's timeout.
    assert result.seconds < 120, result.explain()
    failed = [j for j in api.items("/apis/batch/v1/jobs")
              if broken in images(j["spec"]["template"]["spec"])]
    assert failed and all(job_condition(j, "Failed") for j in failed), [j.get("status") for j in failed]
    assert all(j["metadata"]["name"] in result.stdout for j in failed), "the error must name the Job"
    order = event_order(read_event_log(log))
    assert not [e for e in order if e[0] == "resourcePreEvent" and f"{DEPLOYMENT}::" in e[2] and e[1] != "same"], \
        "the Deployment must not be touched after a failed release Job"
    for (ns, name), generation in before.items():
        dep = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
        assert dep["metadata"]["generation"] == generation
        assert serving in images(dep["spec"]["template"]["spec"])
        assert broken not in images(dep["spec"]["template"]["spec"])
        sets = replica_sets(api, ns, name)
        assert not [rs for rs in sets if broken in images(rs["spec"]["template"]["spec"])]
        current = [rs for rs in sets if serving in images(rs["spec"]["template"]["spec"])]
        assert current and len(ready_pods(api, ns, current[0])) == dep["status"]["replicas"] >= 1
    # Put the serving image back, so destroy starts from a consistent stack.
    stack.set_image(serving)


def test_destroy_removes_everything(stack, cluster):
    ns = stack.outputs()["namespace"]
    stack.pulumi("destroy", "--yes", "--skip-preview", timeout=300)
    assert not stack.resources()
    wait_for(f"namespace {ns} gone", lambda: cluster.api.get_or_none(f"/api/v1/namespaces/{ns}") is None, 120)
