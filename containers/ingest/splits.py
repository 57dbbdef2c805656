"""Split runs: ingest plans byte ranges, each transform child parses its own range.

Planning reads a bounded head of each object (HEAD_BYTES at most, whatever its size) to fix
the dialect, the columns and their types, then cuts the data into splits of about the shard
target (more when the input would otherwise need over max_shards children). Small objects
share a split; a large object is cut into several. CSV, TSV and JSON lines are cut into byte
ranges; Parquet into whole row groups, planned from the footer alone (see the end of this
module).

Reading a range follows the usual rule for line-oriented splits: a range owns the records
that start in it. A range that does not start at the object's first data byte skips the
partial record it starts in (up to and including the first line break at or after
`start - 1`), and every range reads past its end to finish its last record (up to the first
line break at or after `end - 1`). Neighbouring ranges so meet at the same line break, and
every record is read exactly once.

A JSON string cannot hold a raw line break, so JSON lines need nothing more. A quoted CSV
field may hold a line break (RFC 4180), and a range could then start inside one.
Planning takes the single-pass path when the head shows such a record. Otherwise a range
that ends inside an open quoted field reports a *spill* instead of failing: either the range
after it started at a line break inside a quoted field, or the range itself did. Aggregate
then discards the split results and reads the input in one pass (exact, only slower). The
check is complete: the first range of an object starts outside quotes, and a range that
starts outside quotes and ends outside them hands the next one a correct start.

Line numbers are physical lines of the whole object. A range's first line is counted (one
ranged read of the bytes before it) only when something in it must be reported: rows are
rejected, or reading stops with an error.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from jobkit.errors import BadInput
from jobkit.manifest import (
    ByteRange,
    InputRef,
    KeyedRejectExample,
    Manifest,
    RowGroups,
    Split,
    SplitIndex,
    SplitInput,
    SplitRejects,
)
from jobkit.options import Options

from ingest import jsonlines
from ingest.delimited import DelimitedReader, Resume
from ingest.encoding import TextEncoding
from ingest.jsonlines import JsonLinesReader
from ingest.lines import CHUNK_BYTES, MiB
from ingest.parquet_input import open_parquet, read_tables
from ingest.rejects import RejectTracker
from ingest.sniff import PARQUET_MAGIC
from ingest.textread import UnclosedQuoteError

TEXT_SPLIT_FORMATS = ("csv", "tsv", "jsonl")
SPLIT_FORMATS = (*TEXT_SPLIT_FORMATS, "parquet")
HEAD_BYTES = 8 * MiB  # what planning reads of each object at most
FIRST_READ_SLACK = 256 * 1024  # read past a range's end in the first GET, to finish its last record
MORE_BYTES = 1 * MiB  # further GETs when the last record is longer than that
PIECE = 1 * MiB  # bytes handed to the parser at a time
UTF8_BOM_BYTES = 3
# Parquet: the last bytes of an object, fetched with one GET when it is opened. Most footers
# fit (pyarrow itself first reads 64 KiB of the end); a longer one costs one more GET.
PARQUET_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Head:
    """The first HEAD_BYTES of an object (whole lines only), and what pins its version.

    For Parquet (the PAR1 magic), only the magic: its footer is at the other end.
    """

    data: bytes
    size: int
    etag: str
    version_id: str | None


def open_head(s3: BaseClient, item: InputRef) -> Head | None:
    """The object's head, or None when anything is off (the one-pass path then reports it).

    One GET: its first bytes tell a Parquet file, whose body is then left unread.
    """
    kwargs: dict[str, str] = {"Bucket": item.bucket, "Key": item.key, "Range": f"bytes=0-{HEAD_BYTES - 1}"}
    if item.versionId:
        kwargs["VersionId"] = item.versionId
    try:
        resp = s3.get_object(**kwargs)
    except ClientError:
        return None
    with closing(resp["Body"]) as body:
        data = body.read(len(PARQUET_MAGIC))
        if data != PARQUET_MAGIC:
            data += body.read()
    # Content-Range: bytes 0-N/TOTAL (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)
    total = str(resp.get("ContentRange", "")).rpartition("/")[2]
    size = int(total) if total.isdigit() else len(data)
    etag = str(resp.get("ETag", "")).strip('"')
    if size == 0 or (item.etag and not item.versionId and etag != item.etag.strip('"')):
        return None
    if size > len(data) and data != PARQUET_MAGIC:
        cut = data.rfind(b"\n")
        if cut < 0:
            return None
        data = data[: cut + 1]  # whole lines only: a cut value must not decide a column's type
    return Head(data, size, etag, resp.get("VersionId"))


def split_size(total: int, target: int, max_splits: int) -> int:
    """Bytes per split: the shard target, or more when max_splits would not hold the input."""
    return max(target, math.ceil(total / max_splits), 1)


def plan_splits(inputs: list[SplitInput], size: int) -> list[Split]:
    """Consecutive splits of about `size` bytes of data each, packing small objects together."""
    splits: list[Split] = []
    ranges: list[ByteRange] = []
    room = size
    for number, item in enumerate(inputs):
        start = item.data_start
        while start < item.size:
            end = min(item.size, start + room)
            ranges.append(ByteRange(input=number, start=start, end=end))
            room -= end - start
            start = end
            if room == 0:
                splits.append(Split(ranges=ranges))
                ranges, room = [], size
    if ranges:
        splits.append(Split(ranges=ranges))
    return splits


def plan_row_groups(row_group_bytes: list[list[int]], size: int, max_splits: int) -> list[Split]:
    """Consecutive splits of whole row groups (row_group_bytes[input][group]: compressed bytes).

    A split is closed once it holds about `size` bytes: a row group joins it unless that would
    take it further past `size` than it now falls short. Fewer than max_splits: `size` grows.
    """
    while True:
        splits: list[Split] = []
        parts: list[RowGroups] = []
        held = 0
        for number, groups in enumerate(row_group_bytes):
            first = 0
            for group, nbytes in enumerate(groups):
                if held and held + nbytes - size > size - held:
                    if group > first:
                        parts.append(RowGroups(input=number, first=first, end=group))
                    splits.append(Split(row_groups=parts))
                    parts, held, first = [], 0, group
                held += nbytes
                if held >= size:
                    parts.append(RowGroups(input=number, first=first, end=group + 1))
                    splits.append(Split(row_groups=parts))
                    parts, held, first = [], 0, group + 1
            if first < len(groups):
                parts.append(RowGroups(input=number, first=first, end=len(groups)))
        if parts:
            splits.append(Split(row_groups=parts))
        if len(splits) <= max_splits:
            return splits
        size *= 2


def why_not_splittable(
    fmt: str,
    gzipped: bool,
    encoding: TextEncoding | None,
    options: Options,
    reader: DelimitedReader | None = None,
) -> str | None:
    """None when the object's records can be found from any byte offset (text), or it is Parquet."""
    if gzipped:
        return "gzip is not splittable"
    if fmt not in SPLIT_FORMATS:
        return f"{fmt} is read in one pass"
    if fmt == "parquet":
        return None  # split by row groups
    if encoding is None or encoding.name != "utf-8":
        return "only UTF-8 text is split (offsets of transcoded text are not the object's)"
    if fmt == "jsonl":
        return None  # a JSON string holds no raw line break: every line break ends a record
    if options.escape is not None or options.comment is not None:
        return "escape and comment characters need the text from the start"
    if reader is not None and reader.sample_spans_lines():
        return "quoted fields hold line breaks"
    return None


