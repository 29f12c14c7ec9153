"""A Job run once per release (migrations, collectstatic) that gates the rollout; a migration
runs under the migration guard (components/migration_guard.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.k8s_pod import (
    AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
    IMAGE_PULL_POLICY,
    RUN_AS_USER,
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
    warn_if_tagged,
    writable_volumes,
)
from components.migration_guard import MOUNT_PATH as GUARD_MOUNT_PATH
from components.migration_guard import MigrationGuardArgs, guard_files
from components.types import (AbsolutePath, EnvName, ImageRef, Quantity, dns_label_problem, env_names_problem,
                              has_digest)

CONTAINER = "release"
# A Job's pod template is immutable: any spec change must replace the Job, never patch it.
REPLACE_ON_CHANGES = ["spec"]
# By default, a Job that failed in the last `up` is left as it is and the next `up`
# waits on it again (it never succeeds). This annotation makes pulumi-kubernetes
# replace an unready Job instead, so the next `up` runs the release step again.
REPLACE_UNREADY = {"pulumi.com/replaceUnready": "true"}
# pulumi-kubernetes waits for the Job this much longer than the Job's own deadline (the pod's
# scheduling and image pull come first), so Kubernetes, not Pulumi's timeout, ends a Job that
# overruns, and the failure says why ("DeadlineExceeded", or the migration guard's message).
PULUMI_WAIT_MARGIN_SECONDS = 300
# A failed step's last log lines become the container's termination message when it wrote none
# itself (the migration guard writes its own): `kubectl describe` and the Job's events show it.
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"
GUARD_VOLUME = "migration-guard"
# With the guard, a failed pod is not retried (backoffLimit 0), but a pod evicted by a node drain
# or preemption did not fail: its Job starts a new one (the migration runs again, from where its
# committed migrations left off).
IGNORE_DISRUPTIONS = {"rules": [{"action": "Ignore",
                                 "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
# Deliberately NOT set:
# - ttlSecondsAfterFinished: if the cluster deletes a finished Job by itself, the next
#   `pulumi up --refresh` finds it gone and re-creates it, running the step again. The
#   old Job is deleted when the next release replaces it instead.
# - pulumi.com/skipAwait: the provider must wait for the Job to complete, or the
#   Deployment would roll out before the migration ran.


def job_name(prefix: str, image: str, command: list[str], working_dir: str | None = None) -> str:
    """`<prefix>-<8 hex>`: a new image, command or working directory makes a new Job, an
    unchanged one keeps the same name, so nothing runs again."""
    extra = [f"workdir={working_dir}"] if working_dir else []
    return f"{prefix}-{content_hash(image, *command, *extra)}"


class ReleaseJobArgs(BaseModel):
    """One release step: the image and command it runs, its retries and deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: ImageRef = Field(description="Image by digest (repo@sha256:...); usually the release's app image.")
    require_digest: bool = Field(True, description="Refuse images pinned by tag only (off in dev, with a warning).")
    command: list[str] = Field(min_length=1, description="Command run once per release, "
                               "e.g. ['python', 'manage.py', 'migrate', '--noinput'].")
    working_dir: AbsolutePath | None = Field(None, description="Directory the command runs in; default: the "
                                                               "image's WORKDIR.")
    env: dict[EnvName, str] = Field({}, description="Plain environment variables.")
    pod_field_env: dict[EnvName, PodField] = Field(
        {}, description="Environment variables the command reads from its own pod (downward API), as the app's "
        "pods get them, so `$(NAME)` in `env` expands the same way in both.")
    resources: Resources = Field(Resources(), description="CPU and memory of the Job's container.")
    backoff_limit: int = Field(
        1, ge=0, le=10, description="Retries after a failed pod; low, since a release step that fails "
        "twice needs a human.")
    active_deadline_seconds: int = Field(
        600, ge=30, le=86400, description="Seconds before the Job is failed, however many retries remain.")
    secrets_as: Literal["files", "env"] = Field(
        "files", description="How `secrets=` reach the command: files under /var/run/secrets/app, or env vars.")
    writable_paths: list[AbsolutePath] = Field(["/tmp"], description="Directories given a writable emptyDir.")
    writable_size_limit: Quantity = Field("256Mi", description="Size limit of each writable emptyDir, bytes.")
    run_as_user: int = Field(RUN_AS_USER, ge=10000, description="UID (and GID) the pod runs as.")
    migration_guard: MigrationGuardArgs | None = Field(
        None, description="Run the command as a database migration: under PostgreSQL lock and statement "
                          "timeouts, retrying a lock timeout (components/migration_guard.py).")

    @model_validator(mode="after")
    def _consistent(self) -> "ReleaseJobArgs":
        if problem := check_pinned(self.image, require_digest=self.require_digest):
            raise ValueError(problem)
        guard = self.migration_guard
        if guard is not None:
            if problem := guard.deadline_problem(self.active_deadline_seconds):
                raise ValueError(f"active_deadline_seconds: {problem}")
            if "backoff_limit" in self.model_fields_set and self.backoff_limit:
                # The guard's retries are bounded to fit the deadline; a second pod would start
                # them over, past it, and Kubernetes would kill it without the guard's message.
                raise ValueError(f"backoff_limit: {self.backoff_limit} with migration_guard, which retries "
                                 "lock timeouts itself within the deadline; leave it unset (0)")
        return self

    def pod_retries(self) -> int:
        """backoffLimit: none with the guard, which does the retrying."""
        return 0 if self.migration_guard is not None else self.backoff_limit

    def run_command(self) -> list[str]:
        """What the container runs: the command, under the guard for a migration."""
        if self.migration_guard is None:
            return list(self.command)
        return self.migration_guard.command(self.command, self.active_deadline_seconds)


