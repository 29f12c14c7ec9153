"""An HTTP service on Kubernetes: autoscaled, spread, restricted, and rolled out and
scaled in without dropping a request."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.k8s_pod import (
    AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
    IMAGE_PULL_POLICY,
    RUN_AS_USER,
    HealthChecks,
    Resources,
    PodField,
    PodSource,
    SecretWiring,
    check_pinned,
    checkov_skips,
    container_security_context,
    content_hash,
    labels as make_labels,
    merge_sources,
    ordered_env,
    pod_field_entries,
    pod_security_context,
    selector as make_selector,
    warn_if_tagged,
    writable_volumes,
)
from components.types import (AbsolutePath, AcmCertificateArn, DnsLabel, DomainName, EnvName, ImageRef, Quantity,
                              UrlPath, dns_label, dns_label_problem, env_names_problem, has_digest)

__all__ = [
    "AlbIngress", "Autoscaling", "ClassIngress", "ConfigFiles", "ExtraContainer", "HealthChecks",
    "Resources", "SharedDir", "WebService", "WebServiceArgs", "termination_grace_period",
]

APP_CONTAINER = "app"
# Runs `init_command` in the app's image before the pod's containers start.
INIT_CONTAINER = "init"
# New pods must be Ready before an old one goes: capacity never drops during a rollout.
MAX_UNAVAILABLE = 0
MAX_SURGE = "25%"
# One voluntary disruption at a time, whatever the replica count: node drains always
# progress (minAvailable 1 would block nothing at 10 replicas and everything at 1),
# and capacity drops by at most one pod.
PDB_MAX_UNAVAILABLE = 1
# Pods that are not Ready anyway must not block a node drain.
UNHEALTHY_POD_EVICTION_POLICY = "AlwaysAllow"
# Hostname spread is a hard rule (one node loss takes at most ~1/N of the pods). Zone
# spread is a preference: laptop and single-zone clusters have no zone label, and a hard
# rule there leaves pods Pending.
TOPOLOGY_SPREAD = (("kubernetes.io/hostname", "DoNotSchedule"),
                   ("topology.kubernetes.io/zone", "ScheduleAnyway"))
# Modern TLS only (TLS 1.3 and 1.2 with forward secrecy).
ALB_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def termination_grace_period(prestop_delay: int, server_graceful_timeout: int, margin: int) -> int:
    """Seconds Kubernetes waits before SIGKILL, counted from the moment the pod is deleted.

        t = 0                          pod is Terminating; the endpoints controller removes it from
                                       the EndpointSlices, but kube-proxy / the ALB take seconds to
                                       stop sending, so the pod must keep serving:
        t = 0 .. prestop_delay         preStop `sleep` runs, the server still accepts requests;
        t = prestop_delay              the kubelet sends SIGTERM; the server stops accepting and
                                       finishes in-flight requests within its graceful timeout;
        t = prestop + graceful         the server has exited;
        + margin                       for the process to flush and exit before SIGKILL.

    The preStop hook's time counts against the grace period, so the period is the sum.
    """
    return prestop_delay + server_graceful_timeout + margin


class Autoscaling(BaseModel):
    """HorizontalPodAutoscaler bounds and targets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(2, ge=1, le=1000, description="Fewest pods, count.")
    max_replicas: int = Field(10, ge=1, le=1000, description="Most pods, count.")
    cpu_target_percent: int = Field(
        70, ge=10, le=100, description="Average CPU use of the app container, percent of its cpu_request.")
    memory_target_percent: int | None = Field(
        None, ge=10, le=100, description="Average memory use, percent of memory_request; None to ignore memory.")
    scale_down_stabilization_seconds: int = Field(
        300, ge=0, le=3600, description="Seconds of lower load before pods are removed (stops flapping).")

    @model_validator(mode="after")
    def _min_below_max(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas}); "
                             "lower min_replicas or raise max_replicas")
        return self


