"""The platform team's example program keeps working: it imports WebService on its own."""

import runpy
from pathlib import Path

from cli.offline import run_program

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform_web_service.py"
IMAGE = "registry.example.com/orders@sha256:" + "d" * 64
CONFIG = {"webstack:image": IMAGE, "webstack:apiToken": "tok"}


def test_the_example_creates_a_hardened_web_service_in_its_namespace(run):
    monitor = run(lambda: runpy.run_path(str(EXAMPLE)), stack="prod", config=CONFIG,
                  secret_keys={"webstack:apiToken"})
    deployment = monitor.one("kubernetes:apps/v1:Deployment")
    assert deployment.inputs["metadata"]["namespace"] == "orders"
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == IMAGE
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert monitor.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]["minReplicas"] == 2
    assert monitor.one("kubernetes:core/v1:Secret").inputs["stringData"] == "[secret]"
    assert monitor.one("kubernetes:networking.k8s.io/v1:Ingress").inputs["spec"]["ingressClassName"] == "nginx"
    assert len(monitor.all("kubernetes:networking.k8s.io/v1:NetworkPolicy")) >= 4


def test_the_example_exports_the_service_url():
    result = run_program("prod", CONFIG, lambda: runpy.run_path(str(EXAMPLE)), {"webstack:apiToken"})
    assert result.outputs["url"] == "http://orders.example.com"
