"""Names of a deployed Sluice stack, read from its CloudFormation Outputs (on AWS and locally alike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

DEFAULT_STACK = "sluice"


class StackNotFoundError(Exception):
    """The stack does not exist at the chosen endpoint/region, or lacks Sluice's outputs."""


@dataclass(frozen=True)
class StackOutputs:
    stack_name: str
    values: dict[str, str]

    def _get(self, key: str) -> str:
        try:
            return self.values[key]
        except KeyError:
            raise StackNotFoundError(
                f"stack {self.stack_name} has no output {key}; is it a Sluice stack?"
            ) from None

    @property
    def input_bucket(self) -> str:
        return self._get("InputBucketName")

    @property
    def input_prefix(self) -> str:
        return self.values.get("InputPrefix", "")

    @property
    def output_bucket(self) -> str:
        return self._get("OutputBucketName")

    @property
    def work_bucket(self) -> str:
        return self._get("WorkBucketName")

    @property
    def state_machine_arn(self) -> str:
        return self._get("StateMachineArn")

    @property
    def alerts_topic_arn(self) -> str:
        return self._get("AlertsTopicArn")

    @property
    def job_log_group(self) -> str:
        return self._get("JobLogGroupName")


def load_outputs(cloudformation: Any, stack_name: str = DEFAULT_STACK) -> StackOutputs:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        # Only "does not exist" means a missing stack; a refused key or an expired token is the
        # caller's credentials, and is reported as what it is.
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
        message = error.response["Error"].get("Message", "")
        if error.response["Error"].get("Code") != "ValidationError" or "does not exist" not in message:
            raise
        raise StackNotFoundError(f"stack {stack_name} not found: {message}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackOutputs(stack_name=stack_name, values=outputs)
