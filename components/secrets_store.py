"""Environment variables from one Secrets Manager secret (the RDS-managed database password),
delivered by the Secrets Store CSI driver and its AWS provider (ASCP) with EKS Pod Identity.

What it creates: one `SecretProviderClass` (secrets-store.csi.x-k8s.io/v1) in the app's
namespace. It names the secret by ARN, picks JSON keys out of it with jmesPath (one file per
env var) and asks the driver to sync those files into a Kubernetes Secret (`secretObjects`).
The component creates no pod: it hands the caller three plain values for its pod spec,
`.volume`, `.mount` and `.env`. The app reads only its environment; no boto3 in the app.

How it is secured: the secret is read by the provider on the node, with the credentials of
the pod's own ServiceAccount through EKS Pod Identity (`usePodIdentity: "true"`), so only a
pod whose ServiceAccount is associated with a role allowed to read this one secret gets it.
The synced Secret exists only while at least one pod mounts the volume (the driver
deletes it with the last pod); on a cluster the kit creates, etcd encrypts it with a KMS key.
The env entries are not optional: a container does not start without the value
(CreateContainerConfigError, retried by the kubelet) rather than start without a password.

What must exist first (in this order):
1. The Secrets Store CSI driver and the AWS provider on the cluster, with secret sync on:
   the EKS add-on `aws-secrets-store-csi-driver-provider` (`Cluster.secrets_store_addon`
   when the kit creates the cluster; pass it as `depends_on`). It installs the
   SecretProviderClass CRD; without it the API server refuses this object ("no matches for
   kind SecretProviderClass"). Without `syncSecret.enabled` the driver mounts the files but
   never creates the Secret, and the container waits forever for it.
2. The EKS Pod Identity agent (built into EKS Auto Mode; an add-on otherwise).
3. A Pod Identity association of the pod's ServiceAccount with a role allowed
   `secretsmanager:GetSecretValue` and `secretsmanager:DescribeSecret` on this secret only:
   `PodIdentity(..., statements=secret_read_statements(secret_arn))`. Until it exists the
   mount fails and the pod stays in ContainerCreating (the kubelet retries the mount).

How a rotation reaches the pods: RDS rotates the password (every 7 days by default) and the
old one stops working for new connections. With `enableSecretRotation` (an alpha feature of
the driver, turned on in the add-on configuration by `Cluster`), the kubelet re-publishes the
volume periodically and the driver re-reads the secret once `rotationPollInterval` has passed,
rewriting the mounted files and the synced Secret. Environment variables of a running
container never change: the process keeps the password it started with until the pod (or
the container) restarts. An app that opens new connections after a rotation must either be
restarted after it (`kubectl rollout restart`, or a controller such as Reloader that rolls
the pods when the synced Secret changes) or read the mounted file `<mount_path>/<ENV_NAME>`
each time it connects.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.k8s_pod import PodSource, labels
from components.types import AbsolutePath, AwsRegion, EnvName, dns_label_problem

TYPE = "webstack:components:SecretsManagerEnv"

CSI_DRIVER = "secrets-store.csi.k8s.io"
SPC_API_VERSION = "secrets-store.csi.x-k8s.io/v1"
# The same pattern as AwsProviderArgs.region.
# The whole secret is always written too (ASCP writes the object and then its jmesPath
# entries); a fixed name keeps it apart from the per-variable files, which cannot contain '.'.
WHOLE_SECRET_FILE = "secret.json"
SECRET_SUFFIX = "-env"
# Paths Kubernetes and EKS mount tokens at: a volume on or above them would hide the tokens.
RESERVED_PATHS = ("/var/run/secrets/kubernetes.io/serviceaccount",
                  "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
                  "/var/run/secrets/eks.amazonaws.com/serviceaccount")
# A JMESPath identifier that needs no quotes; any other JSON key is written as a quoted one.
_BARE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

JsonKey = Annotated[str, Field(min_length=1, examples=["password"])]


class SecretsManagerEnvArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: dict[EnvName, JsonKey] = Field(
        min_length=1,
        description="Environment variable name -> key of the secret's JSON value it gets, e.g. "
                    "{'PGPASSWORD': 'password'}. Several variables may take the same key. The RDS-managed "
                    "secret holds 'username' and 'password'.")
    region: AwsRegion = Field(
                        description="AWS region of the secret, e.g. 'eu-west-1' (the provider refuses an ARN "
                                    "from another region).")
    mount_path: AbsolutePath = Field(
        "/var/run/secrets/database",
        description="Directory the CSI volume is mounted at, read-only; it holds one file per variable "
                    f"and {WHOLE_SECRET_FILE} (the whole secret).")

    @field_validator("mount_path")
    @classmethod
    def _hides_nothing(cls, path: str) -> str:
        normal = posixpath.normpath(path)
        hidden = [r for r in RESERVED_PATHS if r == normal or r.startswith(normal.rstrip("/") + "/")]
        inside = [r for r in RESERVED_PATHS if normal.startswith(r + "/")]
        if hidden or inside:
            raise ValueError(f"{path!r} would hide or write into the token directory {(hidden or inside)[0]}; "
                             "use a directory of its own, e.g. '/var/run/secrets/database'")
        return path


def secret_arn_problem(arn: str, region: str) -> str | None:
    """Why ASCP would refuse `arn` with `region` ("ARN region must match region", "objectType does
    not match ARN"), else None."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "secretsmanager" or parts[5] != "secret":
        return f"secret_arn {arn!r} is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:...)"
    if parts[3] != region:
        return (f"secret_arn {arn!r} is in region {parts[3]!r} but region is {region!r}; "
                "set region to the secret's region")
    return None


def jmes_path(json_key: str) -> str:
    """The JMESPath selecting top-level `json_key` ("password", or "\\"db-password\\"" for a key that
    is not a bare identifier; unquoted, a '-' would be read as an operator)."""
    return json_key if _BARE_IDENTIFIER.match(json_key) else json.dumps(json_key)


def objects_parameter(secret_arn: str, keys: Mapping[str, str]) -> str:
    """`spec.parameters.objects`: the secret, and one file per env var named after it. ASCP
    reads this string as YAML, of which JSON is a subset."""
    return json.dumps([{
        "objectName": secret_arn,
        "objectType": "secretsmanager",
        "objectAlias": WHOLE_SECRET_FILE,
        "jmesPath": [{"path": jmes_path(keys[env]), "objectAlias": env} for env in sorted(keys)],
    }], indent=2, sort_keys=True)


def provider_class_spec(args: SecretsManagerEnvArgs, secret_arn: str, secret_name: str,
                        secret_labels: Mapping[str, str]) -> dict[str, Any]:
    """The SecretProviderClass spec: read `secret_arn` with the pod's Pod Identity, sync one key per
    env var into the Secret `secret_name`."""
    if problem := secret_arn_problem(secret_arn, args.region):
        raise ValueError(problem)
    return {
        "provider": "aws",
        "parameters": {
            # Named, so the provider does not look the region up on the node for every mount.
            "region": args.region,
            # Without it ASCP uses IRSA (the ServiceAccount's role-arn annotation), which the kit does not set up.
            "usePodIdentity": "true",
            "objects": objects_parameter(secret_arn, args.keys),
        },
        "secretObjects": [{
            "secretName": secret_name,
            "type": "Opaque",
            "labels": dict(secret_labels),
            "data": [{"objectName": env, "key": env} for env in sorted(args.keys)],
        }],
    }


def pod_volume(volume_name: str, provider_class: str) -> dict[str, Any]:
    return {"name": volume_name, "csi": {"driver": CSI_DRIVER, "readOnly": True,
                                         "volumeAttributes": {"secretProviderClass": provider_class}}}


def pod_mount(volume_name: str, mount_path: str) -> dict[str, Any]:
    return {"name": volume_name, "mountPath": mount_path, "readOnly": True}


def pod_env(keys: Mapping[str, str], secret_name: str) -> list[dict[str, Any]]:
    # optional False: no container starts without its password.
    return [{"name": env, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": env, "optional": False}}}
            for env in sorted(keys)]


class SecretsManagerEnv(pulumi.ComponentResource):
    """A SecretProviderClass that turns keys of one Secrets Manager secret into env vars, read with Pod Identity.

    Put all three of `.volume`, `.mount` and `.env` into the pod: the synced Secret the env
    refers to exists only while a pod mounts the volume.
    """

    provider_class_name: str
    secret_name: str
    volume: dict[str, Any]
    mount: dict[str, Any]
    env: list[dict[str, Any]]
    skips: dict[str, str]

    def __init__(self, name: str, args: SecretsManagerEnvArgs, *, namespace: pulumi.Input[str],
                 secret_arn: pulumi.Input[str], depends_on: Sequence[pulumi.Resource | None] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`secret_arn`: e.g. `Database.secret_arn`. `depends_on`: what installs the driver and its CRD
        (`[cluster.secrets_store_addon]`; None entries, for clusters the kit did not create, are skipped)."""
        if problem := dns_label_problem(name, 63 - len(SECRET_SUFFIX)):
            raise ValueError(f"SecretsManagerEnv {name!r}: the name becomes Kubernetes object names; {problem}")
        # A known ARN is checked now; an Output (a database created in this program) once it resolves.
        if isinstance(secret_arn, str) and (problem := secret_arn_problem(secret_arn, args.region)):
            raise ValueError(f"SecretsManagerEnv {name!r}: {problem}")
        super().__init__(TYPE, name, None, opts)
        # Fixed names, not auto-names: the driver creates the Secret under the name written in
        # the SecretProviderClass, and the pod spec must name both before either exists.
        self.provider_class_name = name
        self.secret_name = f"{name}{SECRET_SUFFIX}"
        object_labels = labels(name, "secrets")

        spec = pulumi.Output.from_input(secret_arn).apply(
            lambda arn: provider_class_spec(args, arn, self.secret_name, object_labels))
        k8s.apiextensions.CustomResource(
            f"{name}-provider-class", api_version=SPC_API_VERSION, kind="SecretProviderClass",
            metadata={"name": self.provider_class_name, "namespace": namespace, "labels": object_labels},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[r for r in depends_on if r is not None]))

        self.volume = pod_volume(name, self.provider_class_name)
        self.mount = pod_mount(name, args.mount_path)
        self.env = pod_env(args.keys, self.secret_name)
        self.skips = {"CKV_K8S_35": "the app reads its database password from the environment; the value "
                                    "comes from Secrets Manager through the Secrets Store CSI driver"}
        # What a WebService or ReleaseJob adds to its pod (`sources=`).
        self.pod_source = PodSource(env=self.env, volumes=[self.volume], mounts=[self.mount], skips=self.skips)
        self.register_outputs({"provider_class_name": self.provider_class_name, "secret_name": self.secret_name})
