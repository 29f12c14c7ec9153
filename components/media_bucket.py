"""Private S3 bucket for the files an app's users upload (Django's media), read only through
short-lived presigned URLs the app signs.

Why a component of its own, not a second bucket of StaticCdn: the two hold different things.
Static files are rebuilt from the image at every release, public once served, and cached for a
year behind CloudFront; uploads exist nowhere else, are often private to one user, and must be
readable only by whom the app decides, for as long as it decides. So this bucket has no CDN, no
reader but the app's own role, and is kept when the stack goes away.

Why presigned URLs, not CloudFront with origin access control: with OAC anyone holding an
object's URL can read it for as long as the object exists, so the app's authorization ends at
the moment it hands out a link (and CloudFront caches what it served). A presigned GET is
checked by S3 against the app's role, names one object and dies after `max_url_seconds`: the
app decides per request, per user, and a leaked link stops working within minutes. Public media
(product photos everyone sees) would be better served by a CDN; that is a different bucket.

Why SSE-S3 (AES-256, S3-managed keys), not SSE-KMS: objects are encrypted at rest either way,
and who may read is decided by IAM and this bucket's policy either way. A KMS key would add a
second gate and an audit of each decrypt, but also kms:Decrypt and kms:GenerateDataKey in the
app's role (a presigned GET is decrypted as its signer), a charge per request, and a key whose
deletion makes every upload unreadable; stacks that need a customer-managed key can add one.

Secured: ACLs disabled (the bucket owner owns every object), all four public-access blocks on,
a policy that refuses non-TLS requests and any signature older than `max_url_seconds` (a URL
some code signed for longer still dies on time), versioning with expiry of old versions (an
overwrite or a delete is recoverable for `noncurrent_version_days`), and `protect` plus
retain-on-delete when `protect` is on.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field

from components.naming import S3_BUCKET_PREFIX_MAX, child_opts, stack_prefix
from components.static_cdn import no_public_access

TYPE = "webstack:components:MediaBucket"
# Parts of a multipart upload the app abandoned (a pod killed mid-upload) cost storage until
# aborted; a day is longer than any upload takes.
ABORT_MULTIPART_DAYS = 1


class MediaBucketArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    noncurrent_version_days: int = Field(
        30, ge=1, le=3650, description="Days an overwritten or deleted upload stays recoverable (its old version) "
                                       "before it expires.")
    # Presigned URLs signed with the Pod Identity's temporary credentials die with them; boto3
    # renews credentials that have less than 10 minutes left, so up to 600 s a URL always lasts.
    max_url_seconds: int = Field(
        300, ge=1, le=600, description="Longest a presigned URL works, seconds; the bucket refuses older signatures "
                                       "(s3:signatureAge), whatever expiry the app asked for.")
    protect: bool = Field(
        True, description="Pulumi refuses to delete the bucket (`protect`), and a deletion that goes ahead anyway "
                          "(after `pulumi state unprotect`) leaves it in AWS, only dropped from the stack "
                          "(retain_on_delete).")


def bucket_policy(bucket_arn: str, max_url_seconds: int) -> str:
    """Refuses every non-TLS request, and every request signed more than `max_url_seconds` ago
    (a presigned URL past that age). Grants nothing: the app's role grants itself access."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": resources, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        # Milliseconds. A request the SDK signs is sent at once (age ~0); only a URL handed to a
        # browser grows old.
        {"Sid": "DenyOldSignatures", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": resources, "Condition": {"NumericGreaterThan": {"s3:signatureAge": max_url_seconds * 1000}}},
    ]}, sort_keys=True)


class MediaBucket(pulumi.ComponentResource):
    """Private, versioned, encrypted bucket for uploads: no public access, TLS only, short signatures only."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MediaBucketArgs, *, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # A prefix from project+stack (not the logical name): renaming the component keeps the
        # bucket; S3 appends a unique suffix, kept in state.
        bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket_prefix=stack_prefix("media", max_length=S3_BUCKET_PREFIX_MAX),
            # Emptying a bucket on delete is a data-loss switch; keep it off.
            force_destroy=False,
            opts=child_opts(self, TYPE, name, "bucket", opts, protect=args.protect,
                            retain_on_delete=args.protect))
        ownership, block = no_public_access(name, bucket, child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
        # Versioning: an upload overwritten or deleted (by the app or by a bug in it) is still
        # there as a noncurrent version; the app's role cannot delete versions.
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[{"id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
                    # A delete marker left alone once its versions expired: removed too.
                    "expiration": {"expired_object_delete_marker": True},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS}}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: bucket_policy(arn, args.max_url_seconds)),
            # The public-access block must exist first, or a policy typo could make the bucket public.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block, ownership]))

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})
