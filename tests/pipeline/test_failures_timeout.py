"""A job that hangs past its attempt timeout is killed and fails with Batch's timeout reason.

The job definitions' attemptDurationSeconds comes from the JobAttemptTimeoutSeconds parameter
(at least 60 s, as Batch requires; 3600 s as deployed here). The local Batch engine's
`timeout_scale` (1.0 = AWS's clock) is lowered for this test so that timeout elapses in a few
seconds, and restored afterwards; nothing else about the job or its definition changes.

AWS: "If a job is terminated for exceeding the timeout duration, it isn't retried"
(https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html), whatever the retry
strategy says, so the job fails after one attempt although JobAttempts is 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import sampledata
from sluice.runs.records import load_run
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

KEY = "incoming/failures/timeout/stuck.csv"
LOCAL_TIMEOUT_SECONDS = 6.0  # what the deployed attemptDurationSeconds lasts during the test


@pytest.fixture
def short_timeouts(pipeline: Pipeline) -> Iterator[float]:
    """Scale the engine's clock for timeouts; yields the transform definition's attemptDurationSeconds."""
    definitions = pipeline.clients.batch.describe_job_definitions(
        jobDefinitionName=f"{pipeline.outputs.stack_name}-transform", status="ACTIVE"
    )["jobDefinitions"]
    seconds = float(max(definitions, key=lambda d: d["revision"])["timeout"]["attemptDurationSeconds"])
    engine: Any = pipeline.cloud.batch_engine
    previous = engine.timeout_scale
    engine.timeout_scale = LOCAL_TIMEOUT_SECONDS / seconds
    try:
        yield seconds
    finally:
        engine.timeout_scale = previous


def test_hanging_job_is_killed_at_its_timeout_and_not_retried(
    pipeline: Pipeline, short_timeouts: float, tmp_path: Path
) -> None:
    source = tmp_path / "stuck.csv"
    sampledata.generate(str(source), rows=1_000, seed=13)
    pipeline.upload(KEY, source.read_bytes(), {"hang_shards": [0]})  # one shard: a single transform job
    execution = pipeline.wait_finished(pipeline.wait_execution_for(KEY)["executionArn"], timeout=60)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.TaskFailed"
    name = execution["name"]

    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    assert [(job.stage, job.status) for job in run.jobs] == [("ingest", "SUCCEEDED"), ("transform", "FAILED")]
    transform = run.jobs[1]
    assert transform.status_reason == "Job attempt duration exceeded timeout"
    assert len(transform.attempts) == 1  # not retried, although the retry strategy allows 3 attempts
    attempt = transform.attempts[0]
    assert attempt.status_reason == "Job attempt duration exceeded timeout"
    assert attempt.exit_code in (143, 137)  # SIGTERM, then SIGKILL after the (scaled) grace period
    assert attempt.started_at is not None and attempt.stopped_at is not None
    lasted = (attempt.stopped_at - attempt.started_at) / 1000
    assert LOCAL_TIMEOUT_SECONDS - 0.1 <= lasted < LOCAL_TIMEOUT_SECONDS + 5, lasted
    described = pipeline.clients.batch.describe_jobs(jobs=[transform.job_id])["jobs"][0]
    assert described["timeout"]["attemptDurationSeconds"] == short_timeouts
    assert described["retryStrategy"]["attempts"] == 3

    # One alert, with Batch's timeout reason first (the job itself only saw SIGTERM).
    alert = pipeline.the_alert_for(name)
    text = alert["message"]
    assert alert["attributes"]["reason_code"]["Value"] == "job_timeout"
    assert f"File:    s3://{pipeline.outputs.input_bucket}/{KEY}" in text
    assert "Job attempt duration exceeded timeout" in text
    assert f"sluice logs {transform.job_id}" in text
    assert pipeline.output_keys(f"results/{KEY}/") == []
