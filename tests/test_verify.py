"""`python -m cli verify` against moto's server on loopback (real boto3 over HTTP) and local HTTPS
sites: a compliant set passes; each non-compliant variant fails with its own finding; a missing
permission, resource, output or credential is a clear message, never a traceback. What moto does
not report is tested on recorded API answers (AWS's documented shapes)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from cli.verify import add_arguments
from cli.verify import cluster as eks_checks
from cli.verify import storage, waf
from cli.verify.aws import IAM_ACTIONS, POLICY_NAME, Aws
from cli.verify.model import Problem
from cli.verify.outputs import KNOWN, NEW
from cli.verify.run import CHECKS, command
from tests.verify.emulator import ACCOUNT, COMPLIANT_K8S, REGION, Emulator
from tests.verify.sites import (ASSET, IMMUTABLE, SECURITY_HEADERS, Route, Site, app_routes, cdn_routes,
                                make_tls)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "verify.md"
TODAY = date(2026, 11, 30)
AWS_CHECKS = {c.id for c in CHECKS if c.aws}
# What moto 5.2.5 leaves out of its answers, so verify says "not reported" (SKIP), never PASS:
# CloudFront's Origin.OriginAccessControlId, and EKS's upgradePolicy and deletionProtection.
# Their PASS and FAIL paths are tested below on AWS's documented answer shapes.
MOTO_GAPS = {"cloudfront.oac", "eks.upgrade-policy", "eks.deletion-protection"}


# --- fixtures -------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def fewer_gc_passes():
    """As cli/__main__.py does: each verify run loads botocore's models next to moto's state, and
    the default cyclic GC spent most of a run walking them (1 s a run instead of 0.2 s)."""
    before = gc.get_threshold()
    gc.set_threshold(200_000, 30, 30)
    yield
    gc.set_threshold(*before)


@pytest.fixture(scope="module")
def emulator():
    emu = Emulator.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("verify-tls"))


@pytest.fixture(scope="module")
def sites(tls):
    app, cdn = Site(app_routes(), tls), Site(cdn_routes(), tls)
    yield app, cdn
    app.close()
    cdn.close()


@pytest.fixture(scope="module")
def compliant(emulator, sites):
    """Stack outputs naming a compliant set (created once; tests copy, never change it)."""
    app, cdn = sites
    return emulator.deploy(app_url=app.url, static_url=cdn.url)


@pytest.fixture
def aws_env(emulator, tls, monkeypatch, tmp_path):
    """boto3's standard chain pointed at the emulator, and nothing of this machine's AWS setup."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    none = str(tmp_path / "no-such-file")
    for name, value in {**emulator.env(), "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
                        "AWS_EC2_METADATA_DISABLED": "true", "SSL_CERT_FILE": str(tls.ca_file)}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def verify(aws_env, tmp_path, capsys):
    """`verify(outputs, *args)` runs the command on an --outputs file as of TODAY and returns
    (exit status, {check: result}); with table=True, (exit status, stdout)."""

    def run(outputs, *extra, table=False):
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(outputs))
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["test-stack", "--outputs", str(path), "--timeout", "5",
                                  *([] if table else ["--json"]), *extra])
        status = command(args, today=TODAY)
        captured = capsys.readouterr()
        if table:
            return status, captured.out
        return status, {r["check"]: r for r in json.loads(captured.out)}

    return run


def failures(results):
    return {k for k, r in results.items() if r["verdict"] == "FAIL"}


# --- the compliant set ------------------------------------------------------------------

def test_a_compliant_stack_passes_every_check_moto_can_answer(verify, compliant):
    status, results = verify(compliant)

    assert set(results) == {c.id for c in CHECKS}
    assert failures(results) == set(), {k: results[k]["finding"] for k in failures(results)}
    skips = {k for k, r in results.items() if r["verdict"] == "SKIP"}
    assert skips == MOTO_GAPS
    for check in MOTO_GAPS:
        assert re.search(r"has no \w+ field|has no \w+ \(an endpoint", results[check]["finding"])
    assert status == 0


