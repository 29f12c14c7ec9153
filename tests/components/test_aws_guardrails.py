"""Properties that must hold across every AWS component, for the dev and prod profiles:
no IAM write on Resource '*', names within AWS limits even for a 40-character stack name,
prod stateful resources protected, nothing public that should be private, default tags,
and renames or moves that keep the database and the bucket."""

import json
import re

import pulumi
import pytest

from components.aws_provider import AwsProviderArgs, tagged_provider
from components.cluster import Cluster, CreateClusterArgs
from components.database import Database, DatabaseArgs
from components.naming import wildcard_write_problems
from components.network import Network, NewVpcArgs
from components.pod_identity import (PodIdentity, PodIdentityArgs, secret_read_statements,
                                     static_upload_statements)
from components.static_cdn import StaticCdn, StaticCdnArgs
from components.waf import WafArgs, WafRules, WebAcl

LONG_STACK = "acme-payments-platform-eu-central-staging"
assert len(LONG_STACK) >= 40

PROFILES = {
    "prod": dict(network=NewVpcArgs(), database=DatabaseArgs(), static=StaticCdnArgs()),
    "dev": dict(network=NewVpcArgs(az_count=2, nat_gateways="single"),
                database=DatabaseArgs(instance_class="db.t4g.small", multi_az=False, backup_retention_days=1,
                                      deletion_protection=False, final_snapshot=False, protect=False),
                static=StaticCdnArgs(protect=False)),
}


def aws_program(profile: str, *, environment: str | None = None):
    """Every AWS component wired the way the aws target composes them."""
    p = PROFILES[profile]

    def program():
        provider = tagged_provider("aws", AwsProviderArgs(), environment=environment or profile)
        opts = pulumi.ResourceOptions(providers={"aws": provider})
        net = Network("web", p["network"], opts=opts)
        cluster = Cluster("web", CreateClusterArgs(admin_principal_arns=["arn:aws:iam::123456789012:role/admin"],
                                                   endpoint_public_access_cidrs=["203.0.113.0/24"]),
                          subnet_ids=net.private_subnet_ids, opts=opts)
        db = Database("web", p["database"], vpc_id=net.vpc_id, subnet_ids=net.private_subnet_ids,
                      client_security_group_id=cluster.cluster_security_group_id, opts=opts)
        cdn = StaticCdn("web-static", p["static"].model_copy(update={
            "domain_name": "static.example.com", "hosted_zone_id": "Z0123456789ABC", "waf": WafRules()}), opts=opts)
        PodIdentity("web-collectstatic", PodIdentityArgs(namespace="web", service_account="collectstatic"),
                    cluster_name=cluster.cluster_name, statements=static_upload_statements(cdn.bucket_arn), opts=opts)
        PodIdentity("web-app", PodIdentityArgs(namespace="web", service_account="web"),
                    cluster_name=cluster.cluster_name, statements=secret_read_statements(db.secret_arn), opts=opts)
        WebAcl("web-admin", WafArgs(admin_allowed_cidrs=["198.51.100.0/24"]), scope="REGIONAL", opts=opts)

    return program


POLICY_FIELDS = {
    "aws:iam/role:Role": ["assumeRolePolicy"],
    "aws:iam/rolePolicy:RolePolicy": ["policy"],
    "aws:iam/policy:Policy": ["policy"],
    "aws:s3/bucketPolicy:BucketPolicy": ["policy"],
    "aws:kms/key:Key": ["policy"],
}


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_no_iam_policy_allows_a_write_action_on_every_resource(run, profile):
    monitor = run(aws_program(profile), stack=profile)

    documents = [(r.name, json.loads(r.plain_inputs[f])) for r in monitor.all()
                 for f in POLICY_FIELDS.get(r.type, []) if r.plain_inputs.get(f)]
    assert len(documents) >= 7  # cluster/node/2 pod roles, 2 inline policies, bucket policy
    assert {name: wildcard_write_problems(doc) for name, doc in documents if wildcard_write_problems(doc)} == {}


# (type, input) -> max length. `*Prefix` inputs get a 26-character suffix from AWS.
LIMITS = {
    ("aws:rds/instance:Instance", "identifier"): 63,
    ("aws:rds/instance:Instance", "finalSnapshotIdentifier"): 255,
    ("aws:s3/bucket:Bucket", "bucket"): 63,
    ("aws:iam/role:Role", "name"): 64,
    ("aws:ec2/securityGroup:SecurityGroup", "name"): 255,
    ("aws:eks/cluster:Cluster", "name"): 100,
    ("aws:cloudfront/originAccessControl:OriginAccessControl", "name"): 64,
    ("aws:cloudfront/cachePolicy:CachePolicy", "name"): 128,
    ("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy", "name"): 128,
    ("aws:wafv2/webAcl:WebAcl", "name"): 128,
    ("aws:wafv2/ipSet:IpSet", "name"): 128,
    ("aws:cloudwatch/logGroup:LogGroup", "name"): 512,
    ("aws:cloudwatch/logDeliverySource:LogDeliverySource", "name"): 60,
    ("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination", "name"): 60,
}


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_derived_names_fit_aws_limits_with_a_40_character_stack_name(run, profile):
    monitor = run(aws_program(profile), stack=LONG_STACK)

    checked, too_long = 0, []
    for reg in monitor.all():
        for (typ, field), limit in LIMITS.items():
            if reg.type != typ:
                continue
            value = reg.inputs.get(field) or reg.state.get(field)
            prefix = reg.inputs.get(f"{field}Prefix")
            if prefix:
                value = prefix + "x" * 26
            if value:
                checked += 1
                if len(value) > limit:
                    too_long.append(f"{reg.name}.{field}={value!r} ({len(value)} > {limit})")
    assert checked >= 12
    assert too_long == []


