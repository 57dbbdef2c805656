"""Rerun and tolerance at the job level: a rerun transforms only the shards without a partial and
gives a byte-identical result; a tolerated gap gives a marked, incomplete result that a rerun fills."""

from __future__ import annotations

import json

import pytest

from tests.jobs.helpers import OUT_BUCKET, WORK_BUCKET, Run

pytestmark = pytest.mark.timeout(120)

SHARD_MB = 0.001  # 1,024-row shards (the minimum slice): 12 for the 12,000-row sample
RERUN = "run-rerun-1"


def result_files(run: Run) -> dict[str, bytes]:
    return {name: run.output(name) for name in ("result.parquet", "result.csv")}


def plan(run: Run) -> dict:
    """The rerun's plan job (transform image, Command ["plan"]), then its plan document."""
    run.extra_env = {"SLUICE_EXECUTION_NAME": RERUN}
    done = run.run("transform", plan=True)
    assert done.returncode == 0, done.stderr + done.stdout
    key = f"{run.work_prefix}reruns/{RERUN}.json"
    return json.loads(run.s3.get_object(Bucket=WORK_BUCKET, Key=key)["Body"].read())  # type: ignore[attr-defined]


def transform_planned(run: Run, shards: list[int]) -> None:
    """Array child i of the rerun transforms shard shards[i] (SLUICE_SHARD_PLAN)."""
    run.extra_env = {"SLUICE_SHARD_PLAN": f"{run.work_prefix}reruns/{RERUN}.json"}
    size = len(shards)
    for i in range(size):
        done = run.run("transform", index=i if size > 1 else None, size=size if size > 1 else None)
        assert done.returncode == 0, done.stderr + done.stdout
    run.extra_env = {}


def failing_run(make_run, datasets, options: dict) -> tuple[Run, dict]:
    run = make_run(datasets["sales.csv"], "sales.csv", shard_target_mb=SHARD_MB, options=options)
    ingest = run.run("ingest")
    assert ingest.returncode == 0, ingest.stderr
    manifest = run.manifest()
    assert manifest is not None and manifest["shard_count"] >= 4
    done = run.transform_all(manifest["shard_count"])
    failed = [i for i, d in enumerate(done) if d.returncode != 0]
    assert failed == sorted(options["fail_shards"]), [d.stderr for d in done]
    return run, manifest


def test_rerun_transforms_only_missing_shards_and_the_result_is_byte_identical(make_run, datasets) -> None:
    clean = make_run(datasets["sales.csv"], "sales.csv", shard_target_mb=SHARD_MB)
    clean.pipeline()
    expected = result_files(clean)

    run, manifest = failing_run(make_run, datasets, {"fail_shards": [1, 3]})
    aggregate = run.run("aggregate")
    assert aggregate.returncode == 1 and "2 of" in aggregate.stderr  # partials 1 and 3 missing
    partials_before = {
        k: run.s3.head_object(Bucket=WORK_BUCKET, Key=k)["ETag"] for k in run.work_keys("partials/")
    }  # type: ignore[attr-defined]

    run.options = {}  # the fault is lifted for the rerun
    document = plan(run)
    assert document["shards"] == [1, 3] and document["shard_count"] == 2
    assert document["of"] == manifest["shard_count"]
    transform_planned(run, document["shards"])
    # The partials that existed were not rewritten; the missing ones now exist.
    after = {k: run.s3.head_object(Bucket=WORK_BUCKET, Key=k)["ETag"] for k in run.work_keys("partials/")}  # type: ignore[attr-defined]
    assert {k: after[k] for k in partials_before} == partials_before
    assert len(after) == manifest["shard_count"]
    assert run.run("aggregate").returncode == 0
    assert result_files(run) == expected


def test_a_rerun_of_a_complete_run_plans_nothing(make_run, datasets) -> None:
    run = make_run(datasets["sales.csv"], "sales.csv", shard_target_mb=SHARD_MB)
    run.pipeline()
    assert plan(run)["shards"] == []


def test_gaps_within_tolerance_give_a_marked_incomplete_result_that_a_rerun_fills(make_run, datasets) -> None:
    clean = make_run(datasets["sales.csv"], "sales.csv", shard_target_mb=SHARD_MB)
    clean.pipeline()
    expected = result_files(clean)

    options = {"fail_shards": [2], "max_failed_shard_fraction": 0.3}
    run, manifest = failing_run(make_run, datasets, options)
    assert manifest["max_failed_shards"] == int(0.3 * manifest["shard_count"]) >= 1
    run.extra_env = {"SLUICE_ALLOW_MISSING_SHARDS": "true"}  # what the state machine sets
    done = run.run("aggregate")
    assert done.returncode == 0, done.stderr
    summary = json.loads(run.output("summary.json"))
    index = json.loads(
        run.s3.get_object(Bucket=WORK_BUCKET, Key=f"{run.work_prefix}shards/index.json")["Body"].read()
    )  # type: ignore[attr-defined]
    shard_rows = {s["index"]: s["rows"] for s in index["shards"]}
    assert summary["complete"] is False and summary["missing_shards"] == [2]
    assert summary["rows_missing"] == shard_rows[2]
    assert sum(run.result().column("rows").to_pylist()) == manifest["rows"] - shard_rows[2]
    marker = json.loads(run.output("_INCOMPLETE"))
    assert marker == {"missing_shards": [2], "rows_missing": shard_rows[2]}
    assert "_SUCCESS" in {k.rsplit("/", 1)[-1] for k in run.output_keys()}

    run.options = {"max_failed_shard_fraction": 0.3}
    document = plan(run)
    assert document["shards"] == [2]
    transform_planned(run, document["shards"])
    assert run.run("aggregate").returncode == 0
    assert result_files(run) == expected
    names = {k.rsplit("/", 1)[-1] for k in run.output_keys()}
    assert "_INCOMPLETE" not in names and "_SUCCESS" in names
    assert json.loads(run.output("summary.json"))["complete"] is True


def test_more_missing_shards_than_tolerated_fail_aggregate(make_run, datasets) -> None:
    run, manifest = failing_run(
        make_run, datasets, {"fail_shards": [0, 1, 2], "max_failed_shard_fraction": 0.1}
    )
    run.extra_env = {"SLUICE_ALLOW_MISSING_SHARDS": "true"}
    done = run.run("aggregate")
    assert done.returncode == 1
    assert f"(at most {manifest['max_failed_shards']} may be missing)" in done.stderr
    assert run.s3.list_objects_v2(Bucket=OUT_BUCKET, Prefix=run.output_prefix).get("KeyCount") == 0  # type: ignore[attr-defined]
