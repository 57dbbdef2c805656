"""Notify function: every kind of incident gives exactly one message, pinned by a golden file.

Batch, CloudWatch Logs and Step Functions are in-memory fakes shaped like their API responses;
SNS is moto's, read through an SQS subscription, so each test sees what a subscriber receives.
Golden files: tests/functions/golden/notify/<case>.txt (subject, attributes, body). After a
deliberate wording change, regenerate them with `SLUICE_UPDATE_GOLDEN=1 pytest tests/functions`
and review the diff.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.helpers import load_function, sample_event

notify = load_function("notify")
notices = __import__("notices")  # functions/notify/notices.py, importable once app.py is loaded

pytestmark = pytest.mark.timeout(60)

GOLDEN = Path(__file__).parent / "golden" / "notify"
LOG_GROUP = "/aws/batch/sluice"
PARENT = "7d5a3b2c-1e4f-4a6b-9c8d-0e1f2a3b4c5d"
INGEST = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
RUN = "sales-2026-11-csv-5d41402abc4b2a76b9719d91"
EXECUTION = f"arn:aws:states:us-east-1:123456789012:execution:PipelineStateMachine-abc:{RUN}"


def job_log(job: str, sentence: str, code: int) -> list[str]:
    """What jobkit/runner.py writes when a job fails: JSON lines on stdout, one sentence on stderr."""
    return [
        json.dumps({"ts": "2026-11-24T12:00:00.000Z", "level": "INFO", "msg": "started", "job": job}),
        json.dumps({"level": "ERROR", "msg": sentence, "job": job, "exit_code": code, "error": "x"}),
        f"{job}: {sentence}",
    ]


@dataclass
class FakeAws:
    """DescribeJobs/ListJobs, GetLogEvents and GetExecutionHistory over fixed data."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # names of states entered, in order
    denied: set[str] = field(default_factory=set)  # operations that raise AccessDenied
    calls: list[str] = field(default_factory=list)

    def _check(self, operation: str) -> None:
        self.calls.append(operation)
        if operation in self.denied:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, operation)

    # batch
    def describe_jobs(self, jobs: list[str]) -> dict[str, Any]:
        self._check("DescribeJobs")
        assert len(jobs) <= 100
        return {"jobs": [copy.deepcopy(self.jobs[j]) for j in jobs if j in self.jobs]}

    def get_paginator(self, operation: str) -> Any:
        fake = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                if operation == "list_jobs":
                    fake._check("ListJobs")
                    parent, status = kwargs["arrayJobId"], kwargs["jobStatus"]
                    children = [
                        {"jobId": j["jobId"], "arrayProperties": {"index": j["arrayProperties"]["index"]}}
                        for j in fake.jobs.values()
                        if j["jobId"].startswith(parent + ":") and j["status"] == status
                    ]
                    children.reverse()  # the API promises no order
                    for start in range(0, len(children), 3):
                        yield {"jobSummaryList": children[start : start + 3]}
                else:
                    assert operation == "get_execution_history"
                    fake._check("GetExecutionHistory")
                    events = [
                        {"id": i + 1, "stateEnteredEventDetails": {"name": n}}
                        for i, n in enumerate(fake.history)
                    ]
                    yield {"events": events}

        return Paginator()

    # logs
    def get_log_events(self, logGroupName: str, logStreamName: str, **kwargs: Any) -> dict[str, Any]:
        self._check("GetLogEvents")
        assert logGroupName == LOG_GROUP and kwargs["startFromHead"] is False
        if logStreamName not in self.logs:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "GetLogEvents"
            )
        lines = self.logs[logStreamName][-kwargs["limit"] :]
        return {"events": [{"timestamp": i, "message": line} for i, line in enumerate(lines)]}

    def add_job(
        self,
        job_id: str,
        name: str,
        exit_codes: list[int | None],
        reason: str = "Essential container in task exited",
        sentence: str | None = None,
        index: int | None = None,
        size: int | None = None,
    ) -> None:
        stream = f"{name}/default/{job_id.replace(':', '-')}"
        attempts = [
            {
                "container": {"exitCode": code, "logStreamName": stream}
                if code is not None
                else {"logStreamName": stream}
            }
            for code in exit_codes
        ]
        job: dict[str, Any] = {
            "jobId": job_id,
            "jobName": name,
            "status": "FAILED",
            "statusReason": reason,
            "attempts": attempts,
            "container": {"logStreamName": stream, **({"exitCode": exit_codes[-1]} if exit_codes else {})},
        }
        if index is not None:
            job["arrayProperties"] = {"index": index}
        if size is not None:
            job = {
                "jobId": job_id,
                "jobName": name,
                "status": "FAILED",
                "statusReason": reason,
                "arrayProperties": {"size": size},
            }
        self.jobs[job_id] = job
        if sentence is not None and exit_codes:
            self.logs[stream] = job_log(name.removeprefix("sluice-"), sentence, exit_codes[-1] or 1)


