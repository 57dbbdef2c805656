"""In-process tests of jobkit and ingest building blocks (fast; no subprocess, no S3)."""

from __future__ import annotations

import gzip
import io
import json
import random

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest.lines import LineChunker
from ingest.sniff import choose_format, sniff_text
from ingest.streams import Gunzip
from jobkit.context import JobContext
from jobkit.errors import BadInput, JobError
from jobkit.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_RECORDED_INPUT_COLUMNS,
    MAX_REJECT_EXAMPLES,
    ColumnInfo,
    InputRef,
    Manifest,
    RejectExample,
    Rejections,
    Timing,
)
from jobkit.options import Options, parse_options
from jobkit.partials import finalize, merge_partials, partial_from_rows

from tests.jobs.helpers_oracle import assert_matches


def _table(n: int, seed: int) -> pa.Table:
    rnd = random.Random(seed)
    return pa.table(
        {
            "category": [rnd.choice(["a", "b", "é", None, "Z"]) for _ in range(n)],
            "country": [rnd.choice(["US", "NA", None]) for _ in range(n)],
            # A large mean with a small spread is where naive sum-of-squares variance fails.
            "amount": [None if rnd.random() < 0.1 else rnd.gauss(1e6, 2.5) for _ in range(n)],
            "merchant": [rnd.choice(["x", "Ωmega", None]) for _ in range(n)],
        }
    )


@pytest.mark.parametrize("group_by", [["category", "country"], ["country"], []])
def test_merged_partials_equal_duckdb(group_by):
    table = _table(5000, seed=len(group_by))
    spec = {"amount": ["count", "sum", "mean", "min", "max", "stddev"], "merchant": ["count", "min", "max"]}
    options = Options(group_by=group_by, metrics=spec)
    rnd = random.Random(7)
    parts, start = [], 0
    while start < table.num_rows:  # uneven splits, down to single rows
        size = rnd.choice([1, 2, 17, 300, 1200])
        parts.append(partial_from_rows(table.slice(start, size), options))
        start += size
    merged = parts[0]
    for part in parts[1:]:  # merged pairwise, as aggregate merges batches into a running total
        merged = merge_partials(pa.concat_tables([merged, part]), options)
    keys = ", ".join(group_by)
    sql = (
        f"SELECT {keys + ',' if keys else ''} count(*) AS rows, count(amount) AS amount_count, "
        "sum(amount) AS amount_sum, avg(amount) AS amount_mean, min(amount) AS amount_min, "
        "max(amount) AS amount_max, stddev_samp(amount) AS amount_stddev, count(merchant) AS merchant_count, "
        "min(merchant) AS merchant_min, max(merchant) AS merchant_max "
        f"FROM rows_in {'GROUP BY ' + keys + ' ORDER BY ' + keys if keys else ''}"
    )
    with duckdb.connect() as con:
        con.register("rows_in", table)
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        expected = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert_matches(finalize(merged, options), expected)


def test_stddev_and_mean_are_null_where_sql_says_so():
    table = pa.table({"k": ["one", "none", "two", "two"], "v": [5.0, None, 1.0, 3.0]})
    options = Options(group_by=["k"], metrics={"v": ["count", "sum", "mean", "stddev"]})
    result = finalize(partial_from_rows(table, options), options).to_pylist()
    assert result == [
        {"k": "none", "rows": 1, "v_count": 0, "v_sum": None, "v_mean": None, "v_stddev": None},
        {"k": "one", "rows": 1, "v_count": 1, "v_sum": 5.0, "v_mean": 5.0, "v_stddev": None},
        {"k": "two", "rows": 2, "v_count": 2, "v_sum": 4.0, "v_mean": 2.0, "v_stddev": pytest.approx(2**0.5)},
    ]


def test_partials_are_deterministic():
    options = Options()
    table = _table(3000, seed=3)
    assert partial_from_rows(table, options).equals(partial_from_rows(table, options))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"metrics": {"amount": ["median"]}}', "metrics.amount.0"),
        ('{"group_by": ["a", "a"]}', "group_by repeats a column"),
        ('{"metrics": {"amount": []}}', "lists no metric"),
        ('{"group_by": ["rows"], "metrics": {}}', "result columns would clash"),
        ('{"max_bad_row_fraction": 2}', "max_bad_row_fraction"),
        ('{"format": "xlsx"}', "format"),
        ("[1]", "must be a JSON object"),
        ("{nope", "not valid JSON"),
    ],
)
def test_invalid_options_are_bad_input(raw, message):
    with pytest.raises(BadInput) as info:
        parse_options(raw)
    assert message in str(info.value)


