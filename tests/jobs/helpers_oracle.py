"""The correctness oracle: the same query in DuckDB on the same file."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pyarrow as pa

SQL_METRIC = {
    "count": "count({c})",
    "sum": "sum({c})",
    "mean": "avg({c})",
    "min": "min({c})",
    "max": "max({c})",
    "stddev": "stddev_samp({c})",
}
DEFAULT_SPEC = {
    "group_by": ["category", "country"],
    "metrics": {"amount": ["count", "sum", "mean", "min", "max", "stddev"]},
}


def sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def read_csv_sql(path: Path, **arguments: object) -> str:
    """DuckDB's read_csv over `path` with the given arguments (e.g. delim=';', nullstr=['NA'])."""
    given = "".join(f", {name} = {sql_literal(value)}" for name, value in arguments.items())
    return f"read_csv('{path}'{given})"


def duckdb_expected(
    path: Path, spec: dict | None = None, where: str = "", source: str | None = None
) -> list[dict]:
    """`source`: a FROM item to read instead of the file as DuckDB sniffs it (e.g. read_csv_sql(...))."""
    spec = spec or DEFAULT_SPEC
    keys = ", ".join(f'"{k}"' for k in spec["group_by"])
    metrics = [
        f'{SQL_METRIC[m].format(c=chr(34) + c + chr(34))} AS "{c}_{m}"'
        for c, ms in spec["metrics"].items()
        for m in ms
    ]
    select = ", ".join([*([keys] if keys else []), "count(*) AS rows", *metrics])
    group = f"GROUP BY {keys} ORDER BY {keys}" if keys else ""
    sql = f"SELECT {select} FROM {source or repr(str(path))} {where} {group}"
    with duckdb.connect() as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def assert_matches(result: pa.Table, expected: list[dict]) -> None:
    """Same columns, same group order, counts and keys exact, floats within 1e-9 relative."""
    rows = result.to_pylist()
    assert result.column_names == list(expected[0]), (result.column_names, list(expected[0]))
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        for name, value in want.items():
            actual = got[name]
            if isinstance(value, float) or isinstance(actual, float):
                assert value is not None and actual is not None, (name, got, want)
                assert math.isclose(actual, value, rel_tol=1e-9, abs_tol=1e-9), (name, actual, value, got)
            else:
                assert actual == value, (name, actual, value, got)
