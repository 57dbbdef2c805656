"""CSV and TSV in their dialects: chunked, parsed by pyarrow, typed by us.

Columns are parsed as text and converted here, value by value, so that one bad value
rejects its row instead of failing a whole block. Types follow what DuckDB's sniffer would
pick for the same file: a group-by column of integers is an integer (so it sorts as a
number), a metric column of numbers is a double; sum/mean/stddev columns are always double.

The dialect comes from the options; what they leave open (the delimiter) is detected only
where the sample allows one answer. Plain files take the fast path: a chunk whose records
are exactly its lines needs nothing beyond pyarrow's parse. Only a chunk with fewer records
than lines (blank or comment lines, quoted fields holding line breaks) is checked for ending
inside a quoted field, and only then is it scanned quote by quote.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from jobkit.errors import BadInput
from jobkit.manifest import Dialect
from jobkit.options import DETECTED_DELIMITERS, Options

from ingest.encoding import TextEncoding
from ingest.lines import CHUNK_BYTES, Chunk, LineChunker
from ingest.rejects import ChunkResult, RejectTracker, Segment, SegmentError, line_starts, parse_chunk
from ingest.schema import check_present, check_unique
from ingest.streams import ByteSource
from ingest.textread import parse_in_order
from ingest.utf8 import check_utf8

# What Arrow's string->double cast accepts; used to find the bad values once a cast failed.
FLOAT_RE = r"(?i)^[+-]?(nan|inf|infinity|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)$"
INT_RE = r"^-?\d{1,18}$"  # 18 digits always fit in int64
DELIMITERS = {"csv": ",", "tsv": "\t"}
SAMPLE_BYTES = 64 * 1024  # what delimiter detection looks at after the header
SAMPLE_LINES = 200


@dataclass(frozen=True)
class Resume:
    """How to read a split of an object whose head the planner already read."""

    delimiter: str
    input_columns: list[str]
    schema: pa.Schema
    first_line: int  # the physical line number of the split's first byte


class DelimitedReader:
    def __init__(
        self,
        src: ByteSource,
        fmt: str,
        options: Options,
        rejects: RejectTracker,
        encoding: TextEncoding | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        resume: Resume | None = None,
    ) -> None:
        self.format = fmt
        self._options = options
        self._rejects = rejects
        self._encoding = encoding or TextEncoding("utf-8", False, False)
        self._quote = options.quote
        self._escape = options.escape
        self._comment = options.comment.encode() if options.comment else None
        self._detected: list[str] = ["encoding"] if self._encoding.detected else []
        self._paths: set[str] = set()
        if self._encoding.name != "utf-8":
            self._paths.add("transcoded")
        if options.escape is not None:
            self._paths.add("escape")
        if options.comment is not None:
            self._paths.add("comments")
        self._lines = LineChunker(src, chunk_bytes, first_line=resume.first_line if resume else 1)
        if resume is None:
            first_line, first = self._first_row()
            self._delimiter = self._choose_delimiter(first)
            if options.header:
                self._lines.read_line()
                self.input_columns = self._split_header(first_line, first)
            else:
                assert options.column_names is not None  # the options' validator requires them
                self._check_not_header(first_line, first, options.column_names)
                self.input_columns = list(options.column_names)
            check_present(self.input_columns, options, self._hint(first_line))
            check_unique(self.input_columns, options)
        else:  # a split: the planner fixed the dialect and the columns from the object's head
            self._delimiter = resume.delimiter
            self.input_columns = list(resume.input_columns)
        # Bytes of the decoded stream before the first data record (skipped rows, header).
        self.data_offset = self._lines.consumed
        # Physical lines before the first data record.
        self.lines_before_data = self._lines.next_line - 1
        wanted = set(options.columns())
        # Unneeded columns get private names: pyarrow wants unique names, headers need not be.
        self._names = [n if n in wanted else f"__unused{i}" for i, n in enumerate(self.input_columns)]
        self._needed = options.columns()
        self._parse_options = pcsv.ParseOptions(
            delimiter=self._delimiter,
            quote_char=self._quote if self._quote is not None else False,
            double_quote=self._escape is None,
            escape_char=self._escape if self._escape is not None else False,
        )
        # With trim_whitespace, null markers are matched after trimming, so done here, not by pyarrow.
        self._null_values = [] if options.trim_whitespace else options.null_values
        self._chunks = self._lines.chunks()
        self._first = next(self._chunks, None)
        self._first_records = -1  # records pyarrow found in the first chunk, when the sniff parsed it
        self.schema = resume.schema if resume is not None else self._sniff_schema()
        self.rows_accepted = 0

    # --- the first rows: preamble, comments, header, delimiter ---

    def _first_row(self) -> tuple[int, str]:
        """Skip skip_rows and comment lines; the first row's line number and text (not consumed)."""
        skip = self._options.skip_rows
        for _ in range(skip):
            if self._lines.read_line() is None:
                raise BadInput(
                    f"skip_rows is {skip}, but the input has only {self._lines.next_line - 1} lines"
                )
        comment = self._options.comment
        while True:
            line = self._lines.peek_line()
            if line is None:
                if skip or comment:
                    raise BadInput(
                        f"input has no rows after line {self._lines.next_line - 1} "
                        f"(skip_rows {skip}, comment {comment!r})"
                    )
                raise BadInput("input is empty: no header row and no data")
            if comment is None or not line.startswith(comment.encode()):
                break
            self._lines.read_line()
        number = self._lines.next_line
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            what = "the header" if self._options.header else "the first row"
            raise BadInput(
                f"line {number} ({what}) is not valid UTF-8: {exc.reason} at byte {exc.start}; "
                f"set the encoding option (e.g. 'latin-1' or 'cp1252') if the file is not UTF-8"
            ) from None
        if not text.strip():
            raise BadInput(f"line {number} is empty; a header row naming the columns is expected")
        if self._options.trim_whitespace:
            text = text.strip()
        return number, text

    def _choose_delimiter(self, first: str) -> str:
        if self._options.delimiter is not None:
            return self._options.delimiter
        default = DELIMITERS[self.format]
        sample = self._lines.peek(len(first.encode()) + 2 + SAMPLE_BYTES)
        if len(sample) > SAMPLE_BYTES:
            sample = sample[: sample.rfind(b"\n") + 1]  # whole lines only
        found = consistent_delimiters(
            sample.decode("utf-8", "replace"), self._quote, self._escape, self._options.comment
        )
        if default in found or not found:
            return default  # the format's own, or nothing better: errors and hints then explain
        if len(found) > 1:
            shown = " and ".join(repr(c) for c in found)
            raise BadInput(
                f"cannot tell the delimiter: {shown} each split every sampled line into the same "
                f"number of fields; set the delimiter option"
            )
        self._detected.append("delimiter")
        return found[0]

    def _split(self, text: str) -> list[str]:
        quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if self._quote is None else csv.QUOTE_MINIMAL
        fields = next(
            csv.reader(
                [text],
                delimiter=self._delimiter,
                quotechar=self._quote or '"',
                escapechar=self._escape,
                doublequote=self._escape is None,
                quoting=quoting,
            )
        )
        return [f.strip() for f in fields] if self._options.trim_whitespace else fields

    def _split_header(self, number: int, text: str) -> list[str]:
        return self._split(text)

    def _check_not_header(self, number: int, text: str, names: list[str]) -> None:
        fields = self._split(text)
        if fields == names:
            raise BadInput(
                f"line {number} holds the names given in columns, so it is a header row; "
                f"remove header: false and columns, or skip the line with skip_rows"
            )

    def _hint(self, number: int) -> str:
        header = self.input_columns
        if not self._options.header:
            return " (the names given in columns)"
        if len(header) == 1 and self._options.delimiter is None:
            for other in DETECTED_DELIMITERS:
                if other != self._delimiter and other in header[0]:
                    return (
                        f"; wrong delimiter? the header is one column containing {other!r}, "
                        f"but it was split on {self._delimiter!r}; set the delimiter option"
                    )
        if any(_looks_like_value(h) for h in header):
            return (
                f"; is the header row missing? line {number} looks like data: if the file has no "
                f"header row, set header: false and name the columns with columns: [...]"
            )
        return ""

    # --- parsing ---

    def _prepare(self, data: bytes) -> bytes:
        # Comment lines become empty lines: pyarrow skips them and line numbers stay the same.
        return _blank_lines_starting(data, self._comment) if self._comment is not None else data

    def _parse_text(self, data: bytes) -> tuple[pa.Table, Counter[str], list[str], int]:
        """Parse records into text columns; records with the wrong number of fields are skipped."""
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
                parse_options=pcsv.ParseOptions(
                    delimiter=self._parse_options.delimiter,
                    quote_char=self._parse_options.quote_char,
                    double_quote=self._parse_options.double_quote,
                    escape_char=self._parse_options.escape_char,
                    invalid_row_handler=skip,
                ),
                convert_options=pcsv.ConvertOptions(
                    include_columns=self._needed,
                    column_types=dict.fromkeys(self._needed, pa.string()),
                    null_values=self._null_values,  # by default the empty field, as DuckDB reads CSV
                    strings_can_be_null=bool(self._null_values),
                    check_utf8=False,  # validated above, once for the whole chunk
                ),
            )
        except pa.ArrowInvalid as exc:
            raise SegmentError("malformed_csv", str(exc).removeprefix("CSV parse error: ")) from None
        if self._options.trim_whitespace:
            table = self._trim(table)
        rejected = Counter({"wrong_field_count": len(bad)} if bad else {})
        return table, rejected, bad, table.num_rows + len(bad)

    def _trim(self, table: pa.Table) -> pa.Table:
        nulls = pa.array(self._options.null_values, pa.string())
        columns = []
        for column in table.columns:
            trimmed = pc.utf8_trim_whitespace(column)
            is_null = pc.is_in(trimmed, value_set=nulls)
            columns.append(pc.if_else(is_null, pa.scalar(None, pa.string()), trimmed))
        return pa.Table.from_arrays(columns, names=table.column_names)

    def _sniff_schema(self) -> pa.Schema:
        sample: list[pa.Table] = []
        if self._first is not None:
            data = self._prepare(self._first.data)
            if self._may_end_in_quotes(data):
                starts, open_end = self._scan(data)
                if open_end:  # type the closed records only; the chunk is rejoined when parsed
                    data = data[: starts[-2]]
            whole: Segment | SegmentError
            try:
                whole = self._parse_raw_segment(data)
            except SegmentError as exc:
                whole = exc
            if isinstance(whole, Segment):
                self._first_records = whole.records
            raw = parse_chunk(
                self._parse_raw_segment, data, self._first.first_line, False, self._record_starts, whole
            )
            sample = [t for t in raw.tables if t.num_rows]
        fields = []
        for column in self._needed:
            values = pa.chunked_array([c for t in sample for c in t[column].chunks], pa.string()).drop_null()
            if self._options.needs_numeric(column):
                fields.append(pa.field(column, pa.float64()))
            elif column in self._options.group_by:
                fields.append(pa.field(column, pa.int64() if _all_match(values, INT_RE) else pa.string()))
            else:
                numbers = self._numeric_text(values)
                fields.append(
                    pa.field(column, pa.float64() if _all_match(numbers, FLOAT_RE) else pa.string())
                )
        return pa.schema(fields)

    def _numeric_text(self, text: pa.ChunkedArray) -> pa.ChunkedArray:
        if self._options.decimal == ".":
            return text
        # Decimal commas: the comma becomes the point Arrow reads; a point is then not a number
        # (NUL never matches), as DuckDB with decimal_separator ',' refuses "1.5".
        return pc.replace_substring(pc.replace_substring(text, ".", "\x00"), ",", ".")

    def _parse_raw_segment(self, data: bytes) -> Segment:
        if not data.strip():
            return Segment(_empty_text(self._needed), records=0)
        table, rejected, reasons, records = self._parse_text(data)
        return Segment(table, rejected, reasons, records)

    def _parse_segment(self, data: bytes) -> Segment:
        if not data.strip():
            return Segment(self.schema.empty_table(), records=0)
        text, rejected, reasons, records = self._parse_text(data)
        columns, bad_any = [], None
        for f in self.schema:
            source = text[f.name] if f.type != pa.float64() else self._numeric_text(text[f.name])
            values, bad = _convert(source, f.type)
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
                reasons.append(f"column {f.name!r}: {first!r} is not {what}{_null_hint(first)}")
                bad_any = bad if bad_any is None else pc.or_(bad_any, bad)
        table = pa.Table.from_arrays(columns, schema=self.schema)
        if bad_any is not None:
            table = table.filter(pc.invert(bad_any))
        return Segment(table, rejected, reasons, records)

    def _parse_whole(self, chunk: Chunk, want_examples: bool) -> ChunkResult:
        data = self._prepare(chunk.data)
        if self._quote is None:  # nothing is quoted, so every line break ends a record
            return parse_chunk(self._parse_segment, data, chunk.first_line, want_examples)
        parsed: Segment | SegmentError
        try:
            parsed = self._parse_segment(data)
        except SegmentError as exc:
            parsed = exc
        if isinstance(parsed, Segment) and parsed.records == chunk.lines:
            # As many records as lines: no record spans lines, so the chunk ends after a record.
            return parse_chunk(self._parse_segment, data, chunk.first_line, want_examples, parsed=parsed)
        if self._may_end_in_quotes(data):
            starts, open_end = self._scan(data)
            if open_end:
                return ChunkResult(
                    [], Counter(), [], open_line=chunk.first_line + data.count(b"\n", 0, starts[-2])
                )
        if self._quote.encode() in data:
            self._paths.add("quote-aware")
        return parse_chunk(
            self._parse_segment, data, chunk.first_line, want_examples, self._record_starts, parsed
        )

    def sample_spans_lines(self) -> bool:
        """Whether a record of the first chunk holds a line break inside a quoted field."""
        if self._first is None or self._quote is None or self._quote.encode() not in self._first.data:
            return False
        data = self._prepare(self._first.data)
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if self._first_records == lines and not self._may_end_in_quotes(data):
            # As many records as lines (pyarrow's count from the sniff): none holds a line break.
            # Saves the quote-by-quote scan, which costs ~0.6 s on 8 MiB of all-quoted fields.
            return False
        starts, open_end = self._scan(data)
        return open_end or len(starts) - 1 < lines

    def _may_end_in_quotes(self, data: bytes) -> bool:
        """False when the chunk surely ends outside quotes (an even number of quote characters)."""
        if self._quote is None:
            return False
        # An escaped quote does not toggle, so with an escape character only the scan can tell.
        return self._escape is not None or data.count(self._quote.encode()) % 2 == 1

    def _record_starts(self, data: bytes) -> list[int]:
        if self._quote is None or self._quote.encode() not in data:
            return line_starts(data)
        return self._scan(data)[0]

    def _scan(self, data: bytes) -> tuple[list[int], bool]:
        """Record starts (then len(data)), and whether data ends inside a quoted field.

        Follows pyarrow's rules: a quote opens a quoted field only at the start of a field;
        inside one, a doubled quote (or, with `escape`, an escaped character) is literal.
        """
        assert self._quote is not None
        q, d = self._quote.encode(), self._delimiter.encode()
        e = self._escape.encode() if self._escape is not None else None
        starts, n = [0], len(data)
        pos = record = 0
        while pos < n:
            nl = data.find(b"\n", pos)
            end = n if nl < 0 else nl
            opening = data.find(q, pos, end)
            if opening < 0:
                if nl < 0:
                    break
                pos = record = nl + 1
                starts.append(pos)
                continue
            pos = opening + 1
            if opening != record and data[opening - 1 : opening] != d:
                continue  # a quote inside an unquoted field is an ordinary character
            while True:  # inside the quoted field, possibly across lines
                close = data.find(q, pos)
                if e is not None:
                    escaped = data.find(e, pos, close if close >= 0 else n)
                    if escaped >= 0:
                        pos = escaped + 2
                        continue
                if close < 0:
                    return [*starts, n], True
                if e is None and data[close + 1 : close + 2] == q:
                    pos = close + 2
                    continue
                pos = close + 1
                break
        if starts[-1] != n:
            starts.append(n)
        return starts, False

    def tables(self) -> Iterator[pa.Table]:
        def chunks() -> Iterator[Chunk]:
            if self._first is not None:
                yield self._first
            yield from self._chunks

        for table in parse_in_order(
            chunks(), self._parse_segment, self._rejects, self._parse_whole, self._quote or '"'
        ):
            self.rows_accepted += table.num_rows
            yield table

    @property
    def dialect(self) -> Dialect:
        o = self._options
        return Dialect(
            delimiter=self._delimiter,
            quote=o.quote,
            escape=o.escape,
            header=o.header,
            columns=o.column_names,
            skip_rows=o.skip_rows,
            comment=o.comment,
            encoding=self._encoding.name,
            bom=self._encoding.bom,
            decimal=o.decimal,
            null_values=o.null_values,
            trim_whitespace=o.trim_whitespace,
            detected=self._detected,
            paths=sorted(self._paths) or ["fast"],
        )


