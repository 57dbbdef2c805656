"""CSV dialects (issue 15): every sample-data dialect gives DuckDB's answer on the same file.

Each file is read by the pipeline with the dialect's options and by DuckDB's read_csv with the
equivalent arguments. Small chunks (SLUICE_INGEST_CHUNK_BYTES) put dozens of chunk boundaries
into a small file, so some fall inside quoted fields that hold line breaks.
"""

from __future__ import annotations

import json

import pytest

from sluice.sampledata import DIALECTS, generate
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected, read_csv_sql

ROWS = 3000
SMALL_CHUNKS = {"SLUICE_INGEST_CHUNK_BYTES": "4096"}


@pytest.fixture(scope="module")
def dialect_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dialects")
    paths = {}
    for name, dialect in DIALECTS.items():
        paths[name] = root / f"{name}.{'tsv' if dialect.delimiter == chr(9) else 'csv'}"
        generate(paths[name], ROWS, seed=5, dialect=name)
    return paths


@pytest.mark.timeout(60)
@pytest.mark.parametrize("chunks", ["4MiB", "4KiB"])
@pytest.mark.parametrize("name", list(DIALECTS))
def test_dialect_matches_duckdb(make_run, dialect_files, name, chunks):
    dialect, path = DIALECTS[name], dialect_files[name]
    run = make_run(
        path,
        path.name,
        options=dialect.options,
        extra_env=SMALL_CHUNKS if chunks == "4KiB" else {},
        shard_target_mb=0.05 if chunks == "4KiB" else 64,
    )
    manifest = run.pipeline()
    assert manifest["rows"] == manifest["rows_read"] == ROWS
    assert_matches(run.result(), duckdb_expected(path, source=read_csv_sql(path, **dialect.duckdb)))

    read = manifest["dialect"]
    assert read["delimiter"] == dialect.delimiter
    assert read["header"] == dialect.header
    if name == "semicolon-decimal-comma":
        assert "delimiter" in read["detected"]
    if name == "utf-16":
        assert read["encoding"] == "utf-16-le" and read["bom"] and "encoding" in read["detected"]
    if dialect.multiline:
        assert "quote-aware" in read["paths"]
    summary = json.loads(run.output("summary.json"))
    assert summary["dialect"] == read


@pytest.mark.timeout(60)
def test_plain_csv_reports_the_fast_path(make_run, datasets):
    manifest = make_run(datasets["sales.csv"], "sales.csv").pipeline()
    assert manifest["dialect"]["paths"] == ["fast"]
    assert manifest["dialect"]["delimiter"] == "," and manifest["dialect"]["detected"] == []


@pytest.mark.timeout(60)
def test_rejected_rows_keep_physical_line_numbers_after_multiline_records(make_run, tmp_path):
    """Bad values after records that span lines are reported at the lines they are on."""
    lines = ["category,country,amount"]
    bad_lines = []
    for i in range(400):
        if i % 50 == 7:
            lines.append(f'"multi\nline {i}",DE,x{i}')  # the bad amount is on the record's second line
            bad_lines.append(len(lines))  # the record starts on this line (1-based)
        elif i % 3 == 0:
            lines.append(f'"a ""quoted""\n\nkey",FR,{i}.5')
        else:
            lines.append(f"plain,US,{i}")
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    # Physical line of each bad record's start, counted in the file as written.
    starts = [n for n, line in enumerate(data.decode().split("\n"), start=1) if line.startswith('"multi')]
    run = make_run(
        path,
        "bad.csv",
        options={"max_bad_row_fraction": 0.05},
        extra_env={"SLUICE_INGEST_CHUNK_BYTES": "256"},
    )
    manifest = run.pipeline()
    assert manifest["rows_rejected"] == len(starts) == 8
    assert [e["line"] for e in manifest["rejected"]["examples"]] == starts[:8]
    kept = (
        f"(SELECT category, country, CAST(amount AS DOUBLE) AS amount FROM {read_csv_sql(path)} "
        "WHERE amount NOT LIKE 'x%')"
    )
    expected = duckdb_expected(path, source=kept)
    assert_matches(run.result(), expected)
