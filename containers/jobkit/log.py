"""JSON-lines logging to stdout: one object per line, which CloudWatch Logs Insights parses."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLogger:
    """Writes `{"ts", "level", "msg", ...context, ...fields}` lines and flushes each one.

    Flushing per line matters: Batch may kill the container right after a line is written.
    """

    def __init__(self, stream: TextIO | None = None, **context: Any) -> None:
        self._stream = stream
        self._context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}

    def bind(self, **context: Any) -> None:
        self._context.update({k: v for k, v in context.items() if v is not None})

    def log(self, level: str, msg: str, **fields: Any) -> None:
        record = {"ts": utc_now(), "level": level, "msg": msg, **self._context, **fields}
        stream = self._stream or sys.stdout
        stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        stream.flush()

    def info(self, msg: str, **fields: Any) -> None:
        self.log("INFO", msg, **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.log("WARNING", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("ERROR", msg, **fields)


class Stopwatch:
    """Wall-clock seconds since creation, for the timings written to manifest and summary."""

    def __init__(self) -> None:
        self.started_at = utc_now()
        self._t0 = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self._t0, 3)
