"""ingest -> transform (one process per shard) -> aggregate equals DuckDB on the same file."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from tests.jobs.helpers import IN_BUCKET, list_keys
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected

# 0.02 MB shards cut the 12,000-row samples into three shards; 64 MB keeps them in one.
SHARDING = {"one-shard": 64, "many-shards": 0.02}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sharding", list(SHARDING))
@pytest.mark.parametrize("name", ["sales.csv", "sales.csv.gz", "sales.jsonl", "sales.parquet"])
def test_pipeline_matches_duckdb(make_run, datasets, s3, name, sharding):
    run = make_run(datasets[name], name, shard_target_mb=SHARDING[sharding])
    before = s3.head_object(Bucket=IN_BUCKET, Key=run.key)
    inputs_before = list_keys(s3, IN_BUCKET, "")
    manifest = run.pipeline()

    assert manifest["format"] == name.split(".")[1]
    assert manifest["compression"] == ("gzip" if name.endswith(".gz") else None)
    assert manifest["rows"] == manifest["rows_read"] == 12_000
    if sharding == "one-shard":
        assert manifest["shard_count"] == 1
    else:
        assert manifest["shard_count"] >= 3
    assert len(run.work_keys("shards/part-")) == manifest["shard_count"]
    assert_matches(run.result(), duckdb_expected(datasets[name]))

    csv = pcsv.read_csv(pa.BufferReader(run.output("result.csv")))
    assert csv.num_rows == run.result().num_rows
    summary = json.loads(run.output("summary.json"))
    assert summary["rows_in"] == 12_000 and summary["rows_rejected"] == 0
    assert summary["groups"] == run.result().num_rows
    assert summary["shards"] == manifest["shard_count"]
    assert summary["timings"]["transform"]["partials"] == manifest["shard_count"]
    assert {"ingest", "transform", "aggregate"} <= set(summary["timings"])
    names = {key.removeprefix(run.output_prefix) for key in run.output_keys()}
    assert names == {"result.parquet", "result.csv", "summary.json", "_SUCCESS"}

    # The input object is only ever read: same bytes, same ETag and date, nothing added beside it.
    after = s3.head_object(Bucket=IN_BUCKET, Key=run.key)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert s3.get_object(Bucket=IN_BUCKET, Key=run.key)["Body"].read() == datasets[name].read_bytes()
    assert list_keys(s3, IN_BUCKET, "") == inputs_before


@pytest.mark.timeout(60)
def test_tsv_with_custom_spec_and_shard_cap(make_run, datasets):
    spec = {
        "group_by": ["channel"],
        "metrics": {"amount": ["max", "stddev", "count"], "merchant": ["min", "max", "count"]},
    }
    run = make_run(datasets["sales.tsv"], "sales.tsv", options=spec, shard_target_mb=0.001, max_shards=3)
    manifest = run.pipeline()
    assert 1 <= manifest["shard_count"] <= 3  # the cap wins over the tiny target
    assert_matches(run.result(), duckdb_expected(datasets["sales.tsv"], spec))


@pytest.mark.timeout(60)
def test_bad_rows_within_tolerance_are_skipped_and_counted(make_run, datasets):
    lines = datasets["sales.csv"].read_bytes().split(b"\n")
    header = lines[0].split(b",")
    amount = header.index(b'"amount"')
    bad_lines, ids = [], []
    for number in (5, 1000, 7000):  # 1-based line numbers; line 1 is the header
        while len(lines[number - 1].split(b",")) != len(header):
            number += 1  # skip lines whose merchant holds a quoted comma
        bad_lines.append(number)
        fields = lines[number - 1].split(b",")
        fields[amount] = b"n/a"
        ids.append(fields[0].strip(b'"').decode())
        lines[number - 1] = b",".join(fields)
    data = b"\n".join(lines)
    run = make_run(data, "sales.csv", options={"max_bad_row_fraction": 0.001})
    manifest = run.pipeline()

    assert manifest["rows_read"] == 12_000
    assert manifest["rows_rejected"] == 3 and manifest["rows"] == 11_997
    assert manifest["rejected"]["by_reason"] == {"not_a_number": 3}
    assert [e["line"] for e in manifest["rejected"]["examples"]] == bad_lines
    assert "'n/a' is not a number" in manifest["rejected"]["examples"][0]["reason"]
    excluded = ", ".join(f"'{i}'" for i in ids)
    expected = duckdb_expected(datasets["sales.csv"], where=f"WHERE transaction_id NOT IN ({excluded})")
    assert_matches(run.result(), expected)
    assert json.loads(run.output("summary.json"))["rows_rejected"] == 3


@pytest.mark.timeout(30)
def test_csv_quirks_match_duckdb(make_run, tmp_path):
    """BOM, CRLF, quoted delimiters, a blank line, null keys, integer keys sorted as numbers."""
    path = tmp_path / "quirks.csv"
    path.write_bytes(
        b'\xef\xbb\xbfregion,store,amount\r\n"North, East",2,1.5\r\nSouth,10,2.5\r\n,2,\r\n'
        b'South,10,-1\r\n\r\n"North, East",2,4\r\nSouth,1,7\r\nSouth,1,7e0\r\n'
    )
    spec = {
        "group_by": ["region", "store"],
        "metrics": {"amount": ["count", "sum", "mean", "min", "max", "stddev"]},
    }
    run = make_run(path, "quirks.csv", options=spec)
    manifest = run.pipeline()
    assert [c["type"] for c in manifest["columns"]] == ["string", "int64", "double"]
    assert_matches(run.result(), duckdb_expected(path, spec))
