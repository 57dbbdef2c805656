"""DescribeJobDefinitions answers in AWS's shape (docs/aws-behaviour.md#batch-job-definitions)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(30)


def test_retry_actions_come_back_lower_case(batch):
    """Actions "aren't case sensitive" and AWS returns them lower-cased
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html; Terraform's
    provider normalises to lower case for that reason:
    https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/batch/job_definition.go)."""
    rules = [{"onStatusReason": "osr", "action": "RETRY"}, {"onExitCode": "1", "action": "Exit"}]
    batch.definition(retryStrategy={"attempts": 3, "evaluateOnExit": rules})
    [definition] = batch.client.describe_job_definitions(jobDefinitionName="jd")["jobDefinitions"]
    assert definition["retryStrategy"] == {
        "attempts": 3,
        "evaluateOnExit": [
            {"onStatusReason": "osr", "action": "retry"},
            {"onExitCode": "1", "action": "exit"},
        ],
    }


def test_members_not_given_are_empty_lists_and_nothing_is_invented(batch):
    """The AWS CLI reference's DescribeJobDefinitions example returns `environment`, `mountPoints`,
    `ulimits`, `volumes` as [] for a definition that gave none
    (https://docs.aws.amazon.com/cli/latest/reference/batch/describe-job-definitions.html);
    platformCapabilities defaults to EC2 but is not echoed when not given
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_RegisterJobDefinition.html)."""
    batch.client.register_job_definition(
        jobDefinitionName="bare",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 512},
    )
    [definition] = batch.client.describe_job_definitions(jobDefinitionName="bare")["jobDefinitions"]
    container = definition["containerProperties"]
    for member in ("command", "resourceRequirements", "environment", "mountPoints", "ulimits", "volumes"):
        assert container[member] == [], member
    assert "platformCapabilities" not in definition
    assert "propagateTags" not in definition
    assert definition["tags"] == {}

    batch.definition("fargate")  # given explicitly: echoed
    [fargate] = batch.client.describe_job_definitions(jobDefinitionName="fargate")["jobDefinitions"]
    assert fargate["platformCapabilities"] == ["FARGATE"]
    assert fargate["containerProperties"]["command"] == ["run"]
