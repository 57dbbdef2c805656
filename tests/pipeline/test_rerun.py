"""Recovering without redoing work: `sluice rerun`, the same through the Step Functions API, and
tolerated failed shards (docs/rerun.md).

The 50-shard runs use `fail_shards` (fault injection, allowed on the test stack) for a fault that
a rerun lifts, the way a transient fault goes away.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sluice import sampledata
from sluice.runs.records import RunRecord, load_run
from sluice.runs.start import rerun_name
from tests.pipeline.helpers import Pipeline, wait_for
from tests.pipeline.test_cli import sluice
from tests.pipeline.test_readme_aws_cli import AWS_CLI

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PREFIX = "incoming/rerun"
SHARDS = 50
ROWS = 51_000  # 1,024-row shards (the minimum slice) -> 50 shards, as in test_failures_array_child
SPEC = {"shard_target_mb": 0.001}
RESULT_FILES = ("result.parquet", "result.csv")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("rerun") / "fifty.csv"
    sampledata.generate(str(path), rows=ROWS, seed=91)
    return path.read_bytes()


@pytest.fixture(scope="module")
def clean(pipeline: Pipeline, source: bytes) -> dict[str, bytes]:
    """The result files of an undisturbed run on the same file."""
    execution = finish(pipeline, f"{PREFIX}/clean.csv", source, SPEC)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    return result_files(pipeline, execution)


def finish(pipeline: Pipeline, key: str, body: bytes, options: dict[str, Any]) -> dict[str, Any]:
    pipeline.upload(key, body, options)
    return pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"], timeout=240)


def result_files(pipeline: Pipeline, execution: dict[str, Any]) -> dict[str, bytes]:
    prefix = json.loads(execution["output"])["output"]["prefix"]
    return {name: read(pipeline, f"{prefix}{name}") for name in RESULT_FILES}


def read(pipeline: Pipeline, key: str) -> bytes:
    return pipeline.clients.s3.get_object(Bucket=pipeline.outputs.output_bucket, Key=key)["Body"].read()


def assert_reran_only(run: RunRecord, shards: int) -> None:
    """The rerun's jobs, from Batch's records: one plan job, `shards` transform children, one aggregate."""
    assert [job.stage for job in run.jobs] == ["plan", "transform", "aggregate"], [j.stage for j in run.jobs]
    transform = run.stage_jobs("transform")[0]
    units = transform.runs()
    assert len(units) == shards and all(unit.status == "SUCCEEDED" for unit in units)
    assert all(job.status == "SUCCEEDED" for job in run.jobs)


def test_sluice_rerun_runs_only_the_failed_shards_and_the_output_is_byte_identical(
    pipeline: Pipeline, source: bytes, clean: dict[str, bytes]
) -> None:
    key = f"{PREFIX}/three-fail.csv"
    failed = finish(pipeline, key, source, {**SPEC, "fail_shards": [3, 17, 41]})
    assert failed["status"] == "FAILED"
    run_id = failed["name"]
    alert = pipeline.the_alert_for(run_id)
    assert f"sluice rerun {run_id}" in alert["message"]

    endpoint = pipeline.cloud.endpoint_url
    done = sluice("rerun", run_id, "--options", '{"fail_shards": []}', endpoint=endpoint)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        rf"execution (\S+) reruns {run_id} \(its last execution {run_id} ended FAILED\)", done.stdout
    )
    rerun_arn = (
        pipeline.outputs.state_machine_arn.replace(":stateMachine:", ":execution:")
        + ":"
        + rerun_name(run_id, 1)
    )
    rerun = pipeline.clients.sfn.describe_execution(executionArn=rerun_arn)
    assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
    assert json.loads(rerun["output"])["runId"] == run_id  # the run's keys, the run's output prefix
    assert_reran_only(load_run(pipeline.clients.sfn, pipeline.clients.batch, rerun_arn), 3)
    assert result_files(pipeline, rerun) == clean
    assert json.loads(rerun["output"])["output"]["prefix"] == f"results/{key}/{run_id}/"

    # Idempotent: the run is complete now, so another rerun does nothing and says so.
    again = sluice("rerun", run_id, endpoint=endpoint)
    assert again.returncode == 0, again.stderr
    assert f"run {run_id} already succeeded ({rerun_name(run_id, 1)}); nothing to rerun" in again.stdout
    with pytest.raises(pipeline.clients.sfn.exceptions.ExecutionDoesNotExist):
        pipeline.clients.sfn.describe_execution(executionArn=rerun_arn[: -len("r1")] + "r2")


def test_the_aws_api_path_is_a_start_execution_naming_the_run(
    pipeline: Pipeline, source: bytes, clean: dict[str, bytes], tmp_path: Path
) -> None:
    """Without the sluice CLI: the real AWS CLI starts the rerun (docs/rerun.md)."""
    key = f"{PREFIX}/api.csv"
    failed = finish(pipeline, key, source, {**SPEC, "fail_shards": [0, 49]})
    assert failed["status"] == "FAILED"
    run_id = failed["name"]
    payload = json.loads(failed["input"])
    payload["options"]["fail_shards"] = []
    payload["rerun"] = {"of": run_id}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **pipeline.cloud.environment,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    started = subprocess.run(
        [
            str(AWS_CLI),
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            pipeline.outputs.state_machine_arn,
            "--name",
            "api-rerun-of-" + run_id[:60],
            "--input",
            json.dumps(payload),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["executionArn"]
    rerun = pipeline.wait_finished(arn, timeout=240)
    assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
    assert_reran_only(load_run(pipeline.clients.sfn, pipeline.clients.batch, arn), 2)
    assert result_files(pipeline, rerun) == clean


def test_tolerated_failed_shards_complete_with_gaps_then_a_rerun_fills_them(
    pipeline: Pipeline, source: bytes, clean: dict[str, bytes]
) -> None:
    key = f"{PREFIX}/gaps.csv"
    options = {**SPEC, "fail_shards": [5, 30], "max_failed_shard_fraction": 0.1}
    execution = finish(pipeline, key, source, options)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    run_id = execution["name"]
    output = json.loads(execution["output"])
    assert output["gaps"] == {"tolerated": True, "failedShards": 2}
    prefix = output["output"]["prefix"]
    summary = json.loads(read(pipeline, f"{prefix}summary.json"))
    assert summary["complete"] is False and summary["missing_shards"] == [5, 30]
    assert json.loads(read(pipeline, f"{prefix}_INCOMPLETE"))["missing_shards"] == [5, 30]
    assert read(pipeline, f"{prefix}_SUCCESS") == b""

    alert = pipeline.the_alert_for(run_id)  # one message: completed with gaps
    assert alert["attributes"]["outcome"]["Value"] == "completed_with_gaps"
    assert alert["subject"] == "Sluice processed gaps.csv with gaps: 2 shards missing"

    done = sluice("rerun", run_id, "--options", '{"fail_shards": []}', endpoint=pipeline.cloud.endpoint_url)
    assert done.returncode == 0, done.stdout + done.stderr
    rerun_arn = (
        pipeline.outputs.state_machine_arn.replace(":stateMachine:", ":execution:")
        + ":"
        + rerun_name(run_id, 1)
    )
    rerun = pipeline.clients.sfn.describe_execution(executionArn=rerun_arn)
    assert rerun["status"] == "SUCCEEDED" and json.loads(rerun["output"])["gaps"] == {"tolerated": False}
    assert_reran_only(load_run(pipeline.clients.sfn, pipeline.clients.batch, rerun_arn), 2)
    assert result_files(pipeline, rerun) == clean
    listing = pipeline.output_keys(prefix)
    assert f"{prefix}_INCOMPLETE" not in listing and f"{prefix}_SUCCESS" in listing
    assert json.loads(read(pipeline, f"{prefix}summary.json"))["complete"] is True
    wait_for(lambda: pipeline.cloud.settle(10), 30, "deliveries to settle")
    assert len(pipeline.alerts_for("run_id", run_id)) == 1  # the complete rerun sends nothing


def test_a_rerun_of_a_run_whose_ingest_never_finished_runs_ingest_again(
    pipeline: Pipeline, source: bytes
) -> None:
    """No manifest (ingest failed): the rerun's manifest lookup gets S3's NoSuchKey and runs
    ingest, which here fails the same way, because the file itself is at fault."""
    key = f"{PREFIX}/header-only.csv"
    failed = finish(pipeline, key, b"transaction_id,category,country,amount\n", {})
    assert failed["status"] == "FAILED"
    run_id = failed["name"]
    done = sluice("rerun", run_id, endpoint=pipeline.cloud.endpoint_url)
    assert done.returncode == 1, done.stdout + done.stderr  # the rerun failed, as the run did
    rerun_arn = (
        pipeline.outputs.state_machine_arn.replace(":stateMachine:", ":execution:")
        + ":"
        + rerun_name(run_id, 1)
    )
    rerun = pipeline.clients.sfn.describe_execution(executionArn=rerun_arn)
    assert rerun["status"] == "FAILED" and "sluice-ingest" in rerun["cause"], (
        rerun.get("error"),
        rerun.get("cause"),
    )
    run = load_run(pipeline.clients.sfn, pipeline.clients.batch, rerun_arn)
    assert [(job.stage, job.status) for job in run.jobs] == [("ingest", "FAILED")]
