"""CSV and TSV with a header row: chunked, parsed by pyarrow, typed by us.

Columns are parsed as text and converted here, value by value, so that one bad value
rejects its row instead of failing a whole block. Types follow what DuckDB's sniffer would
pick for the same file: a group-by column of integers is an integer (so it sorts as a
number), a metric column of numbers is a double; sum/mean/stddev columns are always double.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from jobkit.errors import BadInput
from jobkit.options import Options

from ingest.lines import Chunk, LineChunker
from ingest.rejects import RejectTracker, Segment, SegmentError, parse_chunk
from ingest.schema import check_present, check_unique
from ingest.streams import ByteSource
from ingest.textread import parse_in_order
from ingest.utf8 import check_utf8

# What Arrow's string->double cast accepts; used to find the bad values once a cast failed.
FLOAT_RE = r"(?i)^[+-]?(nan|inf|infinity|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)$"
INT_RE = r"^-?\d{1,18}$"  # 18 digits always fit in int64
DELIMITERS = {"csv": ",", "tsv": "\t"}


class DelimitedReader:
    def __init__(self, src: ByteSource, fmt: str, options: Options, rejects: RejectTracker) -> None:
        self.format = fmt
        self._delimiter = DELIMITERS[fmt]
        self._options = options
        self._rejects = rejects
        self._lines = LineChunker(src)
        self.input_columns = self._read_header()
        check_present(self.input_columns, options, self._hint())
        check_unique(self.input_columns, options)
        wanted = set(options.columns())
        # Unneeded columns get private names: pyarrow wants unique names, headers need not be.
        self._names = [n if n in wanted else f"__unused{i}" for i, n in enumerate(self.input_columns)]
        self._needed = options.columns()
        self._chunks = self._lines.chunks()
        self._first = next(self._chunks, None)
        self.schema = self._sniff_schema()
        self.rows_accepted = 0

    def _read_header(self) -> list[str]:
        line = self._lines.read_line()
        if line is None:
            raise BadInput("input is empty: no header row and no data")
        try:
            text = line.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadInput(
                f"line 1 (the header) is not valid UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
        if not text.strip():
            raise BadInput("line 1 is empty; a header row naming the columns is expected")
        return next(csv.reader([text], delimiter=self._delimiter))

    def _hint(self) -> str:
        header = self.input_columns
        if len(header) == 1:
            for other in (",", "\t", ";", "|"):
                if other != self._delimiter and other in header[0]:
                    return (
                        f"; wrong delimiter? the header is one column containing {other!r}, "
                        f"but {self.format.upper()} is split on {self._delimiter!r}"
                    )
        if any(_looks_like_value(h) for h in header):
            return "; is the header row missing? line 1 looks like data"
        return ""

    def _parse_text(self, data: bytes) -> tuple[pa.Table, Counter[str], list[str]]:
        """Parse lines into text columns; rows with the wrong number of fields are skipped."""
        check_utf8(data)
        bad: list[str] = []

        def skip(row: pcsv.InvalidRow) -> str:
            bad.append(f"expected {row.expected_columns} fields, found {row.actual_columns}")
            return "skip"

        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(
                    column_names=self._names, block_size=len(data) + 1, use_threads=False
                ),
                parse_options=pcsv.ParseOptions(delimiter=self._delimiter, invalid_row_handler=skip),
                convert_options=pcsv.ConvertOptions(
                    include_columns=self._needed,
                    column_types=dict.fromkeys(self._needed, pa.string()),
                    null_values=[""],  # empty field = NULL, as DuckDB reads CSV
                    strings_can_be_null=True,
                    check_utf8=False,  # validated above, once for the whole chunk
                ),
            )
        except pa.ArrowInvalid as exc:
            raise SegmentError("malformed_csv", str(exc).removeprefix("CSV parse error: ")) from None
        return table, Counter({"wrong_field_count": len(bad)} if bad else {}), bad

    def _sniff_schema(self) -> pa.Schema:
        sample: list[pa.Table] = []
        if self._first is not None:
            raw = parse_chunk(self._parse_raw_segment, self._first.data, self._first.first_line, False)
            sample = [t for t in raw.tables if t.num_rows]
        fields = []
        for column in self._needed:
            values = pa.chunked_array([c for t in sample for c in t[column].chunks], pa.string()).drop_null()
            if self._options.needs_numeric(column):
                fields.append(pa.field(column, pa.float64()))
            elif column in self._options.group_by:
                fields.append(pa.field(column, pa.int64() if _all_match(values, INT_RE) else pa.string()))
            else:
                fields.append(pa.field(column, pa.float64() if _all_match(values, FLOAT_RE) else pa.string()))
        return pa.schema(fields)

    def _parse_raw_segment(self, data: bytes) -> Segment:
        table, rejected, reasons = self._parse_text(data) if data.strip() else (None, Counter(), [])
        return Segment(table if table is not None else _empty_text(self._needed), rejected, reasons)

    def _parse_segment(self, data: bytes) -> Segment:
        if not data.strip():
            return Segment(self.schema.empty_table())
        text, rejected, reasons = self._parse_text(data)
        columns, bad_any = [], None
        for f in self.schema:
            values, bad = _convert(text[f.name], f.type)
            columns.append(values)
            if bad is None:
                continue
            fresh = bad if bad_any is None else pc.and_(bad, pc.invert(bad_any))
            n = pc.sum(fresh).as_py() or 0
            if n:
                kind = "not_an_integer" if f.type == pa.int64() else "not_a_number"
                rejected[kind] += n
                first = text[f.name].filter(fresh)[0].as_py()
                what = "an integer" if f.type == pa.int64() else "a number"
                reasons.append(f"column {f.name!r}: {first!r} is not {what}")
                bad_any = bad if bad_any is None else pc.or_(bad_any, bad)
        table = pa.Table.from_arrays(columns, schema=self.schema)
        if bad_any is not None:
            table = table.filter(pc.invert(bad_any))
        return Segment(table, rejected, reasons)

    def tables(self) -> Iterator[pa.Table]:
        def chunks() -> Iterator[Chunk]:
            if self._first is not None:
                yield self._first
            yield from self._chunks

        for table in parse_in_order(chunks(), self._parse_segment, self._rejects):
            self.rows_accepted += table.num_rows
            yield table


def _empty_text(names: list[str]) -> pa.Table:
    return pa.schema([pa.field(n, pa.string()) for n in names]).empty_table()


def _all_match(values: pa.ChunkedArray, pattern: str) -> bool:
    return len(values) > 0 and bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())


def _looks_like_value(text: str) -> bool:
    return bool(pc.match_substring_regex(pa.array([text]), FLOAT_RE)[0].as_py()) or text[:4].isdigit()


def _convert(text: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """Text to `target`; the mask marks values that did not convert (nulls stay null, not bad)."""
    if target == pa.string():
        return text, None
    if target == pa.float64():
        try:
            return pc.cast(text, target), None  # the common case: every value converts
        except pa.ArrowInvalid:
            pass
    ok = pc.match_substring_regex(text, FLOAT_RE if target == pa.float64() else INT_RE)
    try:
        values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), target)
    except pa.ArrowInvalid as exc:  # the pattern let through something the cast refuses
        raise SegmentError("not_a_number", str(exc)) from None
    return values, pc.invert(pc.fill_null(ok, True))
