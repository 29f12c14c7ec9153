"""The contract between the kit and an app that is not ours: what the container is told, in what
order, and what a stack config may ask for; under mocks, as `pulumi up` would register it."""

from __future__ import annotations

import json
import runpy
from urllib.parse import unquote, urlsplit

import pytest

from cli.offline import run_program
from cli.render import ROOT
from components.k8s_pod import expand_env
from stacks.config import load_settings
from stacks.errors import ConfigError
from stacks.platform import database_url

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
RELEASE = "webstack:components:ReleaseJob"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def program():
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def local(**sections):
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "webstack:target": "local",
              "webstack:cluster": {"mode": "context"}, "webstack:app": {"image": "ghcr.io/acme/api:1.0"}}
    config.update({f"webstack:{k}": v for k, v in sections.items()})
    return config


# Where `pulumi up` runs from: the cluster's API must be reachable from there.
RUNNER = {"endpoint_public_access_cidrs": ["203.0.113.0/24"]}


def aws(**sections):
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "aws:region": "us-east-1",
              "webstack:app": {"image": "ghcr.io/acme/api:1.0"}, "webstack:cluster": RUNNER}
    config.update({f"webstack:{k}": v for k, v in sections.items()})
    return config


WITH_DB = {"database": {"enabled": True, "local_password": "pw"}}


def container(monitor, kind=DEPLOYMENT, index=0):
    objs = monitor.all(kind)
    return objs[index].inputs["spec"]["template"]["spec"]["containers"][0]


def names(env):
    return [e["name"] for e in env]


def secret_keys(monitor, prefix):
    secret = next(r for r in monitor.all("kubernetes:core/v1:Secret") if r.name.startswith(prefix))
    return sorted(secret.plain_inputs["stringData"])


# --- the database as one URL -----------------------------------------------------------

def test_the_url_carries_a_percent_encoded_password_that_round_trips():
    password = "p@ss:w/rd#?%"
    url = database_url("app", "db.svc", 5432, "app", "disable", password=password)
    parts = urlsplit(url)
    assert (parts.username, unquote(parts.password), parts.hostname, parts.port, parts.path) == (
        "app", password, "db.svc", 5432, "/app")
    assert parts.query == "sslmode=disable"


def test_local_stacks_hand_the_url_and_pgpassword_through_the_secret():
    mon = run_program("t", local(fastapi=WITH_DB), program, {"webstack:fastapi"}).monitor
    assert {"DATABASE_URL", "PGPASSWORD", "DATABASE_PASSWORD"} <= set(secret_keys(mon, "web-app-secrets"))
    assert {"DATABASE_URL", "PGPASSWORD"} <= set(secret_keys(mon, "web-migrate-secrets"))


def test_the_url_variable_is_named_by_the_stack_or_left_out():
    named = run_program("t", local(fastapi=WITH_DB, app={"image": "ghcr.io/acme/api:1.0",
                                                         "database_url_env": "SQLALCHEMY_DATABASE_URI"}),
                        program, {"webstack:fastapi"}).monitor
    assert "SQLALCHEMY_DATABASE_URI" in secret_keys(named, "web-app-secrets")
    assert "DATABASE_URL" not in secret_keys(named, "web-app-secrets")
    none = run_program("t", local(fastapi=WITH_DB, app={"image": "ghcr.io/acme/api:1.0", "database_url_env": None}),
                       program, {"webstack:fastapi"}).monitor
    assert not {"DATABASE_URL", "SQLALCHEMY_DATABASE_URI"} & set(secret_keys(none, "web-app-secrets"))


def test_on_aws_the_url_is_composed_by_the_kubelet_from_the_variables_before_it():
    mon = run_program("t", aws(fastapi={"database": {"enabled": True}}), program).monitor
    env = container(mon)["env"]
    url = next(e for e in env if e["name"] == "DATABASE_URL")
    assert "password" not in url["value"] and ":$(" not in url["value"].split("@")[0]
    expanded = expand_env(env, {"DATABASE_HOST": "db.rds.amazonaws.com", "DATABASE_PORT": "5432"})
    assert expanded["DATABASE_URL"] == "postgresql://app_admin@db.rds.amazonaws.com:5432/app?sslmode=require"


