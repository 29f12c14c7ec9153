"""StaticCdn: a bucket nobody reaches except this distribution, over HTTPS, with long immutable caching."""

import json
import re

from components.static_cdn import StaticCdn, StaticCdnArgs
from components.waf import WafRules

CDN = "aws:cloudfront/distribution:Distribution"
BUCKET = "aws:s3/bucket:Bucket"
DOMAIN = StaticCdnArgs(domain_name="static.example.com", hosted_zone_id="Z0123456789ABC")


def cdn(args=None, name="static"):
    return lambda: StaticCdn(name, args or StaticCdnArgs())


def test_prod_bucket_is_protected_and_cannot_be_force_emptied(run):
    bucket = run(cdn(), stack="prod").one(BUCKET)

    assert bucket.protect is True
    assert bucket.inputs["forceDestroy"] is False


def test_an_unprotected_bucket_is_still_never_force_emptied(run):
    bucket = run(cdn(StaticCdnArgs(protect=False)), stack="dev").one(BUCKET)

    assert bucket.protect is False
    # Pulumi may delete it, but AWS refuses while it holds objects or old versions: a
    # destroy never takes the files with it.
    assert bucket.inputs["forceDestroy"] is False


def test_all_four_public_access_blocks_are_on(run):
    block = run(cdn()).one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")

    assert all(block.inputs[k] is True for k in
               ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets"))


def test_acls_are_disabled_by_owner_enforced_ownership(run):
    controls = run(cdn()).one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")

    assert controls.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_objects_are_encrypted_and_versioned_with_old_versions_expiring(run):
    monitor = run(cdn())

    sse = monitor.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    versioning = monitor.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    rule = monitor.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"][0]
    assert rule["status"] == "Enabled"
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30


def test_bucket_policy_denies_plain_http_and_admits_only_this_distribution(run):
    monitor = run(cdn())

    policy = json.loads(monitor.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    deny, allow = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Condition"]["StringEquals"]["AWS:SourceArn"] == monitor.one(CDN).state["arn"]
    assert not [s for s in policy["Statement"] if s["Effect"] == "Allow" and s.get("Principal") == "*"]


def test_distribution_reads_the_bucket_through_origin_access_control(run):
    monitor = run(cdn())

    oac = monitor.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert (oac.inputs["signingBehavior"], oac.inputs["signingProtocol"]) == ("always", "sigv4")
    origin = monitor.one(CDN).inputs["origins"][0]
    assert origin["originAccessControlId"] == oac.id
    assert origin["domainName"].endswith(".s3.us-east-1.amazonaws.com")


def test_viewers_get_https_only_and_compressed_files(run):
    behavior = run(cdn()).one(CDN).inputs["defaultCacheBehavior"]

    assert behavior["viewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["compress"] is True
    assert behavior["allowedMethods"] == ["GET", "HEAD", "OPTIONS"]


def test_hashed_static_files_are_cached_for_a_year_and_immutable(run):
    monitor = run(cdn())

    cache = monitor.one("aws:cloudfront/cachePolicy:CachePolicy")
    assert cache.inputs["defaultTtl"] == cache.inputs["maxTtl"] == 31_536_000
    key = cache.inputs["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["cookiesConfig"]["cookieBehavior"] == "none"
    assert key["enableAcceptEncodingBrotli"] is True
    headers = monitor.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    assert headers.inputs["customHeadersConfig"]["items"][0]["value"] == "public, max-age=31536000, immutable"
    assert monitor.one(CDN).inputs["defaultCacheBehavior"]["cachePolicyId"] == cache.id


def test_responses_carry_security_headers(run):
    sec = run(cdn()).one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy").inputs["securityHeadersConfig"]

    assert sec["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31_536_000
    assert sec["contentTypeOptions"]["override"] is True
    assert sec["frameOptions"]["frameOption"] == "DENY"
    assert sec["referrerPolicy"]["referrerPolicy"] == "strict-origin-when-cross-origin"
    assert sec["xssProtection"]["protection"] is True


def test_custom_domain_gets_a_us_east_1_certificate_and_tls_1_2(run):
    monitor = run(cdn(DOMAIN))

    cert = monitor.one("aws:acm/certificate:Certificate")
    assert cert.inputs["region"] == "us-east-1"
    assert cert.inputs["validationMethod"] == "DNS"
    viewer = monitor.one(CDN).inputs["viewerCertificate"]
    assert viewer["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert viewer["sslSupportMethod"] == "sni-only"
    assert monitor.one(CDN).inputs["aliases"] == ["static.example.com"]
    assert {r.inputs["type"] for r in monitor.all("aws:route53/record:Record") if r.inputs.get("aliases")} == {"A", "AAAA"}


def test_without_a_domain_no_certificate_is_created(run):
    monitor = run(cdn())

    assert not monitor.all("aws:acm/certificate:Certificate")
    assert monitor.one(CDN).inputs["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}


def test_waf_is_optional_and_attached_when_configured(run):
    assert "webAclId" not in run(cdn()).one(CDN).inputs

    monitor = run(cdn(StaticCdnArgs(waf=WafRules())))
    acl = monitor.one("aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "CLOUDFRONT" and acl.inputs["region"] == "us-east-1"
    assert monitor.one(CDN).inputs["webAclId"] == acl.state["arn"]


def test_the_static_files_waf_has_no_admin_rule_since_the_admin_is_never_served_from_there(run):
    monitor = run(cdn(StaticCdnArgs(waf=WafRules())))

    assert "admin-allowlist" not in [r["name"] for r in monitor.one("aws:wafv2/webAcl:WebAcl").inputs["rules"]]
    assert not monitor.all("aws:wafv2/ipSet:IpSet")


def test_physical_bucket_name_does_not_depend_on_the_logical_name(run):
    first = run(cdn(name="static"), stack="prod").one(BUCKET).inputs["bucketPrefix"]
    second = run(cdn(name="assets"), stack="prod").one(BUCKET).inputs["bucketPrefix"]

    assert first == second == "webstack-prod-static-"


def test_every_request_is_logged_as_json_to_a_us_east_1_log_group_with_a_retention(run):
    monitor = run(cdn(), stack="prod")
    group = monitor.one("aws:cloudwatch/logGroup:LogGroup", "static-access-logs")
    source = monitor.one("aws:cloudwatch/logDeliverySource:LogDeliverySource")
    destination = monitor.one("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination")
    delivery = monitor.one("aws:cloudwatch/logDelivery:LogDelivery")

    assert group.inputs["retentionInDays"] == 30
    assert source.inputs["logType"] == "ACCESS_LOGS"
    assert source.inputs["resourceArn"] == monitor.one(CDN).state["arn"]
    assert destination.inputs["outputFormat"] == "json"
    assert destination.inputs["deliveryDestinationConfiguration"] == {"destinationResourceArn": group.state["arn"]}
    assert delivery.inputs["deliverySourceName"] == source.state["name"]
    assert delivery.inputs["deliveryDestinationArn"] == destination.state["arn"]
    assert {r.inputs["region"] for r in (group, source, destination, delivery)} == {"us-east-1"}
    assert re.fullmatch(r"[\w-]{1,60}", source.inputs["name"]), "CloudWatch Logs delivery name rules"


def test_access_logs_can_be_turned_off(run):
    monitor = run(cdn(StaticCdnArgs(access_log_retention_days=None)))
    assert not monitor.all("aws:cloudwatch/logDeliverySource:LogDeliverySource")
    assert not monitor.all("aws:cloudwatch/logGroup:LogGroup")