def test_the_table_names_each_check_its_resource_verdict_and_the_identity_used(verify, compliant):
    status, out = verify(compliant, table=True)

    assert status == 0
    head = next(line for line in out.splitlines() if line.startswith("CHECK"))
    assert head.split() == ["CHECK", "RESOURCE", "VERDICT", "FINDING", "HOW", "TO", "FIX"]
    assert f"account {ACCOUNT}, region {REGION}" in out
    assert re.search(rf"^rds\.encrypted\s+{compliant['db_instance_identifier']}\s+PASS\s", out, re.M)
    assert out.rstrip().endswith(f"{len(CHECKS)} checks: {len(CHECKS) - len(MOTO_GAPS)} PASS, 0 FAIL, "
                                 f"{len(MOTO_GAPS)} SKIP")


# --- each non-compliant variant fails with its own finding -------------------------------

def _no_tls_deny(bucket_arn, dist_arn):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        s for s in json.loads(storage_policy(bucket_arn, dist_arn))["Statement"] if s["Effect"] == "Allow"]})


def storage_policy(bucket_arn, dist_arn):
    from components.static_cdn import bucket_policy

    return bucket_policy(bucket_arn, dist_arn)


def _any_distribution(bucket_arn, dist_arn):
    doc = json.loads(storage_policy(bucket_arn, dist_arn))
    for statement in doc["Statement"]:
        if statement["Effect"] == "Allow":
            del statement["Condition"]
    return json.dumps(doc)


def _public_read(bucket_arn, dist_arn):
    doc = json.loads(storage_policy(bucket_arn, dist_arn))
    doc["Statement"].append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                             "Resource": f"{bucket_arn}/*"})
    return json.dumps(doc)


OPEN_ENDPOINT = {"subnetIds": ["subnet-1"], "endpointPrivateAccess": True, "endpointPublicAccess": True,
                 "publicAccessCidrs": ["0.0.0.0/0"]}
OTHER_ACL = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/someone-elses/0f0f0f0f-0000-0000-0000-000000000000"

AWS_VARIANTS = [
    pytest.param({"public_access": {"BlockPublicPolicy": False}}, "s3.public-access-block", "BlockPublicPolicy",
                 id="public-access-block-off"),
    pytest.param({"encryption": False}, "s3.encryption", "no default encryption", id="no-default-encryption"),
    pytest.param({"versioning": "Suspended"}, "s3.versioning", "versioning is Suspended", id="versioning-suspended"),
    pytest.param({"ownership": "ObjectWriter"}, "s3.acls-disabled", "ObjectWriter", id="acls-enabled"),
    pytest.param({"policy": _no_tls_deny}, "s3.policy-tls-only", "aws:SecureTransport", id="plain-http-allowed"),
    pytest.param({"policy": _any_distribution}, "s3.policy-distribution-only", "without pinning AWS:SourceArn",
                 id="any-distribution-may-read"),
    pytest.param({"policy": _public_read}, "s3.policy-distribution-only", 'statement PublicRead admits "*"',
                 id="public-read"),
    pytest.param({"viewer_protocol": "allow-all"}, "cloudfront.https-only", "default (allow-all)",
                 id="cloudfront-serves-http"),
    pytest.param({"min_tls": "TLSv1"}, "cloudfront.tls-policy", "may connect with TLSv1", id="cloudfront-tls1"),
    pytest.param({"no_cloudfront_waf": True}, "cloudfront.waf", "no web ACL on the distribution",
                 id="cloudfront-without-waf"),
    pytest.param({"cloudfront_waf": {"counting": True}}, "cloudfront.waf", "only count", id="cloudfront-waf-counting"),
    pytest.param({"db": {"StorageEncrypted": False}}, "rds.encrypted", "not encrypted", id="db-unencrypted"),
    pytest.param({"db": {"PubliclyAccessible": True}}, "rds.private", "publicly accessible", id="db-public"),
    pytest.param({"db": {"DeletionProtection": False}}, "rds.deletion-protection", "deletion protection off",
                 id="db-deletable"),
    pytest.param({"db": {"BackupRetentionPeriod": 0}}, "rds.backups", "automated backups are off", id="db-no-backups"),
    pytest.param({"db": {"BackupRetentionPeriod": 3}}, "rds.backups", "prod needs at least 7", id="db-short-backups"),
    pytest.param({"db": {"MultiAZ": False}}, "rds.multi-az", "single-AZ", id="db-single-az"),
    pytest.param({"eks": {"resourcesVpcConfig": OPEN_ENDPOINT}}, "eks.endpoint-access", "open to 0.0.0.0/0",
                 id="eks-endpoint-open"),
    pytest.param({"eks": {"logging": {"clusterLogging": [{"types": ["api"], "enabled": True},
                                                         {"types": ["audit", "authenticator"], "enabled": False}]}}},
                 "eks.control-plane-logs", "off for audit, authenticator", id="eks-no-audit-log"),
    pytest.param({"eks": {"encryptionConfig": []}}, "eks.secrets-encryption", "not envelope-encrypted",
                 id="eks-secrets-plain"),
    pytest.param({"eks": {"version": "1.31"}}, "eks.version-support", "left standard support on 2025-11-26",
                 id="eks-out-of-support"),
    pytest.param({"no_alb_waf": True}, "alb.waf", "no web ACL on the ALB", id="alb-without-waf"),
    pytest.param({"alb_waf": {"rate_limit": False}}, "alb.waf", "no rate-based rule", id="alb-waf-no-rate-limit"),
    pytest.param({"exported_alb_acl": OTHER_ACL}, "alb.waf", "not the stack's", id="alb-waf-not-the-stacks"),
]


