"""Pod-level building blocks shared by WebService and ReleaseJob.

The value models here (`Resources`, `HealthChecks`) double as config sections in
`stacks/settings.py`, so their messages name the field and the value given.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.types import Quantity, UrlPath, has_digest, image_problem, parse_quantity

# --- Secure defaults, with the reason next to them --------------------------------

# A compromised image must not get root on the node; a UID >= 10000 cannot collide
# with a system user of the host (checkov CKV_K8S_40).
RUN_AS_USER = 10001
# Syscalls outside the container runtime's default profile are refused.
SECCOMP_PROFILE = {"type": "RuntimeDefault"}
# The ServiceAccount token is only mounted for pods that call the Kubernetes API.
# AWS access (IRSA / EKS Pod Identity) uses its own projected token, not this one.
AUTOMOUNT_SERVICE_ACCOUNT_TOKEN = False
# Always ask the registry: a digest pins the bytes, and the pull re-checks that the
# pod may still read the image (imagePullSecrets, registry policy).
IMAGE_PULL_POLICY = "Always"
# Where secrets appear as files (0440: readable by the pod's group only).
SECRETS_MOUNT_PATH = "/var/run/secrets/app"
SECRET_FILE_MODE = 0o440

MANAGED_BY = "webstack"

# What a container may read about its own pod through the downward API (`pod_field_env`).
PodField = Literal["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.podIP", "status.hostIP"]

# Kubernetes expands `$(NAME)` in an env value to the value of a variable listed EARLIER in the
# container's env; `$$` is a literal `$`; an unknown or later name stays as the literal text.
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def env_references(value: str) -> list[str]:
    """The variable names `value` refers to with `$(NAME)`, in order (`$$(NAME)` is a literal)."""
    return [m.group(1) for m in _REFERENCE.finditer(value) if m.group(1)]


def ordered_env(values: Mapping[str, str], *, first: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The env list of a container: `first` (pod fields, Secret keys: values that refer to nothing)
    then `values` in an order where each `$(NAME)` reference comes after NAME, so the kubelet
    expands it. Ties keep alphabetical order; a cycle keeps the rest alphabetical (the loader
    refuses cycles in the stack config)."""
    done = {e["name"] for e in first}
    pending = dict(sorted(values.items()))
    out = list(first)
    while pending:
        ready = [k for k, v in pending.items() if all(r in done or r not in pending for r in env_references(v))]
        for name in ready or list(pending):
            out.append({"name": name, "value": pending.pop(name)})
            done.add(name)
    return out


