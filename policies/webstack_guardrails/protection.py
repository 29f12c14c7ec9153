"""In prod, every resource that holds data is `protect`ed: Pulumi then refuses to delete it,
whether by `pulumi destroy`, a removed line of code or a change that forces a replacement."""

from __future__ import annotations

from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy

from webstack_guardrails.base import Stage, config_fix, finding, get, known

# Deleting one of these deletes data (or, for a KMS key, every piece of data encrypted with it).
STATEFUL = (
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:kms/key:Key",
    "aws:dynamodb/table:Table",
    "aws:efs/fileSystem:FileSystem",
    "kubernetes:core/v1:PersistentVolumeClaim",
)
STATEFULSET = "kubernetes:apps/v1:StatefulSet"

DATABASE = "webstack:components:Database"
STATIC_CDN = "webstack:components:StaticCdn"
MEDIA_BUCKET = "webstack:components:MediaBucket"


def deletes_its_volumes(props) -> bool:
    """A StatefulSet whose claims go with it (`persistentVolumeClaimRetentionPolicy.whenDeleted:
    Delete`). By default, and in the kit's in-cluster PostgreSQL, they are retained."""
    return (bool(get(props, "spec", "volumeClaimTemplates"))
            and get(props, "spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted") == "Delete")


def fix_for(stage: Stage, resource_type: str, urn: str) -> str:
    generic = "set the resource option protect=True where the program creates it"
    if resource_type == "aws:rds/instance:Instance":
        return config_fix(stage, urn, DATABASE, "{framework}.database.protect", "true", generic)
    if resource_type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        static = config_fix(stage, urn, STATIC_CDN, "django.static.protect", "true", generic)
        return config_fix(stage, urn, MEDIA_BUCKET, "django.media.protect", "true", static)
    return generic


def stateful_resources_protected(stage: Stage) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stage.prod_only(args)
        for r in args.resources:
            stateful = r.resource_type in STATEFUL or (
                r.resource_type == STATEFULSET and known(lambda r=r: deletes_its_volumes(r.props), True))
            if stateful and not r.opts.protect:
                report_violation(finding(
                    r.resource_type, r.name, "holds data but is not protected: a destroy, a deleted line of code "
                    "or a replacing change deletes it", fix_for(stage, r.resource_type, r.urn)), r.urn)

    return StackValidationPolicy(name="stateful-resources-protected", description="In prod, every resource that "
                                 "holds data is protected from deletion.", validate=validate)


POLICIES = (stateful_resources_protected,)
