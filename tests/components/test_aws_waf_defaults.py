"""WebAcl: managed rules, a per-IP rate limit, and an admin path closed to everyone outside the IP set."""

from components.waf import WafArgs, WebAcl

ACL = "aws:wafv2/webAcl:WebAcl"


def acl(args=None, scope="REGIONAL"):
    return lambda: WebAcl("admin", args or WafArgs(), scope=scope)


def test_aws_managed_rule_groups_run_first(run):
    rules = run(acl()).one(ACL).inputs["rules"]

    managed = [r["statement"]["managedRuleGroupStatement"]["name"] for r in rules if "managedRuleGroupStatement" in r["statement"]]
    assert managed[:2] == ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]
    assert all(r["overrideAction"] == {"none": {}} for r in rules if "managedRuleGroupStatement" in r["statement"])


def test_clients_above_the_rate_limit_are_blocked(run):
    rules = run(acl(WafArgs(rate_limit_per_5min=500))).one(ACL).inputs["rules"]

    rate = next(r for r in rules if r["name"] == "rate-limit")
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"] == {"limit": 500, "aggregateKeyType": "IP"}


def test_admin_path_is_blocked_unless_the_source_is_in_the_ip_set(run):
    monitor = run(acl(WafArgs(admin_allowed_cidrs=["203.0.113.0/24"])))

    ipset = monitor.one("aws:wafv2/ipSet:IpSet")
    assert ipset.inputs["addresses"] == ["203.0.113.0/24"]
    rule = next(r for r in monitor.one(ACL).inputs["rules"] if r["name"] == "admin-allowlist")
    assert rule["action"] == {"block": {}}
    path, not_in_set = rule["statement"]["andStatement"]["statements"]
    assert path["byteMatchStatement"]["searchString"] == "/admin/"
    assert path["byteMatchStatement"]["positionalConstraint"] == "STARTS_WITH"
    assert not_in_set["notStatement"]["statement"]["ipSetReferenceStatement"]["arn"] == ipset.state["arn"]


def test_with_no_allowed_cidrs_the_admin_path_is_closed_to_everyone(run):
    assert run(acl()).one("aws:wafv2/ipSet:IpSet").inputs["addresses"] == []


def test_rule_priorities_are_unique(run):
    rules = run(acl()).one(ACL).inputs["rules"]

    assert len({r["priority"] for r in rules}) == len(rules)


def test_cloudfront_scope_lives_in_us_east_1_and_regional_in_the_provider_region(run):
    assert run(acl(scope="CLOUDFRONT")).one(ACL).inputs["region"] == "us-east-1"
    assert "region" not in run(acl(scope="REGIONAL")).one(ACL).inputs


def test_blocked_and_counted_requests_are_logged_without_credentials_next_to_the_acl(run):
    monitor = run(acl(scope="CLOUDFRONT"), stack="prod")
    group = monitor.one("aws:cloudwatch/logGroup:LogGroup")
    logging = monitor.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")

    assert group.inputs["name"].startswith("aws-waf-logs-"), "WAF writes only to such log groups"
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["region"] == logging.inputs["region"] == "us-east-1", "in the ACL's region"
    assert logging.inputs["resourceArn"] == monitor.one(ACL).state["arn"]
    assert logging.inputs["logDestinationConfigs"] == [group.state["arn"]]
    assert {f["singleHeader"]["name"] for f in logging.inputs["redactedFields"]} == {"authorization", "cookie"}
    assert logging.inputs["loggingFilter"]["defaultBehavior"] == "DROP"
    [keep] = logging.inputs["loggingFilter"]["filters"]
    assert keep["behavior"] == "KEEP"
    assert {c["actionCondition"]["action"] for c in keep["conditions"]} == {"BLOCK", "COUNT"}


def test_waf_logs_can_be_turned_off(run):
    monitor = run(acl(WafArgs(log_retention_days=None)))
    assert not monitor.all("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert not monitor.all("aws:cloudwatch/logGroup:LogGroup")
