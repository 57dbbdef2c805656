"""The trigger failing on every attempt: the S3 event ends in the on-failure destination.

The deployed trigger is made to fail honestly: its STATE_MACHINE_ARN is pointed at a state
machine that does not exist (update_function_configuration, restored afterwards), so
StartExecution fails on every attempt. EventBridge invokes the trigger asynchronously; Lambda
retries it MaximumRetryAttempts (2) times and then sends the invocation record, with the
original event as `requestPayload`, to TriggerFailureQueue (EventInvokeConfig OnFailure). AWS
waits 1 and 2 minutes between the retries; the local Lambda runtime's delays are shortened
for the test and restored afterwards. The record is enough to start the run once the cause is
fixed: replaying its event to the trigger does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import sampledata
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

KEY = "incoming/failures/trigger/unlucky.csv"


@pytest.fixture
def broken_trigger(pipeline: Pipeline) -> Iterator[dict[str, str]]:
    """The trigger pointed at a missing state machine, with short async retry delays."""
    lam = pipeline.clients.client("lambda")
    function = pipeline.outputs.values["TriggerFunctionName"]
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    runtime: Any = pipeline.cloud.lambda_runtime
    delays = runtime.async_retry_delays
    broken = {
        **variables,
        "STATE_MACHINE_ARN": f"{variables['STATE_MACHINE_ARN']}-missing-{uuid.uuid4().hex[:6]}",
    }
    runtime.async_retry_delays = (0.2, 0.2)
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": broken})
    try:
        yield variables
    finally:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
        runtime.async_retry_delays = delays


def failure_records(pipeline: Pipeline) -> list[dict[str, Any]]:
    sqs = pipeline.clients.client("sqs")
    url = pipeline.outputs.values["TriggerFailureQueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"]) for message in messages]


def test_trigger_failing_every_attempt_lands_the_event_in_the_failure_queue(
    pipeline: Pipeline, broken_trigger: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "unlucky.csv"
    sampledata.generate(str(source), rows=500, seed=7)
    head = pipeline.upload(KEY, source.read_bytes())

    records = wait_for(lambda: failure_records(pipeline), 60, "the failure record in TriggerFailureQueue")
    assert len(records) == 1, records
    record = records[0]
    print(f"--- TriggerFailureQueue message\n{json.dumps(record, indent=1)[:3000]}")
    context = record["requestContext"]
    assert context["condition"] == "RetriesExhausted"
    assert context["approximateInvokeCount"] == 3  # the first attempt and MaximumRetryAttempts (2) retries
    assert context["functionArn"].startswith(
        f"arn:aws:lambda:us-east-1:123456789012:function:{pipeline.outputs.values['TriggerFunctionName']}"
    )
    assert record["responseContext"]["functionError"] == "Unhandled"
    # The role may start only the stack's state machine, so IAM refuses before the name is
    # looked up, as on AWS (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
    assert record["responsePayload"]["errorType"] == "ClientError"
    assert "AccessDeniedException" in record["responsePayload"]["errorMessage"]
    assert "is not authorized to perform: states:StartExecution" in record["responsePayload"]["errorMessage"]
    event = record["requestPayload"]  # the original S3 event, as EventBridge delivered it
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == pipeline.outputs.input_bucket
    assert event["detail"]["object"]["key"] == KEY
    assert event["detail"]["object"]["version-id"] == head["VersionId"]
    assert event["detail"]["object"]["size"] == head["ContentLength"]
    assert pipeline.cloud.settle(10)
    assert pipeline.executions_for(KEY) == []
    assert failure_records(pipeline) == []  # exactly one record for one event

    # With the cause fixed, the event from the record starts the run (how an operator redrives).
    lam = pipeline.clients.client("lambda")
    function = pipeline.outputs.values["TriggerFunctionName"]
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": broken_trigger})
    response = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    started = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, started
    assert started["status"] == "started"
    execution = pipeline.wait_finished(pipeline.wait_execution_for(KEY)["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert execution["name"] == started["executionName"]
