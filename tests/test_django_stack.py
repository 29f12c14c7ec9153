"""The Django stack under mocks: Nginx in front of Gunicorn in one pod, the release order
(migrate, collectstatic, rollout), the collectstatic identity, the admin's WAF, and the
config-time errors that stop a stack before anything is created."""

from __future__ import annotations

import json

import pytest
from example_runs import stack
from test_fastapi_stack import env_of, run_with

from cli.render import load_stack_file
from stacks.config import load_settings
from stacks.django import nginx
from stacks.django.server import SOCKET_DIR
from stacks.errors import ConfigError

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
JOB = "kubernetes:batch/v1:Job"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def pod(run) -> dict:
    return run.monitor.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]


def container(run, name: str) -> dict:
    return next(c for c in pod(run)["containers"] if c["name"] == name)


def settings(name: str, **changes):
    sf = load_stack_file(name)
    values = {k.removeprefix("webstack:"): v for k, v in sf.config.items() if k.startswith("webstack:")}
    for key, value in changes.items():
        section, _, rest = key.partition(".")
        node = values.setdefault(section, {})
        parts = rest.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return load_settings(values, {k.removeprefix("webstack:") for k in sf.secret_keys}, aws_region="us-east-1")


# --- the pod ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["django-dev", "django-prod", "django-local"])
def test_nginx_fronts_gunicorn_which_listens_only_on_a_socket_both_containers_mount(name):
    run = stack(name)
    spec = pod(run)
    app, proxy = container(run, "app"), container(run, "nginx")

    assert app["ports"] == []  # nothing but Nginx reaches Gunicorn
    assert app["command"][:3] == ["gunicorn", "--config", "/etc/webstack/gunicorn/gunicorn.conf.py"]
    socket = next(v for v in spec["volumes"] if v["name"] == "shared-gunicorn")
    assert socket["emptyDir"]["medium"] == "Memory"
    for c in (app, proxy):
        assert {"name": "shared-gunicorn", "mountPath": SOCKET_DIR} in c["volumeMounts"]
    service = next(s for s in run.monitor.all(SERVICE) if s.inputs["metadata"]["name"] == "web-app")
    http = next(p for p in service.inputs["spec"]["ports"] if p["name"] == "http")
    assert http["targetPort"] == next(p["containerPort"] for p in proxy["ports"] if p["name"] == "http")


@pytest.mark.parametrize("name", ["django-dev", "django-prod", "django-local"])
def test_both_containers_are_restricted_and_nginx_writes_only_to_its_emptydir(name):
    run = stack(name)
    proxy = container(run, "nginx")

    for c in pod(run)["containers"] + pod(run).get("initContainers", []):
        ctx = c["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert any(m["mountPath"] == nginx.TEMP_DIR for m in proxy["volumeMounts"])
    assert proxy["command"] == ["nginx", "-e", "stderr", "-c", "/etc/webstack/nginx/nginx.conf"]


def test_the_app_is_probed_through_nginx_and_nginx_on_its_own_location():
    run = stack("django-prod")
    app, proxy = container(run, "app"), container(run, "nginx")
    port = next(p["containerPort"] for p in proxy["ports"] if p["name"] == "http")

    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port, "scheme": "HTTP"}
    assert proxy["readinessProbe"]["httpGet"]["path"] == nginx.HEALTH_PATH


def test_nginx_stops_gracefully_before_gunicorn_and_the_grace_period_covers_both():
    run = stack("django-prod")
    app, proxy = container(run, "app"), container(run, "nginx")
    nginx_stop = proxy["lifecycle"]["preStop"]["exec"]["command"]
    app_delay = app["lifecycle"]["preStop"]["sleep"]["seconds"]

    assert "quit" in " ".join(nginx_stop)  # SIGQUIT: finish in-flight requests; SIGTERM would drop them
    assert app_delay > 15  # Gunicorn still accepts while Nginx forwards its last requests
    graceful = 30
    assert pod(run)["terminationGracePeriodSeconds"] >= app_delay + graceful


def test_metrics_are_served_on_their_own_port_which_the_service_names():
    run = stack("django-prod")
    proxy = container(run, "nginx")

    metrics = next(p for p in proxy["ports"] if p["name"] == "metrics")
    service = next(s for s in run.monitor.all(SERVICE) if s.inputs["metadata"]["name"] == "web-app")
    assert {"name": "metrics", "port": metrics["containerPort"], "targetPort": metrics["containerPort"],
            "protocol": "TCP"} in service.inputs["spec"]["ports"]