def pod_field_entries(fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """Env entries the kubelet fills from the pod's own fields (downward API), by name."""
    return [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": f}}} for k, f in sorted(fields.items())]


def expand_env(env: Sequence[Mapping[str, Any]], resolve: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the kubelet gives the process for `env`: each `$(NAME)` replaced by the value of a
    variable listed earlier, `$$` by `$`. `resolve` gives the values of entries that come from
    elsewhere (a Secret key, a pod field), by name; without one such an entry is left out."""
    resolved: dict[str, str] = {}
    for entry in env:
        name = entry["name"]
        if "value" in entry:
            text = str(entry["value"])
            resolved[name] = _REFERENCE.sub(
                lambda m: "$" if m.group(0) == "$$" else resolved.get(m.group(1), m.group(0)), text)
        elif resolve is not None and name in resolve:
            resolved[name] = resolve[name]
    return resolved


def content_hash(*parts: str, length: int = 8) -> str:
    """A short sha256 of `parts`; names made from it change exactly when the content does."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


# --- Value models (also used as config sections) ------------------------------------

class Resources(BaseModel):
    """CPU and memory for one container, as Kubernetes quantities."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_request: Quantity = Field("250m", description="CPU reserved for scheduling, cores (e.g. 250m, 1).")
    cpu_limit: Quantity = Field("1", description="CPU ceiling, cores; above it the container is throttled.")
    memory_request: Quantity = Field("256Mi", description="Memory reserved for scheduling, bytes (e.g. 256Mi, 1Gi).")
    memory_limit: Quantity = Field("512Mi", description="Memory ceiling, bytes; above it the container is OOM-killed.")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "Resources":
        problems = []
        for kind in ("cpu", "memory"):
            request, limit = getattr(self, f"{kind}_request"), getattr(self, f"{kind}_limit")
            if parse_quantity(limit) < parse_quantity(request):
                problems.append(f"{kind}_limit ({limit}) is below {kind}_request ({request})")
        if problems:
            raise ValueError("; ".join(problems) + "; raise the limit or lower the request")
        return self

    def to_k8s(self) -> dict[str, Any]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


class HealthChecks(BaseModel):
    """HTTP paths and timing of the startup, readiness and liveness probes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    startup_path: UrlPath = Field("/healthz", description="Path probed until the server has started.")
    readiness_path: UrlPath = Field("/readyz", description="Path that says the pod can take traffic "
                                "(also the load balancer's health check).")
    liveness_path: UrlPath = Field("/healthz", description="Path that says the process is not stuck; "
                               "keep it free of dependency checks.")
    period_seconds: int = Field(10, ge=1, le=300, description="Seconds between readiness/liveness probes.")
    timeout_seconds: int = Field(2, ge=1, le=60, description="Seconds a probe may take.")
    readiness_failure_threshold: int = Field(
        3, ge=1, le=30, description="Failed probes in a row before the pod leaves the Service endpoints.")
    liveness_failure_threshold: int = Field(
        6, ge=1, le=30, description="Failed probes in a row before the kubelet restarts the container.")
    startup_period_seconds: int = Field(2, ge=1, le=60, description="Seconds between startup probes.")
    startup_failure_threshold: int = Field(
        30, ge=1, le=600, description="Startup probes allowed to fail; the server gets "
        "startup_period_seconds x this, seconds, to start.")

    @model_validator(mode="after")
    def _timeout_fits_period(self) -> "HealthChecks":
        if self.timeout_seconds > self.period_seconds:
            raise ValueError(
                f"timeout_seconds ({self.timeout_seconds}) is above period_seconds ({self.period_seconds}); "
                "a probe must finish before the next one starts"
            )
        return self

    def probes(self, port: int) -> dict[str, dict[str, Any]]:
        """Three separate probes: startup gates the other two, so a slow start is not
        mistaken for a hang, and liveness is more patient than readiness so an
        overloaded pod is first taken out of rotation, not restarted."""
        def http(path: str) -> dict[str, Any]:
            return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
                    "timeoutSeconds": self.timeout_seconds}

        return {
            "startupProbe": {**http(self.startup_path), "periodSeconds": self.startup_period_seconds,
                             "failureThreshold": self.startup_failure_threshold},
            "readinessProbe": {**http(self.readiness_path), "periodSeconds": self.period_seconds,
                               "failureThreshold": self.readiness_failure_threshold},
            "livenessProbe": {**http(self.liveness_path), "periodSeconds": self.period_seconds,
                              "failureThreshold": self.liveness_failure_threshold},
        }


# --- Validation helpers --------------------------------------------------------------

def check_pinned(image: str, *, require_digest: bool, field: str = "image") -> str | None:
    """The error for an image that is not pinned as required, else None."""
    if problem := image_problem(image):
        return f"{field}: {problem}"
    if require_digest and not has_digest(image):
        return (f"{field}: {image!r} is pinned by tag only; require_digest is on (staging, prod), "
                "so use repo@sha256:<digest> (or set require_digest=False in dev)")
    return None


def warn_if_tagged(image: str, resource: pulumi.Resource) -> None:
    if not has_digest(image):
        pulumi.log.warn(f"image {image!r} is pinned by tag, not digest: a re-pushed tag changes "
                        "what runs without a deploy (accepted because require_digest is off)",
                        resource=resource)


# --- Manifest fragments ---------------------------------------------------------------

def pod_security_context(run_as_user: int = RUN_AS_USER) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        # Mounted volumes (emptyDirs, secret files) are group-owned by the pod's group.
        "fsGroup": run_as_user,
        "seccompProfile": SECCOMP_PROFILE,
    }


def container_security_context() -> dict[str, Any]:
    """The Pod Security Standard "restricted" profile, plus a read-only root filesystem."""
    return {
        "runAsNonRoot": True,
        # setuid binaries in the image cannot gain more than the process has.
        "allowPrivilegeEscalation": False,
        "privileged": False,
        # Writes go to emptyDirs (writable_paths); the image stays as built.
        "readOnlyRootFilesystem": True,
        # A web server binds ports >= 1024 and needs no capability at all.
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": SECCOMP_PROFILE,
    }


def writable_volumes(container: str, paths: list[str], size_limit: str) -> tuple[list[dict], list[dict]]:
    """emptyDirs for the paths a container must write (the root filesystem is read-only)."""
    volumes, mounts = [], []
    for i, path in enumerate(paths):
        vol = f"{container}-writable-{i}"
        volumes.append({"name": vol, "emptyDir": {"sizeLimit": size_limit}})
        mounts.append({"name": vol, "mountPath": path})
    return volumes, mounts


def checkov_skips(reasons: dict[str, str]) -> dict[str, str]:
    """Annotations that skip a checkov check on this object, one with its reason each.
    checkov splits the value on '=', so a reason must not contain one."""
    out = {}
    for i, (check, reason) in enumerate(sorted(reasons.items()), start=1):
        assert "=" not in reason, reason
        out[f"checkov.io/skip{i}"] = f"{check}={reason}"
    return out


def labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": f"{name}-{pulumi.get_stack()}",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(name: str) -> dict[str, str]:
    """The immutable part of the labels (a Deployment's selector cannot change)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": f"{name}-{pulumi.get_stack()}"}


@dataclass(frozen=True)
class PodSource:
    """Env entries for a container and the volumes they come from (e.g. a CSI-mounted secret):
    what a component adds to a pod it does not own."""

    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    skips: dict[str, str] = field(default_factory=dict)  # checkov checks skipped, with the reason


def merge_sources(sources: Sequence[Any]) -> PodSource:
    """One PodSource of several (SecretWiring has the same four attributes)."""
    return PodSource(env=[e for s in sources for e in s.env], volumes=[v for s in sources for v in s.volumes],
                     mounts=[m for s in sources for m in s.mounts],
                     skips={k: v for s in sources for k, v in s.skips.items()})


class SecretWiring:
    """A Secret made from Pulumi secrets, and how a container sees it."""

    def __init__(self, resource_name: str, *, namespace: pulumi.Input[str], labels: dict[str, str],
                 secrets: dict[str, pulumi.Input[str]], secrets_as: str, container: str,
                 opts: pulumi.ResourceOptions) -> None:
        self.env: list[dict[str, Any]] = []
        self.volumes: list[dict[str, Any]] = []
        self.mounts: list[dict[str, Any]] = []
        self.skips: dict[str, str] = {}
        if not secrets:
            return
        # Auto-named on purpose: pulumi-kubernetes treats a Secret as immutable and
        # replaces it when a value changes, so the new one gets a new name, the pod
        # template that references it changes, and the pods roll onto the new value.
        # (A content hash in the name would publish a hash of the secret values.)
        secret = k8s.core.v1.Secret(
            resource_name,
            metadata={"namespace": namespace, "labels": labels},
            type="Opaque",
            # Values stay encrypted in Pulumi state even if a caller forgot to mark one secret.
            string_data={k: pulumi.Output.secret(v) for k, v in sorted(secrets.items())},
            opts=opts,
        )
        secret_name = secret.metadata.apply(lambda m: m.name)
        if secrets_as == "files":
            # Files, not env vars: env is inherited by every child process and shows
            # up in crash reports and /proc/<pid>/environ (checkov CKV_K8S_35).
            vol = f"{container}-secrets"
            self.volumes.append({"name": vol, "secret": {"secretName": secret_name,
                                                          "defaultMode": SECRET_FILE_MODE}})
            self.mounts.append({"name": vol, "mountPath": SECRETS_MOUNT_PATH, "readOnly": True})
        else:
            self.env = [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": k}}}
                        for k in sorted(secrets)]
            self.skips["CKV_K8S_35"] = ("secrets_as is env: the app reads its settings from environment "
                                        "variables by explicit opt-in")