@dataclass
class Inbox:
    topic: str
    read: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    fake = FakeAws()
    for client in ("_batch", "_logs", "_sfn"):
        monkeypatch.setattr(notify, client, lambda fake=fake: fake)
    return fake


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with mock_aws():
        notify._sns.cache_clear()
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

        def read() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

        yield Inbox(topic, read)
    notify._sns.cache_clear()


def execution_event(
    status: str, cause: str | None, error: str | None = "States.TaskFailed"
) -> dict[str, Any]:
    event = sample_event("execution-failed.json")
    event["detail"].update({"status": status, "cause": cause, "error": error})
    return event


def batch_cause(name: str, job_id: str, reason: str) -> str:
    # What SummarizeBatchFailure (statemachines/pipeline.asl.json) writes.
    return f"AWS Batch job {name} ({job_id}) FAILED: {reason}. The alert quotes the error line the job wrote."


def deliver(inbox: Inbox, event: dict[str, Any], notify_on_success: bool = True) -> dict[str, Any]:
    notify.handle(event, inbox.topic, LOG_GROUP, notify_on_success=notify_on_success)
    [message] = inbox.read()
    return message


def as_received(message: dict[str, Any]) -> str:
    attributes = {name: value["Value"] for name, value in sorted(message["MessageAttributes"].items())}
    lines = [f"Subject: {message['Subject']}"]
    lines += [f"Attribute {name}: {value}" for name, value in attributes.items()]
    return "\n".join(lines) + "\n\n" + message["Message"]


def assert_golden(case: str, message: dict[str, Any]) -> None:
    text = as_received(message)
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("SLUICE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with SLUICE_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8")
    # Rules every message keeps, whatever the golden file says.
    assert len(message["Subject"]) <= notices.SUBJECT_LIMIT and message["Subject"].isascii()
    assert not any(line.startswith('"') for line in message["Message"].splitlines()), "quoted lines"


BAD_ROW = "bad input: line 473: column 'arr_delay': 'NA' is not a number (max_bad_row_fraction is 0)"


def test_bad_input_quotes_the_jobs_own_sentence(aws: FakeAws, inbox: Inbox) -> None:
    aws.add_job(INGEST, "sluice-ingest", [65], sentence=BAD_ROW)
    message = deliver(
        inbox,
        execution_event("FAILED", batch_cause("sluice-ingest", INGEST, "Essential container in task exited")),
    )
    assert_golden("bad-input", message)
    assert BAD_ROW in message["Message"]
    assert message["MessageAttributes"]["reason_code"]["Value"] == "bad_input"
    assert "fix the file" in message["Message"]


