"""AWS::Batch::ComputeEnvironment, JobQueue, JobDefinition, SchedulingPolicy.

Requests go through the ``batch`` client to the endpoint (the local Batch engine serves
them). CloudFormation's property names are the API's members in PascalCase, so the
translation is the generic one through the botocore model: e.g.
``ComputeEnvironmentOrder[].ComputeEnvironment`` -> ``computeEnvironmentOrder[].computeEnvironment``,
``ContainerProperties.ResourceRequirements`` -> ``containerProperties.resourceRequirements``,
``RetryStrategy.EvaluateOnExit`` -> ``retryStrategy.evaluateOnExit``,
``Timeout.AttemptDurationSeconds`` -> ``timeout.attemptDurationSeconds``,
``PlatformCapabilities`` -> ``platformCapabilities``. Numbers given as strings
(``!Ref`` of a Number parameter) become integers where the API wants them.
"""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator
from sluice.local.deploy.model import Created

# CloudFormation-only update controls with no API member.
_CFN_ONLY = {"ReplaceComputeEnvironment", "UpdatePolicy", "ResourceRetentionPolicy"}


def create_compute_environment(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("ComputeEnvironmentName") or ctx.name(logical_id, max_length=128)
    compute = dict(props.get("ComputeResources") or {})
    compute.pop("UpdateToLatestImageVersion", None)  # CloudFormation-only
    body = {**props, **({"ComputeResources": compute} if compute else {})}
    response = ctx.call(
        logical_id,
        "batch",
        "CreateComputeEnvironment",
        body,
        exclude={"ComputeEnvironmentName", *_CFN_ONLY},
        extra={"computeEnvironmentName": name},
    )
    arn = response["computeEnvironmentArn"]
    return Created(arn, {"ComputeEnvironmentArn": arn})


def create_job_queue(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("JobQueueName") or ctx.name(logical_id, max_length=128)
    response = ctx.call(
        logical_id,
        "batch",
        "CreateJobQueue",
        props,
        exclude={"JobQueueName"},
        extra={"jobQueueName": name},
    )
    arn = response["jobQueueArn"]
    return Created(arn, {"JobQueueArn": arn})


def create_job_definition(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("JobDefinitionName") or ctx.name(logical_id, max_length=128)
    response = ctx.call(
        logical_id,
        "batch",
        "RegisterJobDefinition",
        props,
        exclude={"JobDefinitionName", *_CFN_ONLY},
        extra={"jobDefinitionName": name},
    )
    arn = response["jobDefinitionArn"]
    return Created(
        arn, {"JobDefinitionArn": arn, "JobDefinitionName": name, "Revision": response["revision"]}
    )


def create_scheduling_policy(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.name(logical_id, max_length=128)
    response = ctx.call(
        logical_id, "batch", "CreateSchedulingPolicy", props, exclude={"Name"}, extra={"name": name}
    )
    return Created(response["arn"], {"Arn": response["arn"]})


CREATORS: dict[str, Creator] = {
    "AWS::Batch::ComputeEnvironment": create_compute_environment,
    "AWS::Batch::JobQueue": create_job_queue,
    "AWS::Batch::JobDefinition": create_job_definition,
    "AWS::Batch::SchedulingPolicy": create_scheduling_policy,
}
