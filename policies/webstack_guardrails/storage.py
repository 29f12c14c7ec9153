"""Where the data lives: S3 buckets private, RDS hardened, CloudFront HTTPS with modern TLS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (ReportViolation, ResourceValidationArgs, ResourceValidationPolicy,
                           StackValidationArgs, StackValidationPolicy)

from webstack_guardrails.base import (Stage, config_fix, finding, get, items, json_document, kit_key, known,
                                      reporter, type_policy)

# pulumi-aws v7 calls the bucket `Bucket` (v6 `BucketV2`, its alias); both are checked.
BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_ACL_TYPES = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
RDS_INSTANCE = "aws:rds/instance:Instance"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"

# The four switches of a public access block, each of which closes one way to make data public.
BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_CANNED_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")

DATABASE = "webstack:components:Database"
STATIC_CDN = "webstack:components:StaticCdn"

# CloudFront security policies that require TLS 1.2 or newer with modern ciphers only.
MODERN_TLS = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
HTTPS_VIEWER_POLICIES = ("redirect-to-https", "https-only")


# --- S3 -----------------------------------------------------------------------------------

def missing_blocks(props: Mapping[str, Any]) -> list[str]:
    return [b for b in BLOCKS if get(props, b) is not True]


def s3_public_access_blocked(stage: Stage) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        # An account-wide block with all four switches covers every bucket of the account.
        if any(r.resource_type == ACCOUNT_PUBLIC_ACCESS_BLOCK
               and not known(lambda r=r: missing_blocks(r.props), BLOCKS) for r in args.resources):
            return
        blocks = [r for r in args.resources if r.resource_type == PUBLIC_ACCESS_BLOCK]
        for block in blocks:
            missing = known(lambda b=block: missing_blocks(b.props), [])
            if missing:
                report_violation(finding(
                    block.resource_type, block.name, f"{', '.join(missing)} not true, so the bucket can still be "
                    "made public by an ACL or a bucket policy",
                    "set all four of blockPublicAcls, blockPublicPolicy, ignorePublicAcls and "
                    "restrictPublicBuckets to true"), block.urn)
        for bucket in (r for r in args.resources if r.resource_type in BUCKET_TYPES):
            # A block names its bucket by an output of the bucket (unknown in a preview), so it is
            # matched by the dependency the engine records between them.
            if not any(bucket.urn in {d.urn for d in b.dependencies} for b in blocks):
                report_violation(finding(
                    bucket.resource_type, bucket.name, "no BucketPublicAccessBlock covers it, so an ACL or a "
                    "policy can make its objects public",
                    "add an aws.s3.BucketPublicAccessBlock for this bucket with all four switches true "
                    "(the kit's StaticCdn component does)"), bucket.urn)

    return StackValidationPolicy(
        name="s3-public-access-blocked",
        description="Every S3 bucket has a public access block with all four switches on.",
        validate=validate)


def public_statements(document: Mapping[str, Any]) -> list[str]:
    """Sids (or positions) of Allow statements open to any principal without a condition."""
    found = []
    for i, statement in enumerate(items(get(document, "Statement"))):
        principal = get(statement, "Principal")
        anyone = principal == "*" or "*" in items(get(principal, "AWS"))
        if get(statement, "Effect") == "Allow" and anyone and not get(statement, "Condition"):
            found.append(str(get(statement, "Sid", default=f"#{i}")))
    return found


def s3_no_public_grants(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        report = reporter(report_violation)
        props, kind = args.props, args.resource_type
        if kind in BUCKET_TYPES + BUCKET_ACL_TYPES:
            acl = get(props, "acl")
            grants = items(get(props, "accessControlPolicy", "grants"))
            public = [g for g in grants if get(g, "grantee", "uri") in PUBLIC_GRANTEES]
            if acl in PUBLIC_CANNED_ACLS:
                report(finding(kind, args.name, f"the canned ACL {acl!r} makes the bucket readable by anyone",
                               "remove the ACL (ownership 'BucketOwnerEnforced' disables ACLs) and serve objects "
                               "through CloudFront with origin access control"))
            if public:
                report(finding(kind, args.name, "an ACL grant to AllUsers or AuthenticatedUsers makes the bucket "
                               "readable by anyone", "remove those grants"))
        elif kind == BUCKET_POLICY:
            document = json_document(get(props, "policy"))
            opened = public_statements(document) if document is not None else []
            if opened:
                report(finding(kind, args.name, f"statement(s) {', '.join(map(repr, opened))} allow any principal "
                               "with no condition", "name the principal (e.g. the CloudFront service with an "
                               "AWS:SourceArn condition on the distribution) instead of '*'"))

    return ResourceValidationPolicy(
        name="s3-no-public-grants",
        description="No S3 ACL or bucket policy grants access to everyone.",
        validate=validate)


# --- RDS ----------------------------------------------------------------------------------

def rds_policy(name: str, description: str, check) -> ResourceValidationPolicy:
    return type_policy(RDS_INSTANCE, name, description, check)


def rds_storage_encrypted(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        if get(args.props, "storageEncrypted") is not True:
            yield ("storage is not encrypted (storageEncrypted is not true); a copied snapshot or volume "
                   "reveals the data", "set storageEncrypted: true (this replaces the instance: restore "
                   "from an encrypted snapshot copy to keep the data)")
    return rds_policy("rds-storage-encrypted", "RDS instances encrypt their storage.", check)


def rds_not_public(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        if get(args.props, "publiclyAccessible") is True:
            yield ("publiclyAccessible is true: the instance gets a public address",
                   "set publiclyAccessible: false and reach it from inside the VPC")
    return rds_policy("rds-not-public", "RDS instances have no public address.", check)


def rds_deletion_protection(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        if get(args.props, "deletionProtection") is not True:
            yield ("deletionProtection is off: one API call deletes the database",
                   config_fix(stage, args.urn, DATABASE, "{framework}.database.deletion_protection", "true",
                              "set deletionProtection: true"))
    return rds_policy("rds-deletion-protection", "RDS instances refuse to be deleted.", check)


def rds_backups(stage: Stage) -> ResourceValidationPolicy:
    def check(args):
        days = get(args.props, "backupRetentionPeriod")
        if not isinstance(days, (int, float)) or days < 1:
            yield (f"automated backups are off (backupRetentionPeriod {days if days is not None else 'unset'}): "
                   "no point-in-time restore",
                   config_fix(stage, args.urn, DATABASE, "{framework}.database.backup_retention_days", "14",
                              "set backupRetentionPeriod to 1..35 days"))
        if get(args.props, "skipFinalSnapshot") is True:
            yield ("skipFinalSnapshot is true: deleting the instance discards its data",
                   config_fix(stage, args.urn, DATABASE, "{framework}.database.final_snapshot", "true",
                              "set skipFinalSnapshot: false with a finalSnapshotIdentifier"))
    return rds_policy("rds-backups", "RDS instances keep automated backups and a final snapshot.", check)


def rds_multi_az(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != RDS_INSTANCE:
            return
        stage.prod_only(args)
        if get(args.props, "multiAz") is not True:
            report_violation(finding(
                args.resource_type, args.name, "multiAz is off: losing its availability zone takes the "
                "database down until it is restored",
                config_fix(stage, args.urn, DATABASE, "{framework}.database.multi_az", "true",
                           "set multiAz: true")), None)

    return ResourceValidationPolicy(name="rds-multi-az", description="RDS instances in prod have a standby in a "
                                    "second availability zone.", validate=validate)


# --- CloudFront ---------------------------------------------------------------------------

def cloudfront_https_only(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != DISTRIBUTION:
            return
        behaviours = [("the default cache behaviour", get(args.props, "defaultCacheBehavior", default={}))]
        behaviours += [(f"cache behaviour {get(b, 'pathPattern')!r}", b)
                       for b in items(get(args.props, "orderedCacheBehaviors"))]
        for label, behaviour in behaviours:
            policy = get(behaviour, "viewerProtocolPolicy")
            if policy not in HTTPS_VIEWER_POLICIES:
                report_violation(finding(
                    args.resource_type, args.name, f"{label} serves plain HTTP (viewerProtocolPolicy {policy!r})",
                    "set viewerProtocolPolicy: redirect-to-https (or https-only)"), None)

    return ResourceValidationPolicy(name="cloudfront-https-only", description="CloudFront serves viewers over "
                                    "HTTPS only.", validate=validate)


def cloudfront_modern_tls(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != DISTRIBUTION:
            return
        certificate = get(args.props, "viewerCertificate", default={})
        custom = get(certificate, "acmCertificateArn") or get(certificate, "iamCertificateId")
        if custom:
            version = get(certificate, "minimumProtocolVersion")
            if version not in MODERN_TLS:
                report_violation(finding(
                    args.resource_type, args.name, f"viewers may connect with {version or 'TLSv1 (unset)'}",
                    f"set viewerCertificate.minimumProtocolVersion: {MODERN_TLS[0]} (or newer)"), None)
            return
        # The *.cloudfront.net certificate: CloudFront fixes its security policy at TLSv1 whatever
        # minimumProtocolVersion says, so only a custom domain can raise the floor. That costs a
        # domain and a certificate, which the kit asks for in prod only.
        stage.prod_only(args)
        if kit_key(stage, args.urn, STATIC_CDN, "django.static.domain_name"):
            fix = ("pulumi config set --path 'webstack:django.static.domain_name' static.<your domain>, with "
                   "webstack:django.static.hosted_zone_id (or certificate_arn, in us-east-1); the kit then "
                   f"requires {MODERN_TLS[0]}")
        else:
            fix = (f"give it a custom domain (aliases) with an ACM certificate in us-east-1 and "
                   f"minimumProtocolVersion {MODERN_TLS[0]}")
        report_violation(finding(args.resource_type, args.name, "it uses the *.cloudfront.net certificate, with "
                                 "which CloudFront accepts TLSv1 and TLSv1.1", fix), None)

    return ResourceValidationPolicy(name="cloudfront-modern-tls", description="CloudFront requires TLS 1.2 or "
                                    "newer (TLSv1.2_2021+).", validate=validate)


POLICIES = (s3_public_access_blocked, s3_no_public_grants, rds_storage_encrypted, rds_not_public,
            rds_deletion_protection, rds_backups, rds_multi_az, cloudfront_https_only, cloudfront_modern_tls)
