"""Private S3 bucket served only through CloudFront (OAC), HTTPS only, with security headers.

The bucket is never public: ACLs disabled, all four public-access blocks on, and a policy
that admits only this distribution (and only over TLS). Hashed static files (Django's
ManifestStaticFilesStorage, bundler output) are cached for a year and marked immutable.
"""

from __future__ import annotations

import json
from typing import Annotated

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.naming import (CLOUDFRONT_OAC_NAME_MAX, CLOUDFRONT_POLICY_NAME_MAX, LOG_DELIVERY_NAME_MAX,
                               S3_BUCKET_PREFIX_MAX, LogRetentionDays, child_opts, physical_name, stack_prefix)
from components.certificate import alias_records, dns_validated_certificate
from components.types import AcmCertificateArn, DomainName, HostedZoneId
from components.waf import WafRules, WebAcl

TYPE = "webstack:components:StaticCdn"
ONE_YEAR_S = 31_536_000
ORIGIN = "s3"
# CloudFront's default *.cloudfront.net certificate only offers the TLSv1 policy; a
# custom certificate lets us require TLS 1.2 with modern ciphers.
TLS_POLICY = "TLSv1.2_2021"


class StaticCdnArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain_name: DomainName | None = Field(None,
                                    description="Custom host name, e.g. 'static.example.com'. None: the *.cloudfront.net name.")
    hosted_zone_id: HostedZoneId | None = Field(
        None,
        description="Route 53 zone of domain_name: the kit validates an ACM certificate (us-east-1) and adds alias records.")
    # CloudFront takes certificates from us-east-1 only.
    certificate_arn: Annotated[AcmCertificateArn, Field(pattern=r"^arn:aws[a-z-]*:acm:us-east-1:")] | None = Field(
        None,
        description="Existing ACM certificate for domain_name, in us-east-1 (instead of hosted_zone_id).")
    price_class: str = Field("PriceClass_100", pattern=r"^PriceClass_(100|200|All)$",
                             description="CloudFront edge locations used: 100 (NA/EU), 200, All.")
    noncurrent_version_days: int = Field(30, ge=1, le=3650,
                                         description="Days an overwritten or deleted object version is kept before expiry.")
    protect: bool = Field(True, description="Pulumi refuses to delete the bucket (`protect` option).")
    waf: WafRules | None = Field(
        None, description="Attach a WAF web ACL (CLOUDFRONT scope, us-east-1): managed rules and a rate limit. "
                          "None: no WAF.")
    access_log_retention_days: LogRetentionDays | None = Field(
        30, description="Days CloudFront access logs (a JSON record per request) stay in CloudWatch Logs in "
        "us-east-1; null: no access logs.")

    @model_validator(mode="after")
    def _domain(self) -> "StaticCdnArgs":
        if self.domain_name is None:
            extra = [k for k in ("hosted_zone_id", "certificate_arn") if getattr(self, k)]
            if extra:
                raise ValueError(f"{extra[0]}: only used with domain_name; set domain_name or remove {extra[0]}")
        elif (self.hosted_zone_id is None) == (self.certificate_arn is None):
            raise ValueError(f"domain_name: {self.domain_name!r} needs exactly one of hosted_zone_id "
                             "(the kit issues the certificate) or certificate_arn (you bring one)")
        return self


def no_public_access(name: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
                     ) -> tuple[aws.s3.BucketOwnershipControls, aws.s3.BucketPublicAccessBlock]:
    """ACLs off (the bucket owner owns every object, so no object can be made public by ACL) and
    all four public-access blocks on. A bucket policy must depend on both."""
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=opts)
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access", bucket=bucket.id, block_public_acls=True, ignore_public_acls=True,
        block_public_policy=True, restrict_public_buckets=True, opts=opts)
    return ownership, block


