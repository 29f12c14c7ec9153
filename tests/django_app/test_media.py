"""Uploads (media) through the kit's pod on loopback: a signed-in user posts a file through Nginx,
gets back a link, and reads the file back through that link; a body above the stack's one limit
is refused by Nginx (413) before Django sees it, and Django was told the same limit.

- django-prod (aws): the app writes to the stack's media bucket (a moto S3 server on loopback,
  AWS_S3_ENDPOINT_URL) and hands out presigned GET URLs, read straight from "S3".
- django-local: the app writes to the uploads volume (the claim, here a directory) and hands out
  links it signs and serves itself, through Nginx.

Substitutions on top of tests/byo_app/django_pod.py's (Pod.substitutions lists them all):
- both: `webstack:django.nginx.client_max_body_size_mb` 10 -> 1, so the refused body is small;
- django-prod: `webstack:django.nginx.trusted_proxy_cidrs` [10.20.0.0/16] -> [10.20.0.0/16,
  127.0.0.1/32] (this test's client is the ALB, as in test_kit_served.py); added to the pod's and the
  Jobs' env: AWS_S3_ENDPOINT_URL (the moto server) and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (what
  EKS Pod Identity gives a pod outside its manifest); RDS's password -> PROD_DB_PASSWORD;
- django-local: the uploads PersistentVolumeClaim -> a fresh directory (MediaPod).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from django_pod import Pod, SecretsStoreStandIn, create_role, render_stack, rendered_value
from harness import Postgres
from kubelet import Render
from moto.server import ThreadedMotoServer
from plans_harness import HOST, Response, request

from .kit_pod import IMAGE
from .shop_app import manage, ok

LIMIT_MB = 1
CHANGES_LIMIT = {"nginx": {"client_max_body_size_mb": LIMIT_MB}}
PROD_DB_PASSWORD = "rds-managed-t3st-pw"
DOMAIN = "shop.acme.example"  # django-prod's app.domain
PASSWORD = "upload-t3st-password-91"
# A real PNG header, then filler: the shop accepts by extension, and stores the type it decides.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


class MediaPod(Pod):
    """The kit's pod with its PersistentVolumeClaims, too, as directories: a claim is a volume that
    outlives the pod, which for one pod on loopback is a directory like the emptyDirs."""

    def _lay_out(self) -> None:
        super()._lay_out()
        for volume in self.render.pod_spec().get("volumes") or []:
            if "persistentVolumeClaim" in volume:
                here = self.volumes[volume["name"]] = self.scratch / volume["name"]
                here.mkdir(mode=0o755)
                self.substitutions.append(f"PersistentVolumeClaim {volume['persistentVolumeClaim']['claimName']} "
                                          f"-> {here}")


@dataclass
class Site:
    render: Render
    pod: Pod
    headers: dict[str, str]  # what every request carries (the ALB's headers on prod)
    origin: str  # the scheme and host the browser sees
    s3: Any = None  # django-prod: a client of the moto server
    bucket: str | None = None


def explain(site: Site) -> str:
    logs = site.pod.gunicorn.logs()[-3000:] if site.pod.gunicorn else ""
    return "substitutions:\n  " + "\n  ".join(site.pod.substitutions) + "\ngunicorn:\n" + logs


@pytest.fixture(scope="module")
def prod(django_venv, nginx_bin, nginx_user, tmp_path_factory) -> Iterator[Site]:
    trusted = ["10.20.0.0/16", "127.0.0.1/32"]
    render = render_stack("django-prod", tmp_path_factory.mktemp("render") / "django-prod",
                          changes={"webstack:django": {"nginx": {**CHANGES_LIMIT["nginx"],
                                                                 "trusted_proxy_cidrs": trusted}}})
    with ExitStack() as cleanup:
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        server.start()
        cleanup.callback(server.stop)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        app = render.container("Deployment-*.app.json")
        client = boto3.client("s3", endpoint_url=endpoint, region_name=rendered_value(app, "AWS_S3_REGION_NAME"),
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = rendered_value(app, "DJANGO_MEDIA_BUCKET")
        # The stack's two buckets (us-east-1: no location constraint).
        for name in (bucket, rendered_value(app, "AWS_STORAGE_BUCKET_NAME")):
            client.create_bucket(Bucket=name)

        pg = Postgres(tls=True)
        cleanup.callback(pg.close)
        user = rendered_value(app, "DATABASE_USER")
        create_role(pg, user, PROD_DB_PASSWORD, rendered_value(app, "DATABASE_NAME"))
        csi = SecretsStoreStandIn(render, {"username": user, "password": PROD_DB_PASSWORD},
                                  tmp_path_factory.mktemp("csi"))
        pod = MediaPod(render, IMAGE, pg, nginx_bin, nginx_user, csi=csi,
                       extra_env={"AWS_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                                  "AWS_SECRET_ACCESS_KEY": "testing"})
        cleanup.callback(pod.close)
        for job in ("Job-web-migrate-*.release.json", "Job-web-collectstatic-*.release.json"):
            result, _ = pod.run_job(job)
            assert result.returncode == 0, f"{job}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        headers = {"Host": DOMAIN, "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        yield Site(render, pod.start(), headers, f"https://{DOMAIN}", client, bucket)


@pytest.fixture(scope="module")
def local(django_venv, nginx_bin, nginx_user, tmp_path_factory) -> Iterator[Site]:
    render = render_stack("django-local", tmp_path_factory.mktemp("render") / "django-local",
                          changes={"webstack:django": CHANGES_LIMIT})
    with ExitStack() as cleanup:
        pg = Postgres()
        cleanup.callback(pg.close)
        app = render.container("Deployment-*.app.json")
        create_role(pg, rendered_value(app, "DATABASE_USER"), rendered_value(app, "DATABASE_PASSWORD"),
                    rendered_value(app, "DATABASE_NAME"))
        pod = MediaPod(render, IMAGE, pg, nginx_bin, nginx_user)
        cleanup.callback(pod.close)
        for job in ("Job-web-migrate-*.release.json", "Deployment-*.init.json"):
            result, _ = pod.run_job(job)
            assert result.returncode == 0, f"{job}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        pod.start()
        yield Site(render, pod, {"Host": pod.service_host}, f"http://{pod.service_host}")


# --- a browser's script, signed in --------------------------------------------------------------

class Client:
    """A signed-in user's browser (cookies kept, no redirects followed) talking to the pod's Nginx."""

    def __init__(self, site: Site) -> None:
        self.site, self.cookies = site, {}

    def send(self, method: str, path: str, *, body: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> Response:
        all_headers = {**self.site.headers, **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        resp = request(self.site.pod.port, path, method=method, body=body, headers=all_headers)
        for value in resp.headers_named("Set-Cookie"):
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return resp

    def unsafe(self, method: str, path: str, body: bytes, content_type: str) -> Response:
        """A POST as a page of the site makes it: CSRF token header, Origin and Referer."""
        return self.send(method, path, body=body, headers={
            "Content-Type": content_type, "X-CSRFToken": self.cookies["csrftoken"],
            "Origin": self.site.origin, "Referer": f"{self.site.origin}{path}"})

    def sign_in(self, username: str) -> None:
        page = self.send("GET", "/accounts/login/")
        assert page.status == 200, page.body[-2000:]
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD})
        resp = self.unsafe("POST", "/accounts/login/", form.encode(), "application/x-www-form-urlencoded")
        assert (resp.status, resp.header("Location")) == (302, "/uploads/"), resp.body[-2000:]

    def upload(self, name: str, content: bytes, content_type: str = "application/octet-stream") -> Response:
        assert self.send("GET", "/uploads/").status == 200  # sets the csrftoken cookie
        body, multipart = multipart_file("file", name, content, content_type)
        return self.unsafe("POST", "/uploads/", body, multipart)


def multipart_file(field: str, name: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def add_user(site: Site, username: str) -> Client:
    ok(manage(site.pod.app_env, "shell", "-c", "from django.contrib.auth import get_user_model; "
              f"get_user_model().objects.create_user({username!r}, password={PASSWORD!r})"))
    client = Client(site)
    client.sign_in(username)
    return client


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET an absolute URL (a presigned one, on the moto server) as a browser follows a link."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback only
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def assert_refused_by_nginx(site: Site, client: Client) -> None:
    """A body above the limit: 413 from Nginx, and Gunicorn never saw the request."""
    body, multipart = multipart_file("file", "big.png", PNG * 200, "image/png")  # ~2 MiB
    assert len(body) > LIMIT_MB * 1024 * 1024
    resp = client.unsafe("POST", "/uploads/", body, multipart)
    assert resp.status == 413, resp.body[:500]
    line = site.pod.access_log_line(resp.header("X-Request-ID"))
    assert line["upstream_status"] == "", "Django was called"
    assert site.pod.app_env["DJANGO_MAX_UPLOAD_MB"] == str(LIMIT_MB)  # Django was told the same limit


# --- django-prod: the media bucket, presigned URLs ------------------------------------------------

def test_an_upload_goes_to_the_media_bucket_and_its_presigned_url_reads_it_back(prod):
    client = add_user(prod, "ann")
    resp = client.upload("Holiday photo.PNG", PNG, content_type="text/html")  # the claimed type is ignored
    assert resp.status == 201, f"{resp.body[-2000:]!r}\n{explain(prod)}"
    described = resp.json()
    assert described["name"] == "Holiday_photo.png" and described["size"] == len(PNG)

    url = urlsplit(described["url"])
    # A presigned GET on the bucket (here the moto endpoint, path-style), SigV4, 300 s.
    assert url.path.startswith(f"/{prod.bucket}/uploads/") and "X-Amz-Signature=" in url.query
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url.query and "X-Amz-Expires=300" in url.query
    status, headers, body = fetch(described["url"])
    assert (status, body) == (200, PNG)
    assert headers["content-type"] == "image/png"

    key = url.path.removeprefix(f"/{prod.bucket}/")
    grants = prod.s3.get_object_acl(Bucket=prod.bucket, Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner only: no public-read
    static = rendered_value(prod.render.container("Deployment-*.app.json"), "AWS_STORAGE_BUCKET_NAME")
    assert not [o for o in prod.s3.list_objects_v2(Bucket=static).get("Contents", []) if "uploads/" in o["Key"]]


def test_the_owner_gets_a_fresh_link_and_anyone_else_a_404(prod):
    ann, bob = add_user(prod, "ann2"), add_user(prod, "bob2")
    created = ann.upload("notes.txt", b"hello from ann\n").json()
    mine = ann.send("GET", f"/uploads/{created['id']}")
    assert mine.status == 302 and fetch(mine.header("Location"))[2] == b"hello from ann\n"
    assert bob.send("GET", f"/uploads/{created['id']}").status == 404
    assert [u["id"] for u in bob.send("GET", "/uploads/").json()["uploads"]] == []
    anonymous = Client(prod).send("GET", f"/uploads/{created['id']}")
    assert anonymous.status == 403


def test_a_type_outside_the_allowlist_is_refused(prod):
    client = add_user(prod, "carl")
    resp = client.upload("page.html", b"<script>alert(1)</script>", "text/html")
    assert resp.status == 400 and ".html" in resp.json()["error"]


def test_prod_refuses_a_body_above_the_limit_at_nginx(prod):
    assert_refused_by_nginx(prod, add_user(prod, "dora"))


# --- django-local: the uploads volume, links the app signs ---------------------------------------

def test_on_local_an_upload_lands_on_the_volume_and_its_signed_link_is_served_through_nginx(local):
    client = add_user(local, "erin")
    resp = client.upload("scan.pdf", b"%PDF-1.7\n" + PNG)
    assert resp.status == 201, f"{resp.body[-2000:]!r}\n{explain(local)}"
    described = resp.json()
    link = described["url"]
    assert re.fullmatch(r"/media/[^/]+/scan\.pdf", link), link

    served = client.send("GET", link)
    assert served.status == 200 and served.body == b"%PDF-1.7\n" + PNG
    assert served.header("Content-Type") == "application/pdf"
    assert served.header("Content-Security-Policy").startswith("sandbox")  # an uploaded page stays inert
    volume = local.pod.volumes["media"]
    stored = [p for p in volume.rglob("*") if p.is_file()]
    assert [p.name for p in stored] == ["scan.pdf"] and stored[0].read_bytes() == served.body
    # The link is the key: no session needed, as with a presigned URL; a forged one finds nothing.
    assert Client(local).send("GET", link).status == 200
    forged = link.replace("/scan.pdf", "/other.pdf")
    assert Client(local).send("GET", forged).status == 404


def test_on_local_an_expired_link_is_refused(local):
    client = add_user(local, "finn")
    name = "uploads/" + "0" * 32 + "/old.txt"
    (local.pod.volumes["media"] / "uploads" / ("0" * 32)).mkdir(parents=True)
    (local.pod.volumes["media"] / name).write_bytes(b"old\n")
    # A link signed an hour ago (the kit's default expiry is 300 s).
    printed = ok(manage(local.pod.app_env, "shell", "-c", "import time; from unittest import mock; "
                        "from django.core.files.storage import storages; "
                        "t = time.time() - 3600; "
                        "p = mock.patch('time.time', return_value=t); p.start(); "
                        f"print(storages['default'].url({name!r}))"))
    link = printed.strip().splitlines()[-1]
    assert client.send("GET", link).status == 403


def test_local_refuses_a_body_above_the_limit_at_nginx(local):
    assert_refused_by_nginx(local, add_user(local, "gail"))


def test_nginx_and_django_get_one_limit_from_the_stack(local, prod):
    for site in (local, prod):
        conf = next((site.render.dir / "config").glob("*nginx*/nginx.conf")).read_text()
        assert f"client_max_body_size {LIMIT_MB}m;" in conf
        assert site.pod.app_env["DJANGO_MAX_UPLOAD_MB"] == str(LIMIT_MB)