class ExtraContainer(BaseModel):
    """Another container in the same pod, e.g. Nginx in front of Gunicorn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DnsLabel = Field(description="Container name (DNS label), unique in the pod.")
    image: ImageRef = Field(description="Image by digest (repo@sha256:...), or by tag in dev.")
    port: int = Field(ge=1024, le=65535, description="TCP port it listens on (>= 1024: no capability to bind).")
    command: list[str] | None = Field(None, description="Entrypoint override.")
    args: list[str] | None = Field(None, description="Arguments override.")
    env: dict[EnvName, str] = Field({}, description="Plain environment variables.")
    health_path: UrlPath | None = Field(
        None, description="HTTP path for its readiness and liveness probes; None probes the TCP port.")
    resources: Resources = Field(
        Resources(cpu_request="50m", cpu_limit="500m", memory_request="64Mi", memory_limit="128Mi"),
        description="CPU and memory of this container.")
    writable_paths: list[AbsolutePath] = Field(["/tmp"], description="Directories given a writable emptyDir.")
    pre_stop_command: list[str] | None = Field(
        None, min_length=1, description="preStop exec hook, instead of the pod's preStop sleep: e.g. a graceful "
        "stop for a server that SIGTERM stops at once. Its time counts against the pod's grace period.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value in (APP_CONTAINER, INIT_CONTAINER):
            raise ValueError(f"{value!r} is the app's own container; choose another name")
        return value


class SharedDir(BaseModel):
    """An emptyDir several containers of the pod mount, e.g. a unix socket between Nginx and the app."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: dns_label(20) = Field(description="Volume name (DNS label, <= 20 chars).")  # type: ignore[valid-type]
    mount_path: AbsolutePath = Field(description="Where every listed container sees it.")
    containers: list[str] = Field(min_length=1, description="Containers mounting it ('init' for init_command).")
    memory: bool = Field(False, description="Backed by memory (tmpfs): counts against the containers' memory "
                                            "limits; for sockets and heartbeat files.")
    size_limit: Quantity = Field("64Mi", description="Size limit, bytes.")


class ConfigFiles(BaseModel):
    """Files mounted read-only from a ConfigMap whose name carries a hash of the content,
    so a changed file rolls the pods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: dns_label(20) = Field(  # type: ignore[valid-type]
        description="Short name of this set of files (DNS label, <= 20 chars), e.g. 'nginx'.")
    mount_path: AbsolutePath = Field(description="Directory the files appear in; it hides what the image has there.")
    files: dict[str, str] = Field(min_length=1, description="File name -> content.")
    containers: list[str] = Field([APP_CONTAINER], min_length=1, description="Containers that mount them.")

    @field_validator("files")
    @classmethod
    def _file_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if "/" in k or k in {".", ".."} or not k]
        if bad:
            raise ValueError(f"files: {bad} are not file names (no '/')")
        return value


class AlbIngress(BaseModel):
    """An AWS Application Load Balancer sending straight to pod IPs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["alb"] = "alb"
    host: DomainName | None = Field(None, description="DNS name served; None answers any host.")
    certificate_arn: AcmCertificateArn | None = Field(
        None, description="ACM certificate for HTTPS; with it, HTTP redirects to HTTPS.")
    scheme: Literal["internet-facing", "internal"] = Field("internet-facing", description="Who can reach the ALB.")
    ingress_class_name: str = Field("alb", description="IngressClass of the ALB controller (EKS Auto Mode: alb).")
    ssl_policy: str = Field(ALB_SSL_POLICY, description="ALB TLS policy.")


