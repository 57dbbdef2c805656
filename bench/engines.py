"""The single-process baselines: DuckDB and Polars computing the pipeline's default aggregation.

    python -m bench.engines duckdb|polars <input.csv> <result.parquet>

Group by (category, country): count(*) as rows, then count/sum/mean/min/max/stddev_samp of
amount, sorted by the keys (nulls last), written with the pipeline's column names so the
results can be compared. Prints one JSON line: import and query seconds (the query time
includes reading and parsing the CSV), the query's CPU seconds (all threads), groups and
rows. Both engines use every core.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

COLUMNS = [
    "category",
    "country",
    "rows",
    "amount_count",
    "amount_sum",
    "amount_mean",
    "amount_min",
    "amount_max",
    "amount_stddev",
]
ENGINES = ("duckdb", "polars")
QUERY_CPU = [0.0, 0.0]  # process CPU time (every thread) at the query's start and end


def run_duckdb(source: Path, result: Path) -> tuple[float, float, int, int]:
    started = time.perf_counter()
    import duckdb

    imported = time.perf_counter()
    QUERY_CPU[0] = time.process_time()
    con = duckdb.connect()
    literal = str(source).replace("'", "''")
    table = con.sql(
        f"""
        SELECT category, country, count(*) AS rows, count(amount) AS amount_count,
               sum(amount) AS amount_sum, avg(amount) AS amount_mean, min(amount) AS amount_min,
               max(amount) AS amount_max, stddev_samp(amount) AS amount_stddev
        FROM read_csv('{literal}') GROUP BY category, country
        ORDER BY category ASC NULLS LAST, country ASC NULLS LAST
        """
    ).to_arrow_table()
    finished = time.perf_counter()
    QUERY_CPU[1] = time.process_time()
    import pyarrow.parquet as pq

    pq.write_table(table, result)
    return imported - started, finished - imported, table.num_rows, int(sum(table.column("rows").to_pylist()))


def run_polars(source: Path, result: Path) -> tuple[float, float, int, int]:
    started = time.perf_counter()
    import polars as pl

    imported = time.perf_counter()
    QUERY_CPU[0] = time.process_time()
    amount = pl.col("amount")
    frame = (
        pl.scan_csv(source)
        .group_by(["category", "country"])
        .agg(
            pl.len().alias("rows"),
            amount.count().alias("amount_count"),
            amount.sum().alias("amount_sum"),
            amount.mean().alias("amount_mean"),
            amount.min().alias("amount_min"),
            amount.max().alias("amount_max"),
            amount.std(ddof=1).alias("amount_stddev"),
        )
        .sort(["category", "country"], nulls_last=True)
        .collect()
    )
    finished = time.perf_counter()
    QUERY_CPU[1] = time.process_time()
    frame.select(COLUMNS).write_parquet(result)
    return imported - started, finished - imported, frame.height, int(frame["rows"].sum())


def main(argv: list[str]) -> int:
    engine, source, result = argv[0], Path(argv[1]), Path(argv[2])
    runner = {"duckdb": run_duckdb, "polars": run_polars}[engine]
    import_s, query_s, groups, rows = runner(source, result)
    found = {
        "engine": engine,
        "import_s": import_s,
        "query_s": query_s,
        "query_cpu_s": QUERY_CPU[1] - QUERY_CPU[0],
    }
    print(json.dumps({**found, "groups": groups, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
