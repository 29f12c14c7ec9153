"""The static files' bucket and distribution, as components/static_cdn.py builds them: a private,
encrypted, versioned bucket with ACLs off, whose policy denies plain HTTP and admits only this
distribution (OAC-signed), served over HTTPS only with a modern TLS policy."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cli.verify.model import Check, Outcome, failed, passed, skipped

if TYPE_CHECKING:
    from cli.verify.outputs import StackOutputs
    from cli.verify.run import Context

# components/static_cdn.py TLS_POLICY, and the newer CloudFront policies that are at least as strict.
MODERN_TLS = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
HTTPS_VIEWER_POLICIES = ("redirect-to-https", "https-only")
# What a distribution needs from the bucket; anything more (writes, deletes) is refused.
CLOUDFRONT_READ_ACTIONS = {"s3:getobject", "s3:listbucket"}
CLOUDFRONT_SERVICE = "cloudfront.amazonaws.com"


def drift_fix(stack: str) -> str:
    return (f"`pulumi up --refresh -s {stack}` puts back what the kit declares "
            "(someone changed it outside Pulumi)")


# --- S3 -------------------------------------------------------------------------------

def public_access_block_outcome(config: Mapping[str, Any] | None, stack: str) -> Outcome:
    if config is None:
        return failed("no public access block on the bucket: a policy or ACL could make it public",
                      drift_fix(stack))
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if config.get(flag) is not True]
    if off:
        return failed(f"public access block off for {', '.join(off)}", drift_fix(stack))
    return passed("all four public access blocks on")


def encryption_outcome(config: Mapping[str, Any] | None, stack: str) -> Outcome:
    rules = (config or {}).get("Rules") or []
    algorithms = [((r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")) for r in rules]
    algorithms = [a for a in algorithms if a]
    if not algorithms:
        return failed("no default encryption configured on the bucket", drift_fix(stack))
    return passed(f"default encryption {', '.join(algorithms)}")


def versioning_outcome(answer: Mapping[str, Any], stack: str) -> Outcome:
    status = answer.get("Status")
    if status != "Enabled":
        return failed(f"versioning is {status or 'never enabled'}: a bad collectstatic cannot be rolled back",
                      drift_fix(stack))
    return passed("versioning enabled")


def ownership_outcome(config: Mapping[str, Any] | None, stack: str) -> Outcome:
    rules = (config or {}).get("Rules") or []
    owners = [r.get("ObjectOwnership") for r in rules]
    if owners != ["BucketOwnerEnforced"]:
        return failed(f"object ownership is {', '.join(map(str, owners)) or 'not set'}: ACLs still apply, "
                      "so an object could be made public by ACL", drift_fix(stack))
    return passed("ACLs disabled (BucketOwnerEnforced)")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _statements(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]


def _lower_keys(mapping: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in (mapping or {}).items()} if isinstance(mapping, dict) else {}


def _anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))


def _resource_covers(patterns: list[Any], bucket: str, key: str | None) -> bool:
    """A statement's Resource matches the bucket (key None) or an object in it, any partition."""
    target = bucket if key is None else f"{bucket}/{key}"
    for pattern in patterns:
        text = str(pattern)
        if text == "*":
            return True
        match = re.match(r"^arn:[^:]+:s3:::(.*)$", text)
        if match and fnmatch.fnmatchcase(target, match.group(1)):
            return True
    return False


def _denies_plain_http(statement: Mapping[str, Any], bucket: str) -> bool:
    if statement.get("Effect") != "Deny" or not _anyone(statement.get("Principal")):
        return False
    actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
    if not actions & {"*", "s3:*"}:
        return False
    resources = _as_list(statement.get("Resource"))
    if not (_resource_covers(resources, bucket, None) and _resource_covers(resources, bucket, "any-object")):
        return False
    secure = _lower_keys(_lower_keys(statement.get("Condition")).get("bool")).get("aws:securetransport")
    return [str(v).lower() for v in _as_list(secure)] == ["false"]


