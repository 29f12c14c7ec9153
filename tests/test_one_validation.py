"""One validation per concept: what the stack config accepts, the components accept too, and
whatever a component still refuses reaches the user as one line, never as a traceback."""

from __future__ import annotations

import runpy

import pulumi
import pytest
from pydantic import TypeAdapter, ValidationError

from cli.offline import run_program
from cli.render import ROOT
from components.namespace import NamespaceArgs
from components.web_service import AlbIngress, ExtraContainer, WebServiceArgs
from stacks.config import load_settings
from stacks.errors import BuildError, ConfigError
from stacks.settings import AppSettings, StackSettings

DIGEST = "ghcr.io/acme/api@sha256:" + "a" * 64


def program():
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def accepts(validate, value) -> bool:
    try:
        validate(value)
    except (ValidationError, ConfigError):
        return False
    return True


def stack_config(**overrides):
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "webstack:target": "local",
              "webstack:cluster": {"mode": "context"}, "webstack:app": {"image": "ghcr.io/acme/api:1.0"}}
    config.update({f"webstack:{k}": v for k, v in overrides.items()})
    return config


@pytest.mark.parametrize("name", ["1st-team", "a", "a" * 63, "a" * 64, "-a", "a-", "Shop", "shop_prod", "shop.prod",
                                  "shop\n"])
def test_config_and_namespace_component_agree_on_namespace_names(name):
    in_config = accepts(lambda v: TypeAdapter(StackSettings.model_fields["namespace"].annotation).validate_python(v),
                        name)
    in_component = accepts(lambda v: NamespaceArgs(namespace_name=v), name)
    assert in_config == in_component, f"{name!r}: config {in_config}, component {in_component}"


@pytest.mark.parametrize("arn", ["arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e",
                                 "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/0b1c2d3e",
                                 "arn:aws-cn:acm:cn-north-1:123456789012:certificate/0b1c2d3e",
                                 "arn:aws:iam::123456789012:server-certificate/x", "my-cert"])
def test_config_and_alb_ingress_agree_on_certificate_arns(arn):
    in_config = accepts(lambda v: AppSettings(image=DIGEST, domain="api.example.com", certificate_arn=v), arn)
    in_component = accepts(lambda v: AlbIngress(host="api.example.com", certificate_arn=v), arn)
    assert in_config == in_component


@pytest.mark.parametrize("image", ["shop", "shop:latest", "shop:1.0", DIGEST, "shop@sha256:abc", "a b:1", "",
                                   "localhost:5000/team/shop:1", "Shop:1", "\u00b0:0", "shop:1\n", "shop:\u00e9"])
def test_config_and_workloads_agree_on_image_references(image):
    in_config = accepts(lambda v: AppSettings(image=v), image)
    in_web = accepts(lambda v: WebServiceArgs(image=v, require_digest=False), image)
    in_sidecar = accepts(lambda v: ExtraContainer(name="nginx", image=v, port=8080), image)
    assert in_config == in_web == in_sidecar


def test_a_namespace_starting_with_a_digit_deploys():
    run = run_program("t", stack_config(namespace="1st-team"), program)
    names = [r.inputs["metadata"]["name"] for r in run.monitor.all("kubernetes:core/v1:Namespace")]
    assert "1st-team" in names


def test_a_govcloud_certificate_reaches_the_alb():
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "aws:region": "us-gov-west-1",
              "webstack:cluster": {"deploy_from_vpc": True},
              "webstack:app": {"image": "ghcr.io/acme/api:1.0", "domain": "api.example.com",
                               "certificate_arn": "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/0b1c"}}
    ingress = run_program("t", config, program).monitor.one("kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"].startswith(
        "arn:aws-us-gov:acm:")


def test_the_kubeconfig_context_is_used_on_aws_too():
    config = {"webstack:framework": "fastapi", "webstack:environment": "dev", "aws:region": "us-east-1",
              "webstack:cluster": {"mode": "kubeconfig", "kubeconfig": "apiVersion: v1", "context": "prod-admin"},
              "webstack:app": {"image": "ghcr.io/acme/api:1.0"}}
    run = run_program("t", config, program, {"webstack:cluster"})
    provider = run.monitor.one("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "prod-admin"


def test_a_component_that_refuses_its_arguments_is_reported_in_one_line(monkeypatch):
    import stacks.platform

    def refuse(*args, **kwargs):
        return NamespaceArgs(namespace_name="Not_A_Label")

    monkeypatch.setattr(stacks.platform, "NamespaceArgs", refuse)
    with pytest.raises(BuildError) as caught:
        run_program("t", stack_config(), program)
    assert caught.value.problems == [
        "webstack: NamespaceArgs.namespace_name: 'Not_A_Label' is not a DNS label (lowercase letters, digits and "
        "'-', starting and ending with a letter or digit, at most 63 characters)"]
    assert isinstance(caught.value, pulumi.RunError), "Pulumi prints a RunError without a traceback"


def test_the_loader_and_the_editor_schema_agree_on_a_digit_first_namespace():
    from jsonschema import Draft202012Validator

    from cli.schema import stack_file_schema

    config = {"framework": "fastapi", "environment": "dev", "app": {"image": "ghcr.io/acme/api:1.0"},
              "namespace": "1st-team", "cluster": {"mode": "create", "deploy_from_vpc": True}}
    assert load_settings(config).namespace == "1st-team"
    doc = {"config": {f"webstack:{k}": v for k, v in config.items()}}
    assert not list(Draft202012Validator(stack_file_schema()).iter_errors(doc))