def test_default_options_fit_the_sample_data():
    options = parse_options("{}")
    assert options.columns() == ["category", "country", "amount"]
    assert options.output_columns()[:3] == ["category", "country", "rows"]
    assert options.needs_numeric("amount") and not options.needs_numeric("category")


def test_context_reads_batch_and_sluice_environment():
    env = {
        "SLUICE_RUN_ID": "r1",
        "SLUICE_WORK_BUCKET": "w",
        "SLUICE_OUTPUT_BUCKET": "o",
        "SLUICE_OUTPUT_PREFIX": "results/in.csv/r1",
        "SLUICE_SHARD_TARGET_MB": "0.5",
        "SLUICE_MAX_SHARDS": "20000",
        "AWS_BATCH_JOB_ATTEMPT": "3",
        "AWS_BATCH_JOB_ARRAY_INDEX": "7",
    }
    ctx = JobContext.from_env(env)
    assert ctx.work_prefix == "work/r1/" and ctx.output_prefix == "results/in.csv/r1/"
    assert (ctx.batch.attempt, ctx.batch.shard_index) == (3, 7)
    assert ctx.shard_target_bytes() == 512 * 1024
    assert ctx.max_shards() == 10_000  # Batch arrays stop at 10,000 children
    assert JobContext.from_env({"SLUICE_RUN_ID": "r"}).batch.shard_index == 0  # single-job branch
    with pytest.raises(JobError, match="SLUICE_RUN_ID is not set"):
        JobContext.from_env({})


def test_manifest_stays_small_whatever_the_input():
    manifest = Manifest(
        run_id="r" * 80,
        input=InputRef(bucket="b" * 63, key="k" * 1024, size=10**12),
        format="csv",
        compression="gzip",
        options=Options(),
        input_column_count=50_000,
        input_columns=["c" * 100] * MAX_RECORDED_INPUT_COLUMNS,
        columns=[ColumnInfo(name="c" * 100, type="string", role="group")] * 3,
        shard_count=10_000,
        shards_prefix="work/r/shards/",
        shard_index_key="work/r/shards/index.json",
        rows=10**10,
        rows_read=10**10,
        rows_rejected=10**6,
        rejected=Rejections(
            count=10**6,
            by_reason={"not_a_number": 10**6},
            examples=[RejectExample(line=10**9, reason="r" * 200)] * MAX_REJECT_EXAMPLES,
        ),
        bytes_read=10**12,
        bytes_written=10**11,
        timings=Timing(started_at="t", finished_at="t", seconds=1.0),
    )
    assert len(manifest.model_dump_json()) < MAX_MANIFEST_BYTES
    assert json.loads(manifest.model_dump_json())["shard_count"] == 10_000


def test_line_chunker_numbers_lines_and_refuses_overlong_ones():
    data = b"h\n" + b"".join(b"row%d\n" % i for i in range(1000)) + b"last-without-newline"
    chunker = LineChunker(io.BytesIO(data), chunk_bytes=64, max_line_bytes=100)
    assert chunker.read_line() == b"h"
    chunks = list(chunker.chunks())
    assert b"".join(c.data for c in chunks) == data[2:]
    expected_line = 2
    for chunk in chunks:  # whole lines only, each chunk knowing the number of its first line
        assert chunk.first_line == expected_line
        assert chunk.data.endswith(b"\n") or chunk is chunks[-1]
        expected_line += chunk.data.count(b"\n")
    assert len(chunks) > 10
    too_long = b"ok\n" * 50 + b"x" * 101 + b"\nok\n"
    with pytest.raises(BadInput, match="line 51 is longer than"):
        list(LineChunker(io.BytesIO(too_long), chunk_bytes=64, max_line_bytes=100).chunks())


def test_gunzip_reads_multi_member_and_reports_truncation():
    data = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n")
    reader = Gunzip(io.BytesIO(data))
    out = b"".join(iter(lambda: reader.read(3), b""))
    assert out == b"a,b\n1,2\n3,4\n"
    cut = Gunzip(io.BytesIO(gzip.compress(b"x" * 100_000)[:50]))
    with pytest.raises(BadInput, match="truncated"):
        while cut.read(1024):
            pass
    with pytest.raises(BadInput, match="not valid gzip"):
        Gunzip(io.BytesIO(b"\x1f\x8bgarbage" * 10)).read(10)