def test_both_configs_are_rendered_into_configmaps_the_containers_mount():
    run = stack("django-prod")
    maps = {m.inputs["metadata"]["name"]: m.inputs["data"] for m in run.monitor.all("kubernetes:core/v1:ConfigMap")}

    conf = next(d["nginx.conf"] for d in maps.values() if "nginx.conf" in d)
    assert "unix:/run/gunicorn/gunicorn.sock" in conf
    assert "198.51.100.0/24" in conf and "ops-7f3a/" in conf  # the admin allowlist at Nginx
    assert "10.20.0.0/16" in conf  # X-Forwarded-For believed only from the ALB's range
    gunicorn = next(d["gunicorn.conf.py"] for d in maps.values() if "gunicorn.conf.py" in d)
    assert "/run/gunicorn/gunicorn.sock" in gunicorn


def test_the_app_gets_hosts_origins_https_and_the_admin_path():
    env = env_of(container(stack("django-prod"), "app"))

    assert env["DJANGO_ALLOWED_HOSTS"].split(",")[0] == "shop.acme.example"
    assert "$(POD_IP)" in env["DJANGO_ALLOWED_HOSTS"]
    assert env["DJANGO_CSRF_TRUSTED_ORIGINS"] == "https://shop.acme.example"
    assert env["DJANGO_HTTPS"] == "true" and env["DJANGO_ADMIN_PATH"] == "ops-7f3a/"
    assert env["DATABASE_PASSWORD_FILE"] == "/var/run/secrets/database/DATABASE_PASSWORD"


# --- release order ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["django-dev", "django-prod"])
def test_migrate_then_collectstatic_then_the_rollout(name):
    run = stack(name)
    # By the Job's name (web-migrate-<hash>): the migrate command runs under the migration guard.
    jobs = {j.inputs["metadata"]["name"].split("-")[1]: j for j in run.monitor.all(JOB)}
    migrate, collect = jobs["migrate"], jobs["collectstatic"]

    assert migrate.urn in collect.dependencies
    deployment = run.monitor.one(DEPLOYMENT)
    assert collect.urn in deployment.dependencies and migrate.urn in deployment.dependencies


def test_collectstatic_runs_as_its_own_identity_that_may_only_write_the_static_bucket():
    run = stack("django-prod")
    collect = next(j for j in run.monitor.all(JOB) if "collectstatic" in j.inputs["spec"]["template"]["spec"]
                   ["containers"][0]["command"])
    account = collect.inputs["spec"]["template"]["spec"]["serviceAccountName"]
    association = next(a for a in run.monitor.all(ASSOCIATION) if a.inputs["serviceAccount"] == account)
    role_policy = next(p for p in run.monitor.all(POLICY) if p.inputs["role"] == association.inputs["roleArn"]
                       or p.parent == association.parent)
    statements = json.loads(role_policy.inputs["policy"])["Statement"]
    bucket_arn = run.monitor.one("aws:s3/bucket:Bucket", "web-static-bucket").state["arn"]

    assert {a for s in statements for a in s["Action"]} == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
    assert {r for s in statements for r in s["Resource"]} == {bucket_arn, f"{bucket_arn}/*"}
    env = env_of(collect.inputs["spec"]["template"]["spec"]["containers"][0])
    assert "PGPASSWORD" not in env and "DATABASE_PASSWORD" not in env  # and no database secret to read
    assert account != "web-release" and account != "web-app"


def test_on_local_an_init_container_collects_the_static_files_nginx_serves():
    run = stack("django-local")
    spec = pod(run)
    init = spec["initContainers"][0]

    assert init["command"] == ["python", "manage.py", "collectstatic", "--noinput"]
    assert {"name": "shared-static", "mountPath": nginx.STATIC_ROOT} in init["volumeMounts"]
    assert {"name": "shared-static", "mountPath": nginx.STATIC_ROOT} in container(run, "nginx")["volumeMounts"]
    # Django reads the manifest there to name each hashed file in its pages.
    assert {"name": "shared-static", "mountPath": nginx.STATIC_ROOT} in container(run, "app")["volumeMounts"]
    assert env_of(init)["STATIC_ROOT"] == nginx.STATIC_ROOT
    assert not [j for j in run.monitor.all(JOB) if "collectstatic" in json.dumps(j.inputs)]


def test_on_local_without_a_domain_the_laptops_own_names_are_allowed_hosts():
    hosts = env_of(container(stack("django-local"), "app"))["DJANGO_ALLOWED_HOSTS"].split(",")

    assert {"localhost", "127.0.0.1", "$(POD_IP)"} <= set(hosts)
    assert "localhost" not in env_of(container(stack("django-prod"), "app"))["DJANGO_ALLOWED_HOSTS"]