def test_bucket_and_database_names_are_valid_for_their_service(run):
    monitor = run(aws_program("prod"), stack=LONG_STACK)

    bucket = monitor.one("aws:s3/bucket:Bucket").state["bucket"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", bucket) and LONG_STACK[:10] in bucket
    identifier = monitor.one("aws:rds/instance:Instance").state["identifier"]
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,62}", identifier) and "--" not in identifier


def test_prod_stateful_resources_are_protected_and_dev_ones_are_not(run):
    prod = run(aws_program("prod"), stack="prod")
    dev = run(aws_program("dev"), stack="dev")

    for typ in ("aws:rds/instance:Instance", "aws:s3/bucket:Bucket"):
        assert prod.one(typ).protect is True, typ
        assert dev.one(typ).protect is False, typ


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_nothing_private_is_reachable_from_the_internet(run, profile):
    monitor = run(aws_program(profile), stack=profile)

    assert monitor.one("aws:rds/instance:Instance").inputs["publiclyAccessible"] is False
    rules = monitor.all("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rules, "the database admits the pods through a rule"
    for rule in rules:
        assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0" and "referencedSecurityGroupId" in rule.inputs
    block = monitor.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] for k in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets"))
    assert "0.0.0.0/0" not in monitor.one("aws:eks/cluster:Cluster").inputs["vpcConfig"].get("publicAccessCidrs", [])
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in monitor.all("aws:ec2/subnet:Subnet"))


def test_default_tags_name_project_stack_environment_and_tool(run):
    monitor = run(aws_program("prod", environment="prod"), stack="prod")

    provider = monitor.one("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"] if isinstance(provider.inputs["defaultTags"], str) \
        else provider.inputs["defaultTags"]["tags"]
    assert tags == {"project": "webstack", "stack": "prod", "environment": "prod", "managed-by": "pulumi"}


# Renames and moves -----------------------------------------------------------

def _alias_urn(spec: str, child_type: str) -> str:
    """The URN the engine resolves an alias spec `alias(name=..., parent=<urn>)` to."""
    name = re.search(r"name=([^,)]+)", spec).group(1)
    parent = re.search(r"parent=([^,)]+)", spec).group(1)
    stack, project, parent_types, _ = parent.split("::")  # urn:pulumi:<stack>::<project>::<types>::<name>
    return f"{stack}::{project}::{parent_types}${child_type}::{name}"


def _database(name, opts=None):
    return Database(name, DatabaseArgs(), vpc_id="vpc-0abc12345", subnet_ids=["subnet-0bbb11111", "subnet-0bbb22222"],
                    client_security_group_id="sg-0pods1234567890ab", opts=opts)


STATEFUL = [
    ("aws:rds/instance:Instance", _database),
    ("aws:s3/bucket:Bucket", lambda name, opts=None: StaticCdn(name, StaticCdnArgs(), opts=opts)),
]


@pytest.mark.parametrize("typ,make", STATEFUL, ids=["database", "bucket"])
def test_renaming_the_component_keeps_the_stateful_resource(run, typ, make):
    before = run(lambda: make("orders"), stack="prod").one(typ)
    after = run(lambda: make("billing", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="orders")])),
                stack="prod").one(typ)

    assert after.urn != before.urn
    assert before.urn in [_alias_urn(a, typ) for a in after.aliases if a.startswith("alias(name=")]
    assert after.inputs.get("identifierPrefix", after.inputs.get("bucketPrefix")) == \
        before.inputs.get("identifierPrefix", before.inputs.get("bucketPrefix"))


class _Platform(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("webstack:test:Platform", name, None, None)


@pytest.mark.parametrize("typ,make", STATEFUL, ids=["database", "bucket"])
def test_moving_the_component_under_a_new_parent_keeps_the_stateful_resource(run, typ, make):
    before = run(lambda: make("orders"), stack="prod").one(typ)

    def moved():
        platform = _Platform("platform")
        make("orders", pulumi.ResourceOptions(parent=platform, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]))

    monitor = run(moved, stack="prod")
    after = monitor.one(typ)

    component = monitor.by_urn(after.parent)
    assert monitor.by_urn(component.parent).type == "webstack:test:Platform"
    assert before.urn in [_alias_urn(a, typ) for a in after.aliases if a.startswith("alias(name=")]
