"""The reference project served as the kit configures it: the rendered pod (Nginx in front of
Gunicorn on a unix socket) on loopback, after its release steps, for two example stacks.

- django-local: the migration Job against the kit's database (a test PostgreSQL with the
  in-cluster server's user, database and password), the init container's collectstatic into the
  static volume, then Nginx and Gunicorn; pages, probes and static files through Nginx.
- django-prod: the migration Job against an "RDS" that requires TLS (a test PostgreSQL with a
  certificate; the password from the Secrets Store CSI driver's Secret and files), the
  collectstatic Job uploading to "S3" (a moto server), then the pod behind "the ALB" (this test's
  client, sending X-Forwarded-For and X-Forwarded-Proto): HTTPS redirects, the admin's allowlist
  and its second factor.

Substitutions: tests/byo_app/django_pod.py's docstring lists them (Pod.substitutions records
each one; a failure message prints them). On top of those, these:
- django-prod: `webstack:django.nginx.trusted_proxy_cidrs` [10.20.0.0/16] -> [10.20.0.0/16,
  127.0.0.1/32], so this test's client is the load balancer whose X-Forwarded-* Nginx believes
  (a client from 127.0.0.2 is then one that reached the pod without it);
- django-prod, added to the pod's and the Jobs' env: AWS_S3_ENDPOINT_URL (the moto server) and
  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (what EKS Pod Identity gives a pod outside its manifest);
  RDS's password (Secrets Manager, through the CSI driver) -> PROD_DB_PASSWORD.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from django_pod import Pod, SecretsStoreStandIn, create_role, render_stack, rendered_value
from harness import Postgres
from kubelet import Local, Render
from moto.server import ThreadedMotoServer
from plans_harness import request

from stacks.django import nginx

from .kit_pod import IMAGE, local_pod
from .shop_app import Browser, totp
from .test_admin_mfa import PASSWORD, add_staff_with_totp

PROD_DB_PASSWORD = "rds-managed-t3st-pw"
HASHED_CSS = r"catalog/site\.[0-9a-f]{12}\.css"
DOMAIN = "shop.acme.example"  # django-prod's app.domain
ALLOWED_CLIENT = "198.51.100.23"  # inside django-prod's django.admin.allowed_cidrs
OTHER_CLIENT = "203.0.113.7"
NOT_THE_LOAD_BALANCER = "127.0.0.2"


@dataclass
class Served:
    render: Render
    pod: Pod
    postgres: Postgres
    jobs: dict[str, tuple[subprocess.CompletedProcess, Local]]  # a release step's result and what it was given
    s3: Any = None  # django-prod: a client of the moto server, and the stack's bucket in it
    bucket: str | None = None


def explain(served: Served) -> str:
    """For a failure message: what was substituted, and what Gunicorn logged."""
    logs = served.pod.gunicorn.logs()[-3000:] if served.pod.gunicorn else ""
    return "substitutions:\n  " + "\n  ".join(served.pod.substitutions) + "\ngunicorn:\n" + logs


@pytest.fixture(scope="module")
def local(django_venv, nginx_bin, nginx_user, tmp_path_factory) -> Iterator[Served]:
    with local_pod(tmp_path_factory.mktemp("render") / "django-local", nginx_bin, nginx_user) as (pod, jobs):
        yield Served(pod.render, pod.start(), pod.postgres, jobs)


@pytest.fixture(scope="module")
def prod(django_venv, nginx_bin, nginx_user, tmp_path_factory) -> Iterator[Served]:
    trusted = ["10.20.0.0/16", "127.0.0.1/32"]
    render = render_stack("django-prod", tmp_path_factory.mktemp("render") / "django-prod",
                          changes={"webstack:django": {"nginx": {"trusted_proxy_cidrs": trusted}}})
    with ExitStack() as cleanup:
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        s3.start()
        cleanup.callback(s3.stop)
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        job = render.container("Job-web-collectstatic-*.release.json")
        bucket = rendered_value(job, "AWS_STORAGE_BUCKET_NAME")
        client = s3_client(endpoint, rendered_value(job, "AWS_S3_REGION_NAME"))
        client.create_bucket(Bucket=bucket)  # the StaticCdn component's bucket (us-east-1: no location)

        pg = Postgres(tls=True)
        cleanup.callback(pg.close)
        app = render.container("Deployment-*.app.json")
        user = rendered_value(app, "DATABASE_USER")
        create_role(pg, user, PROD_DB_PASSWORD, rendered_value(app, "DATABASE_NAME"))
        csi = SecretsStoreStandIn(render, {"username": user, "password": PROD_DB_PASSWORD},
                                  tmp_path_factory.mktemp("csi"))
        credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        pod = Pod(render, IMAGE, pg, nginx_bin, nginx_user, extra_env={"AWS_S3_ENDPOINT_URL": endpoint, **credentials},
                  csi=csi)
        cleanup.callback(pod.close)
        jobs = {"migrate": pod.run_job("Job-web-migrate-*.release.json"),
                "collectstatic": pod.run_job("Job-web-collectstatic-*.release.json")}
        for name, (result, _) in jobs.items():
            assert result.returncode == 0, f"{name}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        assert render.outputs["url"] == f"https://{DOMAIN}"
        yield Served(render, pod.start(), pg, jobs, client, bucket)


def s3_client(endpoint: str, region: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


# --- django-local ---------------------------------------------------------------------------

def test_the_release_job_migrates_the_kits_database(local):
    result, given = local.jobs["migrate"]
    assert "Applying catalog.0001_create_product... OK" in result.stdout, explain(local)
    user = given.env["DATABASE_USER"]
    assert local.postgres.psql(given.env["DATABASE_NAME"],
                               "SELECT tableowner FROM pg_tables WHERE tablename = 'catalog_product'") == user
    # The kit's URL carries the same database and its password (percent-encoded), for apps that read it.
    url = urlsplit(given.env["DATABASE_URL"])
    assert (url.hostname, url.port, url.path, url.username) == (
        "127.0.0.1", local.postgres.port, f"/{given.env['DATABASE_NAME']}", user)


def test_the_init_container_collects_hashed_static_files_where_nginx_serves_them(local):
    _, given = local.jobs["init"]
    volume = local.pod.volumes["shared-static"]  # the emptyDir the init container and Nginx share
    assert given.env["STATIC_ROOT"] == str(volume), explain(local)
    assert (volume / "staticfiles.json").is_file()  # the manifest that names the hashed files
    names = {p.relative_to(volume).as_posix() for p in volume.rglob("*.css")}
    assert any(re.fullmatch(HASHED_CSS, n) for n in names), sorted(names)[:20]


def test_every_probe_passes_through_nginx_with_the_pod_ip_as_host(local):
    pod = local.pod
    for container in ("app", "nginx"):
        for kind, (path, port) in local.render.container(f"Deployment-*.{container}.json").probes().items():
            assert port == pod.container_port
            resp = pod.get(path, headers=pod.pod_ip_host)
            assert resp.status == 200, f"{container} {kind} probe GET {path}: {resp.status} {resp.body[:300]!r}"


def test_a_page_is_served_by_django_through_nginx(local):
    pod = local.pod
    resp = pod.get("/", headers={"Host": pod.service_host})
    page = resp.body.decode()
    assert resp.status == 200, explain(local)
    assert "<html" in page.lower()
    assert re.search(rf'href="/static/{HASHED_CSS}"', page), page[-2000:]
    assert resp.headers_named("X-Frame-Options") == ["DENY"]  # Nginx's, Django's own hidden
    line = pod.access_log_line(resp.header("X-Request-ID"))
    assert (line["uri"], line["status"], line["upstream_status"]) == ("/", 200, "200")


def test_static_files_are_served_by_nginx_for_a_year_and_never_reach_django(local):
    pod = local.pod
    manifest = json.loads((pod.volumes["shared-static"] / "staticfiles.json").read_text())
    link = "/static/" + manifest["paths"]["catalog/site.css"]  # what a page names
    resp = pod.get(link, headers={"Host": pod.service_host})
    assert resp.status == 200
    assert resp.body == (pod.volumes["shared-static"] / link.removeprefix("/static/")).read_bytes()
    assert resp.header("Cache-Control") == nginx.STATIC_CACHE_CONTROL == "public, max-age=31536000, immutable"
    assert pod.access_log_line(resp.header("X-Request-ID"))["upstream_status"] == "", "Django was called"

    missing = pod.get("/static/catalog/missing.css", headers={"Host": pod.service_host})
    assert missing.status == 404 and missing.header("Cache-Control") is None
    assert pod.access_log_line(missing.header("X-Request-ID"))["upstream_status"] == ""


def test_the_apps_metrics_are_on_the_metrics_port_only(local):
    pod = local.pod
    assert pod.get("/metrics", headers={"Host": pod.service_host}).status == 404
    scraped = request(pod.metrics_port, "/metrics", headers=pod.pod_ip_host)
    assert scraped.status == 200 and b"http_requests_total{" in scraped.body, scraped.body[:500]


# --- django-prod ----------------------------------------------------------------------------

def via_load_balancer(client: str = ALLOWED_CLIENT, proto: str = "https") -> dict[str, str]:
    """What the ALB adds to a request for the site's domain that it forwards to a pod."""
    return {"Host": DOMAIN, "X-Forwarded-For": client, "X-Forwarded-Proto": proto}


