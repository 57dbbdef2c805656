"""Is the pipeline's result the engines' result? Groups and counts exactly, floats within 1e-9."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

KEYS = ("category", "country")


def _by_key(table: pa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in KEYS): row for row in table.to_pylist()}


def compare(result: pa.Table, oracle: pa.Table) -> dict[str, Any]:
    got, want = _by_key(result), _by_key(oracle)
    worst = 0.0
    mismatched = 0
    for key, expected in want.items():
        actual = got.get(key)
        if actual is None:
            mismatched += 1
            continue
        for name, value in expected.items():
            if name in KEYS:
                continue
            other = actual.get(name)
            if isinstance(value, float) or isinstance(other, float):
                if value is None or other is None:
                    mismatched += value is not other
                    continue
                scale = max(abs(value), abs(other), 1e-12)
                worst = max(worst, abs(value - other) / scale)
                mismatched += not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-9)
            elif value != other:
                mismatched += 1
    return {
        "groups": len(got),
        "oracle_groups": len(want),
        "rows": sum(row["rows"] for row in got.values()),
        "oracle_rows": sum(row["rows"] for row in want.values()),
        "mismatched_values": mismatched + len(set(got) - set(want)),
        "max_relative_difference": worst,
        "matches": mismatched == 0 and set(got) == set(want),
    }