def test_on_local_django_gets_the_in_cluster_postgresql_sized_to_its_connections():
    run = stack("django-local")
    server = run.monitor.one("kubernetes:apps/v1:StatefulSet").inputs["spec"]["template"]["spec"]["containers"][0]
    s = settings("django-local")

    assert server["args"] == ["-c", f"max_connections={s.local_max_connections()}"]
    assert s.local_max_connections() > s.gunicorn_workers() * s.gunicorn_threads()
    env = env_of(container(run, "app"))
    assert env["DATABASE_HOST"] and env["PGPASSWORD"]


# --- the admin ----------------------------------------------------------------------------

def test_a_regional_waf_with_the_admin_allowlist_guards_the_apps_alb():
    run = stack("django-prod")
    acls = {a.inputs["scope"]: a for a in run.monitor.all(ACL)}
    regional = acls["REGIONAL"]

    rule = next(r for r in regional.inputs["rules"] if r["name"] == "admin-allowlist")
    assert rule["statement"]["andStatement"]["statements"][0]["byteMatchStatement"]["searchString"] == "/ops-7f3a/"
    ipset = run.monitor.one("aws:wafv2/ipSet:IpSet")
    assert ipset.inputs["addresses"] == ["198.51.100.0/24"] and ipset.inputs["scope"] == "REGIONAL"
    annotations = run.monitor.one(INGRESS).inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"] == regional.state["arn"]


def test_outputs_name_the_admin_and_what_verify_checks():
    prod, dev = stack("django-prod").outputs, stack("django-dev").outputs

    assert prod["admin_url"] == "https://shop.acme.example/ops-7f3a/"
    assert prod["admin_path"] == "/ops-7f3a/"  # verify expects 403 there from outside the allowlist
    assert prod["app_waf_acl_arn"] == next(a for a in stack("django-prod").monitor.all(ACL)
                                           if a.inputs["scope"] == "REGIONAL").state["arn"]
    assert dev["admin_url"].endswith("/admin/")
    assert "admin_path" not in dev  # no allowlist: nothing for verify to find refused


def test_outside_dev_the_default_admin_path_is_the_stacks_own():
    s = settings("django-prod", **{"django.admin.path": None})

    path = s.admin_path("prod")
    assert path.startswith("admin-") and path.endswith("/") and path != "admin/"
    assert path == s.admin_path("prod") != s.admin_path("staging")
    assert settings("django-dev").admin_path("dev") == "admin/"


def test_without_a_domain_there_is_no_alb_so_no_app_waf():
    run = stack("django-dev")

    assert not [a for a in run.monitor.all(ACL) if a.inputs["scope"] == "REGIONAL"]


# --- prod protections ------------------------------------------------------------------------

def test_prod_protects_the_database_and_the_static_bucket_and_pins_nginx_by_digest():
    run = stack("django-prod")

    assert run.monitor.one("aws:rds/instance:Instance").protect is True
    assert run.monitor.one("aws:s3/bucket:Bucket", "web-static-bucket").protect is True
    assert "@sha256:" in container(run, "nginx")["image"]


# --- config-time errors: one line, nothing rendered ---------------------------------------------

def test_an_impossible_connection_budget_is_refused_with_the_arithmetic():
    with pytest.raises(ConfigError) as err:
        settings("django-dev", **{"django.server.threads": 64, "django.autoscaling.max_replicas": 10})

    message = str(err.value)
    assert "webstack:django.server.threads" in message
    assert "database connections, above the" in message and "db.t4g.micro" in message


def test_auto_threads_are_lowered_to_what_the_database_holds():
    small = settings("django-dev")
    assert small._connections(small.gunicorn_threads()) <= small.database_capacity()
    assert small.gunicorn_threads() < 26  # Little's law alone: (2 + 50) / 2


def test_the_default_admin_path_outside_dev_needs_an_allowlist():
    with pytest.raises(ConfigError, match=r"webstack:django.admin.path: 'admin/' in prod with no "
                                          r"django.admin.allowed_cidrs"):
        settings("django-prod", **{"django.admin.path": "admin/", "django.admin.allowed_cidrs": []})


def test_a_bad_admin_cidr_is_refused():
    with pytest.raises(ConfigError, match=r"webstack:django.admin.allowed_cidrs.0"):
        settings("django-prod", **{"django.admin.allowed_cidrs": ["198.51.100.7/33"]})


def test_bad_config_renders_nothing(tmp_path, monkeypatch):
    from cli import render as render_module

    sf = load_stack_file("django-prod")
    bad = {**sf.config, "webstack:django": {"admin": {"path": "admin/"}}}
    monkeypatch.setattr(render_module, "load_stack_file", lambda name, root=None: sf._replace(config=bad)
                        if hasattr(sf, "_replace") else type(sf)(sf.stack, bad, sf.secret_keys))
    with pytest.raises(ConfigError, match="webstack:django.admin.path"):
        render_module.render("django-prod", tmp_path)
    assert not list(tmp_path.rglob("*"))