def test_the_collectstatic_job_uploads_immutable_hashed_files_and_their_manifest(prod):
    result, given = prod.jobs["collectstatic"]
    # The kit's values, from the stack's bucket and CDN (the endpoint is the one test addition).
    assert given.env["AWS_STORAGE_BUCKET_NAME"] == prod.render.outputs["static_bucket_name"] == prod.bucket
    assert given.env["STATIC_URL"] == prod.render.outputs["static_url"] + "/"
    assert "DATABASE_PASSWORD" not in given.env and "PGPASSWORD" not in given.env  # it needs none
    keys = {o["Key"] for page in prod.s3.get_paginator("list_objects_v2").paginate(Bucket=prod.bucket)
            for o in page.get("Contents", [])}
    assert "staticfiles.json" in keys, result.stdout[-2000:]
    hashed = [k for k in keys if re.fullmatch(HASHED_CSS, k)]
    assert len(hashed) == 1, sorted(keys)[:20]
    head = prod.s3.head_object(Bucket=prod.bucket, Key=hashed[0])
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"] == "text/css"


def test_pages_link_the_uploaded_files_on_the_cdn_and_say_https_only(prod):
    resp = prod.pod.get("/", headers=via_load_balancer())
    page = resp.body.decode()
    assert resp.status == 200, page[-2000:]
    cdn = urlsplit(prod.render.outputs["static_url"]).netloc
    link = re.search(rf'href="https://{re.escape(cdn)}/({HASHED_CSS})"', page)
    assert link, page[-2000:]
    prod.s3.head_object(Bucket=prod.bucket, Key=link.group(1))  # the very file collectstatic uploaded
    assert resp.headers_named("Strict-Transport-Security") == [nginx.HSTS]  # once: Nginx's