@pytest.mark.parametrize(("change", "check", "finding"), AWS_VARIANTS)
def test_a_non_compliant_resource_fails_its_own_check(verify, emulator, sites, change, check, finding):
    app, cdn = sites
    status, results = verify(emulator.deploy(app_url=app.url, static_url=cdn.url, **change))

    assert failures(results) == {check}, {k: results[k]["finding"] for k in failures(results)}
    assert finding in results[check]["finding"]
    assert results[check]["fix"]
    assert status == 1


HTTP_VARIANTS = [
    pytest.param({"app": {"readyz": Route(503, SECURITY_HEADERS, b"")}}, "http.health", ": 503", id="unhealthy"),
    pytest.param({"app": {"readyz": Route(200, {}, b"ok")}}, "http.security-headers", "no Strict-Transport-Security",
                 id="app-without-security-headers"),
    pytest.param({"app": {"admin": Route(302, {"Location": "/admin/login/"})}}, "http.admin-refused", ": 302",
                 id="admin-open"),
    pytest.param({"cdn": {"asset": Route(200, {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"})}},
                 "http.static-asset", "max-age=3600", id="static-cached-an-hour"),
    pytest.param({"cdn": {"asset": Route(200, {"Cache-Control": IMMUTABLE})}}, "http.static-headers",
                 "no X-Content-Type-Options", id="static-without-security-headers"),
]


@pytest.mark.parametrize(("change", "check", "finding"), HTTP_VARIANTS)
def test_a_service_answering_wrongly_fails_its_own_check(verify, compliant, tls, change, check, finding):
    app = Site(app_routes(**change.get("app", {})), tls)
    cdn = Site(cdn_routes(**change.get("cdn", {})), tls)
    try:
        status, results = verify({**compliant, "url": app.url, "static_url": cdn.url})
    finally:
        app.close()
        cdn.close()

    assert failures(results) == {check}, {k: results[k]["finding"] for k in failures(results)}
    assert finding in results[check]["finding"]
    assert status == 1


def test_without_a_manifest_the_static_checks_need_an_asset_named(verify, compliant, tls):
    cdn = Site({k: v for k, v in cdn_routes().items() if k != "/staticfiles.json"}, tls)
    try:
        _, unnamed = verify({**compliant, "static_url": cdn.url})
        status, named = verify({**compliant, "static_url": cdn.url}, "--asset", ASSET)
    finally:
        cdn.close()

    assert unnamed["http.static-asset"]["verdict"] == "SKIP"
    assert "--asset PATH" in unnamed["http.static-asset"]["fix"]
    assert (named["http.static-asset"]["verdict"], named["http.static-headers"]["verdict"]) == ("PASS", "PASS")
    assert status == 0


def test_an_unreachable_service_fails_with_the_url_it_tried(verify, compliant):
    _, results = verify({**compliant, "url": "http://127.0.0.1:9"})

    assert results["http.health"]["verdict"] == "FAIL"
    assert "could not reach http://127.0.0.1:9/readyz" in results["http.health"]["finding"]
    assert results["http.health"]["fix"]


def test_a_service_over_plain_http_lacks_the_security_it_needs():
    from cli.verify.smoke import security_header_problems

    assert security_header_problems("http://shop.example/", {k.lower(): v for k, v in SECURITY_HEADERS.items()}) == [
        "served over plain HTTP"]


def test_dev_relaxes_what_the_dev_profile_turns_off(verify, emulator, sites):
    app, cdn = sites
    outputs = emulator.deploy(app_url=app.url, static_url=cdn.url, environment="dev", no_cloudfront_waf=True,
                              db={"DeletionProtection": False, "MultiAZ": False, "BackupRetentionPeriod": 1})

    status, results = verify(outputs)

    assert failures(results) == set()
    for check in ("rds.deletion-protection", "rds.multi-az", "cloudfront.waf"):
        assert results[check]["verdict"] == "SKIP"
        assert results[check]["fix"]
    assert status == 0


# --- missing resources, outputs, permissions, credentials -------------------------------

def test_resources_that_are_gone_are_named_with_where_they_were_looked_for(verify, compliant):
    gone = {**compliant, "static_bucket_name": "webstack-static-gone", "static_distribution_id": "EGONE0000000",
            "db_instance_identifier": "webstack-db-gone", "cluster_name": "webstack-eks-gone",
            "alb_hostname": "k8s-gone-0.eu-west-1.elb.amazonaws.com"}

    status, results = verify(gone)

    assert failures(results) == AWS_CHECKS
    assert "bucket webstack-static-gone not found in account 123456789012, region eu-west-1" in \
        results["s3.versioning"]["finding"]
    assert "distribution EGONE0000000 not found" in results["cloudfront.https-only"]["finding"]
    assert "region us-east-1" in results["cloudfront.https-only"]["finding"]
    assert "DB instance webstack-db-gone not found" in results["rds.encrypted"]["finding"]
    assert "EKS cluster webstack-eks-gone not found" in results["eks.version-support"]["finding"]
    assert "no load balancer named k8s-gone-0" in results["alb.waf"]["finding"]
    assert all(results[c]["fix"] for c in AWS_CHECKS)
    assert status == 1


def test_outputs_of_an_older_kit_skip_what_they_cannot_name_without_calling_aws(verify, aws_env, sites):
    app, cdn = sites
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        aws_env.delenv(name)
    today = {"framework": "django", "environment": "prod", "target": "aws", "namespace": "web", "url": app.url,
             "database_host": "db.example.eu-west-1.rds.amazonaws.com", "static_url": cdn.url,
             "release_jobs": ["web-migrate-1"]}

    status, results = verify(today)

    for check in AWS_CHECKS:
        assert results[check]["verdict"] == "SKIP", check
        assert re.match(r"not checked: the stack exports no \w+ \(older kit version\?\)", results[check]["finding"])
    assert results["http.health"]["finding"] == "not checked: the stack exports no health_path (older kit version?)"
    assert status == 0


def test_a_local_stack_has_no_aws_checks(verify):
    status, results = verify({"framework": "fastapi", "environment": "dev", "target": "local", "namespace": "web",
                              "url": "http://web.web.svc.cluster.local:8000"})

    assert {r["verdict"] for r in results.values()} == {"SKIP"}
    assert results["rds.encrypted"]["finding"] == "not applicable: target local has no AWS resources"
    assert status == 0


def test_a_missing_permission_names_the_action_and_the_policy_to_attach(verify, emulator, compliant, aws_env):
    """moto checks each request against IAM here. It refuses CloudFront's and EKS's requests
    whatever the policy, so the outputs name only the bucket, the database and the ALB; and it
    authorises S3's GetBucketPublicAccessBlock, GetBucketEncryption and GetBucketOwnershipControls
    as s3:ListBucket, which the user therefore also gets. The other actions are AWS's own names."""
    iam = emulator.client("iam")
    user = iam.create_user(UserName="verify-ci")["User"]
    granted = sorted(set(documented_actions()) - {"s3:GetBucketPolicy"} | {"s3:ListBucket"})
    iam.put_user_policy(UserName="verify-ci", PolicyName=POLICY_NAME, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": granted, "Resource": "*"}]}))
    key = iam.create_access_key(UserName="verify-ci")["AccessKey"]
    aws_env.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    outputs = {k: v for k, v in compliant.items() if k not in ("static_distribution_id", "cluster_name")}

    emulator.enforce_iam(True)
    try:
        status, results = verify(outputs)
    finally:
        emulator.enforce_iam(False)

    denied = results["s3.policy-tls-only"]
    assert denied["verdict"] == "FAIL"
    assert denied["finding"] == (f"not checked: permission denied for s3:GetBucketPolicy on bucket "
                                 f"{compliant['static_bucket_name']}")
    assert denied["fix"] == (f"attach the IAM policy {POLICY_NAME} from docs/verify.md (it grants "
                             f"s3:GetBucketPolicy) to {user['Arn']}")
    # Everything else the documented policy grants was enough.
    passing = {"s3.public-access-block", "s3.encryption", "s3.versioning", "s3.acls-disabled", "rds.encrypted",
               "rds.private", "rds.deletion-protection", "rds.backups", "rds.multi-az", "alb.waf"}
    assert {k for k, r in results.items() if r["verdict"] == "PASS"} >= passing
    assert failures(results) == {"s3.policy-tls-only"}
    assert status == 1


@pytest.mark.parametrize(("service", "region", "operation", "params", "action"), [
    ("cloudfront", "us-east-1", "get_distribution", {"Id": "E1"}, "cloudfront:GetDistribution"),
    ("eks", REGION, "describe_cluster", {"name": "c"}, "eks:DescribeCluster"),
    ("wafv2", REGION, "get_web_acl_for_resource", {"ResourceArn": "arn:aws:elasticloadbalancing:x"},
     "wafv2:GetWebACLForResource, wafv2:GetWebACL"),
])
def test_access_denied_from_services_moto_cannot_enforce_names_the_action(service, region, operation, params, action):
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name=REGION)
    aws = Aws(session, REGION)
    aws.identity = {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ci"}
    stub = Stubber(aws.client(service, region))
    code = "AccessDeniedException" if service != "cloudfront" else "AccessDenied"
    stub.add_client_error(operation, service_error_code=code, http_status_code=403)

    with stub, pytest.raises(Problem) as caught:
        aws.call(service, operation, subject="the resource", region=region, **params)

    assert caught.value.finding == f"not checked: permission denied for {action} on the resource"
    assert caught.value.fix == (f"attach the IAM policy {POLICY_NAME} from docs/verify.md (it grants {action}) to "
                                f"arn:aws:iam::{ACCOUNT}:user/ci")


def test_without_credentials_verify_stops_with_how_to_log_in(aws_env, compliant, capsys, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        aws_env.delenv(name)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(compliant))
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    status = command(parser.parse_args(["s", "--outputs", str(path)]), today=TODAY)

    assert status == 2
    assert "no AWS credentials found" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object of outputs"),
    (None, "cannot read it"),
])
def test_unreadable_outputs_are_a_usage_error_without_a_traceback(tmp_path, content, message):
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)

    done = subprocess.run([sys.executable, "-m", "cli", "verify", "web-prod", "--outputs", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


# --- checks on recorded API answers (what moto does not report) ---------------------------

# GetDistribution's Origins as AWS returns them for an S3 origin with OAC (CloudFront API reference).
RECORDED_ORIGINS = {"Quantity": 1, "Items": [{
    "Id": "s3", "DomainName": "static-abc.s3.eu-west-1.amazonaws.com", "OriginPath": "",
    "CustomHeaders": {"Quantity": 0}, "S3OriginConfig": {"OriginAccessIdentity": "", "OriginReadTimeout": 30},
    "ConnectionAttempts": 3, "ConnectionTimeout": 10, "OriginShield": {"Enabled": False},
    "OriginAccessControlId": "E2QWRUHAPOMQZL"}]}
KIT_OAC = {"Name": "webstack-prod-static", "SigningProtocol": "sigv4", "SigningBehavior": "always",
           "OriginAccessControlOriginType": "s3"}


def _origins(**changes):
    origin = {**RECORDED_ORIGINS["Items"][0], **changes}
    return {"Origins": {"Quantity": 1, "Items": [origin]}}


def test_oac_passes_when_every_bucket_origin_always_signs():
    outcome = storage.oac_outcome(_origins(), "static-abc", {"E2QWRUHAPOMQZL": KIT_OAC}.__getitem__, "s")
    assert outcome.verdict == "PASS"


@pytest.mark.parametrize(("origin", "oac", "finding"), [
    ({"OriginAccessControlId": ""}, KIT_OAC, "reads the bucket unsigned"),
    ({"OriginAccessControlId": "", "S3OriginConfig": {"OriginAccessIdentity": "origin-access-identity/cloudfront/E1"}},
     KIT_OAC, "legacy origin access identity"),
    ({}, {**KIT_OAC, "SigningBehavior": "no-override"}, "signs 'no-override'"),
    ({"DomainName": "someone-else.s3.amazonaws.com"}, KIT_OAC, "no origin of the distribution reads bucket static-abc"),
])
def test_oac_fails_for_an_origin_that_does_not_always_sign(origin, oac, finding):
    outcome = storage.oac_outcome(_origins(**origin), "static-abc", lambda _: oac, "s")
    assert outcome.verdict == "FAIL"
    assert finding in outcome.finding


def test_oac_is_skipped_not_passed_when_the_answer_does_not_report_it():
    origin = {k: v for k, v in RECORDED_ORIGINS["Items"][0].items() if k != "OriginAccessControlId"}
    outcome = storage.oac_outcome({"Origins": {"Items": [origin]}}, "static-abc", lambda _: KIT_OAC, "s")
    assert outcome.verdict == "SKIP"


# DescribeCluster's fields moto leaves out, as EKS returns them for the kit's cluster.
RECORDED_CLUSTER = {"name": "webstack-prod", "version": "1.34", "upgradePolicy": {"supportType": "STANDARD"},
                    "deletionProtection": True}


def test_eks_upgrade_policy_standard_passes_and_extended_fails():
    assert eks_checks.upgrade_policy_outcome(RECORDED_CLUSTER, "s").verdict == "PASS"
    extended = eks_checks.upgrade_policy_outcome(
        {**RECORDED_CLUSTER, "upgradePolicy": {"supportType": "EXTENDED"}}, "s")
    assert extended.verdict == "FAIL"
    assert "EXTENDED" in extended.finding


@pytest.mark.parametrize(("protected", "environment", "verdict"), [
    (True, "prod", "PASS"), (False, "prod", "FAIL"), (False, "staging", "FAIL"), (False, "dev", "SKIP")])
def test_eks_deletion_protection_is_required_outside_dev(protected, environment, verdict):
    outcome = eks_checks.deletion_protection_outcome({**RECORDED_CLUSTER, "deletionProtection": protected},
                                                     environment, "s")
    assert outcome.verdict == verdict


@pytest.mark.parametrize(("version", "today", "verdict", "finding"), [
    ("1.34", date(2026, 12, 1), "PASS", "until 2026-12-02 (1 days left)"),
    ("1.34", date(2026, 12, 2), "FAIL", "left standard support on 2026-12-02"),
    ("1.33", TODAY, "FAIL", "left standard support on 2026-07-29"),
    ("1.27", TODAY, "FAIL", "older than 1.29"),
    ("1.36", TODAY, "PASS", "newer than 1.35"),
    ("1.36", date(2027, 3, 28), "SKIP", "newer than the support table"),
    ("latest", TODAY, "SKIP", "not MAJOR.MINOR"),
])
def test_eks_version_support_follows_the_dated_table(version, today, verdict, finding):
    outcome = eks_checks.version_support_outcome(version, today)
    assert (outcome.verdict, finding in outcome.finding) == (verdict, True), outcome.finding


def test_a_version_out_of_support_says_which_to_upgrade_to():
    assert "to 1.34 or newer" in eks_checks.version_support_outcome("1.33", TODAY).fix
    assert "to 1.35 or newer" in eks_checks.version_support_outcome("1.34", date(2026, 12, 2)).fix


def test_the_fixture_cluster_version_has_standard_support_on_the_test_date():
    assert eks_checks.version_support_outcome(COMPLIANT_K8S, TODAY).verdict == "PASS"


def test_a_web_acl_admin_rule_is_recognised_in_a_recorded_json_answer():
    # In JSON (the API's wire format, or a saved `aws wafv2 get-web-acl`), SearchString is base64.
    rule = {"Name": "admin-allowlist", "Action": {"Block": {}}, "Statement": {"AndStatement": {"Statements": [
        {"ByteMatchStatement": {"SearchString": "L2FkbWluLw==", "FieldToMatch": {"UriPath": {}},
                                "PositionalConstraint": "STARTS_WITH", "TextTransformations": []}},
        {"NotStatement": {"Statement": {"IPSetReferenceStatement": {"ARN": "arn:aws:wafv2:x"}}}}]}}}
    assert waf.blocks_admin_path(rule, "/admin/")
    assert not waf.blocks_admin_path({**rule, "Action": {"Count": {}}}, "/admin/")


# --- verify and the kit agree --------------------------------------------------------------

def test_the_kits_bucket_policy_passes_both_policy_checks():
    from components.static_cdn import bucket_policy

    arn = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL"
    policy = json.loads(bucket_policy("arn:aws:s3:::static-abc", arn))
    assert storage.policy_tls_outcome(policy, "static-abc", "s").verdict == "PASS"
    assert storage.policy_distribution_outcome(policy, "static-abc", arn, "s").verdict == "PASS"


def test_verify_expects_the_tls_policy_and_logs_the_components_set():
    from components.cluster import CreateClusterArgs
    from components.static_cdn import TLS_POLICY

    assert storage.MODERN_TLS[0] == TLS_POLICY
    assert set(eks_checks.REQUIRED_LOGS) <= set(CreateClusterArgs.model_fields["control_plane_logs"].default_factory())


# --- docs/verify.md -------------------------------------------------------------------------

def documented_policy() -> dict:
    text = DOC.read_text()
    section = text.split("\n## The read-only IAM policy\n", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def documented_actions() -> list[str]:
    return [a for s in documented_policy()["Statement"] for a in s["Action"]]


def test_the_documented_policy_grants_exactly_the_actions_verify_uses():
    used = {a for actions in IAM_ACTIONS.values() for a in actions}
    policy = documented_policy()
    assert sorted(documented_actions()) == sorted(used)
    assert {s["Effect"] for s in policy["Statement"]} == {"Allow"}
    assert not [a for a in documented_actions() if not re.match(r"^[a-z0-9-]+:(Get|Describe|List)", a)]


def test_the_docs_explain_every_check_and_every_output_verify_reads():
    text = DOC.read_text()
    assert not [c.id for c in CHECKS if f"`{c.id}`" not in text]
    read = {n for c in CHECKS for n in c.needs} | {"aws_region", "app_waf_acl_arn", "environment", "target"}
    assert read <= set(KNOWN) | set(NEW)
    assert not [n for n in NEW if f"`{n}`" not in text]