def test_array_failure_lists_first_children_with_their_sentences(aws: FakeAws, inbox: Inbox) -> None:
    aws.add_job(PARENT, "sluice-transform", [], reason="Array Child Job failed", size=50)
    for index in (3, 17, 41):
        aws.add_job(
            f"{PARENT}:{index}",
            "sluice-transform",
            [1, 1, 1],
            sentence=f"injected failure for shard {index}",
            index=index,
        )
    message = deliver(
        inbox, execution_event("FAILED", batch_cause("sluice-transform", PARENT, "Array Child Job failed"))
    )
    assert_golden("array-children", message)
    assert message["Message"].count("injected failure for shard") == 3


def test_many_failed_children_are_counted_not_listed(aws: FakeAws, inbox: Inbox) -> None:
    aws.add_job(PARENT, "sluice-transform", [], reason="Array Child Job failed", size=500)
    for index in range(0, 40, 2):
        aws.add_job(
            f"{PARENT}:{index}",
            "sluice-transform",
            [1],
            sentence=f"unexpected error: shard {index}",
            index=index,
        )
    message = deliver(
        inbox, execution_event("FAILED", batch_cause("sluice-transform", PARENT, "Array Child Job failed"))
    )
    body = message["Message"]
    assert "Failed:  20 of 500 shards" in body
    assert "and 15 more failed shards" in body
    listed = [f"shard {i}:" for i in range(0, 10, 2)]
    assert all(item in body for item in listed) and "shard 10:" not in body
    assert aws.calls.count("GetLogEvents") == notices.LISTED_CHILDREN


def test_attempt_timeout_puts_batchs_reason_first(aws: FakeAws, inbox: Inbox) -> None:
    job = f"{PARENT}:0"
    aws.add_job(PARENT, "sluice-transform", [], reason="Array Child Job failed", size=2)
    aws.add_job(
        job,
        "sluice-transform",
        [143],
        reason="Job attempt duration exceeded timeout",
        sentence="terminated by SIGTERM, stopped cleanly",
        index=0,
    )
    message = deliver(
        inbox, execution_event("FAILED", batch_cause("sluice-transform", PARENT, "Array Child Job failed"))
    )
    assert_golden("attempt-timeout", message)
    assert message["MessageAttributes"]["reason_code"]["Value"] == "job_timeout"


def test_spot_loss_after_every_attempt_is_infrastructure(aws: FakeAws, inbox: Inbox) -> None:
    reason = "Host EC2 (instance i-0123456789abcdef0) terminated."
    aws.add_job(INGEST, "sluice-ingest", [None, None, None], reason=reason)
    message = deliver(inbox, execution_event("FAILED", batch_cause("sluice-ingest", INGEST, reason)))
    assert_golden("spot-loss", message)
    assert message["MessageAttributes"]["reason_code"]["Value"] == "infrastructure"
    assert "failure to retry" in message["Message"]


BLOCKED_REASON = (
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue "
    "cannot meet the CPU requirement of the job."
)


