"""Media (files users upload) in the Django stack, under mocks: on aws a bucket of its own that only
the app's Pod Identity may write (nothing of it on static, nothing of media for collectstatic); on
local a volume claim in the app container; one upload limit for Nginx and Django; and the config
errors that stop a stack before anything is created."""

from __future__ import annotations

import json
import re

import pytest
from example_runs import stack
from test_django_stack import container, pod, settings
from test_fastapi_stack import env_of, run_with

from stacks.django.stack import MEDIA_ROOT
from stacks.errors import ConfigError

BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:iam/rolePolicy:RolePolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def bucket(run, role: str):
    return next(b for b in run.monitor.all(BUCKET) if b.name == f"web-{role}-bucket")


def identity_statements(run, service_account: str) -> list[dict]:
    """The statements of the role EKS Pod Identity gives `service_account`."""
    association = next(a for a in run.monitor.all(ASSOCIATION) if a.inputs["serviceAccount"] == service_account)
    policy = next(p for p in run.monitor.all(POLICY) if p.parent == association.parent)
    return json.loads(policy.inputs["policy"])["Statement"]


def s3_resources(statements: list[dict]) -> set[str]:
    return {r for s in statements for r in s["Resource"] if r.startswith("arn:aws:s3:::")}


def secret_value(run, secret: str, key: str) -> str:
    return next(s for s in run.monitor.all(SECRET) if s.name == secret).plain_inputs["stringData"][key]


def nginx_conf(run) -> str:
    return next(m.inputs["data"]["nginx.conf"] for m in run.monitor.all(CONFIG_MAP) if "nginx.conf" in m.inputs["data"])