@dataclass
class SplitResult:
    rows: int = 0  # rows accepted
    rows_read: int = 0  # rows accepted + rejected
    rejects: SplitRejects | None = None
    spill: bool = False  # a range ended inside a quoted field (see the module's docstring)
    bytes_read: int = 0


def get_range(s3: BaseClient, item: SplitInput, start: int, stop: int) -> Any:
    """The body of bytes [start, stop) of the object as planned: its version, or If-Match its ETag."""
    kwargs: dict[str, str] = {"Bucket": item.bucket, "Key": item.key, "Range": f"bytes={start}-{stop - 1}"}
    if item.versionId:
        kwargs["VersionId"] = item.versionId
    else:
        kwargs["IfMatch"] = f'"{item.etag}"'
    try:
        return s3.get_object(**kwargs)["Body"]
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("PreconditionFailed", "412", "NoSuchKey", "NoSuchVersion", "404"):
            raise BadInput(
                f"input object s3://{item.bucket}/{item.key} changed or went away "
                f"after the run was planned ({code})"
            ) from None
        raise


class RangeSource:
    """The bytes of the records a range owns, read with ranged GETs of the pinned object."""

    def __init__(self, s3: BaseClient, item: SplitInput, part: ByteRange) -> None:
        self._s3 = s3
        self._item = item
        self._end = part.end
        self._skip = part.start > item.data_start  # starts inside the data: skip a partial record
        self._next = part.start - 1 if self._skip else part.start  # next byte to fetch
        self._limit = min(item.size, part.end + FIRST_READ_SLACK)
        self._buf = b""
        self._pieces = self._owned()
        self.bytes_fetched = 0
        self.owned_start = -1 if self._skip else part.start

    def fetch(self, start: int, stop: int) -> Iterator[bytes]:
        body = get_range(self._s3, self._item, start, stop)
        try:
            while data := body.read(PIECE):
                self.bytes_fetched += len(data)
                yield data
        finally:
            body.close()

    def _stream(self) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) from the range's first byte to the object's end, fetched as needed."""
        start, stop = self._next, self._limit
        while start < self._item.size:
            for data in self.fetch(start, stop):
                yield start, data
                start += len(data)
            stop = min(self._item.size, start + MORE_BYTES)

    def _owned(self) -> Iterator[bytes]:
        skipping = self._skip
        for offset, data in self._stream():
            begin = 0
            if skipping:
                newline = data.find(b"\n")
                if newline < 0:
                    if offset + len(data) >= self._end:
                        return  # one record spans the whole range: the range before owns it
                    continue
                if offset + newline + 1 >= self._end:
                    return  # the first record starting after `start` starts at or after `end`
                skipping = False
                begin = newline + 1
                self.owned_start = offset + begin
            # The last record is the one holding byte end - 1: stop after its line break.
            look_from = max(begin, self._end - 1 - offset)
            if look_from < len(data):
                newline = data.find(b"\n", look_from)
                if newline >= 0:
                    yield data[begin : newline + 1]
                    return
            yield data[begin:]

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buf = piece if not self._buf else self._buf + piece
        data, self._buf = self._buf[:n], self._buf[n:]
        return data


def lines_before(s3: BaseClient, item: SplitInput, offset: int) -> int:
    """Physical lines in bytes [0, offset) of the object: one ranged read, on the error path only."""
    if offset <= item.data_start:
        return item.lines_before_data
    whole = RangeSource(s3, item, ByteRange(input=0, start=0, end=0))
    return sum(data.count(b"\n") for data in whole.fetch(0, offset))


def read_split(
    s3: BaseClient,
    index: SplitIndex,
    number: int,
    manifest: Manifest,
    consume: Callable[[pa.Table], None],
    chunk_bytes: int = CHUNK_BYTES,
) -> SplitResult:
    """Parse split `number`, handing each table of rows to `consume`; counts and rejects.

    Rows are never rejected into failure here: the max_bad_row_fraction budget is over the
    whole input, so aggregate enforces it. A problem that stops reading (an over-long line, a
    quoted field left open at an object's end) raises BadInput with its exact line, after
    `SplitRejects.fatal` has recorded it for aggregate.
    """
    split = index.splits[number]
    if split.row_groups:
        return _read_row_groups(s3, index, split, manifest, consume)
    result = SplitResult()
    examples: list[KeyedRejectExample] = []
    by_reason: dict[str, int] = {}
    count = 0
    for part in split.ranges:
        item = index.inputs[part.input]
        tracker = RejectTracker(1.0)  # counts only; see the docstring
        source = RangeSource(s3, item, part)
        try:
            rows = _parse(source, index, item, manifest, tracker, consume, chunk_bytes, first_line=1)
        except UnclosedQuoteError:
            # Only a range read from the object's first record knows it began outside quotes;
            # any other may have begun inside one (a spill), and aggregate's one pass decides.
            if part.start > item.data_start or part.end < item.size:
                result.spill = True
                result.bytes_read += source.bytes_fetched
                continue
            raise BadInput(_exact_error(s3, index, manifest, item, part, chunk_bytes)) from None
        except BadInput:
            raise BadInput(_exact_error(s3, index, manifest, item, part, chunk_bytes)) from None
        result.rows += rows
        result.rows_read += rows + tracker.count
        result.bytes_read += source.bytes_fetched
        if tracker.count:
            count += tracker.count
            for reason, n in tracker.by_reason.items():
                by_reason[reason] = by_reason.get(reason, 0) + n
            base = lines_before(s3, item, source.owned_start) if tracker.examples else 0
            examples.extend(
                KeyedRejectExample(key=item.key, line=base + e.line, reason=e.reason)
                for e in tracker.examples
            )
    if count:
        result.rejects = SplitRejects(split=number, count=count, by_reason=by_reason, examples=examples[:10])
    return result


def _parse(
    source: RangeSource,
    index: SplitIndex,
    item: SplitInput,
    manifest: Manifest,
    tracker: RejectTracker,
    consume: Callable[[pa.Table], None],
    chunk_bytes: int,
    first_line: int,
) -> int:
    schema = split_schema(index, manifest)
    own = schema_from_text(item.arrow_schema) if item.arrow_schema is not None else schema
    reader: DelimitedReader | JsonLinesReader
    if index.format == "jsonl":
        resume_json = jsonlines.Resume(index.input_columns, own, first_line)
        reader = JsonLinesReader(source, manifest.options, tracker, chunk_bytes, resume=resume_json)
    else:
        assert manifest.dialect is not None  # CSV/TSV
        resume = Resume(manifest.dialect.delimiter, index.input_columns, own, first_line)
        encoding = TextEncoding("utf-8", manifest.dialect.bom, False)
        reader = DelimitedReader(
            source, index.format, manifest.options, tracker, encoding, chunk_bytes, resume=resume
        )
    for table in reader.tables():
        consume(table if own is schema else cast_to_run(table, schema))
    return reader.rows_accepted


def cast_to_run(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """An object's rows in the run's (the first object's) column types, as one pass casts them."""
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BadInput(f"its values do not fit the first object's column types: {exc}") from None


def manifest_schema(manifest: Manifest) -> pa.Schema:
    """The columns the manifest records (name and Arrow type), as the schema rows are read into."""
    return pa.schema([pa.field(c.name, pa.type_for_alias(c.type)) for c in manifest.columns])


def split_schema(index: SplitIndex, manifest: Manifest) -> pa.Schema:
    """The schema a split run's rows are read into: the plan's, else (older plans) the manifest's."""
    return (
        schema_from_text(index.arrow_schema) if index.arrow_schema is not None else manifest_schema(manifest)
    )


def schema_text(schema: pa.Schema) -> str:
    """An Arrow schema as text for the split index (IPC form, base64): any column type survives."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _exact_error(
    s3: BaseClient,
    index: SplitIndex,
    manifest: Manifest,
    item: SplitInput,
    part: ByteRange,
    chunk_bytes: int,
) -> str:
    """The stopping error again, now with line numbers of the whole object."""
    probe = RangeSource(s3, item, part)
    probe.read(1)  # finds where the range's first record starts
    first_line = lines_before(s3, item, probe.owned_start) + 1 if probe.owned_start >= 0 else 1
    source = RangeSource(s3, item, part)
    try:
        _parse(source, index, item, manifest, RejectTracker(1.0), lambda _: None, chunk_bytes, first_line)
    except BadInput as exc:
        message = str(exc)
    else:  # not seen twice: a changing object; say so rather than invent a line
        message = "reading stopped with an error that did not recur when read again"
    return f"{item.key}: {message}" if len(index.inputs) > 1 else message


# --- Parquet: whole row groups, read through ranged GETs ---


class RangedFile(io.RawIOBase):
    """A seekable, read-only file over the object as planned: each read is one ranged GET.

    pyarrow reads a Parquet file by offsets: the footer at the end, then column chunks (with
    pre_buffer, a row group's needed chunks in one read where they are adjacent), so a split
    fetches only its row groups' needed columns. The tail is fetched once when opened, which
    serves the footer.
    """

    def __init__(self, s3: BaseClient, item: SplitInput) -> None:
        super().__init__()
        self._s3 = s3
        self._item = item
        self._pos = 0
        self.bytes_fetched = 0
        self._tail_start = max(0, item.size - PARQUET_TAIL_BYTES)
        self._tail = self._get(self._tail_start, item.size)

    def _get(self, start: int, stop: int) -> bytes:
        with closing(get_range(self._s3, self._item, start, stop)) as body:
            data = bytes(body.read())
        if len(data) != stop - start:
            raise BadInput(
                f"input object {self._item.key}: a ranged read returned {len(data)} bytes, not {stop - start}"
            )
        self.bytes_fetched += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._item.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        stop = self._item.size if size is None or size < 0 else min(self._item.size, self._pos + size)
        if stop <= self._pos:
            return b""
        if self._pos >= self._tail_start:
            data = self._tail[self._pos - self._tail_start : stop - self._tail_start]
        else:
            data = self._get(self._pos, stop)
        self._pos = stop
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_row_groups(
    s3: BaseClient,
    index: SplitIndex,
    split: Split,
    manifest: Manifest,
    consume: Callable[[pa.Table], None],
) -> SplitResult:
    """A Parquet split: its row groups, the spec's columns only. Nothing is rejected: a Parquet
    value has its column's type, and a corrupt file is bad input, as in one pass."""
    schema = split_schema(index, manifest)
    result = SplitResult()
    for part in split.row_groups:
        item = index.inputs[part.input]
        own = schema_from_text(item.arrow_schema) if item.arrow_schema is not None else schema
        file = RangedFile(s3, item)
        try:
            parquet = open_parquet(file, pre_buffer=True)
            for group in range(part.first, part.end):  # one at a time: memory holds one row group
                for table in read_tables(parquet, own, [group]):
                    table = table if own is schema else cast_to_run(table, schema)
                    result.rows += table.num_rows
                    consume(table)
        except BadInput as exc:
            raise BadInput(f"{item.key}: {exc}" if len(index.inputs) > 1 else str(exc)) from None
        result.bytes_read += file.bytes_fetched
    result.rows_read = result.rows
    return result
