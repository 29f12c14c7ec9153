"""What a first `pulumi up` on a fresh AWS account needs beyond what mocks accept anyway: each
test names the failure it prevents, under mocks, as the program registers it."""

from __future__ import annotations

import runpy

import pytest

from cli.offline import run_program
from cli.render import ROOT
from stacks.config import load_settings
from stacks.errors import ConfigError

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RECORD = "aws:route53/record:Record"
CERT = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
ZONE = "Z0123456789ABCDEFGHIJ"


def program():
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def aws_stack(app: dict, **sections):
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "aws:region": "us-east-1",
              "webstack:app": {"image": "ghcr.io/acme/api:1.0", **app},
              "webstack:cluster": {"endpoint_public_access_cidrs": ["203.0.113.0/24"]}}
    config.update({f"webstack:{k}": v for k, v in sections.items()})
    return run_program("t", config, program)


def test_with_a_hosted_zone_the_kit_issues_the_certificate_and_points_the_name_at_the_alb():
    run = aws_stack({"domain": "api.example.com", "hosted_zone_id": ZONE})
    mon = run.monitor
    cert = mon.one(CERT)
    assert cert.inputs["domainName"] == "api.example.com" and cert.inputs["validationMethod"] == "DNS"
    assert "region" not in cert.inputs, "the ALB's certificate lives in the stack's region"
    validation = mon.one(VALIDATION)
    ingress = mon.one(INGRESS)
    # The listener gets the ARN only once ACM has issued it (the Ingress waits for the validation).
    assert validation.urn in ingress.dependencies
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    alias = next(r for r in mon.all(RECORD) if r.inputs.get("type") == "A")
    assert alias.inputs["zoneId"] == ZONE and alias.inputs["name"] == "api.example.com"
    assert alias.inputs["aliases"][0]["zoneId"] == "Z35SXDOTRQ7X7K", "the region's ALB zone"
    assert ingress.urn in alias.dependencies, "the record names the ALB the Ingress gets"
    assert run.outputs["url"] == "https://api.example.com"


def test_without_a_zone_the_stack_says_which_record_to_create():
    run = aws_stack({"domain": "api.example.com",
                     "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0b1c"})
    assert not run.monitor.all(CERT) and not run.monitor.all(RECORD)
    assert "alb_hostname" in run.outputs
    assert run.outputs["dns_record_to_create"].startswith("api.example.com CNAME ")


def test_a_zone_and_a_certificate_of_the_users_means_no_new_certificate_but_the_record():
    run = aws_stack({"domain": "api.example.com", "hosted_zone_id": ZONE,
                     "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0b1c"})
    assert not run.monitor.all(CERT)
    assert [r.inputs["type"] for r in run.monitor.all(RECORD)] == ["A"]


@pytest.mark.parametrize("app,where,hint", [
    ({"domain": "api.example.com"}, "webstack:app.certificate_arn:", "or app.hosted_zone_id"),
    ({"hosted_zone_id": ZONE}, "webstack:app.hosted_zone_id:", "only used with app.domain"),
])
def test_a_domain_needs_a_certificate_or_a_zone_and_a_zone_needs_a_domain(app, where, hint):
    with pytest.raises(ConfigError) as caught:
        load_settings({"framework": "fastapi", "environment": "dev", "app": {"image": "a/b:1", **app},
                       "cluster": {"deploy_from_vpc": True}})
    assert any(p.startswith(where) and hint in p for p in caught.value.problems), caught.value.problems


def test_a_platform_stack_without_the_named_output_is_named_in_the_error():
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "aws:region": "us-east-1",
              "webstack:app": {"image": "ghcr.io/acme/api:1.0"},
              "webstack:cluster": {"mode": "stack_reference", "stack": "acme/platform/dev", "output": "kubeconfig2"}}
    with pytest.raises(ValueError, match=r"the platform stack 'acme/platform/dev' exports no output 'kubeconfig2'"):
        run_program("t", config, program)


@pytest.mark.parametrize("region,ok", [("eu-west-1", True), ("us-gov-west-1", True), ("eu-west1", False),
                                       ("EU-WEST-1", False)])
def test_the_aws_region_is_checked_with_the_stack_config(region, ok):
    config = {"framework": "fastapi", "environment": "dev", "app": {"image": "a/b:1"},
              "cluster": {"deploy_from_vpc": True}}
    if ok:
        load_settings(config, aws_region=region)
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(config, aws_region=region)
    assert caught.value.problems == [f"aws:region: {region!r} is not an AWS region (e.g. eu-west-1); "
                                     "set it: pulumi config set aws:region <region>"]


def _with_database():
    return aws_stack({"domain": "api.example.com", "hosted_zone_id": ZONE}, fastapi={"database": {"enabled": True}})


def test_pods_that_read_aws_through_pod_identity_wait_for_their_associations():
    # Associations are eventually consistent: a pod started before its association gets no
    # credentials, and a release Job would spend its only retry on that.
    mon = _with_database().monitor
    associations = {r.urn for r in mon.all("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert len(associations) == 2, "the app's and the release Jobs' ServiceAccounts"
    for kind in ("kubernetes:batch/v1:Job", "kubernetes:apps/v1:Deployment"):
        assert associations <= set(mon.one(kind).dependencies), kind


def test_the_ingress_waits_for_the_alb_ingressclass_and_policies_for_their_enforcement():
    mon = _with_database().monitor
    ingress_class = mon.one("kubernetes:networking.k8s.io/v1:IngressClass")
    assert ingress_class.inputs["spec"]["controller"] == "eks.amazonaws.com/alb"
    assert ingress_class.urn in mon.one(INGRESS).dependencies
    switch = mon.one("kubernetes:core/v1:ConfigMapPatch")
    for policy in mon.all("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        assert switch.urn in policy.dependencies, policy.name


def test_a_cluster_the_kit_creates_gets_metrics_server_for_the_hpa():
    addons = {r.inputs["addonName"] for r in _with_database().monitor.all("aws:eks/addon:Addon")}
    assert "metrics-server" in addons
