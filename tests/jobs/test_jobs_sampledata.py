"""The sample data generator: deterministic, realistic enough, every format DuckDB can read."""

from __future__ import annotations

import duckdb
import pytest

from sluice.sampledata import generate, main, parse_size
from tests.jobs.helpers_oracle import read_csv_sql

QUERY = (
    "SELECT count(*), count(category), count(country), count(amount), round(sum(amount), 2), "
    "count(DISTINCT category), count(*) FILTER (country = 'NA'), count(*) FILTER (amount < 0), "
    "count(*) FILTER (merchant = 'Smith, Jones & Co'), count(*) FILTER (merchant = '東京ラーメン') FROM '{}'"
)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    generate(str(a), 5000, seed=1)
    generate(str(b), 5000, seed=1)
    generate(str(c), 5000, seed=2)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_every_format_holds_the_same_realistic_rows(tmp_path):
    results = {}
    for name in ("t.csv", "t.tsv", "t.jsonl", "t.parquet", "t.jsonl.gz"):
        written = generate(str(tmp_path / name), 70_000, seed=4)  # more than one batch
        assert written.rows == 70_000 and written.bytes > 0
        with duckdb.connect() as con:
            results[name] = con.execute(QUERY.format(tmp_path / name)).fetchone()
    assert len(set(results.values())) == 1, results
    rows, categories, countries, amounts, _, distinct, namibia, refunds, comma, unicode = results["t.csv"]
    assert rows == 70_000
    assert 0 < rows - categories < rows * 0.02  # a few null keys...
    assert 0 < rows - countries < rows * 0.03
    assert 0 < rows - amounts < rows * 0.03  # ...and null amounts
    assert distinct == 12 and namibia > 0 and refunds > 0 and comma > 0 and unicode > 0


def test_size_target_and_cli(tmp_path):
    out = tmp_path / "sized.csv"
    assert main([str(out), "--size", "300KB", "--seed", "3"]) == 0
    assert 300 * 1024 <= out.stat().st_size < 300 * 1024 + 10 * 1024 * 1024
    assert parse_size("1GB") == 1024**3 and parse_size("64mb") == 64 * 1024**2
    with pytest.raises(ValueError, match="exactly one"):
        generate(str(tmp_path / "x.csv"))
    with pytest.raises(ValueError, match="Parquet compresses internally"):
        generate(str(tmp_path / "x.parquet.gz"), 10)


@pytest.mark.timeout(60)
def test_every_dialect_holds_the_same_rows_as_duckdb_reads_them(tmp_path):
    """Each dialect's file, read by DuckDB with the dialect's arguments, has the plain CSV's numbers."""
    from sluice.sampledata import DIALECTS

    plain = tmp_path / "plain.csv"
    generate(str(plain), 3000, seed=9)
    query = "SELECT count(*), count(amount), round(sum(amount), 2), count(DISTINCT country) FROM {}"
    with duckdb.connect() as con:
        expected = con.execute(query.format(f"'{plain}'")).fetchone()
    for name, dialect in DIALECTS.items():
        path = tmp_path / f"{name}.csv"
        assert main([str(path), "--rows", "3000", "--seed", "9", "--dialect", name]) == 0
        with duckdb.connect() as con:
            got = con.execute(query.format(read_csv_sql(path, **dialect.duckdb))).fetchone()
        if name == "na-nulls":  # Namibia's "NA" reads as null there, by design of the dialect
            assert got[:3] == expected[:3] and got[3] == expected[3] - 1, got
        else:
            assert got == expected, (name, got, expected)