class ReleaseJob(pulumi.ComponentResource):
    """A Job named after its image and command, run once per release with the restricted
    pod profile; `completed` resolves only once the Job has succeeded."""

    job_name: pulumi.Output[str]
    completed: pulumi.Output[str]

    def __init__(self, name: str, args: ReleaseJobArgs, *,
                 namespace: pulumi.Input[str],
                 secrets: Mapping[str, pulumi.Input[str]] | None = None,
                 service_account_name: pulumi.Input[str] | None = None,
                 sources: Sequence[PodSource] = (),
                 depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`service_account_name`: e.g. a WebService's account, when the step needs AWS
        access (collectstatic writing to S3). Pass the ReleaseJob to the WebService's
        `depends_on` so the rollout waits for it.
        `sources`: more env and the volumes it comes from (e.g. `SecretsManagerEnv.pod_source`).
        `depends_on`: what the Job waits for before it starts (a previous release step)."""
        super().__init__("webstack:components:ReleaseJob", name, None, opts)
        if problem := dns_label_problem(name, 40):
            raise ValueError(f"ReleaseJob name: {problem}")
        secrets = dict(secrets or {})
        if problem := env_names_problem(list(secrets)):
            raise ValueError(f"secrets: {problem}")
        if not args.require_digest:
            warn_if_tagged(args.image, self)

        labels = make_labels(name, "release")
        ns = pulumi.Output.from_input(namespace)
        child = pulumi.ResourceOptions(parent=self)
        wiring = merge_sources([SecretWiring(f"{name}-secrets", namespace=ns, labels=labels, secrets=secrets,
                                             secrets_as=args.secrets_as, container=CONTAINER, opts=child),
                                *sources])
        wvols, wmounts = writable_volumes(CONTAINER, args.writable_paths, args.writable_size_limit)
        gvols, gmounts = self._guard_volume(name, args, ns, labels, child)
        command = args.run_command()

        skips = dict(wiring.skips)
        if not has_digest(args.image):
            skips["CKV_K8S_43"] = "dev image pinned by tag (require_digest off); staging and prod require a digest"

        pod_spec = {
            "restartPolicy": "Never",
            "automountServiceAccountToken": AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(args.run_as_user),
            "containers": [{
                "name": CONTAINER,
                "image": args.image,
                "imagePullPolicy": IMAGE_PULL_POLICY,
                "command": command,
                **({"workingDir": args.working_dir} if args.working_dir else {}),
                # Secret keys first, so `$(NAME)` in a plain value can refer to them.
                "env": ordered_env(args.env, first=pod_field_entries(args.pod_field_env) + wiring.env),
                "resources": args.resources.to_k8s(),
                "securityContext": container_security_context(),
                "terminationMessagePolicy": TERMINATION_MESSAGE_POLICY,
                "volumeMounts": wiring.mounts + gmounts + wmounts,
            }],
            "volumes": wiring.volumes + gvols + wvols,
        }
        if service_account_name is not None:
            pod_spec["serviceAccountName"] = service_account_name

        # pulumi-kubernetes waits for the Job to complete; give it the Job's own deadline
        # plus time to pull the image and schedule, so Kubernetes, not Pulumi, decides.
        timeout = f"{args.active_deadline_seconds + PULUMI_WAIT_MARGIN_SECONDS}s"
        job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata={"name": job_name(name, args.image, command, args.working_dir), "namespace": ns,
                      "labels": labels,
                      "annotations": {**REPLACE_UNREADY, **checkov_skips(skips)}},
            spec={
                "backoffLimit": args.pod_retries(),
                **({"podFailurePolicy": IGNORE_DISRUPTIONS} if args.migration_guard is not None else {}),
                "activeDeadlineSeconds": args.active_deadline_seconds,
                "completions": 1,
                "parallelism": 1,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                # The Job itself waits (a component's depends_on does not reach its children):
                # e.g. for the release step before it, or for the volume its env comes from.
                depends_on=list(depends_on),
                replace_on_changes=REPLACE_ON_CHANGES,
                # The name is fixed for a given image and command: delete the old Job
                # first, or the new one would collide with it ("already exists").
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )

        self.job_name = job.metadata.apply(lambda m: m.name)
        # Every release's Job of this step is named `<name_prefix><hash>` (alerts select them so).
        self.name_prefix = f"{name}-"
        # Resolves only after the provider saw the Job complete (a failed Job fails the
        # `up` here), so anything built from it waits for the release step.
        self.completed = self.job_name
        self.register_outputs({"job_name": self.job_name, "completed": self.completed})

    @staticmethod
    def _guard_volume(name: str, args: ReleaseJobArgs, ns: pulumi.Output[str], labels: dict[str, str],
                      child: pulumi.ResourceOptions) -> tuple[list[dict], list[dict]]:
        """For a migration: the guard script in an immutable ConfigMap named after its content (a
        kit upgrade that changes it makes a new one), mounted read-only. (volumes, mounts)."""
        if args.migration_guard is None:
            return [], []
        files = guard_files()
        digest = content_hash(*(f"{k}\0{v}" for k, v in sorted(files.items())))
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-guard",
            metadata={"name": f"{name}-guard-{digest}", "namespace": ns, "labels": labels},
            data=files, immutable=True, opts=child)
        volume = {"name": GUARD_VOLUME, "configMap": {"name": config_map.metadata.apply(lambda m: m.name)}}
        return [volume], [{"name": GUARD_VOLUME, "mountPath": GUARD_MOUNT_PATH, "readOnly": True}]
