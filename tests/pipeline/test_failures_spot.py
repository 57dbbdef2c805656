"""Spot capacity lost under running attempts: the run still succeeds, with the very same output.

The local Batch engine reclaims attempts the way Spot does (SIGTERM, a short notice, then the
host is gone: `Host EC2 (instance i-...) terminated.`), and the job definitions' retry strategy
retries that (`onStatusReason: "Host EC2*"` -> RETRY). Every key the jobs write is a pure
function of run id and shard index, so a retried attempt rewrites the same bytes: the result
files are byte-identical to an undisturbed run on the same file. Reclaims that Batch retried
successfully notify nobody; the run report shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sluice import sampledata
from sluice.local.batch.reclaim import ReclaimCandidate
from sluice.runs.collect import build_report_data
from sluice.runs.records import RunRecord, load_run
from sluice.runs.report import render_html, stage_rows
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PREFIX = "incoming/failures/spot"
OPTIONS = {"shard_target_mb": 0.001}  # 1,024-row shards: a 10-child transform array
ROWS = 10_000
SHARDS = 10


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("spot") / "spot.csv"
    sampledata.generate(str(path), rows=ROWS, seed=77)
    return path.read_bytes()


@pytest.fixture(scope="module")
def baseline(pipeline: Pipeline, source: bytes) -> dict[str, bytes]:
    """The undisturbed run on the same file: its result files."""
    execution = run_file(pipeline, f"{PREFIX}/undisturbed.csv", source)
    assert not reclaimed_attempts(load(pipeline, execution))
    return result_files(pipeline, execution)


@pytest.fixture
def reclaim_policy(pipeline: Pipeline) -> Iterator[Callable[..., None]]:
    """Set the engine's reclaim policy for one test; it is always switched off again."""
    engine: Any = pipeline.cloud.batch_engine
    try:
        yield engine.set_reclaim_policy
    finally:
        engine.set_reclaim_policy(0.0)


def run_file(pipeline: Pipeline, key: str, body: bytes) -> dict[str, Any]:
    pipeline.upload(key, body, OPTIONS)
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=120)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"])["shardCount"] == SHARDS
    return execution


def load(pipeline: Pipeline, execution: dict[str, Any]) -> RunRecord:
    return load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])


def result_files(pipeline: Pipeline, execution: dict[str, Any]) -> dict[str, bytes]:
    """result.parquet and result.csv (summary.json carries the run id and timings, so it differs)."""
    prefix = json.loads(execution["output"])["output"]["prefix"]
    s3, bucket = pipeline.clients.s3, pipeline.outputs.output_bucket
    return {
        name: s3.get_object(Bucket=bucket, Key=f"{prefix}{name}")["Body"].read()
        for name in ("result.parquet", "result.csv")
    }


def reclaimed_attempts(run: RunRecord) -> dict[str, int]:
    """Reclaimed attempts per stage, from DescribeJobs."""
    counts: dict[str, int] = {}
    for job in run.jobs:
        for unit in job.runs():
            for attempt in unit.attempts:
                if attempt.reclaimed:
                    assert attempt.status_reason and attempt.status_reason.startswith("Host EC2 (instance i-")
                    assert attempt.status_reason.endswith(") terminated.")
                    assert attempt.exit_code is None  # the host is gone: no exit code
                    counts[job.stage] = counts.get(job.stage, 0) + 1
    return counts


def assert_report_shows(pipeline: Pipeline, execution: dict[str, Any], expected: dict[str, int]) -> None:
    data = build_report_data(pipeline.clients, pipeline.outputs, execution["executionArn"])
    rows = {row["stage"]: row for row in stage_rows(data)}
    assert {stage: rows[stage]["reclaimed"] for stage in rows if rows[stage]["reclaimed"]} == expected
    html = render_html(data)
    assert html.count('class="attempt reclaimed"') == sum(expected.values())
    print(
        f"--- report stage rows of {execution['name']}: {[(r['stage'], r['attempts'], r['reclaimed']) for r in rows.values()]}"
    )


def assert_nobody_notified(pipeline: Pipeline, execution: dict[str, Any]) -> None:
    assert pipeline.cloud.settle(10)
    assert pipeline.notifications_about(execution["name"]) == []


