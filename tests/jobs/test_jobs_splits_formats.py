"""Split runs of JSON lines (byte ranges, as CSV) and Parquet (whole row groups), checked
against DuckDB reading the same files whole (docs/splits.md).

JSON lines: split sizes sweep the boundaries through CRLFs, multi-byte UTF-8 characters, blank
lines and a last line without a line break; bad lines are numbered in the whole object and the
bad-row budget is over the whole input; gzip and transcoded JSON lines stay one pass. Parquet:
several row groups across several splits (each child fetching only its own), a file of one row
group, per-object column types in an input manifest, a corrupt footer (bad input from the
planner) and a corrupt row group (bad input from the child that reads it). Tests planning an
input manifest call the planner in-process with the objects' sizes (see plan_in_process).
"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import math
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.jobs.helpers import IN_BUCKET, WORK_BUCKET, Run
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected

pytestmark = pytest.mark.timeout(300)

MiB = 1024 * 1024


def split_env(split_bytes: int) -> dict[str, str]:
    return {"SLUICE_SPLIT_TARGET_MB": repr(split_bytes / MiB)}


def summary(run: Run) -> dict:
    return json.loads(run.output("summary.json"))


def split_index(run: Run, manifest: dict) -> dict:
    body = run.s3.get_object(Bucket=WORK_BUCKET, Key=manifest["split_index_key"])["Body"]  # type: ignore[attr-defined]
    return json.loads(body.read())


def plan_in_process(
    run: Run, monkeypatch, listed: list[tuple[str, int]], target: int, many: bool = True
) -> dict:
    """Ingest's planner over objects of known sizes; its manifest written as ingest would."""
    from ingest.job import _plan_splits
    from jobkit import s3 as s3io
    from jobkit.context import JobContext
    from jobkit.keys import manifest_key
    from jobkit.log import JsonLogger, Stopwatch
    from jobkit.manifest import InputRef

    env = run.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ctx = JobContext.from_env(env)
    client = s3io.client()
    inputs = [InputRef(bucket=IN_BUCKET, key=key, size=size) for key, size in listed]
    source = InputRef(bucket=IN_BUCKET, key=run.key) if many else inputs[0]
    log = JsonLogger(io.StringIO())
    planned = _plan_splits(ctx, log, client, source, inputs, many, ctx.options(), target, 10_000, Stopwatch())
    assert planned is not None
    s3io.put_bytes(
        client,
        WORK_BUCKET,
        manifest_key(ctx.work_prefix),
        planned.model_dump_json().encode(),
        "application/json",
    )
    return json.loads(planned.model_dump_json())


def result_in_process(run: Run, manifest: dict) -> tuple[pa.Table, int]:
    """What the children and aggregate compute, here in-process: the result and its rows."""
    from ingest.splits import read_split, split_schema
    from jobkit import s3 as s3io
    from jobkit.manifest import Manifest, SplitIndex
    from jobkit.partials import PartialBuilder, finalize, merge_partials

    client = s3io.client()
    plan = Manifest.model_validate(manifest)
    index = SplitIndex.model_validate(split_index(run, manifest))
    partials, rows = [], 0
    for number in range(len(index.splits)):
        builder = PartialBuilder(split_schema(index, plan), plan.options)
        read = read_split(client, index, number, plan, builder.add)
        assert read.rejects is None and not read.spill
        rows += read.rows
        partials.append(builder.result())
    return finalize(merge_partials(pa.concat_tables(partials), plan.options), plan.options), rows


def finish(run: Run, manifest: dict) -> None:
    """The transform array and aggregate of a planned run, each succeeding."""
    for done in run.transform_all(manifest["shard_count"]):
        assert done.returncode == 0, done.stderr + done.stdout
    aggregate = run.run("aggregate")
    assert aggregate.returncode == 0, aggregate.stderr + aggregate.stdout


# --- JSON lines ---


