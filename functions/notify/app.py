"""Notify: one FAILED AWS Batch array job -> one message listing its failed children.

Array children never notify on their own (the EventBridge rules exclude them), so a 10,000-child
array that fails sends one message, not 10,000.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

logger = Logger()
tracer = Tracer()
metrics = Metrics()

LISTED_CHILDREN = 10
DESCRIBE_BATCH = 100  # DescribeJobs accepts at most 100 job ids per call
SUBJECT_LIMIT = 100  # SNS subjects: at most 100 printable ASCII characters


class NotArrayJobError(Exception):
    """The event is not a FAILED array parent; the rule pattern should never send one."""


class ArrayProperties(BaseModel):
    model_config = ConfigDict(extra="ignore")
    size: int | None = None
    index: int | None = None
    status_summary: dict[str, int] = Field(default_factory=dict, alias="statusSummary")


class BatchJobDetail(BaseModel):
    """The part of a `Batch Job State Change` detail we use; unknown fields are tolerated."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    job_id: str = Field(alias="jobId")
    job_name: str = Field(alias="jobName")
    job_queue: str = Field(alias="jobQueue")
    status: str
    status_reason: str | None = Field(default=None, alias="statusReason")
    parameters: dict[str, str] = Field(default_factory=dict)
    array_properties: ArrayProperties | None = Field(default=None, alias="arrayProperties")


class BatchJobStateChangeEvent(EventBridgeModel):
    detail: BatchJobDetail


@dataclass(frozen=True)
class FailedChild:
    index: int
    job_id: str
    reason: str
    exit_code: int | None
    log_stream: str | None
    attempts: int


@cache
def _batch() -> Any:
    return boto3.client("batch")


@cache
def _sns() -> Any:
    return boto3.client("sns")


def failed_child_ids(parent_id: str) -> list[str]:
    """All FAILED children of the array, in index order."""
    ids: list[tuple[int, str]] = []
    for page in _batch().get_paginator("list_jobs").paginate(arrayJobId=parent_id, jobStatus="FAILED"):
        for summary in page.get("jobSummaryList", []):
            index = summary.get("arrayProperties", {}).get("index")
            if index is None:
                index = int(summary["jobId"].rsplit(":", 1)[-1])
            ids.append((index, summary["jobId"]))
    return [job_id for _, job_id in sorted(ids)]


def describe_children(job_ids: list[str]) -> list[FailedChild]:
    children: list[FailedChild] = []
    for start in range(0, len(job_ids), DESCRIBE_BATCH):
        for job in _batch().describe_jobs(jobs=job_ids[start : start + DESCRIBE_BATCH])["jobs"]:
            attempts = job.get("attempts", [])
            last_container = attempts[-1].get("container", {}) if attempts else {}
            container = job.get("container", {})
            children.append(
                FailedChild(
                    index=int(job.get("arrayProperties", {}).get("index", job["jobId"].rsplit(":", 1)[-1])),
                    job_id=job["jobId"],
                    reason=job.get("statusReason") or container.get("reason") or "no reason recorded",
                    exit_code=container.get("exitCode", last_container.get("exitCode")),
                    log_stream=container.get("logStreamName") or last_container.get("logStreamName"),
                    attempts=len(attempts),
                )
            )
    return sorted(children, key=lambda child: child.index)


def compose_message(
    detail: BatchJobDetail, children: list[FailedChild], failed_total: int
) -> tuple[str, str]:
    size = detail.array_properties.size if detail.array_properties else None
    subject = f"Sluice array job FAILED: {detail.job_name}, {failed_total} of {size or '?'} children failed"
    lines = [
        f"Sluice array job FAILED: {detail.job_name} ({detail.job_id})",
        f"Input: {detail.parameters.get('sluiceInput', 'unknown')}",
        f"Execution (run id): {detail.parameters.get('sluiceRun', 'unknown')}",
        f"Reason: {detail.status_reason or 'one or more children failed'}",
        f"Failed children: {failed_total} of {size or 'unknown'}",
    ]
    for child in children:
        exit_code = "none" if child.exit_code is None else str(child.exit_code)
        lines.append(
            f"  child {child.index}: exit code {exit_code}, {child.reason}; "
            f"attempts {child.attempts}; log stream {child.log_stream or 'none (never started)'}"
        )
    if failed_total > len(children):
        lines.append(f"  ... and {failed_total - len(children)} more failed children")
    ascii_subject = subject.encode("ascii", "replace").decode("ascii")[:SUBJECT_LIMIT]
    return ascii_subject, "\n".join(lines)


def handle(event: dict[str, Any], topic_arn: str) -> dict[str, Any]:
    detail = parse(event=event, model=BatchJobStateChangeEvent).detail
    if detail.status != "FAILED" or detail.array_properties is None or detail.array_properties.size is None:
        raise NotArrayJobError(f"expected a FAILED array parent, got {detail.status} job {detail.job_id}")
    failed_ids = failed_child_ids(detail.job_id)
    children = describe_children(failed_ids[:LISTED_CHILDREN])
    subject, message = compose_message(detail, children, len(failed_ids))
    _sns().publish(TopicArn=topic_arn, Subject=subject, Message=message)
    logger.info("array failure notified", extra={"job_id": detail.job_id, "failed_children": len(failed_ids)})
    metrics.add_metric(name="ArrayFailuresNotified", unit=MetricUnit.Count, value=1)
    return {"jobId": detail.job_id, "failedChildren": len(failed_ids), "listed": [c.index for c in children]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, os.environ["ALERTS_TOPIC_ARN"])