def test_blocked_queue_says_what_happens_next(aws: FakeAws, inbox: Inbox) -> None:
    event = sample_event("batch-job-queue-blocked.json")
    notify.handle(event, inbox.topic, LOG_GROUP, time_limit=3600)
    [message] = inbox.read()
    assert_golden("blocked", message)
    attributes = {name: value["Value"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {
        "outcome": "blocked",
        "stage": "transform",
        "run_id": RUN,
        "input_key": "incoming/sales-2026-11.csv",
        "reason_code": "job_blocked",
    }
    assert BLOCKED_REASON in message["Message"]
    assert "cancels the job after 1 hour" in message["Message"]
    assert aws.calls == []  # the event carries the job: nothing to look up


def test_job_cancelled_by_the_queue_time_limit_is_job_blocked(aws: FakeAws, inbox: Inbox) -> None:
    reason = "Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
    aws.add_job(INGEST, "sluice-ingest", [], reason=reason)
    aws.jobs[INGEST]["container"] = {}  # cancelled in RUNNABLE: no attempt, no log stream
    message = deliver(inbox, execution_event("FAILED", batch_cause("sluice-ingest", INGEST, reason)))
    assert_golden("blocked-cancelled", message)
    assert message["MessageAttributes"]["reason_code"]["Value"] == "job_blocked"
    assert "MaxVcpus" in message["Message"] and "failure to retry" not in message["Message"]


def test_aborted_execution_names_the_stage_it_stopped_in(aws: FakeAws, inbox: Inbox) -> None:
    aws.history = [
        "ValidateInput",
        "CheckOptions",
        "PrepareRun",
        "RunIngest",
        "ReadManifest",
        "ChooseFanOut",
        "RunTransformArray",
    ]
    message = deliver(inbox, execution_event("ABORTED", None, error=None))
    assert_golden("aborted", message)
    assert message["MessageAttributes"]["stage"]["Value"] == "transform"


def test_timed_out_execution(aws: FakeAws, inbox: Inbox) -> None:
    aws.history = [
        "ValidateInput",
        "PrepareRun",
        "RunIngest",
        "ReadManifest",
        "ChooseFanOut",
        "RunTransformSingle",
        "RunAggregate",
    ]
    message = deliver(inbox, execution_event("TIMED_OUT", None, error=None))
    assert_golden("timed-out", message)


def test_failure_outside_any_job_quotes_the_cause(aws: FakeAws, inbox: Inbox) -> None:
    aws.history = ["ValidateInput", "RejectExecutionInput"]
    event = execution_event(
        "FAILED", "Execution input must be {...}", error="Sluice.InvalidExecutionInputError"
    )
    event["detail"]["input"] = "{}"
    message = deliver(inbox, event)
    assert_golden("invalid-execution-input", message)
    assert message["MessageAttributes"]["reason_code"]["Value"] == "bad_input"
    assert message["MessageAttributes"]["stage"]["Value"] == "none"


def test_rejected_upload(aws: FakeAws, inbox: Inbox) -> None:
    event = {
        "version": "0",
        "id": "1",
        "detail-type": notify.UPLOAD_REJECTED,
        "source": "sluice",
        "account": "123456789012",
        "time": "2026-11-24T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::sluice-input-example"],
        "detail": {
            "bucket": "sluice-input-example",
            "key": "incoming/empty.csv",
            "reason": "the object is empty (0 bytes)",
        },
    }
    message = deliver(inbox, event)
    assert_golden("rejected-upload", message)
    assert aws.calls == []


def test_succeeded_run(aws: FakeAws, inbox: Inbox) -> None:
    event = execution_event("SUCCEEDED", None, error=None)
    event["detail"]["output"] = json.dumps(
        {
            "runId": RUN,
            "output": {
                "bucket": "sluice-output-example",
                "prefix": f"results/incoming/sales-2026-11.csv/{RUN}/",
            },
        }
    )
    message = deliver(inbox, event)
    assert_golden("succeeded", message)
    assert message["MessageAttributes"]["outcome"]["Value"] == "succeeded"


def test_lookups_that_fail_still_give_one_message(aws: FakeAws, inbox: Inbox) -> None:
    aws.denied = {"DescribeJobs", "GetExecutionHistory"}
    aws.add_job(INGEST, "sluice-ingest", [65], sentence=BAD_ROW)
    message = deliver(
        inbox,
        execution_event("FAILED", batch_cause("sluice-ingest", INGEST, "Essential container in task exited")),
    )
    assert "Sluice run failed" in message["Subject"]
    assert "AWS Batch job sluice-ingest" in message["Message"]  # the execution's cause stands in


def test_missing_log_stream_falls_back_to_batchs_reason(aws: FakeAws, inbox: Inbox) -> None:
    aws.add_job(INGEST, "sluice-ingest", [1])  # no log lines stored: GetLogEvents says gone
    message = deliver(
        inbox,
        execution_event("FAILED", batch_cause("sluice-ingest", INGEST, "Essential container in task exited")),
    )
    assert (
        "Why:     Essential container in task exited (no error line in the job's log)" in message["Message"]
    )
    assert message["MessageAttributes"]["reason_code"]["Value"] == "job_error"


def test_other_events_are_refused(aws: FakeAws, inbox: Inbox) -> None:
    with pytest.raises(notify.UnknownEventError):
        notify.handle(sample_event("batch-job-failed.json"), inbox.topic, LOG_GROUP)
    assert inbox.read() == []


def test_long_subject_is_cut_to_sns_limit_with_ascii_only() -> None:
    incident = notices.Incident(
        outcome="failed",
        run_id=RUN,
        bucket="b",
        key="incoming/" + "é" * 150 + ".csv",
        location=notices.Location(region="eu-west-1"),
    )
    subject = notices.render(incident).subject
    assert len(subject) == notices.SUBJECT_LIMIT and subject.isascii() and subject.endswith("...")


def test_console_links_follow_region_and_partition() -> None:
    job = notices.JobFailure(
        stage="ingest", job_id=INGEST, job_name="sluice-ingest", exit_codes=(1,), log_stream="a/b/c"
    )
    incident = notices.Incident(
        outcome="failed",
        run_id=RUN,
        bucket="b",
        key="k.csv",
        location=notices.Location(region="cn-north-1", partition="aws-cn", job_log_group="/aws/batch/x"),
        execution_arn="arn:aws-cn:states:cn-north-1:1:execution:m:r",
        job=job,
    )
    body = notices.render(incident).body
    assert (
        "https://cn-north-1.console.amazonaws.cn/states/home?region=cn-north-1#/v2/executions/details/"
        in body
    )
    assert "log-group/$252Faws$252Fbatch$252Fx/log-events/a$252Fb$252Fc" in body


def test_docs_show_the_golden_messages_unchanged() -> None:
    page = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")
    blocks = [block.split("\n", 1)[1] for block in page.split("```text")[1:]]
    shown = [block.split("```", 1)[0] for block in blocks]
    golden = {path.read_text(encoding="utf-8") for path in GOLDEN.glob("*.txt")}
    assert shown and all(example in golden for example in shown)


def succeeded_event(gaps: dict[str, Any]) -> dict[str, Any]:
    event = execution_event("SUCCEEDED", None, error=None)
    prefix = f"results/incoming/sales-2026-11.csv/{RUN}/"
    event["detail"]["output"] = json.dumps(
        {"runId": RUN, "output": {"bucket": "sluice-output-example", "prefix": prefix}, "gaps": gaps}
    )
    return event


def test_a_complete_success_is_announced_only_with_notify_on_success(aws: FakeAws, inbox: Inbox) -> None:
    result = notify.handle(succeeded_event({"tolerated": False}), inbox.topic, LOG_GROUP)
    assert result == {"skipped": "succeeded", "run_id": RUN}
    assert inbox.read() == []


def test_a_run_with_tolerated_gaps_is_always_announced(aws: FakeAws, inbox: Inbox) -> None:
    event = succeeded_event({"tolerated": True, "failedShards": 2})
    message = deliver(inbox, event, notify_on_success=False)
    assert_golden("completed-with-gaps", message)
    assert message["MessageAttributes"]["outcome"]["Value"] == "completed_with_gaps"
    assert f"sluice rerun {RUN}" in message["Message"]


def test_a_reruns_alert_names_the_run_it_reran(aws: FakeAws, inbox: Inbox) -> None:
    aws.add_job(INGEST, "sluice-ingest", [1], sentence="unexpected error: boom")
    event = execution_event(
        "FAILED", batch_cause("sluice-ingest", INGEST, "Essential container in task exited")
    )
    payload = json.loads(event["detail"]["input"])
    event["detail"]["input"] = json.dumps({**payload, "rerun": {"of": RUN}})
    event["detail"]["name"] = f"{RUN[:55]}-0123456789abcdef-r1"
    message = deliver(inbox, event)
    assert message["MessageAttributes"]["run_id"]["Value"] == RUN
    assert f"sluice rerun {RUN}" in message["Message"]
