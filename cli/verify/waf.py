"""Web ACLs as components/waf.py builds them: AWS managed rule groups that block (not count), a
per-IP rate limit that blocks, and on the app's ALB a rule that blocks the admin path for
sources outside the allowlist IP set."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cli.verify.model import Check, Outcome, Problem, failed, passed, skipped
from cli.verify.storage import distribution, drift_fix, static_cdn_expected

if TYPE_CHECKING:
    from cli.verify.outputs import StackOutputs
    from cli.verify.run import Context

WAF_ARN = re.compile(r"^arn:[^:]+:wafv2:(?P<region>[^:]+):\d+:(?P<scope>global|regional)/webacl/"
                     r"(?P<name>[^/]+)/(?P<id>[^/]+)$")


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every dict inside a rule statement, depth first."""
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _text(value: Any) -> str:
    """SearchString is a blob: bytes from boto3, text (or base64) in a recorded JSON answer."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def blocks_admin_path(rule: Mapping[str, Any], admin_path: str) -> bool:
    """A blocking rule that matches the admin path and refers to an IP set (the allowlist)."""
    if "Block" not in (rule.get("Action") or {}):
        return False
    nodes = list(_walk(rule.get("Statement") or {}))
    matches = [n["ByteMatchStatement"] for n in nodes if "ByteMatchStatement" in n]
    wanted = admin_path.lower()
    path_match = any(str(m.get("PositionalConstraint")) in ("STARTS_WITH", "EXACTLY", "CONTAINS")
                     and wanted in (_text(m.get("SearchString")).lower(),
                                    _maybe_base64(_text(m.get("SearchString"))).lower())
                     for m in matches)
    return path_match and any("IPSetReferenceStatement" in n for n in nodes)


def _maybe_base64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return text


def web_acl_outcome(acl: Mapping[str, Any], *, admin_path: str | None = None) -> Outcome:
    """Managed rule groups that block, a blocking rate limit, and (with `admin_path`) the admin rule."""
    rules = acl.get("Rules") or []
    managed = [r for r in rules if "ManagedRuleGroupStatement" in (r.get("Statement") or {})]
    counting = [r.get("Name", "?") for r in managed if "Count" in (r.get("OverrideAction") or {})]
    blocking = [r.get("Name", "?") for r in managed if "Count" not in (r.get("OverrideAction") or {})]
    rate = [r for r in rules
            if "RateBasedStatement" in (r.get("Statement") or {}) and "Block" in (r.get("Action") or {})]
    problems = []
    if not blocking:
        only_count = f" ({', '.join(counting)} only count)" if counting else ""
        problems.append(f"no AWS managed rule group blocks{only_count}")
    elif counting:
        problems.append(f"managed rule group(s) {', '.join(counting)} only count, never block")
    if not rate:
        problems.append("no rate-based rule blocks floods from one IP")
    if admin_path and not any(blocks_admin_path(r, admin_path) for r in rules):
        problems.append(f"no rule blocks {admin_path} for sources outside an IP set (the admin allowlist)")
    name = acl.get("Name") or acl.get("ARN") or "the web ACL"
    if problems:
        return failed(f"{name}: " + "; ".join(problems),
                      "redeploy the kit's WebAcl (components/waf.py): `pulumi up --refresh`")
    summary = f"{name}: managed rules {', '.join(blocking)}, rate limit"
    return passed(summary + (f", {admin_path} allowlist" if admin_path else ""))


def _get_acl(ctx: "Context", arn: str) -> Mapping[str, Any]:
    match = WAF_ARN.match(arn)
    if not match:
        raise Problem(f"web ACL {arn} is not a WAFv2 ARN (WAF Classic, retired on 2025-09-30?)",
                      "attach the kit's WAFv2 web ACL: `pulumi up --refresh`")
    scope = "CLOUDFRONT" if match["scope"] == "global" else "REGIONAL"
    answer = ctx.aws.call("wafv2", "get_web_acl", subject=f"web ACL {match['name']}", region=match["region"],
                          Name=match["name"], Scope=scope, Id=match["id"])
    return (answer or {}).get("WebACL") or {}


def _missing_acl(where: str, environment: str, fix: str) -> Outcome:
    finding = f"no web ACL on {where}"
    if environment == "prod":
        return failed(finding, fix)
    return skipped(f"{finding}; required in prod only", fix)


def _check_cloudfront_waf(ctx: "Context") -> Outcome:
    acl_id = (distribution(ctx).get("DistributionConfig") or {}).get("WebACLId") or ""
    if not acl_id:
        return _missing_acl("the distribution", ctx.outputs.environment,
                            "set webstack:django.static.waf (managed rules and a rate limit), then `pulumi up`")
    return web_acl_outcome(_get_acl(ctx, acl_id))


def find_load_balancer(ctx: "Context", hostname: str) -> Mapping[str, Any]:
    """The load balancer whose DNS name is `hostname` (the Ingress status hostname)."""
    wanted = hostname.lower().rstrip(".").removeprefix("dualstack.")
    marker: str | None = None
    while True:
        params = {"Marker": marker} if marker else {}
        answer = ctx.aws.call("elbv2", "describe_load_balancers", subject="load balancers", **params) or {}
        for lb in answer.get("LoadBalancers") or []:
            if str(lb.get("DNSName", "")).lower().rstrip(".").removeprefix("dualstack.") == wanted:
                return lb
        marker = answer.get("NextMarker")
        if not marker:
            break
    raise Problem(f"no load balancer named {hostname} in region {ctx.aws.region}",
                  "the ALB is gone or elsewhere: check the region (aws_region output) and that the Ingress "
                  "still has its address (`kubectl get ingress -n <namespace>`)")


def _check_alb_waf(ctx: "Context") -> Outcome:
    hostname = ctx.outputs.text("alb_hostname")
    lb = find_load_balancer(ctx, hostname)
    answer = ctx.aws.call("wafv2", "get_web_acl_for_resource", subject=f"load balancer {lb.get('LoadBalancerName')}",
                          ResourceArn=lb["LoadBalancerArn"]) or {}
    acl = answer.get("WebACL")
    expected = ctx.outputs.text("app_waf_acl_arn")
    if not acl:
        fix = ("set the app's WAF in the stack config (managed rules, rate limit, admin allowlist), then "
               "`pulumi up`; the ingress annotation alb.ingress.kubernetes.io/wafv2-acl-arn attaches it")
        if expected:
            return failed(f"no web ACL on the ALB, but the stack created {expected}", drift_fix(ctx.outputs.stack))
        return _missing_acl("the ALB", ctx.outputs.environment, fix)
    if expected and acl.get("ARN") != expected:
        return failed(f"the ALB has web ACL {acl.get('ARN')}, not the stack's {expected}",
                      drift_fix(ctx.outputs.stack))
    return web_acl_outcome(acl, admin_path=ctx.outputs.text("admin_path") or None)


def alb_expected(outputs: "StackOutputs") -> str | None:
    if outputs.text("url").startswith("http://") and ".svc.cluster.local" in outputs.text("url"):
        return "the service has no ingress (cluster-internal URL), so no ALB"
    return None


CLOUDFRONT_WAF = Check("cloudfront.waf",
                       "a WAF web ACL with blocking managed rules and a rate limit guards the distribution",
                       ("static_distribution_id",), _check_cloudfront_waf, applies=static_cdn_expected)
ALB_WAF = Check("alb.waf", "the app's ALB has the stack's web ACL: managed rules, rate limit, admin allowlist",
                ("alb_hostname",), _check_alb_waf, applies=alb_expected)