class ClassIngress(BaseModel):
    """An Ingress for an in-cluster controller (Nginx, Traefik) picked by class."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["class"] = "class"
    ingress_class_name: str = Field("nginx", description="IngressClass name.")
    host: DomainName | None = Field(None, description="DNS name served; None answers any host.")
    tls_secret_name: str | None = Field(None, description="Secret (type kubernetes.io/tls) for HTTPS.")


Ingress = Annotated[AlbIngress | ClassIngress, Field(discriminator="kind")]


class WebServiceArgs(BaseModel):
    """One HTTP app: image, server port, probes, scaling, shutdown timing, and how traffic gets in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: ImageRef = Field(description="App image by digest (repo@sha256:...); a tag only when require_digest is off.")
    require_digest: bool = Field(
        True, description="Refuse images pinned by tag only (staging, prod); off in dev, with a warning.")
    port: int | None = Field(8000, ge=1024, le=65535, description="TCP port the app server listens on; None when "
                             "it listens only on a unix socket behind another container (serve_from).")
    probe_port: int | None = Field(
        None, ge=1024, le=65535, description="Port the app container's probes call; default: `port`. The port of a "
        "proxy in front of the app, so the probes test the path requests take.")
    init_command: list[str] | None = Field(
        None, min_length=1, description="Run in the app's image, with its env, before the pod's containers start "
        "(e.g. collecting static files into a SharedDir).")
    shared_dirs: list[SharedDir] = Field([], description="emptyDirs shared by containers of the pod.")
    command: list[str] | None = Field(None, description="Entrypoint override of the app container.")
    args: list[str] | None = Field(None, description="Arguments override of the app container.")
    env: dict[EnvName, str] = Field({}, description="Plain environment variables (secrets go to `secrets=`).")
    pod_field_env: dict[EnvName, PodField] = Field(
        {}, description="Environment variables the app container reads from its own pod (downward API), "
        "name -> field, e.g. {'POD_NAME': 'metadata.name'}. They come first, so `env` values may say $(POD_NAME).")
    resources: Resources = Field(Resources(), description="CPU and memory of the app container.")
    health: HealthChecks = Field(HealthChecks(), description="Probe paths and timing (app container).")
    autoscaling: Autoscaling | None = Field(
        Autoscaling(), description="HPA settings; None for a fixed `replicas` count.")
    replicas: int = Field(2, ge=1, le=1000, description="Fixed pod count, used only when autoscaling is None.")
    allow_single_replica: bool = Field(
        False, description="Accept one replica (dev only): a rollout or node drain then drops requests.")
    prestop_delay_seconds: int = Field(
        15, ge=0, le=120, description="Seconds the pod keeps serving after it is marked Terminating, "
        "while kube-proxy and the load balancer stop sending to it.")
    server_graceful_timeout_seconds: int = Field(
        30, ge=1, le=600, description="Seconds the server takes after SIGTERM to finish in-flight "
        "requests (Gunicorn graceful_timeout, Uvicorn timeout_graceful_shutdown): pass the same value to it.")
    shutdown_margin_seconds: int = Field(5, ge=1, le=60, description="Seconds added before SIGKILL.")
    extra_containers: list[ExtraContainer] = Field([], description="Other containers of the pod (e.g. Nginx).")
    serve_from: str = Field(APP_CONTAINER, description="Container whose port receives the Service's traffic.")
    config_files: list[ConfigFiles] = Field([], description="Config files mounted from ConfigMaps.")
    metrics_port: int | None = Field(
        None, ge=1024, le=65535, description="TCP port serving Prometheus /metrics (Service port 'metrics').")
    service_port: int = Field(80, ge=1, le=65535, description="Port of the ClusterIP Service.")
    ingress: Ingress | None = Field(None, description="How traffic gets in; None keeps it cluster-internal.")
    secrets_as: Literal["files", "env"] = Field(
        "files", description="How `secrets=` reach the app: files under /var/run/secrets/app, or env vars.")
    writable_paths: list[AbsolutePath] = Field(["/tmp"], description="App directories given a writable emptyDir.")
    writable_size_limit: Quantity = Field("256Mi", description="Size limit of each writable emptyDir, bytes.")
    run_as_user: int = Field(RUN_AS_USER, ge=10000, description="UID (and GID) the pod runs as.")
    component: str = Field("web", description="Value of the app.kubernetes.io/component label.")
    kubernetes_api_access: bool = Field(
        False, description="Mount the ServiceAccount token (only for pods calling the Kubernetes API).")

    @model_validator(mode="after")
    def _consistent(self) -> "WebServiceArgs":
        problems = []
        for field, image in [("image", self.image)] + [
                (f"extra_containers.{c.name}.image", c.image) for c in self.extra_containers]:
            if problem := check_pinned(image, require_digest=self.require_digest, field=field):
                problems.append(problem)
        if not self.allow_single_replica:
            if self.autoscaling and self.autoscaling.min_replicas < 2:
                problems.append(
                    f"autoscaling.min_replicas: {self.autoscaling.min_replicas} is below 2; one pod drops "
                    "requests on every rollout and node drain (set allow_single_replica=True in dev only)")
            if self.autoscaling is None and self.replicas < 2:
                problems.append(f"replicas: {self.replicas} is below 2; set allow_single_replica=True in dev only")
        names = [APP_CONTAINER] + [c.name for c in self.extra_containers]
        if len(set(names)) != len(names):
            problems.append(f"extra_containers: container names {names} are not unique")
        if self.serve_from not in names:
            problems.append(f"serve_from: {self.serve_from!r} is not a container of the pod {names}")
        if self.port is None and (self.serve_from == APP_CONTAINER or self.probe_port is None):
            problems.append("port: None (the app on a unix socket) needs serve_from another container and a "
                            "probe_port through it")
        mounting = names + ([INIT_CONTAINER] if self.init_command else [])
        for d in self.shared_dirs:
            if unknown := sorted(set(d.containers) - set(mounting)):
                problems.append(f"shared_dirs.{d.name}.containers: {unknown} are not containers of the pod "
                                f"{mounting}")
        if len({d.name for d in self.shared_dirs}) != len(self.shared_dirs):
            problems.append("shared_dirs: names are not unique")
        ports = [p for p in [self.port] + [c.port for c in self.extra_containers] if p is not None]
        if len(set(ports)) != len(ports):
            problems.append(f"extra_containers: ports {ports} collide (the pod shares one network namespace)")
        roles = [c.role for c in self.config_files]
        if len(set(roles)) != len(roles):
            problems.append(f"config_files: roles {roles} are not unique")
        for c in self.config_files:
            unknown = sorted(set(c.containers) - set(names))
            if unknown:
                problems.append(f"config_files.{c.role}.containers: {unknown} are not containers of the pod {names}")
        if clash := sorted(set(self.pod_field_env) & set(self.env)):
            problems.append(f"pod_field_env: {clash} are also plain env vars; keep each name in one place")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def termination_grace_period_seconds(self) -> int:
        return termination_grace_period(self.prestop_delay_seconds, self.server_graceful_timeout_seconds,
                                         self.shutdown_margin_seconds)

    @property
    def serving_port(self) -> int:
        if self.serve_from == APP_CONTAINER:
            assert self.port is not None  # the validator requires it
            return self.port
        return next(c.port for c in self.extra_containers if c.name == self.serve_from)


