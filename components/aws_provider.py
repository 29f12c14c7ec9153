"""An AWS provider that stamps default tags on every resource it creates.

Tags carry ownership (who to page, what it costs) and let a reviewer find everything a
stack made. Setting them once on the provider means no resource can forget them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.types import AwsRegion


class AwsProviderArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: AwsRegion = Field("us-east-1",
                        description="AWS region for every regional resource, e.g. 'eu-west-1'.")
    profile: str | None = Field(
        None, description="Named profile of the AWS shared config to deploy as (`aws:profile`); None: the "
                          "standard credential chain. An explicit provider does not read `aws:profile` itself.")
    extra_tags: dict[str, str] = Field(default_factory=dict,
                                       description="More default tags (key: value), e.g. cost-center.")

    @field_validator("extra_tags")
    @classmethod
    def _no_reserved_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        clash = sorted(set(tags) & set(RESERVED_TAG_KEYS))
        if clash:
            raise ValueError(f"extra_tags: keys {clash} are set by the kit; remove them")
        return tags


RESERVED_TAG_KEYS = ("project", "stack", "environment", "managed-by")


def default_tags(*, project: str, stack: str, environment: Literal["dev", "staging", "prod"],
                 extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags every resource gets: project, stack, environment, managed-by."""
    return {**dict(extra or {}), "project": project, "stack": stack,
            "environment": environment, "managed-by": "pulumi"}


def tagged_provider(name: str, args: AwsProviderArgs, *,
                    environment: Literal["dev", "staging", "prod"],
                    project: str | None = None, stack: str | None = None,
                    opts: pulumi.ResourceOptions | None = None) -> aws.Provider:
    """An `aws.Provider` named `name` with the kit's default tags; pass it as
    `opts=ResourceOptions(providers={"aws": p})` (or `provider=p`) to AWS components."""
    tags = default_tags(project=project or pulumi.get_project(), stack=stack or pulumi.get_stack(),
                        environment=environment, extra=args.extra_tags)
    profile = {"profile": args.profile} if args.profile else {}
    return aws.Provider(name, region=args.region, default_tags={"tags": tags}, opts=opts, **profile)