def parse_policy(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def policy_tls_outcome(policy: Mapping[str, Any] | None, bucket: str, stack: str) -> Outcome:
    if policy is None:
        return failed("the bucket has no policy: nothing denies plain-HTTP requests", drift_fix(stack))
    if any(_denies_plain_http(s, bucket) for s in _statements(policy)):
        return passed("the policy denies every request without TLS (aws:SecureTransport false)")
    return failed("no statement denies s3:* to everyone on the bucket and its objects when "
                  "aws:SecureTransport is false: plain-HTTP requests are not refused", drift_fix(stack))


def _source_arns(condition: Any) -> list[str]:
    arns: list[str] = []
    for operator, pairs in _lower_keys(condition).items():
        if operator in ("stringequals", "arnequals", "stringlike", "arnlike"):
            arns += [str(v) for v in _as_list(_lower_keys(pairs).get("aws:sourcearn"))]
    return arns


def policy_distribution_outcome(policy: Mapping[str, Any] | None, bucket: str, distribution_arn: str,
                                stack: str) -> Outcome:
    if policy is None:
        return failed("the bucket has no policy: CloudFront (OAC) cannot read it", drift_fix(stack))
    problems: list[str] = []
    admits_distribution = False
    for statement in _statements(policy):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid") or "(no Sid)"
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) and set(principal) == {
            "Service"} else None
        if services != [CLOUDFRONT_SERVICE]:
            problems.append(f"statement {sid} admits {json.dumps(principal, sort_keys=True)}")
            continue
        arns = _source_arns(statement.get("Condition"))
        if not arns:
            problems.append(f"statement {sid} admits CloudFront without pinning AWS:SourceArn: any "
                            "distribution, in any account, could read the bucket")
            continue
        if set(arns) != {distribution_arn}:
            problems.append(f"statement {sid} admits distribution(s) {', '.join(sorted(set(arns)))}, "
                            f"not (only) {distribution_arn}")
            continue
        extra = sorted({str(a) for a in _as_list(statement.get("Action"))
                        if str(a).lower() not in CLOUDFRONT_READ_ACTIONS})
        if extra:
            problems.append(f"statement {sid} lets the distribution do more than read: {', '.join(extra)}")
            continue
        admits_distribution = True
    if problems:
        return failed("; ".join(problems), drift_fix(stack))
    if not admits_distribution:
        return failed(f"no statement lets {distribution_arn} read the bucket: CloudFront answers 403",
                      drift_fix(stack))
    return passed(f"only {distribution_arn} may read (s3:GetObject, OAC-signed)")


def _bucket(ctx: "Context") -> str:
    return ctx.outputs.text("static_bucket_name")


def _s3(ctx: "Context", operation: str, absent: tuple[str, ...] = ()) -> dict[str, Any] | None:
    bucket = _bucket(ctx)
    return ctx.aws.call("s3", operation, subject=f"bucket {bucket}", absent=absent, Bucket=bucket)


def _policy(ctx: "Context") -> dict[str, Any] | None:
    answer = _s3(ctx, "get_bucket_policy", absent=("NoSuchBucketPolicy",))
    return None if answer is None else parse_policy(answer.get("Policy"))


def _check_public_access(ctx: "Context") -> Outcome:
    answer = _s3(ctx, "get_public_access_block", absent=("NoSuchPublicAccessBlockConfiguration",))
    return public_access_block_outcome((answer or {}).get("PublicAccessBlockConfiguration"), ctx.outputs.stack)


def _check_encryption(ctx: "Context") -> Outcome:
    answer = _s3(ctx, "get_bucket_encryption", absent=("ServerSideEncryptionConfigurationNotFoundError",))
    return encryption_outcome((answer or {}).get("ServerSideEncryptionConfiguration"), ctx.outputs.stack)


def _check_versioning(ctx: "Context") -> Outcome:
    return versioning_outcome(_s3(ctx, "get_bucket_versioning") or {}, ctx.outputs.stack)