# --- release steps, external services --------------------------------------------------

def test_release_steps_run_in_order_in_their_working_dir_before_the_rollout_without_a_kit_database():
    app = {"image": "ghcr.io/acme/api:1.0", "env": {"DB": "postgresql://app@db.example.internal/app"},
           "release": [{"command": ["sh", "scripts/prestart.sh"], "working_dir": "/app/backend"},
                       {"command": ["python", "-m", "app.seed"]}],
           "egress": [{"cidr": "10.20.0.0/24", "port": 5432}, {"host": "smtp.example.com", "port": 587}]}
    mon = run_program("t", local(app=app), program).monitor
    first, second = (mon.one(RELEASE, f"web-release-{i}") for i in (1, 2))
    # Depending on a component is depending on its children: the Job.
    jobs = {j.parent: j for j in mon.all(JOB)}
    first_job, second_job = jobs[first.urn], jobs[second.urn]
    assert first_job.inputs["spec"]["template"]["spec"]["containers"][0]["workingDir"] == "/app/backend"
    assert first_job.inputs["spec"]["template"]["spec"]["containers"][0]["command"] == ["sh", "scripts/prestart.sh"]
    assert first_job.urn in second_job.dependencies, "each step's Job waits for the one before"
    assert "workingDir" not in second_job.inputs["spec"]["template"]["spec"]["containers"][0]
    deployment = mon.one(DEPLOYMENT)
    assert {first_job.urn, second_job.urn} <= set(deployment.dependencies), "the rollout waits for every step"

    egress = next(p for p in mon.all(POLICY) if p.inputs["metadata"]["name"] == "allow-egress")
    assert egress.inputs["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5432}]},
        {"ports": [{"protocol": "TCP", "port": 587}]}]


def test_a_working_dir_changes_the_job_name_so_the_step_runs_again():
    from components.release_job import job_name

    assert job_name("r", "img:1", ["x"]) != job_name("r", "img:1", ["x"], "/app")
    assert job_name("r", "img:1", ["x"], None) == job_name("r", "img:1", ["x"])


# --- $(VAR) references ---------------------------------------------------------------------

def test_references_resolve_in_the_rendered_order_to_kit_and_secret_variables():
    app = {"image": "ghcr.io/acme/api:1.0",
           "env": {"DB_ALIAS": "$(DATABASE_URL)", "CONN": "postgresql://$(DATABASE_USER)@$(DATABASE_HOST)"}}
    mon = run_program("t", local(fastapi=WITH_DB, app=app), program, {"webstack:fastapi"}).monitor
    env = container(mon)["env"]
    order = names(env)
    for name, refs in (("CONN", ["DATABASE_USER", "DATABASE_HOST"]), ("DB_ALIAS", ["DATABASE_URL"])):
        assert all(order.index(ref) < order.index(name) for ref in refs), order
    job_env = container(mon, JOB)["env"]
    assert names(job_env).index("DATABASE_HOST") < names(job_env).index("CONN")


@pytest.mark.parametrize("env,where,hint", [
    ({"URL": "postgresql://$(USER_NAME)@$(DB_HOST)", "USER_NAME": "app"}, "webstack:app.env.URL:",
     "$(DB_HOST) names no variable"),
    ({"A": "$(B)", "B": "$(A)"}, "webstack:app.env.A:", "a cycle"),
])
def test_a_reference_kubernetes_would_leave_literal_is_refused(env, where, hint):
    with pytest.raises(ConfigError) as caught:
        load_settings({"framework": "fastapi", "environment": "dev", "cluster": RUNNER, "app": {"image": "a/b:1", "env": env}})
    assert any(p.startswith(where) and hint in p for p in caught.value.problems), caught.value.problems


