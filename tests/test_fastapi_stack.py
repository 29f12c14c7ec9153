"""The FastAPI stack under mocks: server settings from the pod's size, the database and its
migrations, and what each example stack gets."""

from __future__ import annotations

import json

import pytest
from example_runs import stack

from components.k8s_pod import Resources
from stacks.fastapi.server import LAUNCHER, plan_server
from cli.offline import ProgramRun, run_program
from cli.render import container_runs, kubernetes_object, load_stack_file
from stacks.config import load_settings
from stacks.errors import ConfigError
from stacks.fastapi.settings import AsgiServer

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
JOB = "kubernetes:batch/v1:Job"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"



def run_with(name: str, **changes) -> ProgramRun:
    """An example stack with some `webstack:` keys replaced."""
    import runpy
    from cli.render import ROOT

    sf = load_stack_file(name)
    config = {**sf.config, **{f"webstack:{k}": v for k, v in changes.items()}}
    return run_program(name, config, lambda: runpy.run_path(str(ROOT / "__main__.py")), sf.secret_keys)


def app_container(run: ProgramRun) -> dict:
    pod = run.monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "app")


def flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", "<from secret>") for e in container["env"]}


# --- the server: computed from the pod's CPU and memory -------------------------------

@pytest.mark.parametrize("cpu,memory,workers", [
    ("250m", "512Mi", 1),   # below one core: one process; the HPA adds pods
    ("1", "512Mi", 1),
    ("1500m", "1Gi", 1),    # a fraction of a core cannot run a second process
    ("2", "1Gi", 2),
    ("4", "2Gi", 4),
    ("4", "512Mi", 2),      # (512Mi - 40Mi supervisor) holds two workers at 128Mi + 32Mi headroom
])
def test_workers_follow_whole_cores_and_fit_in_memory(cpu, memory, workers):
    res = Resources(cpu_request="100m", cpu_limit=cpu, memory_request="128Mi", memory_limit=memory)
    plan = plan_server(AsgiServer(), res, port=8000, service_name="svc", environment="prod",
                       trusted_proxies=[], otlp_endpoint=None, trace_sample_ratio=0.1)
    assert plan.workers == workers
    assert flag(plan.command, "--workers") == str(workers)
    # Each worker's share of memory, past its idle footprint, bounds its in-flight requests.
    assert 64 <= plan.limit_concurrency <= 4096
    assert plan.backlog == min(4096, plan.limit_concurrency * workers)


def test_more_memory_per_worker_means_a_higher_concurrency_limit():
    small = plan_server(AsgiServer(), Resources(memory_limit="512Mi"), port=8000, service_name="s",
                        environment="prod", trusted_proxies=[], otlp_endpoint=None, trace_sample_ratio=1)
    big = plan_server(AsgiServer(), Resources(memory_limit="2Gi"), port=8000, service_name="s",
                      environment="prod", trusted_proxies=[], otlp_endpoint=None, trace_sample_ratio=1)
    assert (small.limit_concurrency, big.limit_concurrency) == (768, 3840)


def test_the_local_example_runs_two_workers_for_its_two_cores():
    command = app_container(stack("fastapi-local"))["command"]
    assert flag(command, "--workers") == "2"
    assert flag(command, "--loop") == "uvloop" and flag(command, "--http") == "httptools"


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod"])
def test_default_sized_pods_run_one_worker(name):
    assert flag(app_container(stack(name))["command"], "--workers") == "1"


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod", "fastapi-local"])
def test_server_timeouts_fit_the_load_balancer_and_the_grace_period(name):
    run = stack(name)
    command = app_container(run)["command"]
    pod = run.monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert int(flag(command, "--timeout-keep-alive")) > 60, "above the ALB / ingress-nginx idle timeout"
    assert pod["terminationGracePeriodSeconds"] > int(flag(command, "--timeout-graceful-shutdown"))


def test_prod_logs_json_without_an_access_log_and_dev_keeps_it():
    prod, dev = app_container(stack("fastapi-prod"))["command"], app_container(stack("fastapi-dev"))["command"]
    assert "--no-access-log" in prod and "--no-access-log" not in dev
    for command in (prod, dev):
        assert flag(command, "--log-config") == "/etc/webstack/uvicorn/logging.json"
        assert "--no-server-header" in command