# --- specs: pure functions from values to the objects' specs -----------------------------
# Names the cluster or other resources assign (a ServiceAccount's, a ConfigMap's, a Secret's)
# come in as values; they may be Outputs, which these functions only place, never inspect.

def _http_probes(c: ExtraContainer, health: HealthChecks) -> dict[str, Any]:
    """Readiness and liveness of a sidecar: its health path, or its TCP port, on the app's timing."""
    check = ({"httpGet": {"path": c.health_path, "port": c.port, "scheme": "HTTP"}} if c.health_path
             else {"tcpSocket": {"port": c.port}})
    timing = {"periodSeconds": health.period_seconds, "timeoutSeconds": health.timeout_seconds}
    return {"readinessProbe": {**check, **timing, "failureThreshold": health.readiness_failure_threshold},
            "livenessProbe": {**check, **timing, "failureThreshold": health.liveness_failure_threshold}}


def app_env(args: WebServiceArgs, secret_env: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The app container's env in the order Kubernetes expands `$(NAME)`: a reference resolves
    only to a variable listed earlier, so pod fields and Secret keys come first, then plain values,
    each after the variables it refers to."""
    return ordered_env(args.env, first=pod_field_entries(args.pod_field_env) + list(secret_env))


def pod_spec(args: WebServiceArgs, *, service_account_name: pulumi.Input[str], selector: dict[str, str],
             config_maps: Mapping[str, pulumi.Input[str]] | None = None,
             secret_volumes: Sequence[dict[str, Any]] = (), secret_mounts: Sequence[dict[str, Any]] = (),
             secret_env: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The pod template's spec: restricted containers, probes, spread, and the grace period.

    `config_maps`: role of each `args.config_files` entry -> its ConfigMap's name.
    `secret_*`: how the Secret reaches the app container (SecretWiring)."""
    config_maps = config_maps or {}
    volumes: list[dict[str, Any]] = list(secret_volumes)
    mounts: dict[str, list[dict[str, Any]]] = {APP_CONTAINER: list(secret_mounts),
                                               INIT_CONTAINER: list(secret_mounts)}
    for c in args.extra_containers:
        mounts[c.name] = []
    for files in args.config_files:
        vol = f"config-{files.role}"
        volumes.append({"name": vol, "configMap": {"name": config_maps[files.role]}})
        for name in files.containers:
            mounts[name].append({"name": vol, "mountPath": files.mount_path, "readOnly": True})
    for d in args.shared_dirs:
        vol = f"shared-{d.name}"
        volumes.append({"name": vol, "emptyDir": {"sizeLimit": d.size_limit, **({"medium": "Memory"} if d.memory
                                                                                 else {})}})
        for name in d.containers:
            mounts[name].append({"name": vol, "mountPath": d.mount_path})
    # Every container keeps serving through the endpoint-removal window (see
    # termination_grace_period); `sleep` needs no shell in the image (GA in 1.34).
    lifecycle = {"preStop": {"sleep": {"seconds": args.prestop_delay_seconds}}} \
        if args.prestop_delay_seconds else None

    def container(name: str, image: str, command, cargs, env: list[dict], ports: list[dict],
                  resources: Resources, probes: dict, writable: list[str],
                  pre_stop: list[str] | None = None) -> dict[str, Any]:
        wvols, wmounts = writable_volumes(name, writable, args.writable_size_limit)
        volumes.extend(wvols)
        spec: dict[str, Any] = {
            "name": name,
            "image": image,
            "imagePullPolicy": IMAGE_PULL_POLICY,
            "ports": ports,
            "env": env,
            "resources": resources.to_k8s(),
            "securityContext": container_security_context(),
            "volumeMounts": mounts[name] + wmounts,
            **probes,
        }
        if command:
            spec["command"] = command
        if cargs:
            spec["args"] = cargs
        if pre_stop:
            spec["lifecycle"] = {"preStop": {"exec": {"command": pre_stop}}}
        elif lifecycle:
            spec["lifecycle"] = lifecycle
        return spec

    # Port names are unique in the pod: `http` is the one the Service targets.
    def port_name(container: str) -> str:
        return "http" if container == args.serve_from else container[:15].rstrip("-")

    ports: dict[str, list[dict]] = {APP_CONTAINER: [{"name": port_name(APP_CONTAINER), "containerPort": args.port,
                                                     "protocol": "TCP"}] if args.port is not None else []}
    for c in args.extra_containers:
        ports[c.name] = [{"name": port_name(c.name), "containerPort": c.port, "protocol": "TCP"}]
    if args.metrics_port and args.metrics_port not in {args.port, *(c.port for c in args.extra_containers)}:
        # On the container the Service targets: it serves /metrics there (e.g. a proxy's second listener).
        ports[args.serve_from].append({"name": "metrics", "containerPort": args.metrics_port, "protocol": "TCP"})
    probe_port = args.probe_port or args.port
    assert probe_port is not None  # the validator requires one
    containers = [container(APP_CONTAINER, args.image, args.command, args.args, app_env(args, secret_env),
                            ports[APP_CONTAINER], args.resources, args.health.probes(probe_port),
                            args.writable_paths)]
    containers += [container(c.name, c.image, c.command, c.args,
                             [{"name": k, "value": v} for k, v in sorted(c.env.items())],
                             ports[c.name], c.resources, _http_probes(c, args.health), c.writable_paths,
                             c.pre_stop_command)
                   for c in args.extra_containers]
    init: list[dict[str, Any]] = []
    if args.init_command:
        spec = container(INIT_CONTAINER, args.image, args.init_command, None, app_env(args, secret_env), [],
                         args.resources, {}, args.writable_paths)
        del spec["ports"]
        spec.pop("lifecycle", None)  # init containers take no lifecycle hooks
        init.append(spec)
    return {
        "serviceAccountName": service_account_name,
        "automountServiceAccountToken": args.kubernetes_api_access or AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
        # No FOO_SERVICE_HOST/PORT env vars for every Service in the namespace:
        # they leak topology and can clash with the app's own settings.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(args.run_as_user),
        "terminationGracePeriodSeconds": args.termination_grace_period_seconds,
        "topologySpreadConstraints": [
            {"topologyKey": key, "maxSkew": 1, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": selector},
             # Count only pods of the same revision, so a rollout is not skewed by old pods.
             "matchLabelKeys": ["pod-template-hash"]}
            for key, when in TOPOLOGY_SPREAD],
        **({"initContainers": init} if init else {}),
        "containers": containers,
        "volumes": volumes,
    }


def deployment_spec(args: WebServiceArgs, *, labels: dict[str, str], selector: dict[str, str],
                    pod: dict[str, Any]) -> dict[str, Any]:
    """Rolling updates that never lower capacity; replicas left to the HPA when there is one."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 5,
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxUnavailable": MAX_UNAVAILABLE, "maxSurge": MAX_SURGE}},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if args.autoscaling is None:
        spec["replicas"] = args.replicas
    # else: `replicas` stays unset so the HPA owns it; a value here would reset the
    # pod count on every `pulumi up`.
    return spec


def deployment_skips(args: WebServiceArgs, secret_skips: Mapping[str, str]) -> dict[str, str]:
    """checkov checks this Deployment skips, each with its reason."""
    skips = dict(secret_skips)
    if not all(has_digest(i) for i in [args.image] + [c.image for c in args.extra_containers]):
        skips["CKV_K8S_43"] = "dev image pinned by tag (require_digest off); staging and prod require a digest"
    return skips


def metrics_port_name(args: WebServiceArgs) -> str:
    """The Service port serving /metrics: `metrics` when it is not the serving port, else `http`."""
    return "metrics" if args.metrics_port and args.metrics_port != args.serving_port else "http"


def service_spec(args: WebServiceArgs, *, selector: dict[str, str]) -> dict[str, Any]:
    """A ClusterIP Service on the serving container, with a `metrics` port when it differs."""
    ports = [{"name": "http", "port": args.service_port, "targetPort": args.serving_port, "protocol": "TCP"}]
    if metrics_port_name(args) == "metrics":
        ports.append({"name": "metrics", "port": args.metrics_port, "targetPort": args.metrics_port,
                      "protocol": "TCP"})
    return {"type": "ClusterIP", "selector": selector, "ports": ports}


def hpa_spec(auto: Autoscaling, *, deployment_name: pulumi.Input[str]) -> dict[str, Any]:
    """Scale on the app container's own CPU (and memory), out fast and in one pod a minute."""
    # ContainerResource: the app container's own use, so an idle sidecar (Nginx)
    # does not dilute the average and delay scale-out.
    metrics = [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": APP_CONTAINER,
        "target": {"type": "Utilization", "averageUtilization": auto.cpu_target_percent}}}]
    if auto.memory_target_percent is not None:
        metrics.append({"type": "ContainerResource", "containerResource": {
            "name": "memory", "container": APP_CONTAINER,
            "target": {"type": "Utilization", "averageUtilization": auto.memory_target_percent}}})
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
        "minReplicas": auto.min_replicas,
        "maxReplicas": auto.max_replicas,
        "metrics": metrics,
        "behavior": {"scaleDown": {
            "stabilizationWindowSeconds": auto.scale_down_stabilization_seconds,
            # Scale in gently: each removed pod goes through the graceful shutdown.
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }},
    }


