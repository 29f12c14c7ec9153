"""An IAM role for one Kubernetes service account via EKS Pod Identity, least privilege only.

Each workload that touches AWS gets its own role, trusted only by the EKS Pod Identity
agent and bound to one namespace/service account by the association. Its policy must
name its resources: a write action on Resource "*" is refused before anything is created.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field

from components.naming import IAM_NAME_PREFIX_MAX, is_write_action, service_trust_policy, stack_prefix
from components.types import DnsLabel, NamespaceName

TYPE = "webstack:components:PodIdentity"


class PodIdentityArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: NamespaceName = Field(description="Kubernetes namespace of the service account.")
    service_account: DnsLabel = Field(description="Kubernetes service account the pods run as.")
    max_session_hours: int = Field(1, ge=1, le=12, description="Maximum role session length, hours.")


@dataclass(frozen=True)
class Statement:
    """One Allow statement. `resources` may be Outputs (a bucket ARN from another component)."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]]
    conditions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.actions or not self.resources:
            raise ValueError(f"statement {self.sid!r}: needs at least one action and one resource")
        _check(self.sid, list(self.actions), [r for r in self.resources if isinstance(r, str)])


def _check(sid: str, actions: list[str], resources: list[str]) -> None:
    writes = [a for a in actions if is_write_action(a)]
    if writes and "*" in resources:
        raise ValueError(f"statement {sid!r}: write actions {writes} on Resource '*'; "
                         "name the ARNs the workload writes to")


def render_policy(statements: Sequence[Statement], resources: Sequence[Sequence[str]]) -> str:
    """The JSON policy for `statements` with their resources resolved; re-checks them, since an
    Output (a bucket ARN from elsewhere) can only be checked once it is known."""
    body = []
    for stmt, resolved in zip(statements, resources, strict=True):
        _check(stmt.sid, list(stmt.actions), list(resolved))
        entry = {"Sid": stmt.sid, "Effect": "Allow", "Action": list(stmt.actions), "Resource": list(resolved)}
        if stmt.conditions:
            entry["Condition"] = stmt.conditions
        body.append(entry)
    return json.dumps({"Version": "2012-10-17", "Statement": body}, sort_keys=True)


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """`render_policy` once every resource Output is known."""
    return pulumi.Output.all(*[pulumi.Output.all(*s.resources) for s in statements]).apply(
        lambda resolved: render_policy(statements, resolved))


def static_upload_statements(bucket_arn: pulumi.Input[str]) -> list[Statement]:
    """What `collectstatic` (django-storages S3) needs on its bucket, and nothing more.

    ListBucket on the bucket (compare existing files), Get to read the manifest and metadata,
    Put to upload. No Delete: the kit never runs `collectstatic --clear`, since the old pods
    keep serving pages that name the previous release's hashed files until the rollout ends.
    No ACL actions: the bucket enforces owner ownership, ACLs are off.
    """
    arn = pulumi.Output.from_input(bucket_arn)
    return [
        Statement("ListStaticBucket", ["s3:ListBucket"], [arn]),
        Statement("WriteStaticObjects", ["s3:GetObject", "s3:PutObject"],
                  [arn.apply(lambda a: f"{a}/*")]),
    ]


def media_write_statements(bucket_arn: pulumi.Input[str]) -> list[Statement]:
    """What the app's uploads (django-storages S3Storage) need on the media bucket's objects, and
    nothing on the bucket itself or any other bucket.

    PutObject: a save (a multipart upload's create/part/complete calls are PutObject too);
    AbortMultipartUpload: s3transfer aborts a failed multipart upload (above 8 MiB);
    GetObject: reading a file, its size (HeadObject), and every presigned GET URL the app signs
    (S3 checks the signer's permissions when the URL is used); DeleteObject: a delete, which on
    the versioned bucket only adds a delete marker. No ListBucket: names are random, so the
    storage overwrites nothing and never asks whether a name exists (file_overwrite); no
    DeleteObjectVersion: the app cannot destroy an old version; no ACL actions (ACLs are off).
    """
    arn = pulumi.Output.from_input(bucket_arn)
    return [Statement("ReadWriteMediaObjects",
                      ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                      [arn.apply(lambda a: f"{a}/*")])]


def secret_read_statements(secret_arn: pulumi.Input[str]) -> list[Statement]:
    """Read one Secrets Manager secret (e.g. `Database.secret_arn`, the RDS-managed password).

    The secret is encrypted with the aws/secretsmanager key, whose key policy already lets
    Secrets Manager decrypt for callers allowed to read the secret: no kms statement needed.
    """
    return [Statement("ReadDatabaseSecret", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                      [secret_arn])]


class PodIdentity(pulumi.ComponentResource):
    """IAM role assumable only by EKS Pod Identity for one service account, with a scoped inline policy."""

    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: PodIdentityArgs, *, cluster_name: pulumi.Input[str],
                 statements: Sequence[Statement], opts: pulumi.ResourceOptions | None = None) -> None:
        if not statements:
            raise ValueError(f"PodIdentity {name!r}: statements is empty; a role without permissions is not needed")
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        # Only the Pod Identity agent may assume the role (TagSession: it adds the cluster,
        # namespace and service account as session tags); SourceAccount stops other
        # accounts' clusters from using it (confused deputy).
        trust = service_trust_policy("pods.eks.amazonaws.com", account, actions=("sts:AssumeRole", "sts:TagSession"))
        role = aws.iam.Role(f"{name}-role", name_prefix=stack_prefix(name, max_length=IAM_NAME_PREFIX_MAX),
                            assume_role_policy=trust, max_session_duration=args.max_session_hours * 3600,
                            description=f"Pod Identity for {args.namespace}/{args.service_account}", opts=child)
        policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child)
        association = aws.eks.PodIdentityAssociation(
            f"{name}-association", cluster_name=cluster_name, namespace=args.namespace,
            service_account=args.service_account, role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))

        self.role_arn = role.arn
        self.association_id = association.association_id
        self.register_outputs({"role_arn": self.role_arn})
