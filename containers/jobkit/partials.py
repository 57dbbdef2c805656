"""Mergeable partial aggregates: computed per shard, merged exactly, finalised once.

Per group a partial holds the row count and, per metric column, the count of non-null
values, their sum, min and max, and the moments (mean, M2) of Chan et al.'s parallel
variance algorithm. Merging partials gives the same numbers as aggregating the rows at once
(count/min/max exactly, sum/mean/stddev up to float rounding), so stddev never goes through
the cancellation-prone sum of squares.

Partials and results are sorted by the group-by columns, ascending with nulls last (DuckDB's
default ORDER BY), and computed single-threaded so that a retried attempt produces the same
bits. A null group key is a group of its own, as in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from jobkit.options import ROWS_COLUMN, Options

ROWS = "__rows"
GROUP_ID = "__gid"


def stat(column: str, name: str) -> str:
    return f"__{name}:{column}"


def _stats_for(metrics: Sequence[str]) -> list[str]:
    """Partial statistics a column's metrics need; count always (cheap, and mean/stddev use it)."""
    stats = ["count"]
    if "sum" in metrics or "mean" in metrics:
        stats.append("sum")
    stats.extend(m for m in ("min", "max") if m in metrics)
    if "stddev" in metrics:
        stats.extend(["mean", "m2"])
    return stats


def _as_float(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return arr if arr.type == pa.float64() else pc.cast(arr, pa.float64())


def partial_from_rows(table: pa.Table, options: Options) -> pa.Table:
    """Aggregate raw rows (one shard, or a batch of one) into a sorted partial."""
    keys = options.group_by
    columns: dict[str, pa.ChunkedArray] = {k: table[k] for k in keys}
    aggs: list[tuple] = [([], "count_all")]
    renames = {"count_all": ROWS}
    for i, (column, metrics) in enumerate(options.metrics.items()):
        stats = _stats_for(metrics)
        raw = f"__v{i}"  # private name: the same input column may also be a group key
        columns[raw] = table[column]
        aggs.append((raw, "count"))
        renames[f"{raw}_count"] = stat(column, "count")
        if "sum" in stats or "mean" in stats:
            columns[f"__f{i}"] = _as_float(table[column])
        if "sum" in stats:
            aggs.append((f"__f{i}", "sum"))
            renames[f"__f{i}_sum"] = stat(column, "sum")
        for name in ("min", "max"):
            if name in stats:
                aggs.append((raw, name))
                renames[f"{raw}_{name}"] = stat(column, name)
        if "mean" in stats:
            aggs.append((f"__f{i}", "mean"))
            aggs.append((f"__f{i}", "variance", pc.VarianceOptions(ddof=0)))
            renames[f"__f{i}_mean"] = stat(column, "mean")
            renames[f"__f{i}_variance"] = stat(column, "m2")
    grouped = pa.table(columns).group_by(keys, use_threads=False).aggregate(aggs)
    out = grouped.rename_columns([renames.get(n, n) for n in grouped.column_names])
    for column, metrics in options.metrics.items():
        if "stddev" in metrics:
            # Arrow's population variance is M2 / n, so M2 = variance * n.
            m2 = pc.multiply(out[stat(column, "m2")], _as_float(out[stat(column, "count")]))
            out = out.set_column(out.schema.get_field_index(stat(column, "m2")), stat(column, "m2"), m2)
    return _sorted(out.select(partial_columns(options)), keys)


def partial_columns(options: Options) -> list[str]:
    names = [*options.group_by, ROWS]
    for column, metrics in options.metrics.items():
        names.extend(stat(column, s) for s in _stats_for(metrics))
    return names


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    if not keys or table.num_rows < 2:
        return table
    order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in keys])
    return table.take(order)


def _group_starts(table: pa.Table, keys: list[str]) -> pa.Array:
    """For a table sorted by `keys`: True where a row starts a new group (nulls equal nulls)."""
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.bool_())
    if not keys:
        return pa.array([True] + [False] * (n - 1))
    starts = pa.array([False] * (n - 1), pa.bool_())
    for key in keys:
        col = table[key].combine_chunks()
        cur, prev = col.slice(1), col.slice(0, n - 1)
        both_null = pc.and_(pc.is_null(cur), pc.is_null(prev))
        same = pc.fill_null(pc.equal(cur, prev), both_null)
        starts = pc.or_(starts, pc.invert(same))
    return pa.concat_arrays([pa.array([True]), starts])


