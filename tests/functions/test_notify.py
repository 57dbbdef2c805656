"""Notify function: one message per failed array, listing failed children (in-memory Batch fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.helpers import load_function, sample_event

notify = load_function("notify")

PARENT = "7d5a3b2c-1e4f-4a6b-9c8d-0e1f2a3b4c5d"


class FakeBatch:
    """ListJobs/DescribeJobs over a fixed array, shaped like the Batch API responses."""

    def __init__(self, size: int, failed: dict[int, int]) -> None:
        self.size = size
        self.failed = failed  # index -> exit code
        self.describe_calls: list[list[str]] = []

    def _job(self, index: int) -> dict[str, Any]:
        job_id = f"{PARENT}:{index}"
        stream = f"sluice-transform/default/{PARENT}-{index}"
        return {
            "jobId": job_id,
            "jobName": "sluice-transform",
            "status": "FAILED",
            "statusReason": "Essential container in task exited",
            "arrayProperties": {"index": index},
            "attempts": [{"container": {"exitCode": self.failed[index], "logStreamName": stream}}] * 3,
            "container": {
                "exitCode": self.failed[index],
                "reason": "Essential container in task exited",
                "logStreamName": stream,
            },
        }

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_jobs"
        fake = self

        class Paginator:
            def paginate(self, arrayJobId: str, jobStatus: str) -> Iterator[dict[str, Any]]:
                assert arrayJobId == PARENT and jobStatus == "FAILED"
                indexes = sorted(fake.failed, reverse=True)  # the API promises no order
                for start in range(0, len(indexes), 7):
                    yield {
                        "jobSummaryList": [
                            {"jobId": f"{PARENT}:{i}", "arrayProperties": {"index": i}}
                            for i in indexes[start : start + 7]
                        ]
                    }

        return Paginator()

    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        assert len(jobs) <= 100
        self.describe_calls.append(jobs)
        return {"jobs": [self._job(int(job_id.rsplit(":", 1)[1])) for job_id in jobs]}


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    with mock_aws():
        notify._sns.cache_clear()
        sns = boto3.client("sns")
        sqs = boto3.client("sqs")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

        def read() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

        yield topic, read


def use_batch(monkeypatch: pytest.MonkeyPatch, fake: FakeBatch) -> None:
    monkeypatch.setattr(notify, "_batch", lambda: fake)


def test_one_failed_child_gives_one_message_naming_it(inbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    topic, read = inbox
    use_batch(monkeypatch, FakeBatch(size=50, failed={3: 1}))
    result = notify.handle(sample_event("batch-array-parent-failed.json"), topic)

    assert result == {"jobId": PARENT, "failedChildren": 1, "listed": [3]}
    [message] = read()
    text = message["Message"]
    assert "sluice-transform" in text and PARENT in text
    assert "Input: s3://sluice-input-example/incoming/sales-2026-11.csv" in text
    assert "Execution (run id): sales-2026-11-csv-5d41402abc4b2a76b9719d91" in text
    assert "Failed children: 1 of 50" in text
    assert (
        f"child 3: exit code 1, Essential container in task exited; attempts 3; log stream sluice-transform/default/{PARENT}-3"
        in text
    )
    assert message["Subject"].startswith("Sluice array job FAILED")


def test_many_failed_children_list_first_ten_in_index_order_and_count(
    inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, read = inbox
    fake = FakeBatch(size=500, failed={i: 2 for i in range(0, 500, 2)})
    use_batch(monkeypatch, fake)
    result = notify.handle(sample_event("batch-array-parent-failed.json"), topic)

    assert result["failedChildren"] == 250
    assert result["listed"] == list(range(0, 20, 2))
    assert fake.describe_calls == [[f"{PARENT}:{i}" for i in range(0, 20, 2)]]
    [message] = read()
    assert "... and 240 more failed children" in message["Message"]
    assert len(message["Subject"]) <= 100


def test_single_job_event_is_refused(inbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    topic, read = inbox
    use_batch(monkeypatch, FakeBatch(size=2, failed={}))
    with pytest.raises(notify.NotArrayJobError):
        notify.handle(sample_event("batch-job-failed.json"), topic)
    assert read() == []


def test_child_that_never_ran_is_described_without_log_stream() -> None:
    detail = notify.BatchJobDetail.model_validate(sample_event("batch-array-parent-failed.json")["detail"])
    child = notify.FailedChild(
        index=7,
        job_id=f"{PARENT}:7",
        reason="Dependent Job failed",
        exit_code=None,
        log_stream=None,
        attempts=0,
    )
    _, message = notify.compose_message(detail, [child], 1)
    assert (
        "child 7: exit code none, Dependent Job failed; attempts 0; log stream none (never started)"
        in message
    )
