"""End to end on the local cloud: real template, ASL, trigger, Batch engine, job images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sluice import sampledata
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def result_table(pipeline: Pipeline, execution: dict) -> tuple[list[str], object]:
    prefix = json.loads(execution["output"])["output"]["prefix"]
    keys = pipeline.output_keys(prefix)
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}result.parquet"
    )
    return keys, pq.read_table(io.BytesIO(body["Body"].read()))


@pytest.mark.parametrize(("rows", "shards"), [(3_000, 1), (20_000, "many")])
def test_upload_runs_one_execution_and_matches_duckdb(
    pipeline: Pipeline, tmp_path: Path, rows: int, shards: object
) -> None:
    source = tmp_path / f"sales-{rows}.csv"
    sampledata.generate(str(source), rows=rows, seed=rows)
    key = f"incoming/e2e/sales-{rows}.csv"
    # Small shards (a per-run option) make a few thousand rows fan out into a real array job.
    pipeline.upload(key, source.read_bytes(), None if shards == 1 else {"shard_target_mb": 0.02})

    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert len(pipeline.executions_for(key)) == 1
    output = json.loads(execution["output"])
    if shards == 1:
        assert output["shardCount"] == 1
    else:
        assert output["shardCount"] > 1
    keys, table = result_table(pipeline, execution)
    prefix = output["output"]["prefix"]
    assert prefix == f"results/{key}/{execution['name']}/"
    assert {k[len(prefix) :] for k in keys} >= {"result.parquet", "result.csv", "summary.json", "_SUCCESS"}
    assert_matches(table, duckdb_expected(source))


def test_execution_started_by_hand_gives_the_same_result(pipeline: Pipeline, tmp_path: Path) -> None:
    source = tmp_path / "by-hand.csv"
    sampledata.generate(str(source), rows=5_000, seed=11)
    key = "manual/by-hand.csv"  # outside the input prefix: only a person can start this run
    head = pipeline.upload(key, source.read_bytes())
    document = json.loads(Path("events/execution-input.json").read_text())
    document["input"] = {
        "bucket": pipeline.outputs.input_bucket,
        "key": key,
        "versionId": head["VersionId"],
        "etag": head["ETag"].strip('"'),
        "size": head["ContentLength"],
    }
    started = pipeline.clients.sfn.start_execution(
        stateMachineArn=pipeline.outputs.state_machine_arn, name="by-hand-e2e", input=json.dumps(document)
    )
    execution = pipeline.wait_finished(started["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    _, table = result_table(pipeline, execution)
    assert_matches(table, duckdb_expected(source))
    # The trigger rejected the upload itself (outside the prefix) and said so.
    wait_for(
        lambda: pipeline.notifications_about(f"{key}: the key is outside the input prefix"), 30, "rejection"
    )


def test_bad_input_fails_ingest_with_one_alert_in_the_jobs_words(pipeline: Pipeline) -> None:
    key = "incoming/e2e/header-only.csv"
    original = b"timestamp,account,category,country,amount\n"
    pipeline.upload(key, original)
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"])
    assert execution["status"] == "FAILED"

    name = execution["name"]
    alert = pipeline.the_alert_for(name)
    text = alert["message"]
    assert (
        alert["subject"]
        == "Sluice run failed in ingest: header-only.csv: input has a header row but no data rows"
    )
    assert f"File:    s3://{pipeline.outputs.input_bucket}/{key}" in text
    assert "Why:     bad input: input has a header row but no data rows" in text
    assert ", 1 attempt, exit code 65" in text and "/default/" in text
    # No output, and the upload is untouched.
    assert pipeline.output_keys(f"results/{key}/") == []
    body = pipeline.clients.s3.get_object(Bucket=pipeline.outputs.input_bucket, Key=key)["Body"].read()
    assert body == original
