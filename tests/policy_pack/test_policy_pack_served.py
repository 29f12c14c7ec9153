"""The pack as the Python language host starts it: `python -u -m pulumi.policy <engine> policies`
with the stack's config in PULUMI_CONFIG, serving the analyzer gRPC protocol on the port it prints.

This is what `pulumi preview --policy-pack policies` talks to; here a gRPC client plays the
engine, so the pack's entry point (reading webstack:environment, choosing the enforcement level)
is checked without the CLI. tests/engine/test_policy_pack.py runs it under the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.policy_pack.pack import PACK_DIR, urn

ROOT_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"template": {"spec": {"containers": [{
        "name": "app", "image": "ghcr.io/acme/api@sha256:" + "ab" * 32,
        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]}}}}


@contextmanager
def served_pack(config: dict[str, str] | None) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    if config is not None:
        env["PULUMI_CONFIG"] = json.dumps(config)
    # The engine address is only used by packs that call back into the engine; this one does not.
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK_DIR)],
                            cwd=PACK_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the pack printed no port: {port!r}\n{proc.stderr.read() if proc.poll() else ''}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def analyze(stub, type_: str, name: str, props: dict) -> list:
    properties = struct_pb2.Struct()
    properties.update(props)
    request = analyzer_pb2.AnalyzeRequest(type=type_, name=name, urn=urn(type_, name), properties=properties)
    return list(stub.Analyze(request, timeout=30).diagnostics)


@pytest.mark.parametrize("environment,level", [("prod", "MANDATORY"), ("dev", "ADVISORY"), (None, "MANDATORY")])
def test_the_pack_takes_its_enforcement_level_from_the_stacks_environment(environment, level):
    config = {"webstack:framework": "fastapi"} | ({"webstack:environment": environment} if environment else {})

    with served_pack(config) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        diagnostics = analyze(stub, "kubernetes:apps/v1:Deployment", "web", ROOT_DEPLOYMENT)

    assert info.name == "webstack-guardrails"
    assert {analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel) for p in info.policies} == {level}
    assert [(d.policyName, analyzer_pb2.EnforcementLevel.Name(d.enforcementLevel)) for d in diagnostics] == [
        ("pods-run-as-non-root", level)]
    assert "Deployment 'web': container 'app': runs as uid 0" in diagnostics[0].message


def test_the_packs_own_requirements_pin_the_versions_tested_here():
    pins = dict(line.split("==") for line in (PACK_DIR / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))

    assert pins == {"pulumi": version("pulumi"), "pulumi-policy": version("pulumi-policy")}