def test_an_escaped_reference_and_a_reference_to_a_secret_are_accepted():
    settings = load_settings({"framework": "fastapi", "environment": "dev", "cluster": RUNNER,
                              "app": {"image": "a/b:1", "env": {"LITERAL": "$$(NOT_A_VAR)", "AUTH": "Bearer $(TOKEN)"},
                                      "secrets": {"TOKEN": "t"}}}, {"app"})
    assert settings.app.env["LITERAL"] == "$$(NOT_A_VAR)"


def test_a_dangling_reference_in_a_release_command_is_refused():
    with pytest.raises(ConfigError, match=r"webstack:app\.release\.0\.command: \$\(NOPE\) names no variable"):
        load_settings({"framework": "fastapi", "environment": "dev", "cluster": RUNNER,
                       "app": {"image": "a/b:1", "release": [{"command": ["sh", "-c", "echo $(NOPE)"]}]}})


# --- credentials, dependent keys -------------------------------------------------------------

@pytest.mark.parametrize("value,kind", [("postgresql://app:hunter2@db/app", "a URL with a password"),
                                        ("AKIAABCDEFGHIJKLMNOP", "an AWS access key id"),
                                        ("ghp_" + "a" * 36, "a GitHub token")])
def test_a_credential_in_an_env_value_is_refused_with_the_fix_and_never_echoed(value, kind):
    with pytest.raises(ConfigError) as caught:
        load_settings({"framework": "fastapi", "environment": "dev", "cluster": RUNNER, "app": {"image": "a/b:1", "env": {"DB": value}}})
    (line,) = caught.value.problems
    assert line.startswith("webstack:app.env.DB: the value holds " + kind)
    assert "pulumi config set --secret --path 'webstack:app.secrets.DB'" in line
    assert value not in str(caught.value)


@pytest.mark.parametrize("config,where,hint", [
    ({"fastapi": {"database": {"migrate_command": ["alembic", "upgrade", "head"]}}},
     "webstack:fastapi.database.migrate_command:", "fastapi.database.enabled is false"),
    ({"fastapi": {"database": {"enabled": True, "migrate_command": ["x"]}},
      "app": {"image": "a/b:1", "release": [{"command": ["y"]}]}},
     "webstack:fastapi.database.migrate_command:", "app.release replaces the migration step"),
    ({"app": {"image": "a/b:1", "database_url_env": "DB_URL"}},
     "webstack:app.database_url_env:", "the kit gives this stack no database"),
    ({"app": {"image": "a/b:1", "egress": [{"port": 5432}]}},
     "webstack:app.egress.0:", "set exactly one of cidr (an IPv4 range) or host (a name), got neither"),
])
def test_a_key_that_needs_another_is_refused_with_the_reason(config, where, hint):
    with pytest.raises(ConfigError) as caught:
        load_settings({"framework": "fastapi", "environment": "dev", "cluster": RUNNER, "app": {"image": "a/b:1"}, **config})
    assert any(p.startswith(where) and hint in p for p in caught.value.problems), caught.value.problems


# --- server extras that never break an app without them -----------------------------------------

def configmap_file(monitor, name):
    cm = next(r for r in monitor.all("kubernetes:core/v1:ConfigMap") if name in (r.inputs.get("data") or {}))
    return cm.inputs["data"][name]


def empty_dirs(spec):
    vols = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    return sorted(m["mountPath"] for m in spec["containers"][0]["volumeMounts"] if m["name"] in vols)


def test_metrics_get_their_own_directory_and_nothing_when_off():
    on = run_program("t", local(), program).monitor
    spec = on.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert "/tmp/prometheus-multiproc" in empty_dirs(spec)
    assert {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/prometheus-multiproc"} in container(on)["env"]
    off = run_program("t", local(fastapi={"server": {"metrics": False}}), program).monitor
    spec = off.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert empty_dirs(spec) == ["/tmp"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in names(container(off)["env"])


def test_plain_logs_need_nothing_beyond_the_standard_library():
    mon = run_program("t", local(fastapi={"server": {"log_format": "plain"}}), program).monitor
    config = json.loads(configmap_file(mon, "logging.json"))
    assert config["formatters"] == {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}}
    import logging.config

    logging.config.dictConfig(config)  # loads with nothing but the standard library


def test_writable_paths_become_emptydirs_in_the_app_and_its_release_jobs():
    app = {"image": "ghcr.io/acme/api:1.0", "writable_paths": ["/tmp", "/app/uploads"]}
    mon = run_program("t", local(fastapi=WITH_DB, app=app), program, {"webstack:fastapi"}).monitor
    assert {"/tmp", "/app/uploads"} <= set(empty_dirs(mon.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]))
    assert empty_dirs(mon.one(JOB).inputs["spec"]["template"]["spec"]) == ["/app/uploads", "/tmp"]