def _check_ownership(ctx: "Context") -> Outcome:
    answer = _s3(ctx, "get_bucket_ownership_controls", absent=("OwnershipControlsNotFoundError",))
    return ownership_outcome((answer or {}).get("OwnershipControls"), ctx.outputs.stack)


def _check_policy_tls(ctx: "Context") -> Outcome:
    return policy_tls_outcome(_policy(ctx), _bucket(ctx), ctx.outputs.stack)


def _check_policy_distribution(ctx: "Context") -> Outcome:
    policy = _policy(ctx)
    distribution_arn = distribution(ctx)["ARN"]
    return policy_distribution_outcome(policy, _bucket(ctx), distribution_arn, ctx.outputs.stack)


# --- CloudFront ----------------------------------------------------------------------------

def distribution(ctx: "Context") -> dict[str, Any]:
    """The distribution as GetDistribution returns it (`ARN`, `DistributionConfig`, ...)."""
    dist_id = ctx.outputs.text("static_distribution_id")
    answer = ctx.aws.call("cloudfront", "get_distribution", subject=f"distribution {dist_id}",
                          region="us-east-1", Id=dist_id)
    return (answer or {}).get("Distribution") or {}


def bucket_origins(config: Mapping[str, Any], bucket: str) -> list[dict[str, Any]]:
    """Origins reading the bucket: `<bucket>.s3.amazonaws.com` or `<bucket>.s3.<region>.amazonaws.com`."""
    items = ((config.get("Origins") or {}).get("Items")) or []
    return [o for o in items if str(o.get("DomainName", "")).startswith(f"{bucket}.s3.")]


def oac_outcome(config: Mapping[str, Any], bucket: str, get_control: Callable[[str], Mapping[str, Any]],
                stack: str) -> Outcome:
    """Every origin reading the bucket signs with an OAC that always signs (SigV4).
    `get_control(id)` returns GetOriginAccessControl's OriginAccessControlConfig."""
    origins = bucket_origins(config, bucket)
    if not origins:
        names = [str(o.get("DomainName")) for o in ((config.get("Origins") or {}).get("Items") or [])]
        return failed(f"no origin of the distribution reads bucket {bucket} (origins: {', '.join(names) or 'none'})",
                      "the outputs name a bucket and a distribution that are not paired: check the stack's "
                      "static_bucket_name and static_distribution_id")
    problems: list[str] = []
    unreported: list[str] = []
    for origin in origins:
        oid = origin.get("Id", "?")
        oai = ((origin.get("S3OriginConfig") or {}).get("OriginAccessIdentity")) or ""
        if oai:
            problems.append(f"origin {oid} uses the legacy origin access identity {oai}, not OAC")
            continue
        if "OriginAccessControlId" not in origin:
            unreported.append(oid)
            continue
        control_id = origin.get("OriginAccessControlId") or ""
        if not control_id:
            problems.append(f"origin {oid} reads the bucket unsigned (no Origin Access Control)")
            continue
        control = get_control(control_id)
        signing = (control.get("SigningBehavior"), control.get("SigningProtocol"))
        if signing != ("always", "sigv4"):
            problems.append(f"origin {oid}: OAC {control_id} signs {signing[0]!r} with {signing[1]!r}, "
                            "not 'always' with 'sigv4'")
    if problems:
        return failed("; ".join(problems), drift_fix(stack))
    if unreported:
        return skipped(f"origin(s) {', '.join(unreported)}: the API answer has no OriginAccessControlId field, "
                       "so the OAC could not be read (an endpoint that does not report it?)")
    return passed("every origin on the bucket signs its requests with OAC (always, SigV4)")


def viewer_protocol_outcome(config: Mapping[str, Any], stack: str) -> Outcome:
    behaviours = [("default", config.get("DefaultCacheBehavior") or {})]
    behaviours += [(str(b.get("PathPattern")), b) for b in ((config.get("CacheBehaviors") or {}).get("Items") or [])]
    plain = [f"{name} ({b.get('ViewerProtocolPolicy')})" for name, b in behaviours
             if b.get("ViewerProtocolPolicy") not in HTTPS_VIEWER_POLICIES]
    if plain:
        return failed(f"plain HTTP is served by cache behaviour(s) {', '.join(plain)}", drift_fix(stack))
    return passed("every cache behaviour redirects HTTP to HTTPS (or refuses it)")