def test_the_log_config_is_mounted_and_formats_json():
    run = stack("fastapi-prod")
    maps = [r for r in run.monitor.all("kubernetes:core/v1:ConfigMap") if "logging.json" in r.inputs["data"]]
    assert len(maps) == 1
    config = json.loads(maps[0].inputs["data"]["logging.json"])
    assert config["formatters"]["json"]["()"] == "pythonjsonlogger.json.JsonFormatter"
    mounts = {m["mountPath"] for m in app_container(run)["volumeMounts"]}
    assert "/etc/webstack/uvicorn" in mounts


def test_proxy_headers_are_trusted_only_from_the_vpc_on_aws():
    aws = app_container(stack("fastapi-prod"))["command"]
    assert flag(aws, "--forwarded-allow-ips") == "10.0.0.0/16" and "--proxy-headers" in aws
    local = app_container(stack("fastapi-local"))["command"]
    assert "--no-proxy-headers" in local and "--forwarded-allow-ips" not in local


def test_an_explicit_proxy_range_is_used_as_given():
    sf = load_stack_file("fastapi-local")
    fastapi = json.loads(json.dumps(sf.config["webstack:fastapi"]))
    fastapi["server"]["forwarded_allow_ips"] = ["10.244.0.0/16"]
    command = app_container(run_with("fastapi-local", fastapi=fastapi))["command"]
    assert flag(command, "--forwarded-allow-ips") == "10.244.0.0/16"


def test_metrics_and_tracing_are_wired_for_several_workers():
    env = env_of(app_container(stack("fastapi-prod")))
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/"), "on the writable emptyDir"
    assert env["OTEL_SERVICE_NAME"] == "webstack-fastapi-prod"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio" and env["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    # The collector the kit installs (observability.mode install, the default).
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.monitoring.svc:4318"
    assert env_of(app_container(stack("fastapi-dev")))["OTEL_TRACES_SAMPLER_ARG"] == "1"


def test_without_a_collector_spans_are_made_not_sent():
    env = env_of(app_container(run_with("fastapi-local", observability={"mode": "existing"})))
    assert env["OTEL_TRACES_EXPORTER"] == "none"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env


