"""Split runs: ingest plans byte ranges, each transform child parses its own range.

Planning reads a bounded head of each object (HEAD_BYTES at most, whatever its size) to fix
the dialect, the columns and their types, then cuts the data into splits of about the shard
target (more when the input would otherwise need over max_shards children). Small objects
share a split; a large object is cut into several.

Reading a range follows the usual rule for line-oriented splits: a range owns the records
that start in it. A range that does not start at the object's first data byte skips the
partial record it starts in (up to and including the first line break at or after
`start - 1`), and every range reads past its end to finish its last record (up to the first
line break at or after `end - 1`). Neighbouring ranges so meet at the same line break, and
every record is read exactly once.

A quoted field may hold a line break (RFC 4180), and a range could then start inside one.
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

import math
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass

import pyarrow as pa
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from jobkit.errors import BadInput
from jobkit.manifest import (
    ByteRange,
    InputRef,
    KeyedRejectExample,
    Manifest,
    Split,
    SplitIndex,
    SplitInput,
    SplitRejects,
)
from jobkit.options import Options

from ingest.delimited import DelimitedReader, Resume
from ingest.encoding import TextEncoding
from ingest.lines import CHUNK_BYTES, MiB
from ingest.rejects import RejectTracker
from ingest.textread import UnclosedQuoteError

SPLIT_FORMATS = ("csv", "tsv")
HEAD_BYTES = 8 * MiB  # what planning reads of each object at most
FIRST_READ_SLACK = 256 * 1024  # read past a range's end in the first GET, to finish its last record
MORE_BYTES = 1 * MiB  # further GETs when the last record is longer than that
PIECE = 1 * MiB  # bytes handed to the parser at a time
UTF8_BOM_BYTES = 3


@dataclass(frozen=True)
class Head:
    """The first HEAD_BYTES of an object (whole lines only), and what pins its version."""

    data: bytes
    size: int
    etag: str
    version_id: str | None


def open_head(s3: BaseClient, item: InputRef) -> Head | None:
    """The object's head, or None when anything is off (the one-pass path then reports it)."""
    kwargs: dict[str, str] = {"Bucket": item.bucket, "Key": item.key, "Range": f"bytes=0-{HEAD_BYTES - 1}"}
    if item.versionId:
        kwargs["VersionId"] = item.versionId
    try:
        resp = s3.get_object(**kwargs)
    except ClientError:
        return None
    with closing(resp["Body"]) as body:
        data = body.read()
    # Content-Range: bytes 0-N/TOTAL (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)
    total = str(resp.get("ContentRange", "")).rpartition("/")[2]
    size = int(total) if total.isdigit() else len(data)
    etag = str(resp.get("ETag", "")).strip('"')
    if size == 0 or (item.etag and not item.versionId and etag != item.etag.strip('"')):
        return None
    if size > len(data):
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


def why_not_splittable(
    reader: DelimitedReader, fmt: str, gzipped: bool, encoding: TextEncoding | None, options: Options
) -> str | None:
    """None when the object's records can be found from any byte offset; else why not."""
    if gzipped:
        return "gzip is not splittable"
    if fmt not in SPLIT_FORMATS:
        return f"{fmt} is read in one pass"
    if encoding is None or encoding.name != "utf-8":
        return "only UTF-8 text is split (offsets of transcoded text are not the object's)"
    if options.escape is not None or options.comment is not None:
        return "escape and comment characters need the text from the start"
    if reader.sample_spans_lines():
        return "quoted fields hold line breaks"
    return None


@dataclass
class SplitResult:
    rows: int = 0  # rows accepted
    rows_read: int = 0  # rows accepted + rejected
    rejects: SplitRejects | None = None
    spill: bool = False  # a range ended inside a quoted field (see the module's docstring)
    bytes_read: int = 0


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
        kwargs: dict[str, str] = {
            "Bucket": self._item.bucket,
            "Key": self._item.key,
            "Range": f"bytes={start}-{stop - 1}",
        }
        if self._item.versionId:
            kwargs["VersionId"] = self._item.versionId
        else:
            kwargs["IfMatch"] = f'"{self._item.etag}"'
        try:
            body = self._s3.get_object(**kwargs)["Body"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in ("PreconditionFailed", "412", "NoSuchKey", "NoSuchVersion", "404"):
                raise BadInput(
                    f"input object s3://{self._item.bucket}/{self._item.key} changed or went away "
                    f"after the run was planned ({code})"
                ) from None
            raise
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
    result = SplitResult()
    examples: list[KeyedRejectExample] = []
    by_reason: dict[str, int] = {}
    count = 0
    for part in split.ranges:
        item = index.inputs[part.input]
        tracker = RejectTracker(1.0)  # counts only; see the docstring
        source = RangeSource(s3, item, part)
        try:
            rows = _parse(source, index, manifest, tracker, consume, chunk_bytes, first_line=1)
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
    manifest: Manifest,
    tracker: RejectTracker,
    consume: Callable[[pa.Table], None],
    chunk_bytes: int,
    first_line: int,
) -> int:
    assert manifest.dialect is not None  # split runs are CSV/TSV
    schema = manifest_schema(manifest)
    resume = Resume(manifest.dialect.delimiter, index.input_columns, schema, first_line)
    encoding = TextEncoding("utf-8", manifest.dialect.bom, False)
    reader = DelimitedReader(
        source, index.format, manifest.options, tracker, encoding, chunk_bytes, resume=resume
    )
    for table in reader.tables():
        consume(table)
    return reader.rows_accepted


def manifest_schema(manifest: Manifest) -> pa.Schema:
    """The columns the manifest records (name and Arrow type), as the schema rows are read into."""
    return pa.schema([pa.field(c.name, pa.type_for_alias(c.type)) for c in manifest.columns])


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
        _parse(source, index, manifest, RejectTracker(1.0), lambda _: None, chunk_bytes, first_line)
    except BadInput as exc:
        message = str(exc)
    else:  # not seen twice: a changing object; say so rather than invent a line
        message = "reading stopped with an error that did not recur when read again"
    return f"{item.key}: {message}" if len(index.inputs) > 1 else message
