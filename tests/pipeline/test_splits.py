"""Split runs end to end (docs/splits.md), with IAM enforced: ingest only plans byte ranges, the
transform children read the uploaded object with ranged GETs as the job role, aggregate merges.

The same template, state machine and job images as any run; only the input's size (here the
per-run `split_target_mb`) decides.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sluice import sampledata
from sluice.runs.records import load_run
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MiB = 1024 * 1024


def summary_of(pipeline: Pipeline, execution: dict) -> dict:
    prefix = json.loads(execution["output"])["output"]["prefix"]
    body = pipeline.clients.s3.get_object(Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}summary.json")
    return json.loads(body["Body"].read())


def test_a_large_csv_is_split_across_the_transform_array(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "split-me.csv"
    sampledata.generate(str(path), rows=30_000, seed=91)
    key = "incoming/splits/split-me.csv"
    pipeline.upload(key, path.read_bytes(), {"split_target_mb": 0.25})
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=180)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")

    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    stages = [job.stage for job in run.jobs]
    assert stages == ["ingest", "transform", "aggregate"], stages
    splits = -(-path.stat().st_size // (MiB // 4))  # at most one more than the data needs
    transform = run.stage_jobs("transform")[0]
    assert transform.array_size in (splits - 1, splits), (transform.array_size, splits)
    assert all(child.status == "SUCCEEDED" for child in transform.children)
    # The stack's queue is fair-share (its own policy by default): every job runs under the
    # stack's share, aggregate above the others (template.yaml SchedulingPriority).
    described = pipeline.clients.batch.describe_jobs(jobs=[job.job_id for job in run.jobs])["jobs"]
    assert {(j["jobName"], j.get("shareIdentifier"), j.get("schedulingPriority")) for j in described} == {
        ("sluice-ingest", "sluice", 10),
        ("sluice-transform", "sluice", 10),
        ("sluice-aggregate", "sluice", 20),
    }

    prefix = json.loads(execution["output"])["output"]["prefix"]
    local = tmp_path / "result.parquet"
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}result.parquet"
    )
    local.write_bytes(body["Body"].read())
    assert_matches(pq.read_table(local), duckdb_expected(path))
    summary = summary_of(pipeline, execution)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_rejected"]) == (30_000, 30_000, 0)
    assert summary["shards"] == transform.array_size
    # The upload is only ever read.
    assert pipeline.clients.s3.get_object(Bucket=pipeline.outputs.input_bucket, Key=key)["Body"].read() == (
        path.read_bytes()
    )


def test_a_bad_row_in_a_later_split_fails_the_run_once_naming_its_line(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    path = tmp_path / "late-bad.csv"
    sampledata.generate(str(path), rows=20_000, seed=92)
    lines = path.read_text(encoding="utf-8").split("\n")
    header = next(csv.reader([lines[0]]))
    fields = next(csv.reader([lines[17_000]]))
    fields[header.index("amount")] = "twelve"
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    lines[17_000] = out.getvalue()  # physical line 17,001
    path.write_text("\n".join(lines), encoding="utf-8")
    key = "incoming/splits/late-bad.csv"
    pipeline.upload(key, path.read_bytes(), {"split_target_mb": 0.25})
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=180)
    assert execution["status"] == "FAILED"

    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    assert [(job.stage, job.status) for job in run.jobs] == [
        ("ingest", "SUCCEEDED"),
        ("transform", "SUCCEEDED"),
        ("aggregate", "FAILED"),
    ]
    assert run.stage_jobs("aggregate")[0].exit_code == 65
    alert = pipeline.the_alert_for(execution["name"])
    assert "line 17001: column 'amount': 'twelve' is not a number" in alert["message"]
    assert alert["attributes"]["reason_code"]["Value"] == "bad_input"
    assert pipeline.output_keys(f"results/{key}/") == []


def test_a_large_json_lines_file_is_split_by_byte_ranges(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "split-me.jsonl"
    sampledata.generate(str(path), rows=20_000, seed=93)
    key = "incoming/splits/split-me.jsonl"
    pipeline.upload(key, path.read_bytes(), {"split_target_mb": 0.5})
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=180)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")

    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    transform = run.stage_jobs("transform")[0]
    assert transform.array_size == -(-path.stat().st_size // (MiB // 2))
    prefix = json.loads(execution["output"])["output"]["prefix"]
    local = tmp_path / "result.parquet"
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}result.parquet"
    )
    local.write_bytes(body["Body"].read())
    assert_matches(pq.read_table(local), duckdb_expected(path))
    summary = summary_of(pipeline, execution)
    assert (summary["format"], summary["rows_in"], summary["rows_accepted"]) == ("jsonl", 20_000, 20_000)
    assert summary["shards"] == transform.array_size


def test_a_large_parquet_file_is_split_by_row_groups(pipeline: Pipeline, tmp_path: Path) -> None:
    generated = tmp_path / "generated.parquet"
    sampledata.generate(str(generated), rows=40_000, seed=94)
    path = tmp_path / "split-me.parquet"
    pq.write_table(pq.read_table(generated), path, row_group_size=5_000)  # eight row groups
    metadata = pq.read_metadata(path)
    assert metadata.num_row_groups == 8
    group_bytes = sum(
        metadata.row_group(0).column(c).total_compressed_size for c in range(metadata.num_columns)
    )
    key = "incoming/splits/split-me.parquet"
    # About two row groups per split.
    pipeline.upload(key, path.read_bytes(), {"split_target_mb": 2 * group_bytes / MiB})
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=180)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")

    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    transform = run.stage_jobs("transform")[0]
    assert transform.array_size is not None and 3 <= transform.array_size <= 5, transform.array_size
    assert all(child.status == "SUCCEEDED" for child in transform.children)
    prefix = json.loads(execution["output"])["output"]["prefix"]
    local = tmp_path / "result.parquet"
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}result.parquet"
    )
    local.write_bytes(body["Body"].read())
    assert_matches(pq.read_table(local), duckdb_expected(path))
    summary = summary_of(pipeline, execution)
    assert (summary["format"], summary["rows_in"], summary["rows_accepted"]) == ("parquet", 40_000, 40_000)
