"""Malformed rows: counted, skipped, and located by line number.

Each chunk of lines is parsed whole by pyarrow (fast). Only when a chunk has a problem is it
split in halves, recursively, to find the offending records: the good halves are kept in bulk
and each bad record is reported with the physical line number it starts on and pyarrow's own
reason, so the fast path and the diagnosis can never disagree about what counts as bad. The
split points are line starts, or record starts for CSV whose quoted fields hold line breaks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from jobkit.errors import BadInput
from jobkit.manifest import MAX_REJECT_EXAMPLES, RejectExample, Rejections

_MAX_REASON = 200


class SegmentError(Exception):
    """A segment that cannot be parsed at all (e.g. invalid UTF-8, broken JSON)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class Segment:
    """A parsed run of lines: the rows kept, and the rows skipped with their reasons."""

    table: pa.Table
    rejected: Counter[str] = field(default_factory=Counter)
    reasons: list[str] = field(default_factory=list)  # for the first rejected rows, in order
    records: int = -1  # records read, kept or rejected (blank lines are none); -1: not known


@dataclass
class ChunkResult:
    tables: list[pa.Table]
    rejected: Counter[str]
    examples: list[RejectExample]
    # Set instead of the rest when the chunk ends inside a quoted field: the line it opens on.
    open_line: int | None = None


Parser = Callable[[bytes], Segment]
# Offsets where records start, then len(data); splitting there never cuts a record.
Starts = Callable[[bytes], list[int]]


def line_starts(data: bytes) -> list[int]:
    starts = [0] + [m.end() for m in re.finditer(b"\n", data)]
    if starts[-1] == len(data):
        starts.pop()  # no line after a final newline
    return starts + [len(data)]


def parse_chunk(
    parse: Parser,
    data: bytes,
    first_line: int,
    want_examples: bool,
    starts_of: Starts = line_starts,
    parsed: Segment | SegmentError | None = None,
) -> ChunkResult:
    """`parsed`: the result of parse(data) when the caller already has it."""
    if parsed is None:
        try:
            parsed = parse(data)
        except SegmentError as exc:
            parsed = exc
    if isinstance(parsed, Segment) and (not parsed.rejected or not want_examples):
        return ChunkResult([parsed.table], parsed.rejected, [])
    # Some records cannot be parsed, or their lines are wanted: find them and keep the rest.
    starts = starts_of(data)
    result = ChunkResult([], Counter(), [])
    _bisect(parse, data, starts, 0, len(starts) - 1, first_line, want_examples, result)
    return result


def _bisect(
    parse: Parser,
    data: bytes,
    starts: list[int],
    lo: int,
    hi: int,
    first_line: int,
    want_examples: bool,
    out: ChunkResult,
) -> None:
    segment = data[starts[lo] : starts[hi]]
    try:
        seg = parse(segment)
    except SegmentError as exc:
        if hi - lo == 1:
            out.rejected[exc.kind] += 1
            line = first_line + data.count(b"\n", 0, starts[lo])
            out.examples.append(RejectExample(line=line, reason=exc.reason[:_MAX_REASON]))
            return
    else:
        if not seg.rejected or hi - lo == 1 or not want_examples:
            out.tables.append(seg.table)
            out.rejected.update(seg.rejected)
            if hi - lo == 1 and seg.reasons:
                line = first_line + data.count(b"\n", 0, starts[lo])
                out.examples.append(RejectExample(line=line, reason=seg.reasons[0][:_MAX_REASON]))
            return
    mid = (lo + hi) // 2
    _bisect(parse, data, starts, lo, mid, first_line, want_examples, out)
    _bisect(parse, data, starts, mid, hi, first_line, want_examples, out)


class RejectTracker:
    """Totals across chunks, and the max_bad_row_fraction rule."""

    def __init__(self, max_fraction: float) -> None:
        self.max_fraction = max_fraction
        self.count = 0
        self.by_reason: Counter[str] = Counter()
        self.examples: list[RejectExample] = []

    def need_examples(self) -> bool:
        return len(self.examples) < MAX_REJECT_EXAMPLES

    def add(self, result: ChunkResult) -> None:
        self.count += sum(result.rejected.values())
        self.by_reason.update(result.rejected)
        room = MAX_REJECT_EXAMPLES - len(self.examples)
        self.examples.extend(sorted(result.examples, key=lambda e: e.line)[:room])
        if self.count and self.max_fraction == 0:
            # No tolerance: stop at the first bad row instead of reading the rest.
            raise BadInput(f"{self._first()} (max_bad_row_fraction is 0)")

    def check(self, rows_read: int) -> None:
        if not self.count:
            return
        fraction = self.count / rows_read if rows_read else 1.0
        if fraction > self.max_fraction:
            raise BadInput(
                f"{self.count} of {rows_read} rows rejected ({fraction:.2%}), more than "
                f"max_bad_row_fraction {self.max_fraction}; first: {self._first()}"
            )

    def _first(self) -> str:
        if self.examples:
            first = self.examples[0]
            return f"line {first.line}: {first.reason}"
        return f"{self.count} malformed rows ({', '.join(sorted(self.by_reason))})"

    def summary(self) -> Rejections:
        return Rejections(count=self.count, by_reason=dict(self.by_reason), examples=self.examples)