def test_format_detection():
    assert choose_format("in/a.csv.gz", None, b"\x1f\x8b..", True) == "csv"
    assert choose_format("in/a.data", None, b"PAR1xxxx", False) == "parquet"
    assert choose_format("in/a.csv", "tsv", b"a\tb", False) == "tsv"  # the option wins
    assert choose_format("in/blob", None, b"a,b", False) is None  # content decides
    assert sniff_text(b'\xef\xbb\xbf {"a": 1}\n') == "jsonl"
    assert sniff_text(b"a\tb\tc\n1\t2\t3\n") == "tsv"
    assert sniff_text(b"a,b\n") == "csv"
    with pytest.raises(BadInput, match="not a Parquet file"):
        choose_format("x.parquet", None, b"a,b,c", False)


@pytest.mark.parametrize(("target", "max_shards"), [(20_000, 3), (20_000, 10_000), (64 * 1024 * 1024, 10)])
def test_shard_writer_sizes_and_caps_shards(s3, target, max_shards, tmp_path):
    from ingest.shards import ShardWriter
    from jobkit.log import JsonLogger

    from tests.jobs.helpers import WORK_BUCKET

    table = _table(20_000, seed=5).select(["category", "country", "amount"])
    prefix = f"work/writer-{target}-{max_shards}/"
    writer = ShardWriter(
        s3, WORK_BUCKET, prefix, table.schema, target, max_shards, str(tmp_path), JsonLogger(io.StringIO())
    )
    for start in range(0, table.num_rows, 3000):
        writer.write(table.slice(start, 3000))
    shards = writer.close()

    assert 1 <= len(shards) <= max_shards
    if target >= 1024 * 1024:
        assert len(shards) == 1  # a small input is one shard
    elif max_shards == 3:
        assert len(shards) == 3  # the last shard allowed takes the rest
    else:
        assert len(shards) > 5
        assert all(target / 2 < s.bytes < target * 1.5 for s in shards[:-1])
    assert [s.index for s in shards] == list(range(len(shards)))
    assert sum(s.rows for s in shards) == table.num_rows
    back = pa.concat_tables(
        pq.read_table(pa.BufferReader(s3.get_object(Bucket=WORK_BUCKET, Key=s.key)["Body"].read()))
        for s in shards
    )
    assert back.equals(table)  # same rows, same order
    assert list(tmp_path.iterdir()) == []  # local shard files are removed once uploaded


def test_fault_injection_is_refused_unless_the_stack_allows_it(monkeypatch):
    from jobkit.options import FAULT_INJECTION_VARIABLE

    monkeypatch.delenv(FAULT_INJECTION_VARIABLE, raising=False)
    for option in ("fail_shards", "hang_shards"):
        with pytest.raises(BadInput, match="deploy with AllowFaultInjection=true"):
            parse_options(json.dumps({option: [0]}))
    assert parse_options(json.dumps({"group_by": ["country"]})).group_by == ["country"]
    monkeypatch.setenv(FAULT_INJECTION_VARIABLE, "true")
    assert parse_options(json.dumps({"fail_shards": [1]})).fail_shards == [1]


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        # Every field quoted, no record across lines: pyarrow's record count equals the lines.
        (b'"a","b"\n' + b'"x","1"\n' * 5000, False),
        (b'"a","b"\n"x","1"\n\n"y","2"\n', False),  # a blank line: the scan decides, still no span
        (b'"a","b"\n"x","1"\n"y\nz","2"\n"w","3"\n', True),  # a quoted line break
        (b'"a","b"\n"x","1"\n"y\nz","2', True),  # the sample ends inside a quoted field
        (b"a,b\nx,1\ny,2\n", False),  # nothing quoted
    ],
)
def test_sample_spans_lines_agrees_with_the_quote_scan(text: bytes, spans: bool) -> None:
    from ingest.delimited import DelimitedReader
    from ingest.rejects import RejectTracker

    options = parse_options(json.dumps({"group_by": ["a"], "metrics": {"b": ["count"]}}))
    reader = DelimitedReader(io.BytesIO(text), "csv", options, RejectTracker(1.0))
    assert reader.sample_spans_lines() is spans
