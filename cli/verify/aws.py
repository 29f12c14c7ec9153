"""boto3, read-only: every call verify makes, the IAM actions each needs, and errors as findings.

Credentials, region and endpoint come from boto3's standard chain (environment, profiles, SSO,
instance or pod role; `AWS_ENDPOINT_URL` for an API emulator). Each call's answer (or error) is
cached, so checks that read the same resource make one request.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from cli.verify.model import Problem

POLICY_NAME = "webstack-verify-readonly"
POLICY_DOC = "docs/verify.md"

# (service, operation) -> the IAM actions it needs. docs/verify.md's policy grants exactly the
# union of these (a test holds them equal). sts:GetCallerIdentity needs no permission.
IAM_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "get_public_access_block"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "get_bucket_encryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "get_bucket_versioning"): ("s3:GetBucketVersioning",),
    ("s3", "get_bucket_ownership_controls"): ("s3:GetBucketOwnershipControls",),
    ("s3", "get_bucket_policy"): ("s3:GetBucketPolicy",),
    ("cloudfront", "get_distribution"): ("cloudfront:GetDistribution",),
    ("cloudfront", "get_origin_access_control"): ("cloudfront:GetOriginAccessControl",),
    ("wafv2", "get_web_acl"): ("wafv2:GetWebACL",),
    # "This call uses GetWebACL, to verify that your account has permission to access the
    # retrieved web ACL" (WAF API reference): both are needed.
    ("wafv2", "get_web_acl_for_resource"): ("wafv2:GetWebACLForResource", "wafv2:GetWebACL"),
    ("rds", "describe_db_instances"): ("rds:DescribeDBInstances",),
    ("eks", "describe_cluster"): ("eks:DescribeCluster",),
    ("elbv2", "describe_load_balancers"): ("elasticloadbalancing:DescribeLoadBalancers",),
    ("sts", "get_caller_identity"): (),
}

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
          "AuthorizationError", "Forbidden", "WAFAccessDeniedException"}
BAD_CREDENTIALS = {"InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                   "ExpiredTokenException", "UnrecognizedClientException", "InvalidToken", "RequestExpired"}
NOT_FOUND = {"NoSuchBucket", "NoSuchDistribution", "NoSuchOriginAccessControl", "DBInstanceNotFound",
             "DBInstanceNotFoundFault", "ResourceNotFoundException", "WAFNonexistentItemException",
             "LoadBalancerNotFound", "NotFoundException", "NotFound"}

# CloudFront and CLOUDFRONT-scoped WAF live in us-east-1, whatever the stack's region.
GLOBAL_REGION = "us-east-1"
# Bounded: a wrong endpoint or a throttled API fails in seconds, not minutes.
CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20,
                       user_agent_extra="webstack-verify")


class UsageError(Exception):
    """No usable credentials, region or endpoint: nothing can be checked (exit 2)."""


def attach_fix(actions: tuple[str, ...], identity: str | None) -> str:
    who = identity or "the identity verify runs as"
    return (f"attach the IAM policy {POLICY_NAME} from {POLICY_DOC} (it grants {', '.join(actions)}) "
            f"to {who}")


def problem_from(err: botocore.exceptions.ClientError, service: str, operation: str, *, subject: str,
                 region: str, identity: dict[str, str] | None = None) -> Problem:
    """A ClientError as a finding: a permission names the IAM actions and the policy to attach;
    a missing resource says where it was looked for."""
    error = err.response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = (err.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    actions = IAM_ACTIONS.get((service, operation)) or (f"{service}:{operation}",)
    account = (identity or {}).get("Account", "?")
    arn = (identity or {}).get("Arn")
    if code in BAD_CREDENTIALS:
        return Problem(f"not checked: AWS refused the credentials ({code})",
                       "refresh the credentials (`aws sso login`, a new session token) or pick another profile "
                       "(AWS_PROFILE)")
    if code in DENIED or status == 403 or code == "403":
        return Problem(f"not checked: permission denied for {', '.join(actions)} on {subject}",
                       attach_fix(actions, arn))
    if code in NOT_FOUND or status == 404:
        return Problem(f"{subject} not found in account {account}, region {region} ({code or status})",
                       "the stack output names a resource that is gone or elsewhere: check that the credentials "
                       "(AWS_PROFILE) and region (the aws_region output) are the stack's, or run "
                       "`pulumi refresh` to see what changed outside Pulumi")
    message = str(error.get("Message") or err)
    return Problem(f"not checked: {operation} on {subject} failed: {code}: {message}",
                   "retry; if it persists, run the same call with the AWS CLI to see the full error")


class Aws:
    """boto3 clients of one session; `call` caches answers and turns errors into findings."""

    def __init__(self, session: boto3.session.Session | None = None, region: str | None = None) -> None:
        self.session = session or boto3.session.Session()
        self.region = region or self.session.region_name
        self._clients: dict[tuple[str, str], Any] = {}
        self._answers: dict[str, Any] = {}
        self.identity: dict[str, str] | None = None

    def client(self, service: str, region: str | None = None) -> Any:
        where = region or self.region
        key = (service, where)
        if key not in self._clients:
            self._clients[key] = self.session.client(service, region_name=where, config=CLIENT_CONFIG)
        return self._clients[key]

    def whoami(self) -> dict[str, str]:
        """The account and identity the credentials are, before any check (sts:GetCallerIdentity
        is allowed to everyone). Raises UsageError when nothing can be checked."""
        if not self.region:
            raise UsageError("no AWS region: set AWS_REGION (or a profile's region), or have the stack "
                             "export aws_region")
        try:
            answer = self.client("sts").get_caller_identity()
        except botocore.exceptions.NoCredentialsError:
            raise UsageError("no AWS credentials found (environment, ~/.aws profiles, SSO, instance or pod "
                             "role): log in, e.g. `aws sso login --profile NAME` and AWS_PROFILE=NAME") from None
        except botocore.exceptions.ClientError as err:
            code = (err.response.get("Error") or {}).get("Code", "")
            raise UsageError(f"AWS refused the credentials ({code}): refresh them or pick another profile "
                             "(AWS_PROFILE)") from None
        except botocore.exceptions.BotoCoreError as err:
            raise UsageError(f"cannot reach AWS STS: {err} (network, proxy, or AWS_ENDPOINT_URL?)") from None
        self.identity = {"Account": answer.get("Account", "?"), "Arn": answer.get("Arn", "?")}
        return self.identity

    def call(self, service: str, operation: str, *, subject: str, region: str | None = None,
             absent: tuple[str, ...] = (), **params: Any) -> dict[str, Any] | None:
        """The operation's answer; None when the error code is one of `absent` (e.g. a bucket
        without a policy, which a check judges). Raises Problem for anything else."""
        where = region or self.region or "?"
        key = json.dumps([service, where, operation, params], sort_keys=True, default=str)
        if key not in self._answers:
            try:
                self._answers[key] = getattr(self.client(service, region), operation)(**params)
            except botocore.exceptions.ClientError as err:
                code = str((err.response.get("Error") or {}).get("Code") or "")
                self._answers[key] = None if code in absent else problem_from(
                    err, service, operation, subject=subject, region=where, identity=self.identity)
            except botocore.exceptions.BotoCoreError as err:
                self._answers[key] = Problem(f"not checked: {operation} on {subject} failed: {err}",
                                             "check the network path to AWS (proxy, VPC endpoint, "
                                             "AWS_ENDPOINT_URL) and retry")
        answer = self._answers[key]
        if isinstance(answer, Problem):
            raise Problem(answer.finding, answer.fix)
        return answer
