"""Notify: one incident -> one message on the alerts topic.

Two kinds of event reach it (template.yaml, NotifyFunction events):
- `Step Functions Execution Status Change` for FAILED, TIMED_OUT and ABORTED executions (and
  SUCCEEDED ones when the stack sets NotifyOnSuccess). Every failed job fails its execution, so
  the execution event is the one place a run's failure is reported: a failed job, its array
  children and the execution no longer each send their own message.
- `Sluice Upload Rejected`, put on the default bus by the trigger when it refuses an upload.
- `Batch Job Queue Blocked` for the stack's queue: a job no compute environment can start waits
  at the head of the queue until the queue's time limit cancels it (which then fails the run and
  sends the run's message); this one says so at once. The event's detail is the job as
  DescribeJobs shows it, so nothing is looked up.
  https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html

The message says why, in the failing job's own words: the error line the job wrote to its log
(CloudWatch Logs), with the stage, shard, attempts and exit codes from DescribeJobs. Lookups
that fail (a log stream gone, a permission missing) leave a line out; they never stop the
message. The wording lives in notices.py.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from notices import LISTED_CHILDREN, ArrayFailure, Incident, JobFailure, Location, Outcome, render
from pydantic import BaseModel, ConfigDict, Field

logger = Logger()
tracer = Tracer()
metrics = Metrics()

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
UPLOAD_REJECTED = "Sluice Upload Rejected"  # functions/trigger/app.py puts these
QUEUE_BLOCKED = "Batch Job Queue Blocked"
DESCRIBE_BATCH = 100  # DescribeJobs accepts at most 100 job ids per call
LOG_LINES_READ = 100  # the error line is among a job's last lines (jobkit/runner.py writes it last)
OUTCOMES: dict[str, Outcome] = {
    "FAILED": "failed",
    "TIMED_OUT": "timed_out",
    "ABORTED": "aborted",
    "SUCCEEDED": "succeeded",
}
# statemachines/pipeline.asl.json: the state that runs each stage.
STAGE_OF_STATE = {
    "RunIngest": "ingest",
    "ReadManifest": "ingest",
    "RunTransformSingle": "transform",
    "RunTransformArray": "transform",
    "RunAggregate": "aggregate",
}
STAGE_OF_JOB = {"sluice-ingest": "ingest", "sluice-transform": "transform", "sluice-aggregate": "aggregate"}
# SummarizeBatchFailure's cause: "AWS Batch job <name> (<job id>) <status>: <reason>. ..."
SUMMARIZED_JOB = re.compile(r"AWS Batch job (?P<name>\S+) \((?P<id>[^()\s]+)\)")
JOB_PREFIX = re.compile(r"^(ingest|transform|aggregate): ")


class UnknownEventError(Exception):
    """The event is neither an execution status change nor a rejected upload."""


class ExecutionDetail(BaseModel):
    """https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html (execution status change)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    execution_arn: str = Field(alias="executionArn")
    name: str
    status: str
    input: str | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None


class ExecutionStatusChangeEvent(EventBridgeModel):
    detail: ExecutionDetail


class UploadRejectedDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    bucket: str
    key: str
    reason: str
    version_id: str | None = Field(default=None, alias="versionId")


class UploadRejectedEvent(EventBridgeModel):
    detail: UploadRejectedDetail


class BlockedJobDetail(BaseModel):
    """The JobDetail a Batch Job Queue Blocked event carries (the fields the message uses)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    job_id: str = Field(alias="jobId")
    job_name: str = Field(alias="jobName")
    job_queue: str | None = Field(default=None, alias="jobQueue")
    status_reason: str | None = Field(default=None, alias="statusReason")
    parameters: dict[str, str] = Field(default_factory=dict)


class QueueBlockedEvent(EventBridgeModel):
    detail: BlockedJobDetail


@cache
def _batch() -> Any:
    return boto3.client("batch")


@cache
def _logs() -> Any:
    return boto3.client("logs")


@cache
def _sfn() -> Any:
    return boto3.client("stepfunctions")


@cache
def _sns() -> Any:
    return boto3.client("sns")


# ------------------------------------------------------------------ lookups (each may fail)


def _lookup_failed(what: str, error: Exception) -> None:
    logger.warning("lookup failed; the message will say less", extra={"lookup": what, "error": str(error)})
    metrics.add_metric(name="NotificationLookupsFailed", unit=MetricUnit.Count, value=1)


def describe_jobs(job_ids: list[str]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), DESCRIBE_BATCH):
        jobs += _batch().describe_jobs(jobs=job_ids[start : start + DESCRIBE_BATCH])["jobs"]
    return jobs


def failed_child_ids(parent_id: str) -> list[str]:
    """All FAILED children of an array job, in index order."""
    ids: list[tuple[int, str]] = []
    for page in _batch().get_paginator("list_jobs").paginate(arrayJobId=parent_id, jobStatus="FAILED"):
        for summary in page.get("jobSummaryList", []):
            index = summary.get("arrayProperties", {}).get("index")
            if index is None:
                index = int(summary["jobId"].rsplit(":", 1)[-1])
            ids.append((index, summary["jobId"]))
    return [job_id for _, job_id in sorted(ids)]


def error_sentence(log_group: str | None, log_stream: str | None) -> str | None:
    """The job's own error line: the last JSON log record with an exit_code, else its stderr sentence."""
    if not log_group or not log_stream:
        return None
    try:
        events = _logs().get_log_events(
            logGroupName=log_group, logStreamName=log_stream, startFromHead=False, limit=LOG_LINES_READ
        )["events"]
    except (ClientError, BotoCoreError) as error:
        _lookup_failed(f"log stream {log_stream}", error)
        return None
    plain: str | None = None
    for event in reversed(events):
        message = str(event.get("message", "")).strip()
        try:
            record = json.loads(message)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("level") == "ERROR" and "exit_code" in record:
            return str(record.get("msg") or "") or None
        if plain is None and JOB_PREFIX.match(message):
            plain = JOB_PREFIX.sub("", message)
    return plain


