"""A job no compute environment can ever run: one blocked alert, cancelled at the time limit, run FAILED.

The test lowers the deployed compute environments' maxvCpus to 0 (UpdateComputeEnvironment,
as an operator could), so ingest's 1 vCPU is more than any environment of the queue may ever
hold, and restores them afterwards. AWS Batch then leaves the job RUNNABLE with the reason
`MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - ...`, emits `Batch Job Queue Blocked`, and
the queue's jobStateTimeLimitActions (MaxRunnableSeconds, at least 600 s, 3600 s as deployed
here) cancel it (https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html,
https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html).
The local Batch engine's `time_limit_scale` (1.0 = AWS's clock) is lowered so that limit
elapses in a few seconds; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import sampledata
from sluice.runs.records import load_run
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

KEY = "incoming/failures/blocked/too-big.csv"
LOCAL_LIMIT_SECONDS = 4.0  # what the deployed MaxRunnableSeconds lasts during the test
REASON_CODE = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
BLOCKED_REASON = (
    f"{REASON_CODE} - CE(s) associated with the job queue cannot meet the CPU requirement of the job."
)
CANCELED = f"Canceled by JobStateTimeLimit action due to reason: {REASON_CODE}"


@pytest.fixture
def no_capacity(pipeline: Pipeline) -> Iterator[dict[str, Any]]:
    """maxvCpus 0 on every environment of the stack's queue, and a short RUNNABLE time limit."""
    batch = pipeline.clients.batch
    [queue] = batch.describe_job_queues(jobQueues=[pipeline.outputs.values["JobQueueArn"]])["jobQueues"]
    environments = [item["computeEnvironment"] for item in queue["computeEnvironmentOrder"]]
    described = batch.describe_compute_environments(computeEnvironments=environments)["computeEnvironments"]
    before = {ce["computeEnvironmentArn"]: ce["computeResources"]["maxvCpus"] for ce in described}
    seconds = max(action["maxTimeSeconds"] for action in queue["jobStateTimeLimitActions"])
    engine: Any = pipeline.cloud.batch_engine
    previous_scale = engine.time_limit_scale
    try:
        for arn in before:
            batch.update_compute_environment(computeEnvironment=arn, computeResources={"maxvCpus": 0})
        engine.time_limit_scale = LOCAL_LIMIT_SECONDS / seconds
        yield queue
    finally:
        engine.time_limit_scale = previous_scale
        for arn, max_vcpus in before.items():
            batch.update_compute_environment(computeEnvironment=arn, computeResources={"maxvCpus": max_vcpus})


def test_job_no_environment_can_run_is_reported_then_cancelled_at_the_time_limit(
    pipeline: Pipeline, no_capacity: dict[str, Any], tmp_path: Path
) -> None:
    # The deployed queue carries one CANCEL action per automatable reason, MaxRunnableSeconds each.
    actions = no_capacity["jobStateTimeLimitActions"]
    assert {action["reason"] for action in actions} == {
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    }
    assert {(a["action"], a["state"], a["maxTimeSeconds"]) for a in actions} == {("CANCEL", "RUNNABLE", 3600)}

    source = tmp_path / "too-big.csv"
    sampledata.generate(str(source), rows=200, seed=17)
    pipeline.upload(KEY, source.read_bytes())
    execution = pipeline.wait_execution_for(KEY)
    name = execution["name"]

    # First the blocked alert, while the job still waits in RUNNABLE.
    blocked = wait_for(
        lambda: [
            a for a in pipeline.alerts_for("run_id", name) if a["attributes"]["outcome"]["Value"] == "blocked"
        ],
        30,
        "the blocked alert",
    )[0]
    attributes = {key: value["Value"] for key, value in blocked["attributes"].items()}
    assert attributes == {
        "outcome": "blocked",
        "stage": "ingest",
        "run_id": name,
        "input_key": KEY,
        "reason_code": "job_blocked",
    }
    assert BLOCKED_REASON in blocked["message"]
    assert f"File:    s3://{pipeline.outputs.input_bucket}/{KEY}" in blocked["message"]
    assert "cancels the job after 1 hour" in blocked["message"]  # MaxRunnableSeconds as deployed

    # Then the time limit cancels it, which fails the execution with that reason.
    finished = pipeline.wait_finished(execution["executionArn"], timeout=60)
    assert finished["status"] == "FAILED"
    assert finished["error"] == "States.TaskFailed"
    assert CANCELED in finished["cause"]
    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    [ingest] = run.jobs
    assert (ingest.stage, ingest.status, ingest.status_reason) == ("ingest", "FAILED", CANCELED)
    assert ingest.attempts == [] and ingest.started_at is None
    assert ingest.created_at is not None and ingest.stopped_at is not None
    waited = (ingest.stopped_at - ingest.created_at) / 1000
    assert LOCAL_LIMIT_SECONDS - 0.1 <= waited < LOCAL_LIMIT_SECONDS + 10, waited
    described = pipeline.clients.batch.describe_jobs(jobs=[ingest.job_id])["jobs"][0]
    assert described["isCancelled"] is True

    # The failure alert follows the run's usual path; two alerts in all, no more.
    failed = wait_for(
        lambda: [
            a for a in pipeline.alerts_for("run_id", name) if a["attributes"]["outcome"]["Value"] == "failed"
        ],
        30,
        "the failure alert",
    )[0]
    assert failed["attributes"]["reason_code"]["Value"] == "job_blocked"
    assert CANCELED in failed["message"] and "MaxVcpus" in failed["message"]
    pipeline.cloud.settle(10)
    assert len(pipeline.alerts_for("run_id", name)) == 2
    assert pipeline.output_keys(f"results/{KEY}/") == []