def consistent_delimiters(
    sample: str, quote: str | None, escape: str | None, comment: str | None
) -> list[str]:
    """Candidates that split every sampled line (quoted text removed) into the same number (> 1) of fields."""
    if quote is not None:
        q, e = re.escape(quote), re.escape(escape) if escape else None
        body = f"(?:[^{q}{e}]|{e}.)*" if e else f"(?:[^{q}]|{q}{q})*"
        sample = re.sub(f"{q}{body}{q}", "", sample, flags=re.DOTALL)
    lines = [
        line
        for line in sample.split("\n")[:SAMPLE_LINES]
        if line.strip() and not (comment and line.startswith(comment))
    ]
    if not lines:
        return []
    found = []
    for candidate in DETECTED_DELIMITERS:
        counts = {line.count(candidate) for line in lines}
        if len(counts) == 1 and counts != {0}:
            found.append(candidate)
    return found


def _blank_lines_starting(data: bytes, prefix: bytes) -> bytes:
    """Lines starting with `prefix` emptied, line breaks kept. Found with find, not a regex:
    comment lines are few, and a multiline regex would visit every byte."""
    starts = [0] if data.startswith(prefix) else []
    marker = b"\n" + prefix
    found = data.find(marker)
    while found >= 0:
        starts.append(found + 1)
        found = data.find(marker, found + 1)
    if not starts:
        return data
    pieces, kept_from = [], 0
    for start in starts:
        end = data.find(b"\n", start)
        pieces.append(data[kept_from:start])
        kept_from = len(data) if end < 0 else end
    pieces.append(data[kept_from:])
    return b"".join(pieces)


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


# Markers other tools write for a missing value (R: NA, pandas: NaN/None/null, spreadsheets: N/A,
# #N/A, -). A value like these in a numeric column most likely means "missing".
_NULL_LIKE = frozenset({"na", "n/a", "#n/a", "nan", "null", "none", "nil", "-", "--", "?", ".", "missing"})


def _null_hint(value: object) -> str:
    """A hint for a value that looks like another tool's null marker."""
    if isinstance(value, str) and value.strip().lower() in _NULL_LIKE:
        return f' (if {value!r} means a missing value, set the option null_values, e.g. [{value!r}, ""])'
    return ""
