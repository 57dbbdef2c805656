"""Request validation AWS documents: required members, known instance types, the tag limit."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.timeout(30)

SERVICE_ROLE = "arn:aws:iam::123456789012:role/batch"


def refused(call, message: str, **kwargs) -> None:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == "ClientException"
    assert message in error["Message"], error["Message"]


def resources(kind: str, **extra) -> dict:
    return {"type": kind, "maxvCpus": 4, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"], **extra}


def test_ec2_and_spot_need_an_instance_role_fargate_does_not(batch):
    """instanceRole is "required for Amazon EC2 instances types"
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html)."""
    create = batch.client.create_compute_environment
    for kind in ("EC2", "SPOT"):
        refused(
            create,
            "Instance role is required",
            computeEnvironmentName=kind,
            type="MANAGED",
            computeResources=resources(kind),
        )
        create(
            computeEnvironmentName=kind,
            type="MANAGED",
            computeResources=resources(kind, instanceRole="ecsInstanceRole"),
        )
    create(computeEnvironmentName="fargate", type="MANAGED", computeResources=resources("FARGATE"))


def test_unmanaged_needs_a_service_role(batch):
    """ "For UNMANAGED compute environments, you must explicitly specify a serviceRole."
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateComputeEnvironment.html)"""
    create = batch.client.create_compute_environment
    refused(create, "ServiceRole is required", computeEnvironmentName="u", type="UNMANAGED")
    create(computeEnvironmentName="u", type="UNMANAGED", serviceRole=SERVICE_ROLE)


def test_unknown_instance_types_are_refused(batch):
    """instanceTypes takes EC2 instance types, families, `optimal`, `default_x86_64` or
    `default_arm64` (https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html)."""
    create = batch.client.create_compute_environment
    refused(
        create,
        "Instance type m5.huge does not exist",
        computeEnvironmentName="bad",
        type="MANAGED",
        computeResources=resources("EC2", instanceRole="r", instanceTypes=["m5.large", "m5.huge"]),
    )
    create(
        computeEnvironmentName="good",
        type="MANAGED",
        computeResources=resources(
            "EC2", instanceRole="r", instanceTypes=["m5.large", "c5", "optimal", "default_arm64"]
        ),
    )
    refused(
        batch.client.update_compute_environment,
        "Instance type nope does not exist",
        computeEnvironment="good",
        computeResources={"instanceTypes": ["nope"]},
    )


def test_fifty_tags_at_most_on_create_and_submit(batch):
    """A resource has at most 50 tags, on the calls that create it as on TagResource
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_TagResource.html,
    https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html)."""
    too_many = {f"k{i}": "v" for i in range(51)}
    fifty = {f"k{i}": "v" for i in range(50)}
    refused(
        batch.client.create_compute_environment,
        "at most 50 tags",
        computeEnvironmentName="ce",
        type="MANAGED",
        computeResources=resources("FARGATE"),
        tags=too_many,
    )
    batch.environment("ce", tags=fifty)
    refused(
        batch.client.create_job_queue,
        "at most 50 tags",
        jobQueueName="q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}],
        tags=too_many,
    )
    batch.queue("q", tags=fifty)
    with pytest.raises(ClientError, match="at most 50 tags"):
        batch.definition("jd", tags=too_many)
    batch.definition("jd", tags=fifty)
    with pytest.raises(ClientError, match="at most 50 tags"):
        batch.submit(tags=too_many)
    job_id = batch.submit(tags=fifty)
    assert (
        len(batch.client.list_tags_for_resource(resourceArn=batch.describe(job_id)["jobArn"])["tags"]) == 50
    )
