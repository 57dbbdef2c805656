"""Asynchronous invocations: AWS's retries, then the on-failure destination or the DLQ."""

from __future__ import annotations

import json
import time
import uuid


def receive(endpoint, queue_url: str, timeout: float = 20.0) -> dict:
    """Wait (with a deadline, no fixed sleep) for one message on a queue."""
    sqs = endpoint.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1, MessageAttributeNames=["All"], MaxNumberOfMessages=1
        ).get("Messages", [])
        if messages:
            return messages[0]
    raise AssertionError(f"no message on {queue_url} within {timeout} s")


def make_queue(endpoint) -> tuple[str, str]:
    sqs = endpoint.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def start_lines(endpoint, name: str) -> list[str]:
    assert endpoint.runtime.flush_logs(10)
    events = endpoint.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return [e["message"] for e in events if e["message"].startswith("START ")]


def test_retries_then_on_failure_destination(endpoint, make_function):
    url, arn = make_queue(endpoint)
    name = make_function("app.boom")
    lam = endpoint.client("lambda")
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    event = {"why": "always", "id": uuid.uuid4().hex}
    started = time.monotonic()
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
    assert response["StatusCode"] == 202

    record = json.loads(receive(endpoint, url)["Body"])
    assert time.monotonic() - started >= 0.2 + 0.4  # both (shrunk) retry delays were waited
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3  # 1 attempt + 2 retries by default
    assert record["requestContext"]["functionArn"].endswith(f"function:{name}:$LATEST")
    assert record["requestPayload"] == event
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "boom: always"
    assert endpoint.runtime.wait_for_async(10)
    starts = start_lines(endpoint, name)
    assert len(starts) == 3 and len({s.split()[2] for s in starts}) == 1  # same request id each time


def test_dead_letter_queue_gets_the_event(endpoint, make_function):
    url, arn = make_queue(endpoint)
    name = make_function("app.boom", DeadLetterConfig={"TargetArn": arn})
    lam = endpoint.client("lambda")
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    event = {"why": "dlq", "id": uuid.uuid4().hex}
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())

    message = receive(endpoint, url)
    assert json.loads(message["Body"]) == event
    attributes = message["MessageAttributes"]
    uuid.UUID(attributes["RequestID"]["StringValue"])
    assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attributes["ErrorMessage"]["StringValue"] == "boom: dlq"
    assert endpoint.runtime.wait_for_async(10)
    assert len(start_lines(endpoint, name)) == 2  # MaximumRetryAttempts=1 honoured


def test_success_destination(endpoint, make_function):
    url, arn = make_queue(endpoint)
    name = make_function("app.echo")
    lam = endpoint.client("lambda")
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    endpoint.runtime.invoke(name, b'{"ok": true}', "Event")
    record = json.loads(receive(endpoint, url)["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"]["event"] == {"ok": True}
    assert "functionError" not in record["responseContext"]