def job_failure(job: dict[str, Any], log_group: str | None) -> JobFailure:
    attempts = job.get("attempts") or []
    container = job.get("container") or {}
    exit_codes = tuple((attempt.get("container") or {}).get("exitCode") for attempt in attempts)
    stream = container.get("logStreamName") or (
        (attempts[-1].get("container") or {}).get("logStreamName") if attempts else None
    )
    index = (job.get("arrayProperties") or {}).get("index")
    return JobFailure(
        stage=STAGE_OF_JOB.get(job.get("jobName", ""), job.get("jobName", "job")),
        job_id=job["jobId"],
        job_name=job.get("jobName", "job"),
        status_reason=job.get("statusReason") or container.get("reason"),
        exit_codes=exit_codes,
        log_stream=stream,
        sentence=error_sentence(log_group, stream) if attempts else None,
        index=index if isinstance(index, int) else None,
    )


def failed_job_id(cause: str | None) -> str | None:
    if not cause:
        return None
    match = SUMMARIZED_JOB.search(cause)
    if match:
        return match.group("id")
    try:  # an uncaught .sync failure's cause is the job description itself
        document = json.loads(cause)
    except ValueError:
        return None
    job_id = document.get("JobId") if isinstance(document, dict) else None
    return job_id if isinstance(job_id, str) else None


def last_stage(execution_arn: str) -> str | None:
    """The stage whose state was entered last (for executions that stopped without a job failure)."""
    try:
        pages = (
            _sfn()
            .get_paginator("get_execution_history")
            .paginate(executionArn=execution_arn, includeExecutionData=False)
        )
        entered = [
            event["stateEnteredEventDetails"]["name"]
            for page in pages
            for event in page.get("events", [])
            if "stateEnteredEventDetails" in event
        ]
    except (ClientError, BotoCoreError) as error:
        _lookup_failed(f"history of {execution_arn}", error)
        return None
    for name in reversed(entered):
        if name in STAGE_OF_STATE:
            return STAGE_OF_STATE[name]
    return None


# ------------------------------------------------------------------ incidents


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def _input_object(raw: str | None) -> tuple[str | None, str | None]:
    try:
        payload = json.loads(raw or "")
        source = payload["input"]
        bucket, key = source["bucket"], source["key"]
    except (ValueError, KeyError, TypeError):
        return None, None
    return (bucket if isinstance(bucket, str) else None), (key if isinstance(key, str) else None)


def _run_id(name: str, raw_input: str | None) -> str:
    """The run an execution belongs to: its name, or for a rerun (docs/rerun.md) the run it reran."""
    try:
        of = json.loads(raw_input or "")["rerun"]["of"]
    except (ValueError, KeyError, TypeError):
        return name
    return of if isinstance(of, str) and of else name


