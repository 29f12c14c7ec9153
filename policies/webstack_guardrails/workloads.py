"""Kubernetes workloads: pods hardened (non-root, no privilege escalation, read-only root
filesystem, resources set, images by digest in prod), HPAs that keep two pods in prod, and no
database reachable through a LoadBalancer or NodePort Service."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs,
                           StackValidationPolicy)

from webstack_guardrails.base import Stage, config_fix, finding, get, items, kit_key, known

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
HPA_KIND = "HorizontalPodAutoscaler"
SERVICE = "kubernetes:core/v1:Service"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
EXPOSED_SERVICE_TYPES = ("LoadBalancer", "NodePort")
# Database ports (PostgreSQL, MySQL, MongoDB, Redis) and images.
DATABASE_PORTS = (5432, 3306, 27017, 6379)
DATABASE_IMAGES = re.compile(r"(^|/)(postgres|postgresql|mysql|mariadb|mongo|mongodb|redis|valkey)([:@]|$)")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

WEB_SERVICE = "webstack:components:WebService"
RELEASE_JOB = "webstack:components:ReleaseJob"
IN_CLUSTER_POSTGRES = "webstack:components:InClusterPostgres"


def kubernetes_kind(resource_type: str) -> str | None:
    """`Deployment` for kubernetes:apps/v1:Deployment; None for other providers' types."""
    if not resource_type.startswith("kubernetes:"):
        return None
    return resource_type.rsplit(":", 1)[-1]


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(kubernetes_kind(resource_type) or "")
    return get(props, *path) if path else None


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, container) for each init container and container of a pod spec."""
    for field, label in (("initContainers", "init container"), ("containers", "container")):
        for c in items(get(spec, field)):
            yield f"{label} '{get(c, 'name', default='?')}'", c


def container_setting(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A security setting as Kubernetes resolves it: the container's, else the pod's."""
    value = get(container, "securityContext", key)
    return get(spec, "securityContext", key) if value is None else value


def pod_policy(name: str, description: str, check) -> ResourceValidationPolicy:
    """A rule applied to every container of every kind of workload; `check(spec, container)`
    yields (problem, fix) pairs."""
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        spec = pod_spec(args.resource_type, args.props)
        if spec is None:
            return
        for label, container in containers(spec):
            for problem, fix in check(args, spec, container):
                report_violation(finding(args.resource_type, args.name, f"{label}: {problem}", fix), None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


def pods_run_as_non_root(stage: Stage) -> ResourceValidationPolicy:
    def check(args, spec, container):
        user = container_setting(spec, container, "runAsUser")
        non_root = container_setting(spec, container, "runAsNonRoot")
        if user == 0:
            yield ("runs as uid 0 (root)", "set securityContext.runAsUser to a non-zero uid (the kit uses 10001) "
                   "and build the image to run as that user")
        elif non_root is not True and user is None:
            yield ("may run as root: neither runAsNonRoot: true nor a non-zero runAsUser is set, so the "
                   "image's USER decides", "set securityContext.runAsNonRoot: true (and runAsUser: 10001)")
    return pod_policy("pods-run-as-non-root", "Containers never run as root.", check)


def pods_no_privilege_escalation(stage: Stage) -> ResourceValidationPolicy:
    def check(args, spec, container):
        context = get(container, "securityContext", default={})
        if get(context, "privileged") is True:
            yield "is privileged: it has every capability of the node's root", "remove securityContext.privileged"
        if get(context, "allowPrivilegeEscalation") is not False:
            yield ("allowPrivilegeEscalation is not false: a setuid binary in the image can gain privileges",
                   "set securityContext.allowPrivilegeEscalation: false")
    return pod_policy("pods-no-privilege-escalation", "Containers cannot gain privileges.", check)


def pods_read_only_root_filesystem(stage: Stage) -> ResourceValidationPolicy:
    def check(args, spec, container):
        if get(container, "securityContext", "readOnlyRootFilesystem") is not True:
            yield ("its root filesystem is writable: an intruder can change the image's files",
                   "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it writes "
                   "(the kit's app.writable_paths)")
    return pod_policy("pods-read-only-root-filesystem", "Containers have a read-only root filesystem.", check)


def pods_resources_set(stage: Stage) -> ResourceValidationPolicy:
    # Requests let the scheduler place the pod and the HPA compute utilisation; a memory limit
    # keeps one leaking pod from starving its node. A CPU limit is not required: throttling a
    # latency-sensitive server is a choice, not a guardrail.
    wanted = (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))

    def check(args, spec, container):
        missing = [f"{a}.{b}" for a, b in wanted if get(container, "resources", a, b) is None]
        if missing:
            yield (f"resources {', '.join(missing)} not set",
                   "set resources.requests (cpu, memory) and resources.limits.memory (the kit's app.resources)")
    return pod_policy("pods-resources-set", "Containers request CPU and memory and limit memory.", check)


