"""The stack's outputs: from the Pulumi CLI or a JSON file, and the names verify reads.

`pulumi stack output --json` runs without `--show-secrets`: verify reads no secret output, and
decrypting would need the stack's secrets provider (a passphrase, or KMS decrypt rights) for
nothing. A secret output shows as "[secret]".
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PULUMI_TIMEOUT_S = 120

# What verify reads, and what each means. The first group exists in every kit version; the
# second is newer, and a check whose output is missing is SKIP with the name it lacked.
KNOWN = {
    "framework": "fastapi | django",
    "environment": "dev | staging | prod: which profile's rules apply (e.g. multi-AZ in prod)",
    "target": "aws | local: on local there are no AWS resources to check",
    "url": "the service's URL (https://<app.domain> with an ALB ingress)",
    "static_url": "the static files' CloudFront URL (Django on aws)",
    "database_host": "the RDS address (a stack with a database on aws)",
}
NEW = {
    "aws_region": "region of the stack's regional resources (RDS, EKS, ALB, its WAF); default: the AWS chain's",
    "static_bucket_name": "name of the static files' S3 bucket",
    "static_distribution_id": "id of the CloudFront distribution in front of it (e.g. E2QWRUHAPOMQZL)",
    "db_instance_identifier": "the RDS instance identifier",
    "cluster_name": "the EKS cluster name",
    "alb_hostname": "DNS name of the app's ALB (the Ingress status hostname)",
    "app_waf_acl_arn": "ARN of the web ACL the stack attaches to the ALB (optional: then any ACL must have the rules)",
    "health_path": "the readiness path the ALB checks, e.g. /readyz",
    "admin_path": "the admin path the WAF opens only to admin_allowed_cidrs, e.g. /admin/",
}


class OutputsError(Exception):
    """The outputs could not be read: a usage error (exit 2), with what to do."""


class StackOutputs(Mapping[str, Any]):
    """Stack outputs by name; `str(name)` gives a printable value, "" when absent."""

    def __init__(self, stack: str, values: Mapping[str, Any]) -> None:
        self.stack = stack
        self._values = {k: v for k, v in values.items() if v is not None and v != ""}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def text(self, name: str) -> str:
        value = self._values.get(name)
        return "" if value is None else str(value)

    @property
    def environment(self) -> str:
        """The profile whose rules apply; an unknown environment gets prod's (the strictest)."""
        env = self.text("environment")
        return env if env in ("dev", "staging") else "prod"


def parse_outputs(stack: str, text: str, source: str) -> StackOutputs:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise OutputsError(f"{source}: not JSON ({err.msg} at line {err.lineno}); "
                           "expected the object `pulumi stack output --json` prints") from None
    if not isinstance(doc, dict):
        raise OutputsError(f"{source}: expected a JSON object of outputs (name -> value), "
                           f"got {type(doc).__name__}")
    return StackOutputs(stack, doc)


def read_outputs_file(stack: str, path: Path) -> StackOutputs:
    try:
        text = path.read_text()
    except OSError as err:
        raise OutputsError(f"--outputs {path}: cannot read it ({err.strerror or err})") from None
    return parse_outputs(stack, text, f"--outputs {path}")


def read_pulumi_outputs(stack: str, cwd: Path = ROOT) -> StackOutputs:
    """`pulumi stack output --json --stack <stack>` in the project folder."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S)
    except FileNotFoundError:
        raise OutputsError("the Pulumi CLI is not on PATH: install it, or save the outputs where it is "
                           "(`pulumi stack output --json -s STACK > outputs.json`) and pass --outputs outputs.json") \
            from None
    except subprocess.TimeoutExpired:
        raise OutputsError(f"`{' '.join(command)}` did not answer in {PULUMI_TIMEOUT_S} s "
                           "(backend unreachable? `pulumi whoami` tells)") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise OutputsError(f"`{' '.join(command)}` failed (exit {done.returncode}): " + " / ".join(detail)
                           + "\n(log in to the stack's backend with `pulumi login`, check the stack name with "
                             "`pulumi stack ls`, or pass --outputs FILE)")
    return parse_outputs(stack, done.stdout, f"`{' '.join(command)}`")