def bucket_policy(bucket_arn: str, distribution_arn: str) -> str:
    """Deny any non-TLS request; allow reads only to this distribution (OAC-signed)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [bucket_arn, f"{bucket_arn}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "AllowCloudFrontRead", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
         "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*",
         "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}},
    ]}, sort_keys=True)


class StaticCdn(pulumi.ComponentResource):
    """Private, versioned, encrypted bucket behind CloudFront with OAC, HTTPS only and security headers."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    domain_name: pulumi.Output[str]
    url: pulumi.Output[str]
    distribution_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StaticCdnArgs, *, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy_name = lambda role: physical_name(  # noqa: E731
            pulumi.get_project(), pulumi.get_stack(), name, role, max_length=CLOUDFRONT_POLICY_NAME_MAX)

        # A prefix from project+stack (not the logical name): renaming the component keeps the
        # bucket; S3 appends a unique suffix, kept in state.
        bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket_prefix=stack_prefix("static", max_length=S3_BUCKET_PREFIX_MAX),
            # Emptying a bucket on delete is a data-loss switch; keep it off.
            force_destroy=False,
            opts=child_opts(self, TYPE, name, "bucket", opts, protect=args.protect))
        ownership, block = no_public_access(name, bucket, child)
        # SSE-S3, not SSE-KMS: CloudFront OAC reading SSE-KMS objects needs a key policy
        # grant per distribution, and static files are public content once served.
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True}], opts=child)
        # Versioning: a bad collectstatic (or --clear) can be rolled back object by object.
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[{"id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))

        oac = aws.cloudfront.OriginAccessControl(
            f"{name}-oac", name=physical_name(pulumi.get_project(), pulumi.get_stack(), name,
                                              max_length=CLOUDFRONT_OAC_NAME_MAX),
            description="CloudFront signs every request to the bucket",
            origin_access_control_origin_type="s3", signing_behavior="always", signing_protocol="sigv4", opts=child)
        # Hashed file names change when content changes, so a year-long, immutable cache is safe.
        # The cache key has no cookies, headers or query strings: one copy per file.
        cache = aws.cloudfront.CachePolicy(
            f"{name}-immutable", name=policy_name("immutable"),
            comment="Hashed static files: 1 year, compressed variants",
            min_ttl=0, default_ttl=ONE_YEAR_S, max_ttl=ONE_YEAR_S,
            parameters_in_cache_key_and_forwarded_to_origin={
                "cookies_config": {"cookie_behavior": "none"},
                "headers_config": {"header_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "none"},
                "enable_accept_encoding_gzip": True, "enable_accept_encoding_brotli": True},
            opts=child)
        headers = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-headers", name=policy_name("headers"), comment="Security headers and immutable caching",
            security_headers_config={
                # Two years, the HSTS preload list minimum.
                "strict_transport_security": {"access_control_max_age_sec": 63_072_000, "include_subdomains": True,
                                              "preload": False, "override": True},
                "content_type_options": {"override": True},
                "frame_options": {"frame_option": "DENY", "override": True},
                "referrer_policy": {"referrer_policy": "strict-origin-when-cross-origin", "override": True},
                "xss_protection": {"protection": True, "mode_block": True, "override": True},
            },
            custom_headers_config={"items": [{
                # Browsers cache too; an object uploaded with its own Cache-Control keeps it.
                "header": "Cache-Control", "value": f"public, max-age={ONE_YEAR_S}, immutable", "override": False}]},
            opts=child)

        aliases: list[str] = []
        viewer_certificate: dict = {"cloudfront_default_certificate": True}
        if args.domain_name:
            aliases = [args.domain_name]
            cert_arn: pulumi.Input[str]
            if args.certificate_arn:
                cert_arn = args.certificate_arn
            else:
                assert args.hosted_zone_id is not None  # StaticCdnArgs requires one of the two
                # CloudFront only uses ACM certificates from us-east-1.
                cert_arn = dns_validated_certificate(name, args.domain_name, args.hosted_zone_id, region="us-east-1",
                                                     opts=child)
            viewer_certificate = {"acm_certificate_arn": cert_arn, "ssl_support_method": "sni-only",
                                  "minimum_protocol_version": TLS_POLICY}

        web_acl_id = None
        if args.waf is not None:
            web_acl_id = WebAcl(f"{name}-waf", args.waf, scope="CLOUDFRONT", opts=child).arn

        distribution = aws.cloudfront.Distribution(
            f"{name}-cdn", enabled=True, is_ipv6_enabled=True, http_version="http2and3",
            comment=f"{pulumi.get_stack()} {name}", price_class=args.price_class, aliases=aliases,
            origins=[{"origin_id": ORIGIN, "domain_name": bucket.bucket_regional_domain_name,
                      "origin_access_control_id": oac.id}],
            default_cache_behavior={
                "target_origin_id": ORIGIN,
                # Plain HTTP gets a redirect, never content.
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD", "OPTIONS"], "cached_methods": ["GET", "HEAD"],
                "compress": True, "cache_policy_id": cache.id, "response_headers_policy_id": headers.id},
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate=viewer_certificate, web_acl_id=web_acl_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ownership, block]))

        aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, distribution.arn).apply(lambda a: bucket_policy(*a)),
            # The public-access block must exist first, or a policy typo could make the bucket public.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]))

        if args.domain_name and args.hosted_zone_id:
            alias_records(name, args.hosted_zone_id, args.domain_name, target_name=distribution.domain_name,
                          target_zone_id=distribution.hosted_zone_id, opts=child)

        if args.access_log_retention_days:
            self._access_logs(name, distribution, args.access_log_retention_days)

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.distribution_arn = distribution.arn
        self.distribution_id = distribution.id
        self.domain_name = pulumi.Output.from_input(args.domain_name) if args.domain_name else distribution.domain_name
        self.url = self.domain_name.apply(lambda d: f"https://{d}")
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn,
                               "distribution_id": self.distribution_id,
                               "distribution_arn": self.distribution_arn, "url": self.url})

    def _access_logs(self, name: str, distribution: aws.cloudfront.Distribution, retention_days: int) -> None:
        """CloudFront standard logging (v2): the distribution is a log delivery source, delivered
        as JSON to a log group with a retention. CloudFront's deliveries live in us-east-1."""
        child = pulumi.ResourceOptions(parent=self)
        east = {"region": "us-east-1"}
        delivery_name = physical_name(pulumi.get_project(), pulumi.get_stack(), name, "access",
                                      max_length=LOG_DELIVERY_NAME_MAX)
        group = aws.cloudwatch.LogGroup(f"{name}-access-logs", retention_in_days=retention_days, opts=child, **east)
        source = aws.cloudwatch.LogDeliverySource(f"{name}-access-logs", name=delivery_name, log_type="ACCESS_LOGS",
                                                  resource_arn=distribution.arn, opts=child, **east)
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-access-logs", name=delivery_name, output_format="json",
            delivery_destination_configuration={"destination_resource_arn": group.arn}, opts=child, **east)
        aws.cloudwatch.LogDelivery(f"{name}-access-logs", delivery_source_name=source.name,
                                   delivery_destination_arn=destination.arn, opts=child, **east)
