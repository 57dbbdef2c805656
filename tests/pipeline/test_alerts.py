"""Subscribers can filter alerts: an SQS subscription with a filter policy on `outcome` gets
only the failures, never the rejections (SNS filter policies on message attributes:
https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PREFIX = "incoming/alerts"


def test_a_filter_policy_on_outcome_receives_only_failures(pipeline: Pipeline) -> None:
    sqs, sns = pipeline.clients.client("sqs"), pipeline.clients.client("sns")
    queue_url = sqs.create_queue(QueueName="failures-only")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    subscription = sns.subscribe(
        TopicArn=pipeline.outputs.alerts_topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps({"outcome": ["failed", "timed_out", "aborted"]})},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    try:
        rejected_key, failed_key = f"{PREFIX}/empty.csv", f"{PREFIX}/header-only.csv"
        pipeline.upload(rejected_key, b"")
        pipeline.upload(failed_key, b"transaction_id,category,country,amount\n")
        execution = pipeline.wait_finished(pipeline.wait_execution_for(failed_key)["executionArn"])
        assert execution["status"] == "FAILED"
        pipeline.the_alert_for(execution["name"])
        wait_for(lambda: pipeline.alerts_for("input_key", rejected_key), 30, "the rejection alert")

        received: list[dict[str, Any]] = []

        def drained() -> bool:
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return bool(received)

        wait_for(drained, 30, "the failure alert in the filtered queue")
        pipeline.cloud.settle(10)
        drained()
        assert [m["MessageAttributes"]["outcome"]["Value"] for m in received] == ["failed"]
        assert received[0]["MessageAttributes"]["run_id"]["Value"] == execution["name"]
        assert received[0]["MessageAttributes"]["input_key"]["Value"] == failed_key
        assert received[0]["Subject"].startswith("Sluice run failed in ingest: header-only.csv")
    finally:
        sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=queue_url)
