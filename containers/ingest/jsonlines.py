"""JSON lines: one object per line, chunked and parsed by pyarrow with an explicit schema.

The column types are inferred once, from the first records, and then fixed: a value that
does not fit (a string in a numeric column, a broken line) rejects its row only. A split of a
larger object (splits.py) resumes with the types the planner inferred from the object's head.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.json as pjson
from jobkit.errors import BadInput
from jobkit.options import Options

from ingest.lines import CHUNK_BYTES, Chunk, LineChunker
from ingest.rejects import RejectTracker, Segment, SegmentError
from ingest.schema import check_present
from ingest.streams import ByteSource
from ingest.textread import parse_in_order
from ingest.utf8 import check_utf8

SAMPLE_LINES = 1000
_CHANGED = re.compile(r"Column\(/(.*)\) changed from (\w+) to (\w+)")


@dataclass(frozen=True)
class Resume:
    """How to read a split of an object whose head the planner already read."""

    input_columns: list[str]
    schema: pa.Schema
    first_line: int  # the physical line number of the split's first byte


class JsonLinesReader:
    format = "jsonl"

    def __init__(
        self,
        src: ByteSource,
        options: Options,
        rejects: RejectTracker,
        chunk_bytes: int = CHUNK_BYTES,
        resume: Resume | None = None,
    ) -> None:
        self._options = options
        self._rejects = rejects
        self._chunks = LineChunker(src, chunk_bytes, first_line=resume.first_line if resume else 1).chunks()
        self._first = next(self._chunks, None)
        if resume is not None:  # a split: the planner inferred the types from the object's head
            self.input_columns, self.schema = list(resume.input_columns), resume.schema
        else:
            if self._first is None or not self._first.data.strip():
                raise BadInput("input is empty: no JSON records")
            self.input_columns, self.schema = self._infer(self._first.data)
        self._parse_options = pjson.ParseOptions(
            explicit_schema=self.schema, unexpected_field_behavior="ignore"
        )
        self.rows_accepted = 0

    def _infer(self, data: bytes) -> tuple[list[str], pa.Schema]:
        keys: dict[str, None] = {}
        kinds: dict[str, set[str]] = {c: set() for c in self._options.columns()}
        objects, first_error = 0, ""
        for number, line in enumerate(data.split(b"\n")[:SAMPLE_LINES], start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                first_error = first_error or f"line {number}: {exc}"
                continue
            if not isinstance(record, dict):
                first_error = first_error or f"line {number}: a JSON {type(record).__name__}, not an object"
                continue
            objects += 1
            keys.update(dict.fromkeys(record))
            for column, seen in kinds.items():
                value = record.get(column)
                if value is not None:
                    seen.add(_kind(value))
        if not objects:
            raise BadInput(
                f"no JSON object in the first {SAMPLE_LINES} lines; JSON lines input needs one object "
                f"per line ({first_error})"
            )
        names = list(keys)
        check_present(names, self._options, f" (keys of the first {objects} records)")
        fields = [pa.field(c, self._type(c, kinds[c])) for c in self._options.columns()]
        return names, pa.schema(fields)

    def _type(self, column: str, kinds: set[str]) -> pa.DataType:
        if "nested" in kinds:
            raise BadInput(f"column {column!r} holds nested JSON values; the spec needs scalar columns")
        if self._options.needs_numeric(column):
            return pa.float64()
        if kinds and kinds <= {"int"}:
            return pa.int64()
        if kinds and kinds <= {"int", "float"}:
            return pa.float64()
        if kinds == {"bool"}:
            return pa.bool_()
        return pa.string()  # text, nothing seen, or a mix (the minority's rows are rejected)

    def _parse_segment(self, data: bytes) -> Segment:
        if not data.strip():
            return Segment(self.schema.empty_table())
        check_utf8(data)
        try:
            table = pjson.read_json(
                pa.BufferReader(data),
                read_options=pjson.ReadOptions(use_threads=False, block_size=len(data) + 1),
                parse_options=self._parse_options,
            )
        except pa.ArrowInvalid as exc:
            raise _segment_error(str(exc)) from None
        return Segment(table.select(self.schema.names).cast(self.schema))

    def tables(self) -> Iterator[pa.Table]:
        def chunks() -> Iterator[Chunk]:
            if self._first is not None:
                yield self._first
            yield from self._chunks

        for table in parse_in_order(chunks(), self._parse_segment, self._rejects):
            self.rows_accepted += table.num_rows
            yield table


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "nested"


def _segment_error(message: str) -> SegmentError:
    message = re.sub(r" in row \d+$", "", message.removeprefix("JSON parse error: "))
    changed = _CHANGED.search(message)
    if changed:
        column, expected, found = changed.groups()
        return SegmentError("wrong_type", f"column {column!r}: expected {expected}, found {found}")
    return SegmentError("invalid_json", f"not a JSON object: {message}")