def pdb_spec(selector: dict[str, str]) -> dict[str, Any]:
    return {"selector": {"matchLabels": selector}, "maxUnavailable": PDB_MAX_UNAVAILABLE,
            "unhealthyPodEvictionPolicy": UNHEALTHY_POD_EVICTION_POLICY}


def ingress_annotations(args: WebServiceArgs, certificate_arn: pulumi.Input[str] | None = None,
                        waf_acl_arn: pulumi.Input[str] | None = None) -> dict[str, pulumi.Input[str]]:
    """What the AWS load balancer controller reads: pod-IP targets, the readiness path as the
    health check, deregistration as long as the pod serves after it is told to stop, HTTPS
    with a modern TLS policy when there is a certificate (`certificate_arn`, e.g. one the program
    issues, or the Args'), and a REGIONAL WAF web ACL in front when `waf_acl_arn` is given.
    None for a class ingress."""
    ing = args.ingress
    if not isinstance(ing, AlbIngress):
        return {}
    certificate = certificate_arn if certificate_arn is not None else ing.certificate_arn
    https = certificate is not None
    annotations = {
        "alb.ingress.kubernetes.io/scheme": ing.scheme,
        # Straight to pod IPs: no extra hop through a NodePort, and readiness
        # gates the ALB's targets directly.
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/healthcheck-path": args.health.readiness_path,
        "alb.ingress.kubernetes.io/healthcheck-port": "traffic-port",
        # Deregistration waits for in-flight requests no longer than the pod serves them.
        "alb.ingress.kubernetes.io/target-group-attributes":
            "deregistration_delay.timeout_seconds="
            f"{args.prestop_delay_seconds + args.server_graceful_timeout_seconds}",
        "alb.ingress.kubernetes.io/listen-ports":
            json.dumps([{"HTTP": 80}, {"HTTPS": 443}] if https else [{"HTTP": 80}]),
    }
    if https:
        annotations.update({
            "alb.ingress.kubernetes.io/certificate-arn": certificate,
            "alb.ingress.kubernetes.io/ssl-redirect": "443",
            "alb.ingress.kubernetes.io/ssl-policy": ing.ssl_policy,
        })
    if waf_acl_arn is not None:
        annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"] = waf_acl_arn
    return annotations


