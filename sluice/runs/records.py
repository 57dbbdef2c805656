"""What happened in one pipeline run, read back through the AWS APIs (the same on AWS and locally).

The execution history names every Batch job the run submitted; DescribeJobs (and ListJobs for
array children) gives their attempts. The result is a plain `RunRecord` the progress view, the
report and the CLI share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STAGE_OF_STATE = {
    "RunIngest": "ingest",
    "RunTransformSingle": "transform",
    "RunTransformArray": "transform",
    "RunAggregate": "aggregate",
    "PlanRerun": "plan",  # a rerun's plan job (docs/rerun.md); not one of the three STAGES
}
STAGES = ("ingest", "transform", "aggregate")
DESCRIBE_LIMIT = 100  # DescribeJobs takes at most 100 ids per call
RECLAIM_PREFIXES = ("Host EC2", "Your Spot Task was interrupted")


@dataclass
class Attempt:
    number: int
    started_at: int | None  # epoch ms
    stopped_at: int | None
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    log_stream: str | None

    @property
    def reclaimed(self) -> bool:
        text = f"{self.status_reason or ''} {self.reason or ''}"
        return any(prefix in text for prefix in RECLAIM_PREFIXES)

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


@dataclass
class JobRecord:
    stage: str
    job_id: str
    name: str
    status: str
    status_reason: str | None
    created_at: int | None
    started_at: int | None
    stopped_at: int | None
    vcpus: float
    memory_mib: int
    array_index: int | None = None
    array_size: int | None = None
    log_stream: str | None = None
    exit_code: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    children: list[JobRecord] = field(default_factory=list)

    def runs(self) -> list[JobRecord]:
        """The jobs that actually ran containers: the children of an array, else the job itself."""
        return self.children or [self]


@dataclass
class RunRecord:
    execution_arn: str
    name: str
    status: str
    started_at: int
    stopped_at: int | None
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    jobs: list[JobRecord] = field(default_factory=list)

    def stage_jobs(self, stage: str) -> list[JobRecord]:
        return [job for job in self.jobs if job.stage == stage]


def _ms(value: Any) -> int | None:
    """boto3 gives datetimes for Step Functions and epoch-ms integers for Batch."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    return int(value)


def submitted_jobs(sfn: Any, execution_arn: str) -> list[tuple[str, str]]:
    """(stage, job id) for every Batch job the execution submitted, in order."""
    jobs: list[tuple[str, str]] = []
    current_state: str | None = None
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            entered = event.get("stateEnteredEventDetails")
            if entered:
                current_state = entered["name"]
                continue
            submitted = event.get("taskSubmittedEventDetails")
            if submitted and submitted.get("resourceType") == "batch" and current_state in STAGE_OF_STATE:
                output = json.loads(submitted.get("output") or "{}")
                job_id = output.get("JobId") or output.get("jobId")
                if job_id:
                    jobs.append((STAGE_OF_STATE[current_state], job_id))
    return jobs


def _resources(job: dict[str, Any]) -> tuple[float, int]:
    container = job.get("container", {})
    vcpus, memory = float(container.get("vcpus") or 0), int(container.get("memory") or 0)
    for requirement in container.get("resourceRequirements", []):
        if requirement["type"] == "VCPU":
            vcpus = float(requirement["value"])
        elif requirement["type"] == "MEMORY":
            memory = int(requirement["value"])
    return vcpus, memory


def job_record(stage: str, job: dict[str, Any]) -> JobRecord:
    vcpus, memory = _resources(job)
    container = job.get("container", {})
    array = job.get("arrayProperties", {})
    attempts = [
        Attempt(
            number=number,
            started_at=_ms(attempt.get("startedAt")),
            stopped_at=_ms(attempt.get("stoppedAt")),
            exit_code=attempt.get("container", {}).get("exitCode"),
            reason=attempt.get("container", {}).get("reason"),
            status_reason=attempt.get("statusReason"),
            log_stream=attempt.get("container", {}).get("logStreamName"),
        )
        for number, attempt in enumerate(job.get("attempts", []), start=1)
    ]
    return JobRecord(
        stage=stage,
        job_id=job["jobId"],
        name=job.get("jobName", ""),
        status=job["status"],
        status_reason=job.get("statusReason"),
        created_at=_ms(job.get("createdAt")),
        started_at=_ms(job.get("startedAt")),
        stopped_at=_ms(job.get("stoppedAt")),
        vcpus=vcpus,
        memory_mib=memory,
        array_index=array.get("index"),
        array_size=array.get("size"),
        log_stream=container.get("logStreamName"),
        exit_code=container.get("exitCode"),
        attempts=attempts,
    )


def describe_jobs(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), DESCRIBE_LIMIT):
        found.extend(batch.describe_jobs(jobs=job_ids[start : start + DESCRIBE_LIMIT])["jobs"])
    return found


def array_children(parent_id: str, size: int) -> list[str]:
    """Child job ids are `<parent id>:<index>` (https://docs.aws.amazon.com/batch/latest/userguide/array_jobs.html).

    Derived rather than listed: ListJobs without a status returns only RUNNING jobs.
    """
    return [f"{parent_id}:{index}" for index in range(size)]


def load_run(sfn: Any, batch: Any, execution_arn: str, *, with_children: bool = True) -> RunRecord:
    execution = sfn.describe_execution(executionArn=execution_arn)
    output = execution.get("output")
    record = RunRecord(
        execution_arn=execution_arn,
        name=execution["name"],
        status=execution["status"],
        started_at=_ms(execution["startDate"]) or 0,
        stopped_at=_ms(execution.get("stopDate")),
        input=json.loads(execution.get("input") or "{}"),
        output=json.loads(output) if output else None,
        error=execution.get("error"),
        cause=execution.get("cause"),
    )
    submitted = submitted_jobs(sfn, execution_arn)
    described = {job["jobId"]: job for job in describe_jobs(batch, [job_id for _, job_id in submitted])}
    for stage, job_id in submitted:
        if job_id not in described:
            continue
        job = job_record(stage, described[job_id])
        if with_children and job.array_size:
            children = describe_jobs(batch, array_children(job_id, job.array_size))
            job.children = [job_record(stage, child) for child in children]
        record.jobs.append(job)
    return record
