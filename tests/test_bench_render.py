"""The render benchmark's synthetic platform stack (bench/synthetic_stack.py) is what it claims:
N of the kit's FastAPI services, each what the fastapi-local example registers, none colliding.

The benchmark itself is not a test (bench/render.py); this keeps its program from rotting."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import synthetic_stack
from cli.offline import run_program
from cli.render import kubernetes_object, run_stack

PER_SERVICE_KINDS = {"Namespace", "NetworkPolicy", "ServiceAccount", "Secret", "ConfigMap", "Deployment",
                     "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "StatefulSet", "Job",
                     "ServiceMonitor", "PrometheusRule"}


def registrations(services: int) -> list:
    _, _, config = synthetic_stack.template_values()
    return run_program(synthetic_stack.stack_name(services), config, synthetic_stack.program(services)).monitor.all()


@pytest.fixture(scope="module")
def one() -> list:
    return registrations(1)


@pytest.fixture(scope="module")
def two() -> list:
    return registrations(2)


def test_two_services_register_twice_what_one_does(one, two):
    assert len(two) == 2 * len(one)
    assert Counter(r.type for r in two) == Counter({t: 2 * n for t, n in Counter(r.type for r in one).items()})


def test_no_two_resources_or_kubernetes_objects_share_a_name(two):
    assert len({r.urn for r in two}) == len(two)
    objects = [o for o in map(kubernetes_object, two) if o is not None]
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(set(keys)) == len(keys)


def test_each_service_lives_in_its_own_namespace_with_the_kits_objects(two):
    namespaced: dict[str, set[str]] = {}
    for obj in filter(None, map(kubernetes_object, two)):
        meta = obj["metadata"]
        ns = meta["name"] if obj["kind"] == "Namespace" else meta.get("namespace")
        namespaced.setdefault(ns, set()).add(obj["kind"])
    for name in (synthetic_stack.service_name(1), synthetic_stack.service_name(2)):
        # The dashboard ConfigMap goes to the platform's monitoring namespace, as with mode existing.
        assert PER_SERVICE_KINDS <= namespaced[name] | namespaced["monitoring"], name


def test_a_service_registers_what_the_template_stack_does_less_the_monitoring_install(one):
    """The platform's Prometheus and Grafana are its own stack: a service adds only its objects."""
    template = run_stack(synthetic_stack.TEMPLATE_STACK).monitor.all()
    installed = [r for r in template if "webstack:observability:MonitoringStack" in r.urn.split("::")[2]]
    assert installed, "the template stack installs monitoring; the comparison below relies on it"
    expected = Counter(r.type for r in template if r not in installed)
    assert Counter(r.type for r in one) == expected


def test_the_render_is_written_like_a_stacks(tmp_path):
    path, resources = synthetic_stack.render(2, tmp_path)
    doc = json.loads((path / "resources.json").read_text())
    assert path == tmp_path / "synthetic-2" and doc["stack"] == "synthetic-2"
    assert len(doc["resources"]) == resources
    assert sorted(doc["outputs"]["urls"]) == ["svc-001", "svc-002"]
    assert any((path / "manifests").glob("deployment-svc-002-*.yaml"))