def merge_partials(table: pa.Table, options: Options) -> pa.Table:
    """Combine partial rows that share a group key; the output is a sorted partial again."""
    keys = options.group_by
    table = _sorted(table, keys)
    if table.num_rows == 0:
        return table
    starts = _group_starts(table, keys)
    gid = pc.subtract(pc.cumulative_sum(pc.cast(starts, pa.int64())), 1)
    work: dict[str, pa.ChunkedArray | pa.Array] = {GROUP_ID: gid, ROWS: table[ROWS]}
    aggs: list[tuple] = [(ROWS, "sum")]
    for column, metrics in options.metrics.items():
        stats = _stats_for(metrics)
        for s in stats:
            name = stat(column, s)
            if s == "mean":
                # Weighted sum of means: the merged mean is sum(n_i * mean_i) / sum(n_i).
                weighted = pc.multiply(table[name], _as_float(table[stat(column, "count")]))
                work[name] = weighted
                aggs.append((name, "sum"))
            else:
                work[name] = table[name]
                aggs.append((name, "min" if s == "min" else "max" if s == "max" else "sum"))
    grouped = pa.table(work).group_by([GROUP_ID], use_threads=False).aggregate(aggs)
    grouped = grouped.take(pc.sort_indices(grouped[GROUP_ID]))
    out: dict[str, pa.ChunkedArray | pa.Array] = {k: table[k].filter(starts) for k in keys}
    out[ROWS] = grouped[f"{ROWS}_sum"]
    for column, metrics in options.metrics.items():
        stats = _stats_for(metrics)
        for s in stats:
            name = stat(column, s)
            out[name] = grouped[f"{name}_{'min' if s == 'min' else 'max' if s == 'max' else 'sum'}"]
        if "mean" in stats:
            count = _as_float(out[stat(column, "count")])
            mean = pc.divide(out[stat(column, "mean")], count)  # null/NaN-free: count 0 -> sum null
            mean = pc.if_else(pc.greater(count, 0), mean, pa.scalar(None, pa.float64()))
            # Chan et al.: M2 = sum(M2_i) + sum(n_i * (mean_i - mean)^2).
            spread = pc.subtract(table[stat(column, "mean")], pc.take(mean, gid))
            term = pc.multiply(_as_float(table[stat(column, "count")]), pc.multiply(spread, spread))
            extra = pa.table({GROUP_ID: gid, "t": term}).group_by([GROUP_ID], use_threads=False)
            extra = extra.aggregate([("t", "sum")])
            extra = extra.take(pc.sort_indices(extra[GROUP_ID]))
            out[stat(column, "mean")] = mean
            out[stat(column, "m2")] = pc.add(out[stat(column, "m2")], pc.fill_null(extra["t_sum"], 0.0))
    return pa.table(out).select(partial_columns(options))


def finalize(partial: pa.Table, options: Options) -> pa.Table:
    """Turn a merged partial into the result: keys, `rows`, then `<column>_<metric>` in spec order."""
    result: dict[str, pa.ChunkedArray | pa.Array] = {k: partial[k] for k in options.group_by}
    result[ROWS_COLUMN] = partial[ROWS]
    null = pa.scalar(None, pa.float64())
    for column, metric in options.metric_items():
        count = partial[stat(column, "count")]
        if metric == "count":
            value = count
        elif metric == "sum":
            value = partial[stat(column, "sum")]
        elif metric == "mean":
            value = pc.if_else(
                pc.greater(count, 0), pc.divide(partial[stat(column, "sum")], _as_float(count)), null
            )
        elif metric in ("min", "max"):
            value = partial[stat(column, metric)]
        else:  # stddev: sample standard deviation, null below two values (DuckDB stddev_samp)
            ddof1 = pc.subtract(_as_float(count), 1.0)
            var = pc.divide(partial[stat(column, "m2")], pc.if_else(pc.greater(ddof1, 0), ddof1, null))
            value = pc.if_else(pc.greater(count, 1), pc.sqrt(var), null)
        result[f"{column}_{metric}"] = value
    return _sorted(pa.table(result), options.group_by)


class PartialBuilder:
    """Rows in, in order; one merged partial out. A partial is made of every `batch_rows` rows, so
    memory stays bounded whatever the input's size, and the result is the same on every attempt."""

    def __init__(self, schema: pa.Schema, options: Options, batch_rows: int = 1_000_000) -> None:
        self._schema = schema
        self._options = options
        self._batch_rows = batch_rows
        self._partials: list[pa.Table] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        rows = pa.concat_tables(self._pending) if self._pending else self._schema.empty_table()
        self._partials.append(partial_from_rows(rows, self._options))
        self._pending, self._pending_rows = [], 0

    def result(self) -> pa.Table:
        if self._pending or not self._partials:
            self._flush()
        return merge_partials(pa.concat_tables(self._partials), self._options)