def _gaps(raw_output: str | None) -> int | None:
    """Failed shards a succeeded run tolerated (its output's gaps), or None for a complete result."""
    try:
        gaps = json.loads(raw_output or "")["gaps"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(gaps, dict) or gaps.get("tolerated") is not True:
        return None
    failed = gaps.get("failedShards")
    return failed if isinstance(failed, int) else 0


def _result_prefix(raw: str | None) -> str | None:
    try:
        output = json.loads(raw or "")["output"]
        return f"s3://{output['bucket']}/{output['prefix']}"
    except (ValueError, KeyError, TypeError):
        return None


def execution_incident(event: dict[str, Any], log_group: str | None) -> Incident:
    parsed = parse(event=event, model=ExecutionStatusChangeEvent)
    detail = parsed.detail
    outcome = OUTCOMES.get(detail.status)
    if outcome is None:
        raise UnknownEventError(f"execution status {detail.status} is not notified")
    bucket, key = _input_object(detail.input)
    location = Location(
        region=parsed.region, partition=_partition(detail.execution_arn), job_log_group=log_group
    )
    common: dict[str, Any] = {
        "run_id": _run_id(detail.name, detail.input),
        "bucket": bucket,
        "key": key,
        "location": location,
        "execution_arn": detail.execution_arn,
        "error": detail.error,
        "cause": detail.cause,
    }
    if outcome == "succeeded":
        gaps = _gaps(detail.output)
        return Incident(
            outcome="completed_with_gaps" if gaps is not None else "succeeded",
            result_prefix=_result_prefix(detail.output),
            missing_shard_count=gaps,
            **common,
        )

    job: JobFailure | None = None
    array: ArrayFailure | None = None
    job_id = failed_job_id(detail.cause) if outcome == "failed" else None
    if job_id:
        try:
            [described] = describe_jobs([job_id])
            size = (described.get("arrayProperties") or {}).get("size")
            if isinstance(size, int):
                array = array_failure(described, size, log_group)
                job = JobFailure(
                    stage=STAGE_OF_JOB.get(described.get("jobName", ""), "transform"),
                    job_id=job_id,
                    job_name=described.get("jobName", "job"),
                    status_reason=described.get("statusReason"),
                )
            else:
                job = job_failure(described, log_group)
        except (ClientError, BotoCoreError, ValueError) as error:
            _lookup_failed(f"job {job_id}", error)
    stage = job.stage if job is not None else last_stage(detail.execution_arn)
    return Incident(outcome=outcome, stage=stage, job=job, array=array, **common)


def array_failure(parent: dict[str, Any], size: int, log_group: str | None) -> ArrayFailure:
    failed_ids = failed_child_ids(parent["jobId"])
    children = sorted(
        (job_failure(child, log_group) for child in describe_jobs(failed_ids[:LISTED_CHILDREN])),
        key=lambda child: child.index if child.index is not None else -1,
    )
    return ArrayFailure(size=size, failed_total=len(failed_ids), first_children=tuple(children))


def rejection_incident(event: dict[str, Any]) -> Incident:
    parsed = parse(event=event, model=UploadRejectedEvent)
    detail = parsed.detail
    return Incident(
        outcome="rejected",
        run_id=None,
        bucket=detail.bucket,
        key=detail.key,
        location=Location(region=parsed.region),
        cause=detail.reason,
    )


def _split_uri(uri: str | None) -> tuple[str | None, str | None]:
    """s3://bucket/key -> (bucket, key); anything else -> (None, None)."""
    if not uri or not uri.startswith("s3://"):
        return None, None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return (bucket or None), (key or None)


def blocked_incident(event: dict[str, Any], log_group: str | None, time_limit: int | None) -> Incident:
    """The run and file come from the job's parameters (sluiceRun, sluiceInput: pipeline.asl.json)."""
    parsed = parse(event=event, model=QueueBlockedEvent)
    detail = parsed.detail
    bucket, key = _split_uri(detail.parameters.get("sluiceInput"))
    stage = STAGE_OF_JOB.get(detail.job_name)
    job = JobFailure(
        stage=stage or detail.job_name,
        job_id=detail.job_id,
        job_name=detail.job_name,
        status_reason=detail.status_reason,
    )
    return Incident(
        outcome="blocked",
        run_id=detail.parameters.get("sluiceRun"),
        bucket=bucket,
        key=key,
        location=Location(
            region=parsed.region, partition=_partition(detail.job_queue or ""), job_log_group=log_group
        ),
        stage=stage,
        job=job,
        time_limit_seconds=time_limit,
    )


def handle(
    event: dict[str, Any],
    topic_arn: str,
    log_group: str | None,
    time_limit: int | None = None,
    notify_on_success: bool = False,
) -> dict[str, Any]:
    kind = event.get("detail-type")
    if kind == EXECUTION_STATUS_CHANGE:
        incident = execution_incident(event, log_group)
    elif kind == UPLOAD_REJECTED:
        incident = rejection_incident(event)
    elif kind == QUEUE_BLOCKED:
        incident = blocked_incident(event, log_group, time_limit)
    else:
        raise UnknownEventError(f"cannot notify about a {kind!r} event")
    if incident.outcome == "succeeded" and not notify_on_success:
        # Every finished run reaches this function, so a run with gaps is always announced;
        # a complete success only when the stack sets NotifyOnSuccess.
        return {"skipped": "succeeded", "run_id": incident.run_id}
    notice = render(incident)
    _sns().publish(
        TopicArn=topic_arn,
        Subject=notice.subject,
        Message=notice.body,
        MessageAttributes=notice.sns_message_attributes(),
    )
    logger.info("notified", extra={"subject": notice.subject, **notice.attributes})
    metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=1)
    return {"subject": notice.subject, **notice.attributes}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    limit = os.environ.get("MAX_RUNNABLE_SECONDS", "")
    return handle(
        event,
        os.environ["ALERTS_TOPIC_ARN"],
        os.environ.get("JOB_LOG_GROUP"),
        int(limit) if limit.isdigit() else None,
        os.environ.get("NOTIFY_ON_SUCCESS") == "true",
    )
