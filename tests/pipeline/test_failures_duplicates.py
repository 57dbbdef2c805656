"""Duplicated S3 events: however often the same Object Created event arrives, one execution runs.

EventBridge delivers at least once, so the trigger may see the same event many times, even at
the same moment. The event an upload really produced is captured (an extra EventBridge rule with
an SQS target, created for the test and removed after), then delivered again 20 times at once
straight to the deployed trigger (lambda:Invoke) and 20 times at once through EventBridge
(PutEvents). A new upload of the same key is a new object version: a second run with its own
output.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sluice import sampledata
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

KEY = "incoming/failures/duplicates/sales.csv"
COPIES = 20


class EventCapture:
    """Every S3 event about one key, as EventBridge delivered it, through a rule -> SQS queue."""

    def __init__(self, pipeline: Pipeline, key: str) -> None:
        self.sqs = pipeline.clients.client("sqs")
        self.events = pipeline.clients.client("events")
        self.name = f"e2e-capture-{uuid.uuid4().hex[:8]}"
        self.queue_url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        pattern = {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [pipeline.outputs.input_bucket]}, "object": {"key": [key]}},
        }
        rule_arn = self.events.put_rule(Name=self.name, EventPattern=json.dumps(pattern))["RuleArn"]
        # EventBridge may send to the queue for this rule only: the queue policy AWS requires.
        grant = {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }
        self.sqs.set_queue_attributes(
            QueueUrl=self.queue_url,
            Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [grant]})},
        )
        self.events.put_targets(Rule=self.name, Targets=[{"Id": "capture", "Arn": queue_arn}])

    def next_event(self, timeout: float = 30) -> dict[str, Any]:
        def receive() -> list[dict[str, Any]] | None:
            return self.sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=1).get("Messages")

        message = wait_for(receive, timeout, "the captured S3 event")[0]
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return json.loads(message["Body"])

    def close(self) -> None:
        self.events.remove_targets(Rule=self.name, Ids=["capture"])
        self.events.delete_rule(Name=self.name)
        self.sqs.delete_queue(QueueUrl=self.queue_url)


@pytest.fixture
def capture(pipeline: Pipeline) -> Iterator[EventCapture]:
    capture = EventCapture(pipeline, KEY)
    try:
        yield capture
    finally:
        capture.close()


def invoke_trigger(pipeline: Pipeline, event: dict[str, Any]) -> dict[str, Any]:
    lam = pipeline.clients.client("lambda")
    response = lam.invoke(
        FunctionName=pipeline.outputs.values["TriggerFunctionName"], Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


def put_again(pipeline: Pipeline, event: dict[str, Any]) -> dict[str, Any]:
    """Deliver the event again through the default bus, as EventBridge redelivers it.

    AWS documents no rule on PutEvents with an `aws.` source (ND: docs/aws-behaviour.md#eventbridge); the local
    EventBridge accepts it, which is what makes a redelivery reproducible here."""
    events = pipeline.clients.client("events")
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
    }
    return events.put_events(Entries=[entry])


def trigger_decisions(pipeline: Pipeline, execution_name: str) -> list[str]:
    """The trigger's log lines (Powertools JSON) saying it started, or found, the execution."""
    pipeline.cloud.lambda_runtime.flush_logs(10)
    logs = pipeline.clients.logs
    group = f"/aws/lambda/{pipeline.outputs.values['TriggerFunctionName']}"
    found = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        for event in page["events"]:
            try:
                line = json.loads(event["message"])
            except ValueError:
                continue
            if line.get("execution_name") == execution_name and line.get("message", "").startswith(
                ("execution started", "duplicate event")
            ):
                found.append(line["message"])
    return found


def result_bytes(pipeline: Pipeline, prefix: str) -> tuple[bytes, bytes]:
    s3, bucket = pipeline.clients.s3, pipeline.outputs.output_bucket
    parquet = s3.get_object(Bucket=bucket, Key=f"{prefix}result.parquet")["Body"].read()
    csv = s3.get_object(Bucket=bucket, Key=f"{prefix}result.csv")["Body"].read()
    return parquet, csv


def test_same_event_twenty_times_at_once_starts_one_execution_and_a_new_version_a_second(
    pipeline: Pipeline, capture: EventCapture, tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    sampledata.generate(str(first), rows=3_000, seed=101)
    head = pipeline.upload(KEY, first.read_bytes())
    event = capture.next_event()
    assert event["detail"]["object"]["version-id"] == head["VersionId"]
    assert event["detail"]["object"]["size"] == head["ContentLength"]

    with ThreadPoolExecutor(COPIES) as pool:
        invoked = list(pool.map(lambda _: invoke_trigger(pipeline, event), range(COPIES)))
        put = list(pool.map(lambda _: put_again(pipeline, event), range(COPIES)))
    assert all(response["FailedEntryCount"] == 0 for response in put)
    names = {result["executionName"] for result in invoked}
    assert len(names) == 1, invoked
    name = names.pop()
    # StartExecution with the same name and input is idempotent while the run is going, and
    # ExecutionAlreadyExists (counted as a duplicate) once it ended.
    assert {result["status"] for result in invoked} <= {"started", "duplicate"}
    assert pipeline.cloud.settle(30)  # the 20 EventBridge deliveries reached the trigger too
    # The upload's own delivery, 20 invocations and 20 redeliveries: 41 decisions, one run.
    expected = 1 + 2 * COPIES

    def all_decisions() -> list[str] | None:
        found = trigger_decisions(pipeline, name)
        return found if len(found) >= expected else None

    decisions = wait_for(all_decisions, 30, "the trigger's log lines")
    assert len(decisions) == expected, decisions

    executions = pipeline.executions_for(KEY)
    assert [e["name"] for e in executions] == [name]
    run = pipeline.wait_finished(executions[0]["executionArn"])
    assert run["status"] == "SUCCEEDED", run.get("cause")

    # Once the execution has closed the trigger sees ExecutionAlreadyExists: still one run.
    again = invoke_trigger(pipeline, event)
    assert again["status"] == "duplicate" and again["executionName"] == run["name"]
    assert len(pipeline.executions_for(KEY)) == 1

    # The same key with new content is a new object version, so a new run with its own output.
    second = tmp_path / "second.csv"
    sampledata.generate(str(second), rows=2_000, seed=202)
    head2 = pipeline.upload(KEY, second.read_bytes())
    assert head2["VersionId"] != head["VersionId"]
    wait_for(lambda: len(pipeline.executions_for(KEY)) == 2, 30, "the second execution")
    newer = next(e for e in pipeline.executions_for(KEY) if e["name"] != run["name"])
    rerun = pipeline.wait_finished(newer["executionArn"])
    assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
    assert json.loads(rerun["input"])["input"]["versionId"] == head2["VersionId"]

    prefixes = [json.loads(e["output"])["output"]["prefix"] for e in (run, rerun)]
    assert prefixes == [f"results/{KEY}/{run['name']}/", f"results/{KEY}/{rerun['name']}/"]
    for prefix, source in zip(prefixes, (first, second), strict=True):
        assert f"{prefix}_SUCCESS" in pipeline.output_keys(prefix)
        parquet, _ = result_bytes(pipeline, prefix)
        assert_matches(pq.read_table(io.BytesIO(parquet)), duckdb_expected(source))
    assert result_bytes(pipeline, prefixes[0]) != result_bytes(pipeline, prefixes[1])
    assert pipeline.notifications_about(KEY) == []
