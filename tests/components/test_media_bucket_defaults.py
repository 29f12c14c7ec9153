"""MediaBucket: uploads in a bucket nobody reaches but the app's role, over TLS, by fresh signatures
only; versioned, encrypted, kept when the stack goes."""

import json

import pulumi
import pytest
from pydantic import ValidationError

from components.media_bucket import MediaBucket, MediaBucketArgs, bucket_policy

BUCKET = "aws:s3/bucket:Bucket"


def media(args=None, name="media", opts=None):
    return lambda: MediaBucket(name, args or MediaBucketArgs(), opts=opts)


def test_the_bucket_is_protected_and_kept_if_deleted_anyway_and_never_force_emptied(run):
    bucket = run(media(), stack="prod").one(BUCKET)

    assert bucket.protect is True and bucket.retain_on_delete is True
    assert bucket.inputs["forceDestroy"] is False


def test_an_unprotected_bucket_may_be_deleted_but_still_never_with_its_files(run):
    bucket = run(media(MediaBucketArgs(protect=False)), stack="dev").one(BUCKET)

    assert bucket.protect is False and bucket.retain_on_delete is False
    # AWS refuses to delete a bucket that still holds objects or versions.
    assert bucket.inputs["forceDestroy"] is False


def test_its_name_comes_from_project_and_stack_not_the_components_name(run):
    one = run(media(name="media"), stack="prod").one(BUCKET).inputs["bucketPrefix"]
    other = run(media(name="uploads"), stack="prod").one(BUCKET).inputs["bucketPrefix"]

    assert one == other and one.endswith("-media-") and len(one) <= 37


def test_a_renamed_component_keeps_its_bucket_through_an_alias(run):
    renamed = run(media(name="uploads", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="media")])),
                  stack="prod").one(BUCKET)

    assert any("media-bucket" in alias for alias in renamed.aliases), renamed.aliases


def test_all_four_public_access_blocks_are_on_and_acls_are_off(run):
    monitor = run(media())
    block = monitor.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")

    assert all(block.inputs[k] is True for k in
               ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets"))
    controls = monitor.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert controls.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_objects_are_encrypted_and_versioned_and_old_versions_expire(run):
    monitor = run(media(MediaBucketArgs(noncurrent_version_days=45)))

    sse = monitor.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    versioning = monitor.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    rule = monitor.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"][0]
    assert rule["status"] == "Enabled" and rule["noncurrentVersionExpiration"]["noncurrentDays"] == 45
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
    assert rule["expiration"] == {"expiredObjectDeleteMarker": True}


def test_the_policy_refuses_plain_http_and_signatures_older_than_the_url_expiry_and_grants_nothing(run):
    monitor = run(media(MediaBucketArgs(max_url_seconds=120)))
    bucket_arn = monitor.one(BUCKET).state["arn"]

    policy = json.loads(monitor.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert {s["Effect"] for s in policy["Statement"]} == {"Deny"}  # access comes from the app's own role
    assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert by_sid["DenyOldSignatures"]["Condition"] == {"NumericGreaterThan": {"s3:signatureAge": 120_000}}
    for statement in policy["Statement"]:
        assert statement["Principal"] == "*" and statement["Action"] == "s3:*"
        assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]


def test_the_policy_waits_for_the_public_access_block(run):
    monitor = run(media())
    block = monitor.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")

    assert block.urn in monitor.one("aws:s3/bucketPolicy:BucketPolicy").dependencies


def test_the_policy_renders_alone_as_json():
    policy = json.loads(bucket_policy("arn:aws:s3:::b", 300))

    assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport", "DenyOldSignatures"]


@pytest.mark.parametrize("field,value", [("max_url_seconds", 601), ("max_url_seconds", 0),
                                         ("noncurrent_version_days", 0), ("surprise", 1)])
def test_bad_args_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        MediaBucketArgs(**{field: value})
