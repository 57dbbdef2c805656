"""AWS::ECR::Repository. Its template ``Metadata`` (DockerContext/Dockerfile) is what the
local image resolver uses to run job images without Docker."""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator, as_json
from sluice.local.deploy.model import Created


def create_repository(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("RepositoryName") or ctx.name(logical_id, max_length=256, lowercase=True)
    response = ctx.call(
        logical_id,
        "ecr",
        "CreateRepository",
        props,
        # EmptyOnDelete only matters when CloudFormation deletes the stack.
        exclude={"RepositoryName", "LifecyclePolicy", "RepositoryPolicyText", "EmptyOnDelete"},
        extra={"repositoryName": name},
    )
    ecr = ctx.client("ecr")
    lifecycle = props.get("LifecyclePolicy") or {}
    if "LifecyclePolicyText" in lifecycle:
        ecr.put_lifecycle_policy(
            repositoryName=name, lifecyclePolicyText=as_json(lifecycle["LifecyclePolicyText"])
        )
    if "RepositoryPolicyText" in props:
        ecr.set_repository_policy(repositoryName=name, policyText=as_json(props["RepositoryPolicyText"]))
    repo = response["repository"]
    uri = f"{ctx.account_id}.dkr.ecr.{ctx.region}.{ctx.url_suffix}/{name}"
    return Created(name, {"Arn": repo["repositoryArn"], "RepositoryUri": repo.get("repositoryUri", uri)})


CREATORS: dict[str, Creator] = {"AWS::ECR::Repository": create_repository}