def ingress_is_https(ing: AlbIngress | ClassIngress, certificate_arn: pulumi.Input[str] | None = None) -> bool:
    if certificate_arn is not None:
        return True
    return (ing.certificate_arn if isinstance(ing, AlbIngress) else ing.tls_secret_name) is not None


def ingress_spec(ing: AlbIngress | ClassIngress, *, service_name: pulumi.Input[str]) -> dict[str, Any]:
    """One rule sending every path of the host to the Service's `http` port."""
    rule: dict[str, Any] = {"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": service_name, "port": {"name": "http"}}}}]}}
    if ing.host:
        rule["host"] = ing.host
    spec: dict[str, Any] = {"ingressClassName": ing.ingress_class_name, "rules": [rule]}
    if isinstance(ing, ClassIngress) and ing.tls_secret_name is not None:
        spec["tls"] = [{"secretName": ing.tls_secret_name, **({"hosts": [ing.host]} if ing.host else {})}]
    return spec


def _name_of(resource: pulumi.CustomResource) -> pulumi.Output[str]:
    return resource.metadata.apply(lambda m: m.name)  # type: ignore[attr-defined]


class WebService(pulumi.ComponentResource):
    """Deployment + Service + HPA + PDB (+ Ingress) for one HTTP app: restricted pods
    (non-root, read-only root, no capabilities), images by digest, zero-downtime rollouts.

    Needs in the cluster: an IngressClass `args.ingress.ingress_class_name` served by a
    controller when `ingress` is set; metrics-server (or another resource-metrics API) for the
    HPA to act; the namespace's Pod Security admission lets these restricted pods in."""

    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    service_account_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    ingress_hostname: pulumi.Output[str | None]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: WebServiceArgs, *,
                 namespace: pulumi.Input[str],
                 secrets: Mapping[str, pulumi.Input[str]] | None = None,
                 service_account_annotations: Mapping[str, pulumi.Input[str]] | None = None,
                 sources: Sequence[PodSource] = (),
                 depends_on: Sequence[pulumi.Resource] | None = None,
                 ingress_certificate_arn: pulumi.Input[str] | None = None,
                 ingress_depends_on: Sequence[pulumi.Resource] = (),
                 ingress_waf_acl_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`secrets`: env var name -> Pulumi secret (see `secrets_as`).
        `ingress_certificate_arn`: an ALB certificate known only as an Output (one the program issues).
        `ingress_depends_on`: what must exist before the Ingress (the IngressClass and its parameters).
        `ingress_waf_acl_arn`: a REGIONAL WAF web ACL the ALB puts in front (AlbIngress only).
        `sources`: more env for the app container and the volumes it comes from (e.g.
        `SecretsManagerEnv.pod_source`); pass what creates them in `depends_on` too.
        `service_account_annotations`: e.g. the IRSA role ARN.
        `depends_on`: resources the rollout waits for, e.g. ReleaseJobs; a failed Job
        fails the update before the Deployment changes, so the old pods keep serving."""
        super().__init__("webstack:components:WebService", name, None, opts)
        if problem := dns_label_problem(name, 40):
            raise ValueError(f"WebService name: {problem}")
        secrets = dict(secrets or {})
        if problem := env_names_problem(list(secrets)):
            raise ValueError(f"secrets: {problem}")
        if clash := sorted(set(secrets) & (set(args.env) | set(args.pod_field_env))):
            raise ValueError(f"secrets: {clash} are also plain env vars; keep each name in one place")
        if not args.require_digest:
            for image in [args.image] + [c.image for c in args.extra_containers]:
                warn_if_tagged(image, self)

        child = pulumi.ResourceOptions(parent=self)
        labels = make_labels(name, args.component)
        match = make_selector(name)
        ns = pulumi.Output.from_input(namespace)
        meta = {"name": name, "namespace": ns, "labels": labels}

        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={**meta, "annotations": dict(service_account_annotations or {})},
            automount_service_account_token=args.kubernetes_api_access or AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
            opts=child)
        wiring = merge_sources([SecretWiring(f"{name}-secrets", namespace=ns, labels=labels, secrets=secrets,
                                             secrets_as=args.secrets_as, container=APP_CONTAINER, opts=child),
                                *sources])
        config_maps = {files.role: _name_of(self._config_map(name, files, meta, child))
                       for files in args.config_files}
        pod = pod_spec(args, service_account_name=_name_of(account), selector=match, config_maps=config_maps,
                       secret_volumes=wiring.volumes, secret_mounts=wiring.mounts, secret_env=wiring.env)
        skips = deployment_skips(args, wiring.skips)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={**meta, **({"annotations": checkov_skips(skips)} if skips else {})},
            spec=deployment_spec(args, labels=labels, selector=match, pod=pod),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on or [])))
        service = k8s.core.v1.Service(f"{name}-service", metadata=meta, spec=service_spec(args, selector=match),
                                      opts=child)
        if args.autoscaling is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-autoscaler", metadata=meta,
                spec=hpa_spec(args.autoscaling, deployment_name=_name_of(deployment)), opts=child)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-disruption-budget", metadata=meta, spec=pdb_spec(match),
                                          opts=child)

        self.deployment_name = _name_of(deployment)
        # What a ServiceMonitor selects the Service by, and the port it scrapes (service_spec's names).
        self.service_selector = dict(match)
        self.metrics_port_name = metrics_port_name(args)
        self.service_name = _name_of(service)
        self.service_account_name = _name_of(account)
        self.namespace = ns
        self.ingress_hostname = pulumi.Output.from_input(None)
        self.url = pulumi.Output.format("http://{0}.{1}.svc.cluster.local:{2}", self.service_name, ns,
                                        args.service_port)
        if args.ingress is not None:
            self._ingress(name, args, meta, pulumi.ResourceOptions(parent=self, depends_on=list(ingress_depends_on)),
                          ingress_certificate_arn, ingress_waf_acl_arn)
        self.register_outputs({
            "deployment_name": self.deployment_name, "service_name": self.service_name,
            "service_account_name": self.service_account_name, "namespace": self.namespace,
            "ingress_hostname": self.ingress_hostname, "url": self.url,
        })

    @staticmethod
    def _config_map(name: str, files: ConfigFiles, meta: dict, child: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
        # The content hash is in the name: a changed file makes a new ConfigMap, the pod
        # template changes with it, and the pods roll. Immutable, since it never changes.
        digest = content_hash(*(f"{k}\0{v}" for k, v in sorted(files.files.items())))
        return k8s.core.v1.ConfigMap(
            f"{name}-config-{files.role}",
            metadata={**meta, "name": f"{name}-{files.role}-{digest}"},
            data=dict(sorted(files.files.items())),
            immutable=True,
            opts=child)

    def _ingress(self, name: str, args: WebServiceArgs, meta: dict, opts: pulumi.ResourceOptions,
                 certificate_arn: pulumi.Input[str] | None, waf_acl_arn: pulumi.Input[str] | None) -> None:
        ing = args.ingress
        assert ing is not None
        if waf_acl_arn is not None and not isinstance(ing, AlbIngress):
            raise ValueError("ingress_waf_acl_arn: a WAF web ACL attaches to an ALB; this ingress is a class ingress")
        annotations = ingress_annotations(args, certificate_arn, waf_acl_arn)
        ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata={**meta, **({"annotations": annotations} if annotations else {})},
            spec=ingress_spec(ing, service_name=self.service_name),
            opts=opts)
        scheme = "https" if ingress_is_https(ing, certificate_arn) else "http"
        lb_host = ingress.status.apply(
            lambda s: (s.load_balancer.ingress[0].hostname or s.load_balancer.ingress[0].ip)
            if s and s.load_balancer and s.load_balancer.ingress else None)
        self.ingress_hostname = lb_host
        self.url = pulumi.Output.from_input(f"{scheme}://{ing.host}") if ing.host else \
            lb_host.apply(lambda h: f"{scheme}://{h}" if h else "")