def image_fix(stage: Stage, args: ResourceValidationArgs, container: Mapping[str, Any]) -> str:
    generic = "pin the image by digest: <repository>@sha256:<digest>"
    if kit_key(stage, args.urn, IN_CLUSTER_POSTGRES, "{framework}.database.local_image"):
        return config_fix(stage, args.urn, IN_CLUSTER_POSTGRES, "{framework}.database.local_image",
                          "<repository>@sha256:<digest>", generic)
    if get(container, "name") in ("app", "release", "init") and (
            kit_key(stage, args.urn, WEB_SERVICE, "app.image") or kit_key(stage, args.urn, RELEASE_JOB, "app.image")):
        return "pulumi config set --path 'webstack:app.image' <repository>@sha256:<digest>"
    return generic


def pods_images_by_digest(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        spec = pod_spec(args.resource_type, args.props)
        if spec is None:
            return
        stage.prod_only(args)
        for label, container in containers(spec):
            image = str(get(container, "image", default=""))
            if not DIGEST.search(image):
                report_violation(finding(
                    args.resource_type, args.name, f"{label}: image {image!r} is not pinned by digest, so a "
                    "re-pushed tag changes what runs without a deploy", image_fix(stage, args, container)), None)

    return ResourceValidationPolicy(name="pods-images-by-digest", description="In prod, every container image "
                                    "is pinned by digest.", validate=validate)


def hpa_min_replicas(stage: Stage) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if kubernetes_kind(args.resource_type) != HPA_KIND:
            return
        stage.prod_only(args)
        # Kubernetes defaults minReplicas to 1.
        minimum = get(args.props, "spec", "minReplicas", default=1)
        if minimum < 2:
            report_violation(finding(
                args.resource_type, args.name, f"minReplicas is {minimum}: one pod's restart or node drain is "
                "an outage", config_fix(stage, args.urn, WEB_SERVICE, "{framework}.autoscaling.min_replicas", "2",
                                        "set spec.minReplicas to 2 or more")), None)

    return ResourceValidationPolicy(name="hpa-min-replicas", description="In prod, autoscaled workloads keep at "
                                    "least two pods.", validate=validate)


# --- no database behind a public Service ------------------------------------------------------

def is_database_workload(props: Mapping[str, Any]) -> bool:
    """A StatefulSet whose containers run a database image or listen on a database port."""
    spec = get(props, "spec", "template", "spec", default={})
    for _, container in containers(spec):
        if DATABASE_IMAGES.search(str(get(container, "image", default=""))):
            return True
        if any(get(p, "containerPort") in DATABASE_PORTS for p in items(get(container, "ports"))):
            return True
    return False


def selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def database_ports(ports: list[Any]) -> list[int]:
    return [p for port in ports for p in (get(port, "port"), get(port, "targetPort")) if p in DATABASE_PORTS]


def no_public_database_service(stage: Stage) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        databases = []  # (name, namespace, pod labels) of each database StatefulSet
        for r in args.resources:
            if r.resource_type == STATEFULSET and known(lambda r=r: is_database_workload(r.props), False):
                databases.append((r.name, known(lambda r=r: get(r.props, "metadata", "namespace"), None),
                                  known(lambda r=r: dict(get(r.props, "spec", "template", "metadata", "labels",
                                                             default={})), {})))
        for service in (r for r in args.resources if r.resource_type == SERVICE):
            kind = known(lambda s=service: get(s.props, "spec", "type"), None)
            if kind not in EXPOSED_SERVICE_TYPES:
                continue
            selector = known(lambda s=service: dict(get(s.props, "spec", "selector", default={})), {})
            namespace = known(lambda s=service: get(s.props, "metadata", "namespace"), None)
            behind = [name for name, ns, labels in databases
                      if selects(selector, labels) and (namespace is None or ns is None or ns == namespace)]
            ports = known(lambda s=service: database_ports(items(get(s.props, "spec", "ports"))), [])
            reasons = ([f"it selects the pods of database StatefulSet(s) {', '.join(repr(n) for n in behind)}"]
                       if behind else []) + ([f"it exposes database port(s) {ports}"] if ports else [])
            if reasons:
                report_violation(finding(
                    service.resource_type, service.name, f"a {kind} Service in front of a database ("
                    f"{'; '.join(reasons)}): reachable from outside the cluster",
                    "make it a ClusterIP Service and let only the app's pods in (a NetworkPolicy); reach it "
                    "yourself with kubectl port-forward"), service.urn)

    return StackValidationPolicy(name="no-public-database-service", description="No LoadBalancer or NodePort "
                                 "Service in front of a database.", validate=validate)


POLICIES = (pods_run_as_non_root, pods_no_privilege_escalation, pods_read_only_root_filesystem,
            pods_resources_set, pods_images_by_digest, hpa_min_replicas, no_public_database_service)
