"""WAF web ACL: AWS managed rule groups, a per-IP rate limit, and an admin path open only to an IP set.

Scope CLOUDFRONT (for a distribution; WAF requires it in us-east-1) or REGIONAL (for an ALB,
e.g. through the ingress annotation `alb.ingress.kubernetes.io/wafv2-acl-arn`).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field

from components.naming import WAF_NAME_MAX, LogRetentionDays, physical_name
from components.types import allowlist_cidr

TYPE = "webstack:components:WebAcl"

# Common: OWASP-style generic protections. KnownBadInputs: Log4Shell-style payloads.
# IpReputation: Amazon threat-intelligence lists of bots and scanners.
DEFAULT_MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                               "AWSManagedRulesAmazonIpReputationList")
# WAF logs full request headers: these carry credentials and sessions, so they are redacted.
REDACTED_HEADERS = ("authorization", "cookie")
# WAF writes only to CloudWatch log groups whose name starts with this.
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"


class WafRules(BaseModel):
    """What every web ACL of the kit holds: managed rule groups, a per-IP rate limit, logs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    managed_rule_groups: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MANAGED_RULE_GROUPS),
        description="AWS managed rule group names (vendor AWS), evaluated in this order.")
    rate_limit_per_5min: int = Field(2000, ge=10, le=2_000_000_000,
                                     description="Requests per client IP per 5-minute window before blocking.")
    log_retention_days: LogRetentionDays | None = Field(
        90, description="Days the requests WAF blocked or counted stay in CloudWatch Logs (Authorization and "
        "Cookie headers redacted); null: no WAF logs.")


class WafArgs(WafRules):
    """The rules above, and an admin path open only to an IP set."""

    admin_path: str = Field("/admin/", pattern=r"^/[a-z0-9_./-]*$", description="URI path prefix of the admin site, lowercase (matched case-insensitively).")
    # WAF IP sets reject IPv4 prefixes shorter than /8:
    # "WAFInvalidParameterException: ... CIDR ... prefix length".
    admin_allowed_cidrs: list[allowlist_cidr(8)] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="IPv4 CIDRs allowed on admin_path (office, VPN). Empty: the admin path is blocked for everyone.")


def _visibility(metric: str) -> dict:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


class WebAcl(pulumi.ComponentResource):
    """Web ACL blocking known-bad traffic and floods (rate limit); with `WafArgs`, also admin access
    from outside an IP set."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: WafRules, *, scope: Literal["CLOUDFRONT", "REGIONAL"],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # CloudFront-scoped WAF resources only exist in us-east-1, whatever the provider's region.
        region = {"region": "us-east-1"} if scope == "CLOUDFRONT" else {}
        acl_name = physical_name(pulumi.get_project(), pulumi.get_stack(), name, max_length=WAF_NAME_MAX)

        rules: list[dict] = []
        for priority, group in enumerate(args.managed_rule_groups):
            rules.append({"name": group, "priority": priority, "override_action": {"none": {}},
                          "statement": {"managed_rule_group_statement": {"name": group, "vendor_name": "AWS"}},
                          "visibility_config": _visibility(group)})
        rules.append({
            "name": "rate-limit", "priority": len(rules), "action": {"block": {}},
            "statement": {"rate_based_statement": {"limit": args.rate_limit_per_5min, "aggregate_key_type": "IP"}},
            "visibility_config": _visibility("rate-limit")})
        if isinstance(args, WafArgs):
            admins = aws.wafv2.IpSet(
                f"{name}-admins", name=physical_name(acl_name, "admins", max_length=WAF_NAME_MAX),
                scope=scope, ip_address_version="IPV4",
                addresses=[str(ipaddress.IPv4Network(c)) for c in args.admin_allowed_cidrs],
                description="Sources allowed on the admin path", opts=child, **region)
            rules.append({
                "name": "admin-allowlist", "priority": len(rules), "action": {"block": {}},
                "statement": {"and_statement": {"statements": [
                    {"byte_match_statement": {
                        "field_to_match": {"uri_path": {}}, "positional_constraint": "STARTS_WITH",
                        "search_string": args.admin_path,
                        # Lowercase first, so /ADMIN/ does not slip past the match.
                        "text_transformations": [{"priority": 0, "type": "LOWERCASE"}]}},
                    {"not_statement": {"statement": {"ip_set_reference_statement": {"arn": admins.arn}}}},
                ]}},
                "visibility_config": _visibility("admin-allowlist")})

        acl = aws.wafv2.WebAcl(f"{name}-acl", name=acl_name, scope=scope, default_action={"allow": {}},
                               description=f"{name}: managed rules, rate limit"
                               + (", admin allowlist" if isinstance(args, WafArgs) else ""),
                               rules=rules, visibility_config=_visibility(acl_name[:128]), opts=child, **region)
        if args.log_retention_days:
            # Only what WAF acted on: the evidence of an attack, without paying to log every request.
            group = aws.cloudwatch.LogGroup(f"{name}-logs", name=WAF_LOG_GROUP_PREFIX + acl_name,
                                            retention_in_days=args.log_retention_days, opts=child, **region)
            aws.wafv2.WebAclLoggingConfiguration(
                f"{name}-logging", resource_arn=acl.arn, log_destination_configs=[group.arn],
                redacted_fields=[{"single_header": {"name": h}} for h in REDACTED_HEADERS],
                logging_filter={"default_behavior": "DROP", "filters": [{
                    "behavior": "KEEP", "requirement": "MEETS_ANY",
                    "conditions": [{"action_condition": {"action": a}} for a in ("BLOCK", "COUNT")]}]},
                opts=child, **region)
        self.arn = acl.arn
        self.register_outputs({"arn": self.arn})