def tls_policy_outcome(config: Mapping[str, Any], environment: str, stack: str) -> Outcome:
    cert = config.get("ViewerCertificate") or {}
    custom = cert.get("ACMCertificateArn") or cert.get("IAMCertificateId")
    if custom:
        version = cert.get("MinimumProtocolVersion")
        if version in MODERN_TLS:
            return passed(f"custom certificate, minimum protocol {version}")
        return failed(f"custom certificate, but viewers may connect with {version}",
                      f"the kit sets {MODERN_TLS[0]}: {drift_fix(stack)}")
    finding = "the *.cloudfront.net certificate: CloudFront accepts TLSv1 and TLSv1.1 with it"
    fix = ("give the static files a domain: webstack:django.static.domain_name with hosted_zone_id "
           f"(or certificate_arn), then the kit requires {MODERN_TLS[0]}")
    if environment == "prod":
        return failed(finding, fix)
    return skipped(f"{finding}; required in prod only", fix)


def _distribution_config(ctx: "Context") -> dict[str, Any]:
    return distribution(ctx).get("DistributionConfig") or {}


def _check_oac(ctx: "Context") -> Outcome:
    def control(control_id: str) -> Mapping[str, Any]:
        answer = ctx.aws.call("cloudfront", "get_origin_access_control", subject=f"origin access control {control_id}",
                              region="us-east-1", Id=control_id)
        return ((answer or {}).get("OriginAccessControl") or {}).get("OriginAccessControlConfig") or {}

    return oac_outcome(_distribution_config(ctx), _bucket(ctx), control, ctx.outputs.stack)


def _check_viewer_protocol(ctx: "Context") -> Outcome:
    return viewer_protocol_outcome(_distribution_config(ctx), ctx.outputs.stack)


def _check_tls_policy(ctx: "Context") -> Outcome:
    return tls_policy_outcome(_distribution_config(ctx), ctx.outputs.environment, ctx.outputs.stack)


def static_cdn_expected(outputs: "StackOutputs") -> str | None:
    if outputs.text("framework") == "fastapi" and "static_url" not in outputs:
        return "fastapi stacks have no static files bucket or CDN"
    return None


BUCKET = ("static_bucket_name",)
DISTRIBUTION = ("static_distribution_id",)
CHECKS = [
    Check("s3.public-access-block", "all four S3 public access blocks are on",
          BUCKET, _check_public_access, applies=static_cdn_expected),
    Check("s3.encryption", "default encryption is configured", BUCKET, _check_encryption, applies=static_cdn_expected),
    Check("s3.versioning", "versioning is enabled", BUCKET, _check_versioning, applies=static_cdn_expected),
    Check("s3.acls-disabled", "object ownership BucketOwnerEnforced (ACLs off)", BUCKET, _check_ownership,
          applies=static_cdn_expected),
    Check("s3.policy-tls-only", "the bucket policy denies any request without TLS", BUCKET, _check_policy_tls,
          applies=static_cdn_expected),
    Check("s3.policy-distribution-only", "the bucket policy admits only this distribution, read-only",
          BUCKET + DISTRIBUTION, _check_policy_distribution, applies=static_cdn_expected),
    Check("cloudfront.oac", "the bucket origin signs with Origin Access Control (always, SigV4)",
          DISTRIBUTION + BUCKET, _check_oac, applies=static_cdn_expected),
    Check("cloudfront.https-only", "every cache behaviour redirects HTTP to HTTPS", DISTRIBUTION,
          _check_viewer_protocol, applies=static_cdn_expected),
    Check("cloudfront.tls-policy", f"viewers need {MODERN_TLS[0]} or newer (custom certificate)", DISTRIBUTION,
          _check_tls_policy, applies=static_cdn_expected),
]