def test_spans_name_their_pod_namespace_and_node_from_the_downward_api():
    container = app_container(stack("fastapi-prod"))
    names = [e["name"] for e in container["env"]]
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]
              if "fieldRef" in e.get("valueFrom", {})}
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
                      "NODE_NAME": "spec.nodeName"}
    # Kubernetes expands $(NAME) only to variables listed before the one using it.
    assert max(names.index(n) for n in fields) < names.index("OTEL_RESOURCE_ATTRIBUTES")
    attributes = dict(pair.split("=", 1) for pair in env_of(container)["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes == {"deployment.environment.name": "prod", "service.namespace": "webstack-fastapi-prod",
                          "k8s.pod.name": "$(POD_NAME)", "k8s.namespace.name": "$(POD_NAMESPACE)",
                          "k8s.node.name": "$(NODE_NAME)"}


def test_a_name_the_user_sets_in_app_env_wins_over_a_pod_field():
    app = {**load_stack_file("fastapi-local").config["webstack:app"], "env": {"NODE_NAME": "laptop"}}
    env = app_container(run_with("fastapi-local", app=app))["env"]
    assert {"name": "NODE_NAME", "value": "laptop"} in env
    assert not [e for e in env if e["name"] == "NODE_NAME" and "valueFrom" in e]


def test_a_collector_endpoint_turns_on_otlp_export():
    env = env_of(app_container(run_with("fastapi-local",
                                        observability={"mode": "existing",
                                                       "otlp_endpoint": "http://otel.monitoring:4318"})))
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.monitoring:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"


# --- Granian (fastapi.server.kind: granian): the same keys under its own flags -----------

def plan(server: AsgiServer, cpu: str = "2", memory: str = "1Gi", trusted: list[str] | None = None):
    return plan_server(server, Resources(cpu_limit=cpu, memory_limit=memory), port=8000, service_name="svc",
                       environment="prod", trusted_proxies=trusted or [], otlp_endpoint=None, trace_sample_ratio=0.1)


def test_granian_gets_the_numbers_uvicorn_gets_under_its_own_flags():
    keys = {"graceful_timeout_seconds": 20, "keep_alive_timeout_seconds": 90}
    uvicorn, granian = plan(AsgiServer(**keys)), plan(AsgiServer(kind="granian", **keys))
    command = granian.command
    assert command[:4] == ["python", f"/etc/webstack/granian/{LAUNCHER}", "--interface", "asgi"]
    assert command[-1] == "app.main:app"
    assert flag(command, "--workers") == str(uvicorn.workers) == "2"
    assert flag(command, "--backpressure") == str(granian.limit_concurrency)
    assert flag(command, "--backlog") == str(granian.backlog)
    # Granian's header-read timeout (ms) is also its idle keep-alive timeout.
    assert flag(command, "--http1-header-read-timeout") == "90000"
    assert flag(command, "--workers-kill-timeout") == "20"
    assert flag(command, "--loop") == "uvloop" and flag(command, "--http") == "1"
    assert "--respawn-failed-workers" in command, "a dead worker is replaced, as Uvicorn's supervisor does"
    assert "--no-access-log" in command and flag(command, "--log-level") == "info"
    assert flag(command, "--log-config") == "/etc/webstack/granian/logging.json"
    assert granian.env == uvicorn.env and granian.writable_paths == uvicorn.writable_paths


def test_granian_logs_its_own_loggers_as_json_and_ships_its_launcher():
    granian = plan(AsgiServer(kind="granian", access_log=True))
    assert "--access-log" in granian.command
    assert set(granian.files) == {"logging.json", LAUNCHER}
    config = json.loads(granian.files["logging.json"])
    assert set(config["loggers"]) == {"_granian", "granian.access"}
    assert all(logger["propagate"] and not logger["handlers"] for logger in config["loggers"].values())
    assert config["root"]["handlers"] == ["stdout"]
    compile(granian.files[LAUNCHER], LAUNCHER, "exec")  # valid Python, whatever it was rendered from


def test_granian_counts_its_supervisor_even_with_one_worker():
    # Uvicorn runs one worker in its own process; Granian always beside a main process (40Mi).
    uvicorn, granian = plan(AsgiServer(), cpu="1", memory="512Mi"), plan(AsgiServer(kind="granian"), cpu="1",
                                                                      memory="512Mi")
    assert (uvicorn.workers, granian.workers) == (1, 1)
    assert (uvicorn.limit_concurrency, granian.limit_concurrency) == (768, 688)


def test_granian_backlog_is_never_below_its_minimum():
    uvicorn = plan(AsgiServer(workers=1, limit_concurrency=50))
    granian = plan(AsgiServer(kind="granian", workers=1, limit_concurrency=50))
    assert (uvicorn.backlog, granian.backlog) == (50, 128)
    assert flag(granian.command, "--backlog") == "128"


def test_granian_trusts_proxy_headers_only_through_the_launcher():
    trusted = plan(AsgiServer(kind="granian", app="orders_api.main:app"), trusted=["10.0.0.0/16"])
    assert trusted.command[-1] == "webstack_granian:app", "the app wrapped in Granian's proxy-headers wrapper"
    launcher = trusted.files[LAUNCHER]
    assert "APP = 'orders_api.main:app'" in launcher and "TRUSTED_PROXIES = ['10.0.0.0/16']" in launcher
    plain = plan(AsgiServer(kind="granian", app="orders_api.main:app"))
    assert plain.command[-1] == "orders_api.main:app" and "TRUSTED_PROXIES = []" in plain.files[LAUNCHER]


def test_a_granian_stack_mounts_its_files_and_its_grace_period_covers_the_kill_timeout():
    sf = load_stack_file("fastapi-prod")
    fastapi = json.loads(json.dumps(sf.config.get("webstack:fastapi", {})))
    fastapi["server"] = {**fastapi.get("server", {}), "kind": "granian"}
    run = run_with("fastapi-prod", fastapi=fastapi)
    app = app_container(run)
    command = app["command"]
    assert command[-1] == "webstack_granian:app" and "--forwarded-allow-ips" not in command
    maps = [r for r in run.monitor.all("kubernetes:core/v1:ConfigMap") if LAUNCHER in r.inputs["data"]]
    assert len(maps) == 1 and "TRUSTED_PROXIES = ['10.0.0.0/16']" in maps[0].inputs["data"][LAUNCHER], \
        "the VPC's range, as Uvicorn gets it"
    assert {m["mountPath"] for m in app["volumeMounts"]} >= {"/etc/webstack/granian", "/tmp/prometheus-multiproc"}
    pod = run.monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > int(flag(command, "--workers-kill-timeout"))
    assert list(container_runs(kubernetes_object(run.monitor.one(DEPLOYMENT)))["Deployment-web-app.app.json"]
                ["files"]) == ["/etc/webstack/granian"]


# --- shape of each example stack --------------------------------------------------------

@pytest.mark.parametrize("name,lo,hi", [("fastapi-dev", 1, 3), ("fastapi-prod", 2, 10), ("fastapi-local", 1, 3)])
def test_hpa_bounds_per_environment(name, lo, hi):
    spec = stack(name).monitor.one(HPA).inputs["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (lo, hi)


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod", "fastapi-local"])
def test_probes_hit_the_reference_app_paths(name):
    app = app_container(stack(name))
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_prod_refuses_an_image_pinned_only_by_tag():
    sf = load_stack_file("fastapi-prod")
    values = {k.removeprefix("webstack:"): v for k, v in sf.config.items() if k.startswith("webstack:")}
    values["app"] = {**values["app"], "image": "ghcr.io/acme/orders-api:0.4.1"}
    with pytest.raises(ConfigError) as err:
        load_settings(values, {k.removeprefix("webstack:") for k in sf.secret_keys})
    assert "webstack:app.image" in str(err.value) and "digest" in str(err.value)


@pytest.mark.parametrize("name", ["fastapi-dev", "fastapi-prod", "fastapi-local"])
def test_alembic_migrations_gate_the_rollout(name):
    mon = stack(name).monitor
    job = mon.one(JOB)
    # Under the migration guard (tests/test_migration_guard.py): the command is its last arguments.
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["command"][-4:] == ["--", "alembic", "upgrade",
                                                                                         "head"]
    assert job.urn in mon.one(DEPLOYMENT).dependencies, "the Deployment waits for the migration Job"


def test_without_a_database_there_is_no_migration_job_and_no_database_egress():
    run = run_with("fastapi-local", fastapi={"server": {"app": "orders_api.main:app"}})
    assert not run.monitor.all(JOB) and not run.monitor.all(STATEFULSET)
    policies = [r.inputs["metadata"]["name"] for r in run.monitor.all("kubernetes:networking.k8s.io/v1:NetworkPolicy")]
    assert "allow-database" not in policies
    assert not any(e["name"].startswith("DATABASE_") for e in app_container(run)["env"])


def test_local_database_is_an_in_cluster_postgres_reachable_from_the_namespace_only():
    mon = stack("fastapi-local").monitor
    sts = mon.one(STATEFULSET)
    pod = sts.inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert sts.inputs["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    allow = mon.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "web-postgres-allow-clients")
    assert allow.inputs["spec"]["ingress"] == [{"from": [{"podSelector": {}}],
                                                "ports": [{"protocol": "TCP", "port": 5432}]}]
    # The password exists only as a Pulumi secret, in Secrets.
    for secret in mon.all("kubernetes:core/v1:Secret"):
        assert "offline-secret" not in json.dumps(secret.inputs)
    env = env_of(app_container(stack("fastapi-local")))
    assert env["DATABASE_PASSWORD"] == "<from secret>" and env["DATABASE_HOST"] == "<from secret>"


def test_aws_database_is_rds_read_through_pod_identity():
    mon = stack("fastapi-prod").monitor
    rds = mon.one("aws:rds/instance:Instance")
    assert rds.protect is True, "prod protects the database"
    assert rds.inputs["manageMasterUserPassword"] is True
    identities = mon.all("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert sorted(i.inputs["serviceAccount"] for i in identities) == ["web-app", "web-release"]
    pod_policies = [p for p in mon.all("aws:iam/rolePolicy:RolePolicy")
                    if "webstack:components:PodIdentity" in (p.parent or "")]
    assert len(pod_policies) == 2
    for policy in pod_policies:
        doc = json.loads(policy.inputs["policy"]) if isinstance(policy.inputs["policy"], str) else policy.inputs["policy"]
        for st in doc["Statement"]:
            assert st["Action"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
            assert st["Resource"] != "*"
    env = env_of(app_container(stack("fastapi-prod")))
    assert env["DATABASE_SSLMODE"] == "require" and env["DATABASE_SECRET_ARN"] == "<from secret>"
    job = mon.one(JOB).inputs["spec"]["template"]["spec"]
    assert job["serviceAccountName"] == "web-release"


def test_dev_database_is_not_protected():
    assert stack("fastapi-dev").monitor.one("aws:rds/instance:Instance").protect is False


def test_the_rendered_run_file_is_the_deployment_command():
    run = stack("fastapi-local")
    obj = kubernetes_object(run.monitor.one(DEPLOYMENT))
    runs = container_runs(obj)
    app = runs["Deployment-web-app.app.json"]
    assert app["command"] == app_container(run)["command"]
    env = {e["name"]: e for e in app["env"]}
    assert env["DATABASE_PASSWORD"]["key"] == "DATABASE_PASSWORD"
    assert [e["name"] for e in app["env"]] == [e["name"] for e in app_container(run)["env"]], "in the pod's order"
    assert list(app["files"]) == ["/etc/webstack/uvicorn"]
