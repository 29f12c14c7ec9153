"""What a user gets when they leave keys unset, and how profiles and secrets arrive."""

from __future__ import annotations

import json

import pulumi
from pydantic import SecretStr

from stacks.config import PROFILES, load_settings, settings_from_config
from stacks.django.settings import DjangoSettings
from stacks.fastapi.settings import FastApiSettings

APP = {"image": "ghcr.io/acme/api@sha256:" + "a" * 64}
# Where `pulumi up` runs from: the created cluster's API must be reachable from there.
RUNNER = {"endpoint_public_access_cidrs": ["203.0.113.0/24"]}


def test_the_framework_key_picks_the_section_model():
    assert isinstance(load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER}),
                      FastApiSettings)
    assert isinstance(load_settings({"framework": "django", "environment": "prod", "app": APP, "cluster": RUNNER}),
                      DjangoSettings)


def test_unset_keys_give_the_production_answer():
    s = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER})
    assert s.fastapi.database.protect is True and s.fastapi.database.deletion_protection is True
    assert s.fastapi.database.multi_az is True
    assert s.fastapi.autoscaling.min_replicas == 2
    d = load_settings({"framework": "django", "environment": "prod", "app": APP, "cluster": RUNNER})
    assert d.django.database.protect is True and d.django.static.protect is True
    assert s.target == "aws"
    assert s.cluster.mode == "create"
    assert s.app.port == 8000


def test_the_fastapi_server_is_uvicorn_unless_granian_is_chosen():
    s = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER})
    assert s.fastapi.server.kind == "uvicorn"
    g = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER,
                       "fastapi": {"server": {"kind": "granian", "backlog": 64 * 2}}})
    assert g.fastapi.server.kind == "granian" and g.fastapi.server.backlog == 128


def test_prod_protects_stateful_resources_by_default():
    s = load_settings({"framework": "django", "environment": "prod", "app": APP, "cluster": RUNNER})
    assert s.django.database.protect is True and s.django.database.deletion_protection is True
    assert s.django.static.protect is True and s.django.database.multi_az is True


def test_the_dev_profile_relaxes_protection_and_the_stack_file_wins_over_it():
    dev = load_settings({"framework": "django", "environment": "dev", "app": APP, "cluster": RUNNER})
    assert dev.django.database.protect is PROFILES["dev"]["django.database.protect"] is False
    assert dev.django.autoscaling.min_replicas == 1
    pinned = load_settings({"framework": "django", "environment": "dev", "app": APP, "cluster": RUNNER,
                                 "django": {"database": {"protect": True}}})
    assert pinned.django.database.protect is True
    assert pinned.django.database.multi_az is False, "the rest of the profile still applies"


def test_vpc_flow_logs_are_on_everywhere_and_kept_shorter_in_dev():
    prod = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER})
    dev = load_settings({"framework": "fastapi", "environment": "dev", "app": APP, "cluster": RUNNER})
    off = load_settings({"framework": "fastapi", "environment": "dev", "app": APP, "cluster": RUNNER,
                              "network": {"flow_log_retention_days": None}})
    assert (prod.network.flow_log_retention_days, dev.network.flow_log_retention_days) == (90, 14)
    assert off.network.flow_log_retention_days is None


def test_a_secret_set_with_pulumi_config_secret_arrives_as_a_secret():
    s = load_settings({"framework": "fastapi", "environment": "prod", "cluster": RUNNER,
                       "app": {**APP, "secrets": {"DB_PASSWORD": "hunter2"}}}, {"app"})
    value = s.app.secrets["DB_PASSWORD"]
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s)


def test_from_config_reads_the_whole_namespace_the_way_the_cli_passes_it():
    pulumi.runtime.set_all_config({
        "webstack:framework": "django",
        "webstack:environment": "staging",
        "webstack:app": json.dumps({**APP, "secrets": {"DJANGO_SECRET_KEY": "k"}}),
        "webstack:cluster": json.dumps(RUNNER),
        "aws:region": "eu-west-1",
    }, ["webstack:app"])
    s = settings_from_config(pulumi.Config("webstack"))
    assert s.framework == "django" and s.environment == "staging"
    assert s.app.secrets["DJANGO_SECRET_KEY"].get_secret_value() == "k"


def test_the_namespace_defaults_to_project_and_stack():
    s = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER})
    assert s.k8s_namespace("fastapi-prod") == "webstack-fastapi-prod"
    named = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER, "namespace": "orders"})
    assert named.k8s_namespace("fastapi-prod") == "orders"


def test_settings_are_immutable_once_loaded():
    import pytest
    from pydantic import ValidationError

    s = load_settings({"framework": "fastapi", "environment": "prod", "app": APP, "cluster": RUNNER})
    with pytest.raises(ValidationError):
        s.app.port = 9000
