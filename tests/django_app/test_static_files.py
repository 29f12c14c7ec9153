"""Static files on S3 (AWS_STORAGE_BUCKET_NAME): collectstatic uploads hashed names that caches
may keep for a year, with no ACLs, and pages link them through the CloudFront domain.
A moto S3 server on loopback stands in for the bucket (AWS_S3_ENDPOINT_URL)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from .shop_app import gunicorn_argv, manage, ok

BUCKET = "shop-static-test"
REGION = "eu-west-1"
CDN = "d111111abcdef8.cloudfront.net"


@pytest.fixture(scope="module")
def s3(django_venv) -> Iterator[tuple[str, object]]:
    """A bucket after `collectstatic`, as the kit's release Job leaves it (once: it takes seconds)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        ok(manage(s3_env(endpoint), "collectstatic", "--noinput"))
        yield endpoint, client
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    # Credentials reach boto3 through its default chain (here the environment; Pod Identity in
    # the cluster), never through Django settings.
    return {"AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_REGION_NAME": REGION, "AWS_S3_CUSTOM_DOMAIN": CDN,
            "AWS_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def test_collectstatic_uploads_immutable_hashed_files_without_acls(s3):
    _, client = s3
    keys = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])}
    assert "staticfiles.json" in keys  # the manifest the app reads to name hashed files
    hashed = [k for k in keys if re.fullmatch(r"catalog/site\.[0-9a-f]{12}\.css", k)]
    assert len(hashed) == 1, sorted(keys)[:20]
    assert any(re.fullmatch(r"admin/css/base\.[0-9a-f]{12}\.css", k) for k in keys)

    head = client.head_object(Bucket=BUCKET, Key=hashed[0])
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"] == "text/css"
    grants = client.get_object_acl(Bucket=BUCKET, Key=hashed[0])["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner only: no public-read
    assert grants[0]["Grantee"]["Type"] == "CanonicalUser"


def test_pages_link_static_files_through_the_cdn_without_signatures(serve, app_env, s3, port):
    endpoint, _ = s3
    server = serve(gunicorn_argv(port), {**app_env, **s3_env(endpoint)}, port=port)
    status, _, body = server.get("/")
    page = body.decode()
    assert status == 200, page[-2000:]
    links = re.findall(r'href="([^"]+\.css[^"]*)"', page)
    assert len(links) == 1 and re.fullmatch(rf"https://{CDN}/catalog/site\.[0-9a-f]{{12}}\.css", links[0]), links