def test_reclaiming_30_percent_of_transform_attempts_changes_nothing_in_the_result(
    pipeline: Pipeline, source: bytes, baseline: dict[str, bytes], reclaim_policy: Callable[..., None]
) -> None:
    transform = f"{pipeline.outputs.stack_name}-transform"

    def transform_attempt_with_a_retry_left(candidate: ReclaimCandidate) -> bool:
        # The definitions allow 3 attempts; the last one is left alone so the run can succeed.
        return candidate.job_definition == transform and candidate.attempt < 3

    reclaim_policy(0.3, stage_filter=transform_attempt_with_a_retry_left, seed=3)
    execution = run_file(pipeline, f"{PREFIX}/transform-reclaimed.csv", source)
    reclaim_policy(0.0)

    run = load(pipeline, execution)
    reclaimed = reclaimed_attempts(run)
    assert set(reclaimed) == {"transform"} and reclaimed["transform"] >= 1, reclaimed
    array = run.stage_jobs("transform")[0]
    assert all(child.status == "SUCCEEDED" and child.attempts[-1].exit_code == 0 for child in array.children)
    assert sum(len(child.attempts) for child in array.children) == SHARDS + reclaimed["transform"]
    assert result_files(pipeline, execution) == baseline
    assert_report_shows(pipeline, execution, reclaimed)
    assert_nobody_notified(pipeline, execution)


def test_reclaiming_the_ingest_and_aggregate_attempts_once_each_changes_nothing(
    pipeline: Pipeline, source: bytes, baseline: dict[str, bytes], reclaim_policy: Callable[..., None]
) -> None:
    stages = {f"{pipeline.outputs.stack_name}-{stage}" for stage in ("ingest", "aggregate")}

    def first_ingest_or_aggregate_attempt(candidate: ReclaimCandidate) -> bool:
        return candidate.job_definition in stages and candidate.attempt == 1

    reclaim_policy(1.0, stage_filter=first_ingest_or_aggregate_attempt)
    execution = run_file(pipeline, f"{PREFIX}/ingest-aggregate-reclaimed.csv", source)
    reclaim_policy(0.0)

    run = load(pipeline, execution)
    assert reclaimed_attempts(run) == {"ingest": 1, "aggregate": 1}
    for stage in ("ingest", "aggregate"):
        [job] = run.stage_jobs(stage)
        assert job.status == "SUCCEEDED"
        assert [attempt.reclaimed for attempt in job.attempts] == [True, False]
        assert job.attempts[1].exit_code == 0
    assert result_files(pipeline, execution) == baseline
    assert_report_shows(pipeline, execution, {"ingest": 1, "aggregate": 1})
    assert_nobody_notified(pipeline, execution)


def test_spot_loss_on_every_attempt_fails_the_run_with_one_alert(
    pipeline: Pipeline, source: bytes, reclaim_policy: Callable[..., None]
) -> None:
    """When Spot takes every attempt the strategy allows, the job fails with Batch's reason and the
    run's one alert says so: a problem to retry, not a problem with the file."""
    ingest = f"{pipeline.outputs.stack_name}-ingest"
    reclaim_policy(1.0, stage_filter=lambda candidate: candidate.job_definition == ingest)
    key = f"{PREFIX}/always-reclaimed.csv"
    pipeline.upload(key, source, OPTIONS)
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=120)
    reclaim_policy(0.0)
    assert execution["status"] == "FAILED"

    [job] = load(pipeline, execution).stage_jobs("ingest")
    assert job.status == "FAILED" and all(attempt.reclaimed for attempt in job.attempts)
    alert = pipeline.the_alert_for(execution["name"])
    text = alert["message"]
    assert alert["attributes"]["reason_code"]["Value"] == "infrastructure"
    assert alert["subject"] == "Sluice run failed in ingest: always-reclaimed.csv: job did not run"
    attempts = len(job.attempts)
    assert f"{attempts} attempts, exit codes {', '.join(['none'] * attempts)}" in text
    assert "Why:     Host EC2 (instance i-" in text
    assert "failure to retry, not a problem with the file" in text
