"""An application error in one child of a 50-child transform array: one alert, not 50 (or 2).

The `fail_shards` option makes transform child 3 exit 1 ("injected failure for shard 3"),
which the retry strategy retries (no rule matches exit code 1) until its attempts are used up.
The array parent then fails, which fails the execution, and the notify function sends one alert
for the run, naming the failed shard in its own words, its attempts and exit codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice import sampledata
from sluice.runs.records import load_run
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

KEY = "incoming/failures/array-child/fifty-shards.csv"
SHARDS = 50
FAILING = 3
# Ingest cuts shards of at least 1,024 rows (containers/ingest/shards.py MIN_SLICE_ROWS); with a
# target far below one slice every shard holds 1,024 rows, so 51,000 rows make exactly 50.
ROWS = 51_000
OPTIONS = {"fail_shards": [FAILING], "shard_target_mb": 0.001}


def test_one_failed_child_of_fifty_sends_one_alert_naming_the_shard(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = tmp_path / "fifty.csv"
    sampledata.generate(str(source), rows=ROWS, seed=55)
    pipeline.upload(KEY, source.read_bytes(), OPTIONS)
    execution = pipeline.wait_finished(pipeline.wait_execution_for(KEY)["executionArn"], timeout=150)
    assert execution["status"] == "FAILED"
    name = execution["name"]
    manifest = json.loads(
        pipeline.clients.s3.get_object(Bucket=pipeline.outputs.work_bucket, Key=f"work/{name}/manifest.json")[
            "Body"
        ].read()
    )
    assert manifest["shard_count"] == SHARDS

    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    assert [(job.stage, job.status) for job in run.jobs] == [("ingest", "SUCCEEDED"), ("transform", "FAILED")]
    array = run.jobs[1]
    assert array.array_size == SHARDS
    failed = [child for child in array.children if child.status == "FAILED"]
    assert [child.array_index for child in failed] == [FAILING]
    assert sum(child.status == "SUCCEEDED" for child in array.children) == SHARDS - 1
    child = failed[0]
    assert len(child.attempts) == 3  # exit code 1 is retryable: every attempt the strategy allows
    assert {attempt.exit_code for attempt in child.attempts} == {1}
    stream = child.attempts[-1].log_stream
    assert stream and stream.startswith("sluice-transform/default/")

    # One alert: the run failed in transform, naming the failed shard with its own sentence.
    note = pipeline.the_alert_for(name)
    text = note["message"]
    assert (
        note["subject"]
        == f"Sluice run failed in transform: {KEY.rsplit('/', 1)[-1]}: 1 of {SHARDS} shards failed"
    )
    assert f"Job:     sluice-transform {array.job_id} (array of {SHARDS})" in text
    assert f"File:    s3://{pipeline.outputs.input_bucket}/{KEY}" in text
    assert f"Run:     {name}" in text
    assert f"Failed:  1 of {SHARDS} shards" in text
    assert f"  shard {FAILING}: injected failure for shard {FAILING}" in text
    assert f"    3 attempts, exit codes 1, 1, 1; job {child.job_id}" in text
    assert f"sluice logs {child.job_id}" in text
    assert note["attributes"]["reason_code"]["Value"] == "job_error"

    logs = pipeline.clients.logs.get_log_events(
        logGroupName=pipeline.outputs.job_log_group, logStreamName=stream
    )
    assert f"transform: injected failure for shard {FAILING}" in [
        event["message"] for event in logs["events"]
    ]
    assert pipeline.output_keys(f"results/{KEY}/") == []