def tricky_jsonl(path: Path, rows: int = 120, final_newline: bool = False, bom: bool = False) -> Path:
    """CRLF line ends, multi-byte UTF-8 (raw, not \\u-escaped), blank lines, nulls, escaped quotes."""
    lines = []
    for i in range(rows):
        record = {
            "category": ["Bücher", "日本語の本", "plain", "naïve café"][i % 4],
            "country": ["DE", "JP", "US"][i % 3],
            "amount": None if i % 17 == 5 else round(i * 1.25 - 40, 2),
            "note": ['said "hi", left', "€€€ — ✓", "", "a,b,c"][i % 4],
        }
        lines.append(json.dumps(record, ensure_ascii=False) + "\r\n")
        if i % 11 == 3:
            lines.append("\r\n" if i % 2 else "\n")  # blank lines: no record
    text = "".join(lines)
    if not final_newline:
        text = text.rstrip("\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


@pytest.mark.parametrize("final_newline", [False, True], ids=["no-final-newline", "final-newline"])
def test_json_lines_splits_read_every_record_once_and_match_duckdb(make_run, tmp_path, final_newline) -> None:
    path = tricky_jsonl(tmp_path / "tricky.jsonl", final_newline=final_newline)
    run = make_run(path, path.name, extra_env=split_env(1009))
    manifest = run.pipeline()
    assert manifest["format"] == "jsonl" and manifest["split_index_key"] is not None
    assert manifest["shard_count"] == -(-path.stat().st_size // 1009)
    assert_matches(run.result(), duckdb_expected(path))
    assert summary(run)["rows_accepted"] == 120


@pytest.mark.parametrize(
    ("final_newline", "bom"), [(False, False), (True, True)], ids=["no-final-newline", "final-newline-bom"]
)
def test_json_lines_split_boundaries_swept_through_every_kind_of_position(
    make_run, monkeypatch, tmp_path, final_newline, bom
) -> None:
    """Many split sizes, planned and read in-process as the jobs do (no process per split)."""
    path = tricky_jsonl(tmp_path / "sweep.jsonl", final_newline=final_newline, bom=bom)
    size = path.stat().st_size
    expected = duckdb_expected(path)
    run = make_run(path, path.name)
    for split_bytes in (37, 61, 97, 157, 211, 397, 1009, 4001, size - 1):
        manifest = plan_in_process(run, monkeypatch, [(run.key, size)], split_bytes, many=False)
        assert manifest["shard_count"] == -(-(size - 3 * bom) // split_bytes), split_bytes
        result, rows = result_in_process(run, manifest)
        assert rows == 120, split_bytes
        assert_matches(result, expected)


def test_json_lines_of_at_most_one_split_are_read_in_one_pass(make_run, tmp_path) -> None:
    path = tricky_jsonl(tmp_path / "small.jsonl")
    run = make_run(path, path.name, extra_env=split_env(path.stat().st_size))
    manifest = run.pipeline()
    assert manifest["split_index_key"] is None and manifest["rows"] == 120
    assert_matches(run.result(), duckdb_expected(path))


@pytest.mark.parametrize("how", ["gzip", "latin-1"])
def test_compressed_or_transcoded_json_lines_are_read_in_one_pass(make_run, tmp_path, how) -> None:
    path = tricky_jsonl(tmp_path / "plain.jsonl", final_newline=True)
    if how == "gzip":
        data, name, options = gzip.compress(path.read_bytes(), mtime=0), "packed.jsonl.gz", {}
    else:
        data, name, options = (
            path.read_text("utf-8").encode("latin-1", "replace"),
            "l1.jsonl",
            {"encoding": how},
        )
        path.write_bytes(data.decode("latin-1").encode("utf-8"))  # what DuckDB reads: the same text
    run = make_run(data, name, extra_env=split_env(500), options=options)
    manifest = run.pipeline()
    assert manifest["split_index_key"] is None and manifest["rows"] == 120
    assert_matches(run.result(), duckdb_expected(path))


def test_json_lines_types_are_those_of_one_pass(make_run, tmp_path) -> None:
    """Integers group as integers, a boolean column stays boolean: the head decides, as in one pass."""
    path = tmp_path / "typed.jsonl"
    lines = [
        json.dumps({"year": 2000 + i % 5, "flag": i % 3 == 0, "amount": i * 0.5, "x": "ü" * (i % 7)})
        for i in range(400)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = {"group_by": ["year", "flag"], "metrics": {"amount": ["count", "sum", "min", "max", "stddev"]}}
    run = make_run(path, path.name, extra_env=split_env(4000), options=spec)
    manifest = run.pipeline()
    assert manifest["shard_count"] > 5
    assert [(c["name"], c["type"]) for c in manifest["columns"]] == [
        ("year", "int64"),
        ("flag", "bool"),
        ("amount", "double"),
    ]
    assert_matches(run.result(), duckdb_expected(path, spec))


def test_a_bad_json_line_in_a_later_split_names_its_line_in_the_whole_file(make_run, tmp_path) -> None:
    path = tricky_jsonl(tmp_path / "bad.jsonl", rows=150, final_newline=True)
    lines = path.read_bytes().split(b"\n")
    lines[131] = b'{"category": "plain", "country": "US", "amount": "oops"}\r'  # physical line 132
    lines[140] = b'{"category": "plain", broken\r'  # physical line 141
    path.write_bytes(b"\n".join(lines))
    one_pass = make_run(path, path.name)
    failed = one_pass.run("ingest")
    assert failed.returncode == 65
    expected = re.search(r"line 132: [^\"]*\(max_bad_row_fraction is 0\)", failed.stdout + failed.stderr)
    assert expected is not None, failed.stdout + failed.stderr

    run = make_run(path, path.name, extra_env=split_env(600))
    assert run.run("ingest").returncode == 0
    manifest = run.manifest()
    assert manifest is not None and manifest["shard_count"] > 5
    for done in run.transform_all(manifest["shard_count"]):
        assert done.returncode == 0, done.stderr
    aggregate = run.run("aggregate")
    assert aggregate.returncode == 65, aggregate.stderr + aggregate.stdout
    assert expected.group(0) in aggregate.stdout  # the same line and reason as one pass
    assert not run.output_keys()


def test_the_json_lines_bad_row_budget_is_over_the_whole_input(make_run, tmp_path) -> None:
    path = tmp_path / "budget.jsonl"
    lines = [json.dumps({"category": f"c{i % 3}", "country": "X", "amount": i}) for i in range(200)]
    for number in (10, 90, 170):  # three bad lines in three different splits
        lines[number - 1] = '{"category": "c0", "country": "X", "amount": "oops"}'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # 3 of 200 rows: 1.5%, within 2% overall though one split alone holds more than 2% bad rows.
    run = make_run(path, path.name, extra_env=split_env(1000), options={"max_bad_row_fraction": 0.02})
    manifest = run.pipeline()
    assert manifest["shard_count"] >= 5
    got = summary(run)
    assert (got["rows_in"], got["rows_accepted"], got["rows_rejected"]) == (200, 197, 3)
    assert [e["line"] for e in got["rejected"]["examples"]] == [10, 90, 170]
    typed = (
        "(SELECT category, country, TRY_CAST(amount AS DOUBLE) AS amount FROM read_json("
        f"'{path}', columns = {{'category': 'VARCHAR', 'country': 'VARCHAR', 'amount': 'VARCHAR'}}))"
    )
    assert_matches(run.result(), duckdb_expected(path, source=typed, where="WHERE amount IS NOT NULL"))
    strict = make_run(path, path.name, extra_env=split_env(1000), options={"max_bad_row_fraction": 0.01})
    assert strict.run("ingest").returncode == 0
    for done in strict.transform_all(strict.manifest()["shard_count"]):  # type: ignore[index]
        assert done.returncode == 0
    aggregate = strict.run("aggregate")
    assert aggregate.returncode == 65
    assert "3 of 200 rows rejected (1.50%), more than max_bad_row_fraction 0.01; first: line 10" in (
        aggregate.stdout
    )


def test_json_lines_objects_of_a_manifest_keep_one_pass_types(make_run, s3, monkeypatch, tmp_path) -> None:
    """A small and a large object share splits; the later one's integer `code` is read as an
    integer (its own head decides) and cast to the first's text, as one pass does."""
    prefix = f"jl/{uuid.uuid4().hex[:8]}/"
    paths = []
    for number, rows in enumerate([30, 5, 400]):
        lines = [
            json.dumps(
                {
                    "code": f"A{i % 4}" if number == 0 else i % 4,
                    "country": ["DE", "JP"][i % 2],
                    "amount": i * 0.75,
                },
                ensure_ascii=False,
            )
            for i in range(rows)
        ]
        path = tmp_path / f"part-{number}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        s3.upload_file(str(path), IN_BUCKET, f"{prefix}{path.name}")
        paths.append(path)
    spec = {"group_by": ["code", "country"], "metrics": {"amount": ["count", "sum", "mean", "max"]}}
    run = make_run(json.dumps({"prefix": prefix}).encode(), "jl.manifest.json", options=spec)
    listed = [(prefix + p.name, p.stat().st_size) for p in paths]
    manifest = plan_in_process(run, monkeypatch, listed, sum(size for _, size in listed) // 5)
    index = split_index(run, manifest)
    assert [i["arrow_schema"] is not None for i in index["inputs"]] == [False, True, True]
    assert len(index["splits"][0]["ranges"]) > 1  # the small objects share the first split
    finish(run, manifest)
    files = ", ".join(f"'{p}'" for p in paths)
    columns = "{'code': 'VARCHAR', 'country': 'VARCHAR', 'amount': 'DOUBLE'}"
    typed = f"read_json([{files}], columns = {columns})"
    assert_matches(run.result(), duckdb_expected(paths[0], spec, source=typed))


def test_objects_of_different_formats_are_read_in_one_pass(make_run, s3, monkeypatch, tmp_path) -> None:
    from ingest.job import _plan_splits
    from jobkit import s3 as s3io
    from jobkit.context import JobContext
    from jobkit.log import JsonLogger, Stopwatch
    from jobkit.manifest import InputRef

    prefix = f"mixed/{uuid.uuid4().hex[:8]}/"
    parquet = write_parquet(tmp_path / "a.parquet", sales_table(2_000), row_group_rows=500)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(json.dumps({"category": "x", "country": "DE", "amount": 1.0}) + "\n", encoding="utf-8")
    for path in (parquet, jsonl):
        s3.upload_file(str(path), IN_BUCKET, prefix + path.name)
    run = make_run(json.dumps({"prefix": prefix}).encode(), "mixed.manifest.json")
    env = run.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ctx = JobContext.from_env(env)
    inputs = [
        InputRef(bucket=IN_BUCKET, key=prefix + p.name, size=p.stat().st_size) for p in (parquet, jsonl)
    ]
    source = InputRef(bucket=IN_BUCKET, key=run.key)
    log = JsonLogger(io.StringIO())
    assert (
        _plan_splits(ctx, log, s3io.client(), source, inputs, True, ctx.options(), 100, 10_000, Stopwatch())
        is None
    )


# --- Parquet ---


def sales_table(rows: int, seed: int = 0) -> pa.Table:
    day0 = datetime.date(2024, 1, 1)
    return pa.table(
        {
            "category": pa.array([f"cat-{(i * 7 + seed) % 13}" for i in range(rows)]),
            "country": pa.array([["DE", "JP", "US", None][(i + seed) % 4] for i in range(rows)]),
            "day": pa.array([day0 + datetime.timedelta(days=(i * 3 + seed) % 9) for i in range(rows)]),
            "qty": pa.array([(i * 31 + seed) % 1000 for i in range(rows)], pa.int32()),
            "amount": pa.array(
                [None if i % 23 == 7 else math.sin(i + seed) * 1000 for i in range(rows)], pa.float64()
            ),
            "filler": pa.array([f"{i:08d}-{'x' * (i % 40)}" for i in range(rows)]),
        }
    )


def write_parquet(path: Path, table: pa.Table, row_group_rows: int) -> Path:
    pq.write_table(table, path, row_group_size=row_group_rows, compression="snappy")
    return path


def row_group_bytes(path: Path) -> list[int]:
    metadata = pq.read_metadata(path)
    return [
        sum(metadata.row_group(g).column(c).total_compressed_size for c in range(metadata.num_columns))
        for g in range(metadata.num_row_groups)
    ]


PARQUET_SPEC = {
    "group_by": ["category", "day"],
    "metrics": {"amount": ["count", "sum", "mean", "min", "max", "stddev"], "qty": ["count", "min", "max"]},
}


@pytest.mark.parametrize("groups_per_split", [1, 2.5, 4])
def test_parquet_row_groups_across_splits_match_duckdb(make_run, tmp_path, groups_per_split) -> None:
    path = write_parquet(tmp_path / "sales.parquet", sales_table(24_000), row_group_rows=2_000)
    sizes = row_group_bytes(path)
    assert len(sizes) == 12
    target = int(sum(sizes) / len(sizes) * groups_per_split)
    run = make_run(path, path.name, extra_env=split_env(target), options=PARQUET_SPEC)
    manifest = run.pipeline()
    assert manifest["format"] == "parquet" and manifest["split_index_key"] is not None
    assert 1 < manifest["shard_count"] <= 12
    assert [(c["name"], c["type"]) for c in manifest["columns"]] == [
        ("category", "string"),
        ("day", "date32[day]"),
        ("amount", "double"),
        ("qty", "int32"),
    ]
    index = split_index(run, manifest)
    groups = [(g["first"], g["end"]) for s in index["splits"] for g in s["row_groups"]]
    assert [g for first, end in groups for g in range(first, end)] == list(range(12))  # each once
    # The planner read the footer only; each child read its own row groups' needed columns.
    assert manifest["bytes_read"] < 70_000 < path.stat().st_size
    assert_matches(run.result(), duckdb_expected(path, PARQUET_SPEC))
    got = summary(run)
    assert (got["rows_in"], got["rows_accepted"], got["rows_rejected"]) == (24_000, 24_000, 0)
    # Each child fetched the footer's tail and no more than its own row groups.
    from jobkit.keys import partial_key

    for number, split in enumerate(index["splits"]):
        own = sum(sum(sizes[g] for g in range(r["first"], r["end"])) for r in split["row_groups"])
        head = run.s3.head_object(Bucket=WORK_BUCKET, Key=partial_key(run.work_prefix, number))  # type: ignore[attr-defined]
        assert int(head["Metadata"]["bytes-read"]) <= 64 * 1024 + own


def test_a_parquet_file_of_one_row_group_is_one_split(make_run, tmp_path) -> None:
    path = write_parquet(tmp_path / "one.parquet", sales_table(6_000), row_group_rows=10_000)
    assert pq.read_metadata(path).num_row_groups == 1
    run = make_run(path, path.name, extra_env=split_env(path.stat().st_size // 10), options=PARQUET_SPEC)
    manifest = run.pipeline()
    assert manifest["split_index_key"] is not None and manifest["shard_count"] == 1
    assert_matches(run.result(), duckdb_expected(path, PARQUET_SPEC))


def test_parquet_objects_of_a_manifest_share_splits_and_keep_one_pass_types(
    make_run, s3, aws_env, monkeypatch, tmp_path
) -> None:
    """Small files share a split, a large one spans several; a later file's int64 `qty` is
    read in its own type and cast to the first file's int32, as one pass does.

    Planned in-process with the objects' sizes given: an input manifest's listing does not pass
    them on today (ingest/inputs.py), and without them the run is read in one pass.
    """
    prefix = f"pq/{uuid.uuid4().hex[:8]}/"
    paths = []
    for number, (rows, per_group) in enumerate([(3_000, 1_000), (500, 500), (400, 400), (9_000, 1_500)]):
        table = sales_table(rows, seed=number)
        if number == 2:
            table = table.set_column(3, "qty", table["qty"].cast(pa.int64()))
        path = write_parquet(tmp_path / f"part-{number}.parquet", table, per_group)
        s3.upload_file(str(path), IN_BUCKET, f"{prefix}part-{number}.parquet")
        paths.append(path)
    target = int(sum(sum(row_group_bytes(p)) for p in paths) / 6)
    run = make_run(json.dumps({"prefix": prefix}).encode(), "pq.manifest.json", options=PARQUET_SPEC)
    manifest = plan_in_process(run, monkeypatch, [(prefix + p.name, p.stat().st_size) for p in paths], target)
    index = split_index(run, manifest)
    assert [i["arrow_schema"] is not None for i in index["inputs"]] == [False, False, True, False]
    assert any(len(s["row_groups"]) > 1 for s in index["splits"])  # small files packed together
    assert sum(1 for s in index["splits"] for g in s["row_groups"] if g["input"] == 3) > 1
    finish(run, manifest)
    listed = ", ".join(f"'{p}'" for p in paths)
    expected = duckdb_expected(paths[0], PARQUET_SPEC, source=f"read_parquet([{listed}], union_by_name=true)")
    assert_matches(run.result(), expected)


def corrupt_footer(data: bytes) -> bytes:
    """The footer's Thrift bytes overwritten; the magic and the footer length stay intact."""
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    return data[:start] + bytes((b * 7 + 13) % 256 for b in data[start : start + length]) + data[-8:]


def test_a_corrupt_parquet_footer_is_bad_input_as_in_one_pass(make_run, tmp_path) -> None:
    good = write_parquet(tmp_path / "good.parquet", sales_table(8_000), row_group_rows=1_000)
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(corrupt_footer(good.read_bytes()))
    one_pass = make_run(path, path.name, options=PARQUET_SPEC).run("ingest")
    assert one_pass.returncode == 65, one_pass.stderr
    said = re.search(r"input is not a valid Parquet file: [^\"]+", one_pass.stdout + one_pass.stderr)
    assert said is not None, one_pass.stdout + one_pass.stderr
    run = make_run(path, path.name, extra_env=split_env(path.stat().st_size // 4), options=PARQUET_SPEC)
    planned = run.run("ingest")
    assert planned.returncode == 65, planned.stderr + planned.stdout
    assert said.group(0) in planned.stderr + planned.stdout  # the same message, from the footer alone
    assert run.manifest() is None and run.work_keys("splits/") == []


def test_a_corrupt_row_group_is_bad_input_in_the_child_that_reads_it(make_run, tmp_path) -> None:
    good = write_parquet(tmp_path / "good.parquet", sales_table(8_000), row_group_rows=1_000)
    metadata = pq.read_metadata(good)
    amount = metadata.schema.to_arrow_schema().get_field_index("amount")
    chunk = metadata.row_group(6).column(amount)
    data = bytearray(good.read_bytes())
    start = chunk.data_page_offset
    data[start : start + 16] = b"\xff" * 16  # the data page's header: not Thrift any more
    path = tmp_path / "bad-group.parquet"
    path.write_bytes(bytes(data))
    one_pass = make_run(path, path.name, options=PARQUET_SPEC).run("ingest")
    assert one_pass.returncode == 65 and "Parquet input is corrupt" in one_pass.stdout + one_pass.stderr

    run = make_run(
        path, path.name, extra_env=split_env(int(sum(row_group_bytes(good)) / 4)), options=PARQUET_SPEC
    )
    assert run.run("ingest").returncode == 0
    manifest = run.manifest()
    assert manifest is not None and manifest["shard_count"] > 2
    index = split_index(run, manifest)
    holding = [
        n for n, s in enumerate(index["splits"]) if any(g["first"] <= 6 < g["end"] for g in s["row_groups"])
    ]
    done = run.transform_all(manifest["shard_count"])
    assert [n for n, d in enumerate(done) if d.returncode != 0] == holding
    assert done[holding[0]].returncode == 65
    assert "Parquet input is corrupt" in done[holding[0]].stdout + done[holding[0]].stderr
