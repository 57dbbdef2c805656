"""An application error in one child of a 50-child transform array: one notification, not 50.

The `fail_shards` option makes transform child 3 exit 1 ("injected failure for shard 3"),
which the retry strategy retries (no rule matches exit code 1) until its attempts are used up.
The array parent then fails, and the notify function sends one message for the whole array,
naming the failed child, its exit code and log stream; the execution notification follows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice import sampledata
from sluice.runs.records import load_run
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

KEY = "incoming/failures/array-child/fifty-shards.csv"
SHARDS = 50
FAILING = 3
# Ingest cuts shards of at least 1,024 rows (containers/ingest/shards.py MIN_SLICE_ROWS); with a
# target far below one slice every shard holds 1,024 rows, so 51,000 rows make exactly 50.
ROWS = 51_000
OPTIONS = {"fail_shards": [FAILING], "shard_target_mb": 0.001}


def test_one_failed_child_of_fifty_sends_one_array_notification(pipeline: Pipeline, tmp_path: Path) -> None:
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

    wait_for(
        lambda: pipeline.notifications_about(f"Sluice execution FAILED: {name}"), 30, "execution notification"
    )
    notes = [note for note in pipeline.notifications_about(name)]
    array_notes = [n for n in notes if "Sluice array job FAILED" in n["message"]]
    assert len(array_notes) == 1, [n["message"] for n in notes]
    assert not [
        n for n in notes if "Sluice job FAILED" in n["message"]
    ]  # no child, no parent as a single job
    assert len(notes) == 2, [n["message"] for n in notes]
    note = array_notes[0]
    text = note["message"]
    assert note["subject"] == f"Sluice array job FAILED: sluice-transform, 1 of {SHARDS} children failed"
    assert f"Sluice array job FAILED: sluice-transform ({array.job_id})" in text
    assert f"Input: s3://{pipeline.outputs.input_bucket}/{KEY}" in text
    assert f"Execution (run id): {name}" in text
    assert f"Failed children: 1 of {SHARDS}" in text
    assert (
        f"  child {FAILING}: exit code 1, Essential container in task exited; attempts 3; log stream {stream}"
        in text
    )
    execution_note = next(n["message"] for n in notes if n is not note)
    assert f"Sluice execution FAILED: {name}" in execution_note
    assert array.job_id in execution_note and "Array Child Job failed" in execution_note
    print(f"--- array child\nSubject: {note['subject']}\n{text}\n{execution_note}")

    logs = pipeline.clients.logs.get_log_events(
        logGroupName=pipeline.outputs.job_log_group, logStreamName=stream
    )
    assert f"transform: injected failure for shard {FAILING}" in [
        event["message"] for event in logs["events"]
    ]
    assert pipeline.output_keys(f"results/{KEY}/") == []