def test_the_pod_reaches_its_database_over_tls_as_rds_requires(prod):
    assert prod.pod.get("/readyz", headers=prod.pod.pod_ip_host).status == 200  # a connection, kept (CONN_MAX_AGE)
    user = prod.pod.app_env["DATABASE_USER"]
    sessions = prod.postgres.psql("postgres", "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                                              f"WHERE a.usename = '{user}'").split()
    assert sessions and set(sessions) == {"t"}, sessions


def test_plain_http_is_redirected_to_https_and_only_the_load_balancer_can_say_otherwise(prod):
    pod = prod.pod
    http = pod.get("/", headers=via_load_balancer(proto="http"))
    assert http.status == 301 and http.header("Location") == f"https://{DOMAIN}/"
    claimed = pod.get("/", headers=via_load_balancer(), source=NOT_THE_LOAD_BALANCER)
    assert claimed.status == 301, "a client that bypassed the ALB was believed to be on HTTPS"


def test_probes_answer_over_plain_http_with_the_pod_ip_as_host(prod):
    pod = prod.pod
    for container in ("app", "nginx"):
        for kind, (path, _) in prod.render.container(f"Deployment-*.{container}.json").probes().items():
            resp = pod.get(path, headers=pod.pod_ip_host)
            assert resp.status == 200, f"{container} {kind} probe GET {path}: {resp.status} {resp.body[:300]!r}"


def test_the_admin_is_open_only_to_the_allowlist_as_the_load_balancer_reports_it(prod):
    pod, admin = prod.pod, prod.render.outputs["admin_path"]
    login = f"{admin}login/"
    allowed = pod.get(login, headers=via_load_balancer(ALLOWED_CLIENT))
    assert allowed.status == 200 and b"csrfmiddlewaretoken" in allowed.body
    refused = pod.get(login, headers=via_load_balancer(OTHER_CLIENT))
    assert refused.status == 403 and b"csrfmiddlewaretoken" not in refused.body
    assert pod.access_log_line(refused.header("X-Request-ID"))["upstream_status"] == "", "Django was called"
    # A client that reached the pod directly can't claim an allowed address.
    bypass = pod.get(login, headers=via_load_balancer(ALLOWED_CLIENT), source=NOT_THE_LOAD_BALANCER)
    assert bypass.status == 403


class LoadBalancedBrowser(Browser):
    """A browser at an allowed address, behind the ALB: every request carries what the ALB adds,
    and the Referer a browser sends on an HTTPS form post (Django's CSRF check demands it)."""

    def __init__(self, port: int, admin: str) -> None:
        super().__init__(port)
        self.via = {**via_load_balancer(), "Referer": f"https://{DOMAIN}{admin}login/"}

    def request(self, method, path, form=None, headers=None):
        return super().request(method, path, form=form, headers={**self.via, **(headers or {})})


def test_an_admin_login_needs_the_second_factor(prod):
    pod, admin = prod.pod, prod.render.outputs["admin_path"]
    key = add_staff_with_totp(pod.app_env, "carol")
    browser = LoadBalancedBrowser(pod.port, admin)
    login = f"{admin}login/"
    fields = {"username": "carol", "password": PASSWORD, "next": admin}

    status, _, page = browser.post_form(login, fields)
    assert status == 200 and "Please enter your OTP token" in page  # the password alone: the form again
    assert browser.get(admin)[0] == 302, "in without a second factor"
    device = re.search(r'<option value="([^"]+)"[^>]*>phone</option>', page).group(1)

    status, headers, _ = browser.post_form(login, {**fields, "otp_device": device, "otp_token": totp(key)})
    assert (status, headers.get("location")) == (302, admin)
    status, _, page = browser.get(admin)
    assert status == 200 and "Site administration" in page
