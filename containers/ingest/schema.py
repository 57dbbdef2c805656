"""Checking an input's columns against the aggregation spec, and the shards' column types."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from jobkit.errors import BadInput
from jobkit.manifest import ColumnInfo
from jobkit.options import Options


def check_present(available: list[str], options: Options, hint: str = "") -> None:
    missing = [c for c in options.columns() if c not in available]
    if not missing:
        return
    shown = ", ".join(repr(c) for c in available[:12]) + (", ..." if len(available) > 12 else "")
    raise BadInput(
        f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} named in the "
        f"aggregation spec {'are' if len(missing) > 1 else 'is'} not in the input "
        f"(it has {len(available)} column{'s' if len(available) != 1 else ''}: {shown}){hint}"
    )


def check_unique(names: list[str], options: Options) -> None:
    for column in options.columns():
        if names.count(column) > 1:
            raise BadInput(f"column {column!r} appears {names.count(column)} times in the input header")


Role = Literal["group", "metric", "group+metric"]


def role(column: str, options: Options) -> Role:
    in_group, in_metrics = column in options.group_by, column in options.metrics
    return "group+metric" if in_group and in_metrics else "group" if in_group else "metric"


def describe(schema: pa.Schema, options: Options) -> list[ColumnInfo]:
    return [ColumnInfo(name=f.name, type=str(f.type), role=role(f.name, options)) for f in schema]


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)


def shard_type(column: str, native: pa.DataType, options: Options) -> pa.DataType:
    """The type a column gets in the shards, from its type in a typed input (Parquet, JSON)."""
    if pa.types.is_dictionary(native):
        native = native.value_type
    if pa.types.is_nested(native):
        raise BadInput(f"column {column!r} holds nested values ({native}); the spec needs scalar columns")
    if options.needs_numeric(column):
        if not is_numeric(native):
            raise BadInput(f"column {column!r} is {native}, but sum, mean and stddev need a numeric column")
        return pa.float64()  # one numeric type for the metric maths, whatever the input width
    if pa.types.is_null(native) or pa.types.is_large_string(native):
        return pa.string()
    if pa.types.is_large_binary(native):
        return pa.binary()
    return native
