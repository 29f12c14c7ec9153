"""PostgreSQL inside the cluster, for the local target (kind, k3d, minikube): RDS's stand-in.

One StatefulSet pod with its own volume, the restricted pod profile, a ClusterIP Service
and a NetworkPolicy that admits only pods of the same namespace. Not for production: no
replicas, no backups, no failover; the aws target uses `components.database.Database`.
The volume outlives the StatefulSet (`whenDeleted: Retain`): `pulumi destroy` keeps the
data until you delete the PersistentVolumeClaim yourself.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.database import PORT  # the same port as RDS, so the namespace policy fits both
from components.k8s_pod import (IMAGE_PULL_POLICY, RUN_AS_USER, Resources, check_pinned, checkov_skips,
                                container_security_context, labels as make_labels,
                                pod_security_context, selector, warn_if_tagged,
                                writable_volumes)
from components.types import ImageRef, Quantity, has_digest

TYPE = "webstack:components:InClusterPostgres"
CONTAINER = "postgres"
DATA_PATH = "/var/lib/postgresql/data"


class InClusterPostgresArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: ImageRef = Field("docker.io/library/postgres:17.6-bookworm",
                       description="PostgreSQL image; the Debian variant runs as any uid (nss_wrapper).")
    require_digest: bool = Field(False, description="Refuse an image pinned only by tag.")
    database_name: str = Field("app", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Database created at first start.")
    username: str = Field("app", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Its owner.")
    storage: Quantity = Field("1Gi", description="Size of the data volume.")
    storage_class: str | None = Field(None, description="StorageClass of the volume; default: the cluster's default.")
    resources: Resources = Field(Resources(cpu_request="100m", cpu_limit="1", memory_request="256Mi",
                                           memory_limit="512Mi"), description="CPU and memory of the server.")
    max_connections: int = Field(100, ge=10, le=5000,
                                 description="Connections the server accepts (PostgreSQL's max_connections), count.")

    @model_validator(mode="after")
    def _consistent(self) -> "InClusterPostgresArgs":
        if problem := check_pinned(self.image, require_digest=self.require_digest):
            raise ValueError(problem)
        return self


class InClusterPostgres(pulumi.ComponentResource):
    """A single PostgreSQL server in the namespace, reachable only from that namespace's pods."""

    host: pulumi.Output[str]
    port: int
    database_name: str
    username: str

    def __init__(self, name: str, args: InClusterPostgresArgs, *, namespace: pulumi.Input[str],
                 password: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        if not args.require_digest:
            warn_if_tagged(args.image, self)
        child = pulumi.ResourceOptions(parent=self)
        ns = pulumi.Output.from_input(namespace)
        labels = make_labels(name, "database")
        match = selector(name)
        meta = {"name": name, "namespace": ns, "labels": labels}

        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"namespace": ns, "labels": labels},
            type="Opaque",
            string_data={"POSTGRES_PASSWORD": pulumi.Output.secret(password)},
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta,
            spec={"selector": match, "ports": [{"name": "postgres", "port": PORT, "targetPort": PORT,
                                               "protocol": "TCP"}]},
            opts=child,
        )
        # The namespace denies all traffic by default; its own pods may reach the server.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-clients",
            metadata={**meta, "name": f"{name}-allow-clients"},
            spec={"podSelector": {"matchLabels": match}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": PORT}]}]},
            opts=child,
        )

        # The entrypoint writes its passwd stand-in to /tmp and the socket to /var/run/postgresql.
        wvols, wmounts = writable_volumes(CONTAINER, ["/tmp", "/var/run/postgresql"], "64Mi")
        ready = {"exec": {"command": ["pg_isready", "--host", "127.0.0.1", "--port", str(PORT),
                                      "--username", args.username, "--dbname", args.database_name]}}
        container: dict[str, Any] = {
            "name": CONTAINER,
            "image": args.image,
            "imagePullPolicy": IMAGE_PULL_POLICY,
            "ports": [{"name": "postgres", "containerPort": PORT, "protocol": "TCP"}],
            # The image's entrypoint passes its arguments on to postgres.
            "args": ["-c", f"max_connections={args.max_connections}"],
            "env": [
                {"name": "POSTGRES_DB", "value": args.database_name},
                {"name": "POSTGRES_USER", "value": args.username},
                # A subdirectory: the volume's root may hold lost+found, which initdb refuses.
                {"name": "PGDATA", "value": f"{DATA_PATH}/pgdata"},
                {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": secret.metadata.apply(lambda m: m.name), "key": "POSTGRES_PASSWORD"}}},
            ],
            "resources": args.resources.to_k8s(),
            "securityContext": container_security_context(),
            "volumeMounts": [{"name": "data", "mountPath": DATA_PATH}, *wmounts],
            "startupProbe": {**ready, "periodSeconds": 2, "failureThreshold": 60},
            "readinessProbe": {**ready, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {**ready, "periodSeconds": 10, "failureThreshold": 6},
        }
        claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": args.storage}}}
        if args.storage_class:
            claim_spec["storageClassName"] = args.storage_class
        skips = {"CKV_K8S_35": "POSTGRES_PASSWORD is read from env by the image's entrypoint only"}
        if not has_digest(args.image):
            skips["CKV_K8S_43"] = "local target image pinned by tag (require_digest off)"
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata={**meta, "annotations": checkov_skips(skips)},
            spec={
                "serviceName": service.metadata.apply(lambda m: m.name),
                "replicas": 1,
                "selector": {"matchLabels": match},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": pod_security_context(RUN_AS_USER),
                        # Fast shutdown (SIGTERM) needs a moment to checkpoint.
                        "terminationGracePeriodSeconds": 60,
                        "containers": [container],
                        "volumes": wvols,
                    },
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": labels}, "spec": claim_spec}],
            },
            opts=child,
        )

        # Built from the StatefulSet too, so it resolves once the server is ready and
        # whatever is given the host (a migration Job) waits for the database.
        self.host = pulumi.Output.all(service.metadata.apply(lambda m: m.name), ns,
                                      statefulset.metadata.apply(lambda m: m.name)).apply(
            lambda a: f"{a[0]}.{a[1]}.svc.cluster.local")
        self.port = PORT
        self.database_name = args.database_name
        self.username = args.username
        self.register_outputs({"host": self.host})
