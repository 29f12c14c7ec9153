"""moto's server on loopback as the AWS API, and a `deploy` that creates what the kit creates
(by default compliant; each keyword changes one thing) and returns the stack outputs naming it.

The resources are created with real boto3 calls over HTTP, as verify then reads them; the
compliant bucket policy is the kit's own (components.static_cdn.bucket_policy).
"""

from __future__ import annotations

import itertools
import logging
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from components.static_cdn import bucket_policy
from components.waf import DEFAULT_MANAGED_RULE_GROUPS

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# The kit's default; on the tests' date (2026-11-30) it has standard support until 2027-03-27.
COMPLIANT_K8S = "1.35"
_serial = itertools.count(1)


def _vis(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


def kit_rules(ip_set_arn: str | None, *, counting: bool = False, rate_limit: bool = True) -> list[dict[str, Any]]:
    """components/waf.py's rules in the WAFv2 API's shape."""
    override = {"Count": {}} if counting else {"None": {}}
    rules: list[dict[str, Any]] = [
        {"Name": g, "Priority": i, "OverrideAction": override, "VisibilityConfig": _vis(g),
         "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": g}}}
        for i, g in enumerate(DEFAULT_MANAGED_RULE_GROUPS)]
    if rate_limit:
        rules.append({"Name": "rate-limit", "Priority": len(rules), "Action": {"Block": {}},
                      "VisibilityConfig": _vis("rate-limit"),
                      "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}}})
    if ip_set_arn:
        rules.append({"Name": "admin-allowlist", "Priority": len(rules), "Action": {"Block": {}},
                      "VisibilityConfig": _vis("admin-allowlist"),
                      "Statement": {"AndStatement": {"Statements": [
                          {"ByteMatchStatement": {
                              "FieldToMatch": {"UriPath": {}}, "PositionalConstraint": "STARTS_WITH",
                              "SearchString": b"/admin/",
                              "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}]}},
                          {"NotStatement": {"Statement": {"IPSetReferenceStatement": {"ARN": ip_set_arn}}}}]}}})
    return rules


@dataclass
class Emulator:
    """The running moto server and boto3 clients pointed at it (explicitly: the environment of
    the test process is only changed inside a test, for verify)."""

    server: ThreadedMotoServer
    url: str
    _subnets: list[str] = field(default_factory=list)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    @classmethod
    def start(cls) -> "Emulator":
        # Werkzeug logs every request at INFO; a failing test's output should show verify's, not those.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        return cls(server, f"http://{host}:{port}")

    def stop(self) -> None:
        self.server.stop()

    def client(self, service: str, region: str = REGION) -> Any:
        if (service, region) not in self._clients:
            self._clients[service, region] = boto3.client(service, region_name=region, endpoint_url=self.url, **KEYS)
        return self._clients[service, region]

    def enforce_iam(self, on: bool) -> None:
        """moto checks every request against IAM from now on (or stops checking)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=b"0" if on else b"inf",
                                         method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment verify runs with: boto3's standard chain, pointed at the emulator."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION, **extra}

    def subnets(self) -> list[str]:
        if not self._subnets:
            ec2 = self.client("ec2")
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            self._subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                               AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                             for i, az in ((1, "a"), (2, "b"))]
        return self._subnets

    # --- the kit's resources ------------------------------------------------------------

    def web_acl(self, name: str, scope: str, **rules: Any) -> dict[str, Any]:
        region = "us-east-1" if scope == "CLOUDFRONT" else REGION
        waf = self.client("wafv2", region)
        ip_set = None
        if scope == "REGIONAL":
            ip_set = waf.create_ip_set(Name=f"{name}-admins", Scope=scope, IPAddressVersion="IPV4",
                                       Addresses=["203.0.113.0/24"])["Summary"]["ARN"]
        return waf.create_web_acl(Name=name, Scope=scope, DefaultAction={"Allow": {}}, VisibilityConfig=_vis(name),
                                  Rules=kit_rules(ip_set, **rules))["Summary"]

    def deploy(self, *, app_url: str, static_url: str, environment: str = "prod",
               public_access: dict[str, bool] | None = None, encryption: bool = True,
               versioning: str | None = "Enabled", ownership: str = "BucketOwnerEnforced",
               policy: Any = bucket_policy, viewer_protocol: str = "redirect-to-https",
               min_tls: str = "TLSv1.2_2021", cloudfront_waf: dict[str, Any] | None = None,
               no_cloudfront_waf: bool = False, db: dict[str, Any] | None = None,
               eks: dict[str, Any] | None = None, alb_waf: dict[str, Any] | None = None,
               no_alb_waf: bool = False, exported_alb_acl: str | None = None) -> dict[str, Any]:
        """Creates a full set and returns its outputs. `policy(bucket_arn, distribution_arn)` gives
        the bucket policy JSON (None: no policy); `db` and `eks` override create-call parameters;
        `cloudfront_waf`/`alb_waf` are kit_rules() keywords."""
        n = next(_serial)
        s3, cf = self.client("s3"), self.client("cloudfront", "us-east-1")
        bucket = f"webstack-static-{n}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]})
        flags = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                 "RestrictPublicBuckets": True, **(public_access or {})}
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)
        if encryption:
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
        if versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})

        oac = cf.create_origin_access_control(OriginAccessControlConfig={
            "Name": f"webstack-{n}", "Description": "CloudFront signs every request to the bucket",
            "SigningProtocol": "sigv4", "SigningBehavior": "always", "OriginAccessControlOriginType": "s3"})
        acl_arn = "" if no_cloudfront_waf else \
            self.web_acl(f"static-{n}", "CLOUDFRONT", **(cloudfront_waf or {}))["ARN"]
        dist = cf.create_distribution(DistributionConfig={
            "CallerReference": f"webstack-{n}", "Comment": "webstack static", "Enabled": True, "WebACLId": acl_arn,
            "Origins": {"Quantity": 1, "Items": [{
                "Id": "s3", "DomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
                "OriginAccessControlId": oac["OriginAccessControl"]["Id"],
                "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": viewer_protocol,
                                     "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
            "ViewerCertificate": {"ACMCertificateArn": f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/{n:08d}",
                                  "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": min_tls}})["Distribution"]
        if policy is not None:
            s3.put_bucket_policy(Bucket=bucket, Policy=policy(f"arn:aws:s3:::{bucket}", dist["ARN"]))

        ident = f"webstack-db-{n}"
        rds_params = {"DBInstanceIdentifier": ident, "Engine": "postgres", "EngineVersion": "17",
                      "DBInstanceClass": "db.m7g.large", "AllocatedStorage": 50, "MasterUsername": "app_admin",
                      "ManageMasterUserPassword": True, "StorageEncrypted": True, "PubliclyAccessible": False,
                      "DeletionProtection": True, "BackupRetentionPeriod": 14, "MultiAZ": True, **(db or {})}
        address = self.client("rds").create_db_instance(**rds_params)["DBInstance"].get("Endpoint", {}).get("Address")

        cluster = f"webstack-eks-{n}"
        eks_params = {"name": cluster, "version": COMPLIANT_K8S, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks",
                      "resourcesVpcConfig": {"subnetIds": self.subnets(), "endpointPrivateAccess": True,
                                             "endpointPublicAccess": False},
                      "logging": {"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]},
                      "encryptionConfig": [{"resources": ["secrets"],
                                            "provider": {"keyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-{n}"}}],
                      "upgradePolicy": {"supportType": "STANDARD"}, "deletionProtection": True, **(eks or {})}
        self.client("eks").create_cluster(**eks_params)

        lb = self.client("elbv2").create_load_balancer(Name=f"k8s-web-{n}", Subnets=self.subnets(),
                                                       Type="application", Scheme="internet-facing")["LoadBalancers"][0]
        alb_acl = None
        if not no_alb_waf:
            alb_acl = self.web_acl(f"app-{n}", "REGIONAL", **(alb_waf or {}))["ARN"]
            self.client("wafv2").associate_web_acl(WebACLArn=alb_acl, ResourceArn=lb["LoadBalancerArn"])

        outputs = {"framework": "django", "environment": environment, "target": "aws", "namespace": "web",
                   "url": app_url, "static_url": static_url, "release_jobs": ["web-migrate-1a2b3c"],
                   "database_host": address or f"{ident}.example.{REGION}.rds.amazonaws.com",
                   "aws_region": REGION, "static_bucket_name": bucket, "static_distribution_id": dist["Id"],
                   "db_instance_identifier": ident, "cluster_name": cluster, "alb_hostname": lb["DNSName"],
                   "health_path": "/readyz", "admin_path": "/admin/"}
        if exported_alb_acl or alb_acl:
            outputs["app_waf_acl_arn"] = exported_alb_acl or alb_acl
        return outputs

