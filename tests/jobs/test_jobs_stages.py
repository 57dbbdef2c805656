"""Transform and aggregate: idempotent retries, fault injection, SIGTERM, missing partials."""

from __future__ import annotations

import signal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.jobs.helpers import WORK_BUCKET, LineReader


def _partial(s3, run, index: int) -> tuple[bytes, dict[str, str]]:
    obj = s3.get_object(Bucket=WORK_BUCKET, Key=f"{run.work_prefix}partials/part-{index:05d}.parquet")
    return obj["Body"].read(), obj["Metadata"]


@pytest.mark.timeout(60)
def test_retried_transform_rewrites_identical_bytes(make_run, datasets, s3):
    run = make_run(datasets["sales.csv"], "sales.csv", shard_target_mb=0.02)
    assert run.run("ingest").returncode == 0
    count = run.manifest()["shard_count"]
    assert count > 1

    first = run.run("transform", index=1, size=count, attempt=1)
    assert first.returncode == 0, first.stderr
    data1, meta1 = _partial(s3, run, 1)
    s3.delete_object(Bucket=WORK_BUCKET, Key=f"{run.work_prefix}partials/part-00001.parquet")
    second = run.run("transform", index=1, size=count, attempt=2)
    assert second.returncode == 0, second.stderr
    data2, meta2 = _partial(s3, run, 1)

    assert data1 == data2
    assert (meta1["attempt"], meta2["attempt"]) == ("1", "2")
    partial = pq.read_table(pa.BufferReader(data2))
    assert partial.num_rows > 0 and int(meta2["rows"]) == sum(partial["__rows"].to_pylist())

    beyond = run.run("transform", index=count, size=count + 1)
    assert beyond.returncode == 1
    assert f"shard index {count} is out of range" in beyond.stderr


@pytest.mark.timeout(60)
def test_fail_shards_fails_only_those_children_and_aggregate_waits(make_run, datasets):
    run = make_run(datasets["sales.jsonl"], "sales.jsonl", shard_target_mb=0.02, options={"fail_shards": [1]})
    assert run.run("ingest").returncode == 0
    count = run.manifest()["shard_count"]

    done = run.transform_all(count)

    assert [d.returncode for d in done] == [1 if i == 1 else 0 for i in range(count)]
    assert done[1].stderr.strip() == "transform: injected failure for shard 1"
    aggregate = run.run("aggregate")
    assert aggregate.returncode not in (0, 65)  # retryable: an earlier stage did not finish
    err = aggregate.stderr.strip()
    assert err.startswith("aggregate: 1 of ") and "partials missing (shard 1)" in err, err
    assert "transform stage has not finished" in err
    assert run.output_keys() == []


@pytest.mark.timeout(30)
def test_aggregate_without_manifest_is_retryable(make_run, datasets):
    run = make_run(datasets["sales.csv"], "sales.csv")
    done = run.run("aggregate")
    assert done.returncode == 1
    assert "ingest has not finished" in done.stderr
    assert run.output_keys() == []


@pytest.mark.timeout(30)
def test_hanging_transform_stops_cleanly_on_sigterm(make_run, datasets):
    run = make_run(datasets["sales.parquet"], "sales.parquet", options={"hang_shards": [0]})
    assert run.run("ingest").returncode == 0
    proc = run.start("transform")
    try:
        LineReader(proc.stdout).wait_for("injected hang", timeout=20)
        assert proc.poll() is None  # still hanging, not exited
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143
        assert proc.stderr.read().strip() == "transform: terminated by SIGTERM, stopped cleanly"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert run.work_keys("partials/") == []