# --- the RDS-managed password, delivered without AWS code in the app --------------------------

def test_on_aws_the_rotated_password_reaches_the_app_and_its_jobs_through_the_csi_driver():
    mon = run_program("t", aws(fastapi={"database": {"enabled": True}}), program).monitor
    spc = mon.one("kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass")
    assert spc.inputs["spec"]["parameters"]["usePodIdentity"] == "true"
    for kind in (DEPLOYMENT, JOB):
        obj = mon.one(kind)
        spec = obj.inputs["spec"]["template"]["spec"]
        csi = [v for v in spec["volumes"] if "csi" in v]
        assert [v["csi"]["volumeAttributes"]["secretProviderClass"] for v in csi] == [
            spc.inputs["metadata"]["name"]]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        for name in ("PGPASSWORD", "DATABASE_PASSWORD"):
            assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is False, "no pod starts without it"
        # The pods wait for the provider class, which waits for the driver's add-on.
        assert spc.urn in obj.dependencies
    addon = mon.one("aws:eks/addon:Addon", "web-cluster-secrets-store")
    assert addon.inputs["addonName"] == "aws-secrets-store-csi-driver-provider"
    assert addon.urn in spc.dependencies


def test_an_existing_cluster_without_its_name_cannot_hand_pods_the_password():
    with pytest.raises(ConfigError, match=r"webstack:cluster\.cluster_name: required with an existing cluster on aws"):
        load_settings({"framework": "django", "environment": "dev", "app": {"image": "a/b:1"},
                       "cluster": {"mode": "stack_reference", "stack": "acme/platform/dev",
                                   "cluster_security_group_id": "sg-0a1b2c3d4e5f60718"},
                       "network": {"mode": "existing", "vpc_id": "vpc-0abc1234",
                                   "private_subnet_ids": ["subnet-0abc1234", "subnet-0abc1235"]}})


def test_django_pods_and_jobs_know_their_ip_for_allowed_hosts_and_reach_the_kits_database():
    config = {"webstack:framework": "django", "webstack:environment": "dev", "webstack:target": "local",
              "webstack:cluster": {"mode": "context"},
              "webstack:app": {"image": "ghcr.io/acme/shop:1.0", "env": {"ALLOWED_HOSTS": "shop.test,$(POD_IP)"}},
              "webstack:django": {"database": {"local_password": "pw"}}}
    mon = run_program("t", config, program, {"webstack:django"}).monitor
    for kind in (DEPLOYMENT, JOB):
        env = container(mon, kind)["env"]
        assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in env
        assert expand_env(env, {"POD_IP": "10.0.3.17"})["ALLOWED_HOSTS"] == "shop.test,10.0.3.17"
    policies = {p.inputs["metadata"]["name"] for p in mon.all(POLICY)}
    assert "allow-database" in policies, "target local gives Django the in-cluster PostgreSQL"


def test_only_pods_with_pod_identity_may_reach_its_agent():
    with_db = run_program("t", aws(fastapi={"database": {"enabled": True}}), program).monitor
    without = run_program("t", local(fastapi=WITH_DB), program, {"webstack:fastapi"}).monitor
    assert "allow-pod-identity" in {p.inputs["metadata"]["name"] for p in with_db.all(POLICY)}
    assert "allow-pod-identity" not in {p.inputs["metadata"]["name"] for p in without.all(POLICY)}