# --- aws: the bucket --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["django-dev", "django-prod"])
def test_uploads_get_a_private_versioned_encrypted_bucket_separate_from_static(name):
    run = stack(name)
    media, static = bucket(run, "media"), bucket(run, "static")

    assert media.urn != static.urn and media.inputs["bucketPrefix"].endswith("-media-")
    for kind in ("bucketVersioning:BucketVersioning", "bucketPublicAccessBlock:BucketPublicAccessBlock",
                 "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "bucketOwnershipControls:BucketOwnershipControls", "bucketPolicy:BucketPolicy"):
        assert any(media.urn in r.dependencies for r in run.monitor.all(f"aws:s3/{kind}")), kind
    policy = next(p for p in run.monitor.all("aws:s3/bucketPolicy:BucketPolicy") if media.urn in p.dependencies)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert {s["Sid"] for s in statements} == {"DenyInsecureTransport", "DenyOldSignatures"}
    assert not [s for s in statements if s["Effect"] == "Allow"]
    assert run.outputs["media_bucket_name"] == media.state["bucket"]


def test_prod_protects_the_media_bucket_and_keeps_it_if_deleted_and_dev_does_neither():
    prod, dev = bucket(stack("django-prod"), "media"), bucket(stack("django-dev"), "media")

    assert (prod.protect, prod.retain_on_delete) == (True, True)
    assert (dev.protect, dev.retain_on_delete) == (False, False)


def test_the_bucket_refuses_signatures_older_than_the_apps_url_expiry():
    run = stack("django-prod")
    policy = next(p for p in run.monitor.all("aws:s3/bucketPolicy:BucketPolicy")
                  if bucket(run, "media").urn in p.dependencies)
    old = next(s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Sid"] == "DenyOldSignatures")

    expiry = int(env_of(container(run, "app"))["DJANGO_MEDIA_URL_EXPIRY_SECONDS"])
    assert old["Condition"]["NumericGreaterThan"]["s3:signatureAge"] == expiry * 1000 == 300_000


# --- aws: who may write it ----------------------------------------------------------------------------

def test_the_apps_own_identity_may_write_media_objects_only_and_nothing_on_static():
    run = stack("django-prod")
    media, static = bucket(run, "media").state["arn"], bucket(run, "static").state["arn"]
    statements = identity_statements(run, "web-app")

    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    assert [s["Resource"] for s in s3] == [[f"{media}/*"]]  # objects of the media bucket, nothing else
    assert set(s3[0]["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    actions = {a for s in statements for a in s["Action"]}
    assert not [a for a in actions if a.endswith("*")], actions  # no s3:*, no wildcard of any kind
    assert "s3:DeleteObjectVersion" not in actions and "s3:ListBucket" not in actions
    assert not [r for r in s3_resources(statements) if r.startswith(static)]
    # The database password it already read: still there, and the only other statement.
    assert [s["Sid"] for s in statements] == ["ReadDatabaseSecret", "ReadWriteMediaObjects"]


def test_collectstatic_and_the_migration_job_get_nothing_on_media():
    run = stack("django-prod")
    media = bucket(run, "media").state["arn"]

    for account in ("web-static", "web-release"):
        assert not [r for r in s3_resources(identity_statements(run, account)) if r.startswith(media)], account


def test_the_app_pod_runs_as_the_service_account_that_holds_the_media_role():
    run = stack("django-prod")

    assert pod(run)["serviceAccountName"] == "web-app"
    assert any(a.inputs["serviceAccount"] == "web-app" for a in run.monitor.all(ASSOCIATION))


def test_on_aws_the_app_is_told_its_bucket_and_link_expiry_and_no_volume():
    run = stack("django-prod")
    env = env_of(container(run, "app"))

    assert env["DJANGO_MEDIA_BUCKET"] == "<from secret>"
    assert secret_value(run, "web-app-secrets", "DJANGO_MEDIA_BUCKET") == bucket(run, "media").state["bucket"]
    assert env["DJANGO_MEDIA_URL_EXPIRY_SECONDS"] == "300" and env["AWS_S3_REGION_NAME"] == "us-east-1"
    assert "DJANGO_MEDIA_ROOT" not in env
    assert not run.monitor.all(CLAIM)


# --- local: the volume ----------------------------------------------------------------------------------

def test_on_local_uploads_go_to_a_volume_claim_the_app_mounts_and_nginx_does_not():
    run = stack("django-local")
    [claim] = run.monitor.all(CLAIM)
    spec = pod(run)
    name = claim.inputs["metadata"]["name"]

    assert claim.inputs["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    volume = next(v for v in spec["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == name)
    assert {"name": volume["name"], "mountPath": MEDIA_ROOT} in container(run, "app")["volumeMounts"]
    assert not [m for m in container(run, "nginx")["volumeMounts"] if m["name"] == volume["name"]]
    env = env_of(container(run, "app"))
    assert env["DJANGO_MEDIA_ROOT"] == MEDIA_ROOT and env["DJANGO_MEDIA_URL_EXPIRY_SECONDS"] == "300"
    assert "DJANGO_MEDIA_BUCKET" not in env
    assert claim.urn in run.monitor.one("kubernetes:apps/v1:Deployment").dependencies
    assert not run.monitor.all(BUCKET)


def test_the_local_claim_follows_its_settings():
    run = run_with("django-local", django={**_section("django-local"), "media": {
        "local_storage": "2Gi", "local_storage_class": "fast", "protect": True}})
    [claim] = run.monitor.all(CLAIM)

    assert claim.inputs["spec"]["storageClassName"] == "fast"
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim.protect is True and claim.retain_on_delete is True
    assert stack("django-local").monitor.one(CLAIM).protect is False  # the dev profile's default


# --- one upload limit ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["django-dev", "django-prod", "django-local"])
def test_nginx_and_django_get_the_same_upload_limit(name):
    run = stack(name)
    limit = re.search(r"client_max_body_size (\d+)m;", nginx_conf(run)).group(1)

    assert env_of(container(run, "app"))["DJANGO_MAX_UPLOAD_MB"] == limit == "10"


def test_changing_the_limit_changes_both():
    run = run_with("django-dev", django={**_section("django-dev"), "nginx": {"client_max_body_size_mb": 25}})

    assert "client_max_body_size 25m;" in nginx_conf(run)
    assert env_of(container(run, "app"))["DJANGO_MAX_UPLOAD_MB"] == "25"


# --- without media --------------------------------------------------------------------------------------

def test_media_null_creates_no_bucket_and_gives_the_app_no_storage_or_s3_rights():
    run = run_with("django-prod", django={**_section("django-prod"), "media": None})

    assert [b.name for b in run.monitor.all(BUCKET)] == ["web-static-bucket"]
    env = env_of(container(run, "app"))
    assert not [k for k in env if k.startswith("DJANGO_MEDIA_")]
    assert env["DJANGO_MAX_UPLOAD_MB"] == "10"  # the body limit is every request's, not only uploads'
    assert [s["Sid"] for s in identity_statements(run, "web-app")] == ["ReadDatabaseSecret"]
    assert "media_bucket_name" not in run.outputs


# --- config errors: one line, nothing created ----------------------------------------------------------------

@pytest.mark.parametrize("stack_name,media,key,words", [
    ("django-prod", {"url_expiry_seconds": 3600}, "django.media.url_expiry_seconds", "600"),
    ("django-prod", {"url_expiry_seconds": 5}, "django.media.url_expiry_seconds", "30"),
    ("django-prod", {"local_storage": "2Gi"}, "django.media.local_storage", "target local only"),
    ("django-prod", {"local_storage_class": "fast"}, "django.media.local_storage_class", "target local only"),
    ("django-local", {"noncurrent_version_days": 7}, "django.media.noncurrent_version_days", "S3 bucket"),
    ("django-local", {"local_storage": "lots"}, "django.media.local_storage", ""),
    ("django-prod", {"bucket": "mine"}, "django.media.bucket", "unknown"),
])
def test_bad_media_settings_are_refused_naming_the_key(stack_name, media, key, words):
    with pytest.raises(ConfigError) as err:
        settings(stack_name, **{f"django.media.{k}": v for k, v in media.items()})

    message = str(err.value)
    assert f"webstack:{key}" in message and words in message, message


def _section(name: str) -> dict:
    from cli.render import load_stack_file

    return dict(load_stack_file(name).config.get("webstack:django", {}))
