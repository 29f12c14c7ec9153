"""The app contract through the real engine: a local stack whose app is told its database as
one URL and runs its own release script, as a user bringing their own app would configure it.

The fastapi-local example, with `app.release` set to a shell script run in a working directory
and `app.env` values that refer to the kit's variables (`$(DATABASE_URL)`, `$(DATABASE_HOST)`),
goes through `pulumi up` against a real kube-apiserver. What the API server then stores is read
back: the release Job's command, that it completed before the Deployment's ReplicaSet existed,
and the env of the pods themselves, expanded as the kubelet expands it, with each `valueFrom`
resolved from the Secret and the pod it names. KWOK stands in for kubelets, so nothing runs:
this proves what is stored and in what order; tests/byo_app proves the commands really run.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from components.k8s_pod import env_references, expand_env
from tests.engine.cluster import KubeApi, wait_for
from tests.engine.workspace import StackWorkspace, read_event_log

pytestmark = pytest.mark.engine

STACK = "fastapi-local"
JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# Its own namespace, so it never meets test_local_stacks' copy of the same example.
NAMESPACE = "webstack-app-contract"
DATABASE_NAME = "orders"  # not the default ("app"), so the URL is seen to carry the configured one
SCRIPT_STEP = {"command": ["sh", "scripts/prestart.sh"], "working_dir": "/app/backend"}
APP_ENV = {"APP_DB": "$(DATABASE_URL)",
           "CONN_INFO": "user=$(DATABASE_USER) host=$(DATABASE_HOST) port=$(DATABASE_PORT)"}


def set_path(ws: StackWorkspace, key: str, value: str, *, secret: bool = False) -> None:
    """`pulumi config set --path`, as a user would type it. No `--` before the value: the
    workspace appends its own flags after the arguments; no value here starts with `-`."""
    assert not value.startswith("-"), value
    ws.pulumi("config", "set", "--path", *(["--secret"] if secret else []), key, value, timeout=60)


@pytest.fixture(scope="module")
def deployed(cluster, tmp_path_factory):
    ws = StackWorkspace(STACK, tmp_path_factory.mktemp("app-contract"), cluster)
    ws.init()
    # Characters a URL must percent-encode, so the round trip through it is tested too.
    password = f"p@ss:w/rd#?%&{secrets.token_hex(6)}"
    set_path(ws, "webstack:namespace", NAMESPACE)
    set_path(ws, "webstack:fastapi.database.database_name", DATABASE_NAME)
    set_path(ws, "webstack:fastapi.database.local_password", password, secret=True)
    for i, arg in enumerate(SCRIPT_STEP["command"]):
        set_path(ws, f"webstack:app.release[0].command[{i}]", arg)
    set_path(ws, "webstack:app.release[0].working_dir", SCRIPT_STEP["working_dir"])
    for name, value in APP_ENV.items():
        set_path(ws, f"webstack:app.env.{name}", value)
    log = ws.workdir / "up-events.jsonl"
    try:
        ws.up(event_log=log)
        yield ws, log, password
    finally:
        # Leave the shared cluster clean, whatever failed.
        if ws.resources():
            ws.pulumi("destroy", "--yes", "--skip-preview", timeout=300, check=False)


# -- what the kubelet would do -----------------------------------------------------------------
def field_value(obj: dict, path: str) -> str:
    """A downward-API fieldPath (`metadata.name`, `spec.nodeName`) read from the stored pod."""
    node = obj
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, f"fieldPath {path!r} not in the pod"
        node = node[part]
    return str(node)


def secret_data(api: KubeApi, ns: str, name: str) -> dict[str, str]:
    data = api.get(f"/api/v1/namespaces/{ns}/secrets/{name}").get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def kubelet_env(api: KubeApi, pod: dict, container: str) -> tuple[list[dict], dict[str, str]]:
    """The container's env as stored in the pod, and what the process would get: each valueFrom
    resolved from the object it names (the Secret in the API server, the pod's own fields), then
    `$(NAME)` expanded as the kubelet expands it."""
    ns = pod["metadata"]["namespace"]
    (spec,) = [c for c in pod["spec"]["containers"] if c["name"] == container]
    env = spec.get("env") or []
    resolved: dict[str, str] = {}
    for entry in env:
        source = entry.get("valueFrom")
        if source is None:
            continue
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            resolved[entry["name"]] = secret_data(api, ns, ref["name"])[ref["key"]]
        elif "fieldRef" in source:
            resolved[entry["name"]] = field_value(pod, source["fieldRef"]["fieldPath"])
        else:
            pytest.fail(f"{entry['name']}: a source this test does not resolve: {source}")
    expanded = expand_env(env, resolved)
    assert list(expanded) == [e["name"] for e in env], "every entry must have a value"
    return env, expanded


def check_order(env: list[dict], where: str) -> None:
    """Each `$(NAME)` in a value comes after NAME: the kubelet expands only earlier variables."""
    order = [e["name"] for e in env]
    for i, entry in enumerate(env):
        for ref in env_references(str(entry.get("value", ""))):
            assert ref in order[:i], f"{where}: {entry['name']} refers to $({ref}), not listed before it: {order}"


def owned_by(items: list[dict], uid: str) -> list[dict]:
    return [o for o in items if any(r["uid"] == uid for r in o["metadata"].get("ownerReferences", []))]


def only_app_deployment(api: KubeApi) -> dict:
    """The app's Deployment: the stack's only one (its PostgreSQL is a StatefulSet)."""
    (dep,) = api.items(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
    return dep


def the_database(api: KubeApi) -> dict[str, str]:
    """What the in-cluster PostgreSQL server really is: its Service's name and port, and the
    user, database and password its StatefulSet's container is started with."""
    (sts,) = api.items(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets")
    svc = api.get(f"/api/v1/namespaces/{NAMESPACE}/services/{sts['spec']['serviceName']}")
    (server,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in server["env"]}
    ref = env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    (port,) = svc["spec"]["ports"]
    return {"host": f"{svc['metadata']['name']}.{NAMESPACE}.svc.cluster.local", "port": str(port["port"]),
            "user": env["POSTGRES_USER"]["value"], "database": env["POSTGRES_DB"]["value"],
            "password": secret_data(api, NAMESPACE, ref["name"])[ref["key"]]}


def check_expanded(expanded: dict[str, str], db: dict[str, str], password: str, where: str) -> None:
    url = expanded["DATABASE_URL"]
    assert expanded["APP_DB"] == url, where
    assert expanded["CONN_INFO"] == f"user={db['user']} host={db['host']} port={db['port']}", where
    parts = urlsplit(url)
    assert (parts.scheme, parts.username, parts.hostname, parts.port, parts.path) == (
        "postgresql", db["user"], db["host"], 5432, f"/{DATABASE_NAME}"), (where, url)
    assert unquote(parts.password or "") == password, f"{where}: the URL's password is not the configured one"
    assert parse_qs(parts.query) == {"sslmode": ["disable"]}, (where, url)
    assert expanded["PGPASSWORD"] == expanded["DATABASE_PASSWORD"] == password, where
    left = {k: v for k, v in expanded.items() if env_references(v)}
    assert not left, f"{where}: references the kubelet would leave as literal text: {left}"


def event_order(path: Path) -> list[tuple[str, str, str]]:
    """(event kind, op, urn) of each resource event the engine logged, in its order."""
    order = []
    for e in read_event_log(path):
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            if kind in e:
                m = e[kind].get("metadata", {})
                order.append((kind, m.get("op", ""), m.get("urn", "")))
    return order


# -- the tests ------------------------------------------------------------------------------------
def test_the_database_is_the_configured_one(deployed, cluster):
    ws, _, password = deployed
    db = the_database(cluster.api)
    assert (db["database"], db["port"], db["password"]) == (DATABASE_NAME, "5432", password)
    assert ws.outputs()["database_host"] == db["host"]


def test_the_release_script_runs_in_its_working_dir_and_completes_before_the_rollout(deployed, cluster):
    ws, log, _ = deployed
    api = cluster.api
    jobs = api.items(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    # app.release replaces the framework's migration step: the script is the only release Job.
    assert [j["metadata"]["name"] for j in jobs] == ws.outputs()["release_jobs"]
    (job,) = jobs
    assert job["metadata"]["name"].startswith("web-release-1-")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == SCRIPT_STEP["command"]
    assert container["workingDir"] == SCRIPT_STEP["working_dir"]
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions", [])), \
        job["status"]

    dep = only_app_deployment(api)
    sets = owned_by(api.items(f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"), dep["metadata"]["uid"])
    assert sets
    for rs in sets:  # second precision, both RFC 3339 in UTC
        assert job["status"]["completionTime"] <= rs["metadata"]["creationTimestamp"], (job["status"], rs["metadata"])
    order = event_order(log)
    job_done = [i for i, (kind, _, urn) in enumerate(order) if kind == "resOutputsEvent" and f"{JOB}::" in urn]
    dep_start = [i for i, (kind, op, urn) in enumerate(order)
                 if kind == "resourcePreEvent" and f"{DEPLOYMENT}::" in urn and op != "same"]
    assert job_done and dep_start, order
    assert max(job_done) < min(dep_start), "the engine must finish the release Job before it touches a Deployment"


def test_the_app_pods_env_lists_each_variable_before_its_references_and_expands_to_the_database(deployed, cluster):
    _, _, password = deployed
    api = cluster.api
    dep = only_app_deployment(api)
    template_env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    check_order(template_env, "Deployment template")
    names = [e["name"] for e in template_env]
    assert all(k in names for k in APP_ENV), names
    db = the_database(api)
    (rs,) = owned_by(api.items(f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"), dep["metadata"]["uid"])
    pods = owned_by(api.items(f"/api/v1/namespaces/{NAMESPACE}/pods"), rs["metadata"]["uid"])
    assert pods, "the Deployment has no pods"
    for pod in pods:
        container = dep["spec"]["template"]["spec"]["containers"][0]["name"]
        env, expanded = kubelet_env(api, pod, container)
        assert env == template_env, "the pod must store the template's env as it is"
        check_expanded(expanded, db, password, f"pod {pod['metadata']['name']}")
        # The kit's own references to pod fields expand too (the downward API, from the pod).
        attributes = expanded.get("OTEL_RESOURCE_ATTRIBUTES", "")
        assert f"k8s.pod.name={pod['metadata']['name']}" in attributes, attributes
        assert f"k8s.node.name={pod['spec']['nodeName']}" in attributes, attributes


def test_the_release_pod_is_told_the_same_database(deployed, cluster):
    _, _, password = deployed
    api = cluster.api
    (job,) = api.items(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    check_order(job["spec"]["template"]["spec"]["containers"][0]["env"], "release Job template")
    pods = owned_by(api.items(f"/api/v1/namespaces/{NAMESPACE}/pods"), job["metadata"]["uid"])
    assert pods, "the release Job has no pod"
    db = the_database(api)
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert (container["command"], container["workingDir"]) == (SCRIPT_STEP["command"], SCRIPT_STEP["working_dir"])
        _, expanded = kubelet_env(api, pod, container["name"])
        check_expanded(expanded, db, password, f"release pod {pod['metadata']['name']}")


def test_destroy_removes_everything(deployed, cluster):
    ws, _, _ = deployed
    ws.pulumi("destroy", "--yes", "--skip-preview", timeout=300)
    assert not ws.resources()
    wait_for(f"namespace {NAMESPACE} gone",
             lambda: cluster.api.get_or_none(f"/api/v1/namespaces/{NAMESPACE}") is None, 120)
