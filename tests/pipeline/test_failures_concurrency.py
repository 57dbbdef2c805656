"""Twenty different files dropped at once: twenty executions, twenty correct results, and the
jobs never hold more vCPUs at a time than the compute environments (and this machine) have.

Capacity is checked from what Batch recorded, not from the engine's insides: every attempt's
startedAt/stoppedAt (DescribeJobs), the vCPUs its job definition asks for, the compute
environment its task ran in (the task ARN belongs to the environment's ECS cluster) and that
environment's maxvCpus (DescribeComputeEnvironments). Locally all environments together are
also bounded by the engine's vCPU limit for this machine.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from botocore.config import Config

from sluice import sampledata
from sluice.runs.records import array_children, describe_jobs, submitted_jobs
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PREFIX = "incoming/failures/concurrency"
FILES = 20


@dataclass(frozen=True)
class Interval:
    start_ms: int
    stop_ms: int
    vcpus: float
    compute_environment: str
    job_id: str


def executions_by_key(pipeline: Pipeline, keys: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {key: [] for key in keys}
    sfn = pipeline.clients.sfn
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=pipeline.outputs.state_machine_arn
    ):
        for execution in page["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            key = json.loads(described["input"]).get("input", {}).get("key")
            if key in found:
                found[key].append(execution["executionArn"])
    return found


def vcpus_of(job: dict[str, Any]) -> float:
    for requirement in job["container"].get("resourceRequirements", []):
        if requirement["type"] == "VCPU":
            return float(requirement["value"])
    return float(job["container"].get("vcpus") or 0)


def attempt_intervals(
    pipeline: Pipeline, execution_arns: list[str], clusters: dict[str, str]
) -> list[Interval]:
    """Every attempt of every job the executions ran, as (start, stop, vCPUs, environment)."""
    batch = pipeline.clients.batch
    ids = [job_id for arn in execution_arns for _, job_id in submitted_jobs(pipeline.clients.sfn, arn)]
    jobs = describe_jobs(batch, ids)
    children = [
        child_id
        for job in jobs
        if "size" in job.get("arrayProperties", {})
        for child_id in array_children(job["jobId"], job["arrayProperties"]["size"])
    ]
    intervals: list[Interval] = []
    for job in [*jobs, *describe_jobs(batch, children)]:
        if "size" in job.get("arrayProperties", {}):
            continue  # an array parent runs nothing itself
        for attempt in job["attempts"]:
            task = attempt["container"]["taskArn"]
            [environment] = [name for prefix, name in clusters.items() if task.startswith(prefix)]
            intervals.append(
                Interval(attempt["startedAt"], attempt["stoppedAt"], vcpus_of(job), environment, job["jobId"])
            )
    return intervals


def peak_use(intervals: list[Interval], cap: float | None = None) -> float:
    """Most vCPUs held at once; an attempt ending at the moment another starts is not overlapping."""
    changes = sorted(
        [(i.start_ms, 1, min(i.vcpus, cap or i.vcpus)) for i in intervals]
        + [(i.stop_ms, 0, -min(i.vcpus, cap or i.vcpus)) for i in intervals]
    )
    held, peak = 0.0, 0.0
    for _, _, delta in changes:
        held += delta
        peak = max(peak, held)
    return peak


def test_twenty_files_at_once_give_twenty_correct_runs_within_capacity(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    sources: dict[str, Path] = {}
    options: dict[str, dict[str, Any] | None] = {}
    for number in range(FILES):
        path = tmp_path / f"file-{number:02d}.csv"
        sampledata.generate(str(path), rows=800 + 150 * number, seed=1_000 + number)
        key = f"{PREFIX}/file-{number:02d}.csv"
        sources[key] = path
        # Every fourth file fans out into a small transform array (1,024-row shards).
        options[key] = {"shard_target_mb": 0.001} if number % 4 == 3 else None

    # A client with one connection per concurrent upload.
    uploads = pipeline.cloud.client("s3", config=Config(max_pool_connections=FILES))
    bucket = pipeline.outputs.input_bucket

    def upload(key: str) -> None:
        extra = {"Metadata": {"sluice-options": json.dumps(options[key])}} if options[key] else {}
        uploads.put_object(Bucket=bucket, Key=key, Body=sources[key].read_bytes(), **extra)

    with ThreadPoolExecutor(FILES) as pool:
        list(pool.map(upload, sources))

    def all_started() -> dict[str, list[str]] | None:
        found = executions_by_key(pipeline, set(sources))
        return found if all(found.values()) else None

    started = wait_for(all_started, 60, f"{FILES} executions", interval=0.5)
    assert all(len(arns) == 1 for arns in started.values()), started
    arns = {key: found[0] for key, found in started.items()}

    def all_finished() -> dict[str, dict[str, Any]] | None:
        described = {
            key: pipeline.clients.sfn.describe_execution(executionArn=arn) for key, arn in arns.items()
        }
        return described if all(d["status"] != "RUNNING" for d in described.values()) else None

    executions = wait_for(all_finished, 200, f"{FILES} executions to finish", interval=1.0)
    assert {key: e["status"] for key, e in executions.items()} == dict.fromkeys(sources, "SUCCEEDED")

    s3, bucket = pipeline.clients.s3, pipeline.outputs.output_bucket
    for key, execution in executions.items():
        output = json.loads(execution["output"])
        assert output["output"]["prefix"] == f"results/{key}/{execution['name']}/"
        if options[key]:
            assert output["shardCount"] > 1
        body = s3.get_object(Bucket=bucket, Key=f"{output['output']['prefix']}result.parquet")["Body"].read()
        assert_matches(pq.read_table(io.BytesIO(body)), duckdb_expected(sources[key]))
    assert pipeline.notifications_about(f"{PREFIX}/") == []

    environments = pipeline.clients.batch.describe_compute_environments()["computeEnvironments"]
    clusters = {
        ce["ecsClusterArn"].replace(":cluster/", ":task/", 1) + "/": ce["computeEnvironmentName"]
        for ce in environments
    }
    max_vcpus = {
        ce["computeEnvironmentName"]: float(ce["computeResources"]["maxvCpus"]) for ce in environments
    }
    intervals = attempt_intervals(pipeline, list(arns.values()), clusters)
    assert len({i.job_id for i in intervals}) >= 3 * FILES  # ingest, transform(s), aggregate per run
    for environment, limit in max_vcpus.items():
        assert peak_use([i for i in intervals if i.compute_environment == environment]) <= limit
    local = float(pipeline.cloud.batch_engine.max_local_vcpus)
    # A job bigger than the machine still runs, alone: the engine counts it as the whole machine.
    overall = peak_use(intervals, cap=local)
    print(
        f"--- concurrency: {len(intervals)} attempts, peak {overall} vCPUs held at once, local limit {local}, "
        f"maxvCpus {max_vcpus}"
    )
    assert overall <= local
    assert overall > 1.0  # jobs of different runs really ran side by side
