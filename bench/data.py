"""Benchmark inputs: the bundled sample generator's CSV, made once per size and reused.

The generator is deterministic (seed 7), so a file whose marker records the same request is
the same bytes and need not be written again. Sizes are uncompressed bytes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sluice import sampledata

SEED = 7
SIZES = {"100MB": 100_000_000, "1GB": 1_000_000_000}
SMOKE_SIZES = {"7MB": 7_000_000}  # the generator writes whole 65,536-row batches (~7 MB)


def ensure_csv(directory: Path, label: str, size_bytes: int) -> tuple[Path, float | None]:
    """The CSV for `label` and how long generating it took (None when it was already there)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"transactions-{label}.csv"
    marker = directory / f"transactions-{label}.json"
    wanted = {"size_bytes": size_bytes, "seed": SEED}
    if path.exists() and marker.exists():
        recorded = json.loads(marker.read_text())
        if {k: recorded.get(k) for k in wanted} == wanted and recorded.get("bytes") == path.stat().st_size:
            return path, None
    started = time.perf_counter()
    sampledata.generate(str(path), size_bytes=size_bytes, seed=SEED)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({**wanted, "bytes": path.stat().st_size}))
    return path, seconds
