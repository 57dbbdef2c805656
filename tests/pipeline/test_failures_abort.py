"""Stopping an execution while its transform array runs terminates the array's jobs.

Step Functions' `.sync` Batch integration needs batch:TerminateJob for this
(https://docs.aws.amazon.com/step-functions/latest/dg/batch-iam.html): when the execution is
stopped, the job it waits on is terminated, so no child keeps running (or starts) for a run
nobody waits for. Every shard hangs (`hang_shards`), so the array is certainly still running
when the execution is stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice import sampledata
from sluice.runs.records import load_run, submitted_jobs
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

KEY = "incoming/failures/abort/stop-me.csv"
SHARDS = 6
OPTIONS = {"hang_shards": list(range(SHARDS)), "shard_target_mb": 0.001}  # 1,024-row shards
ERROR, CAUSE = "Sluice.StoppedByOperator", "e2e: stopped while the transform array ran"


def running_children(pipeline: Pipeline, execution_arn: str) -> list[dict[str, Any]] | None:
    arrays = [
        job for stage, job in submitted_jobs(pipeline.clients.sfn, execution_arn) if stage == "transform"
    ]
    if not arrays:
        return None
    listed = pipeline.clients.batch.list_jobs(arrayJobId=arrays[0], jobStatus="RUNNING")["jobSummaryList"]
    return listed or None


def test_stopping_the_execution_terminates_the_running_array(pipeline: Pipeline, tmp_path: Path) -> None:
    source = tmp_path / "stop-me.csv"
    sampledata.generate(str(source), rows=SHARDS * 1024 - 100, seed=66)
    pipeline.upload(KEY, source.read_bytes(), OPTIONS)
    arn = pipeline.wait_execution_for(KEY)["executionArn"]
    running = wait_for(lambda: running_children(pipeline, arn), 60, "transform children running")
    pipeline.clients.sfn.stop_execution(executionArn=arn, error=ERROR, cause=CAUSE)
    execution = pipeline.wait_finished(arn)
    assert execution["status"] == "ABORTED"
    assert (execution.get("error"), execution.get("cause")) == (ERROR, CAUSE)  # kept, as AWS keeps them
    name = execution["name"]

    def array_done() -> Any:
        run = load_run(pipeline.clients.sfn, pipeline.clients.batch, arn)
        return run if run.jobs[-1].status == "FAILED" else None

    run = wait_for(array_done, 60, "the transform array to end")
    assert [(job.stage, job.status) for job in run.jobs] == [("ingest", "SUCCEEDED"), ("transform", "FAILED")]
    array = run.jobs[1]
    assert array.array_size == SHARDS
    reason = f"Step Functions execution {arn} ended with status ABORTED"
    assert array.status_reason == reason
    assert [child.status for child in array.children] == ["FAILED"] * SHARDS
    started = {summary["jobId"] for summary in running}
    for child in array.children:
        assert child.status_reason == reason
        if child.job_id in started:  # was running: stopped (SIGTERM, the job exits cleanly), not retried
            assert len(child.attempts) == 1
            assert child.attempts[0].exit_code == 143
            assert child.attempts[0].stopped_at is not None
    described = pipeline.clients.batch.describe_jobs(jobs=[array.job_id])["jobs"][0]
    assert described.get("isTerminated") is True

    # One alert: the run was stopped in transform, with what StopExecution was given. The
    # terminated array fails too, but a job's failure is never a message of its own.
    alert = pipeline.the_alert_for(name)
    assert alert["subject"] == f"Sluice run aborted in transform: {KEY.rsplit('/', 1)[-1]}"
    assert f"Error:   {ERROR}" in alert["message"] and f"Cause:   {CAUSE}" in alert["message"]
    assert alert["attributes"]["reason_code"]["Value"] == "aborted"
    assert pipeline.output_keys(f"results/{KEY}/") == []
