"""Ingest: input object -> Parquet shards -> shards/index.json -> manifest.json (last).

A failed ingest never leaves a manifest (the state machine would otherwise go on with it),
and on bad input it removes the shards it wrote.
"""

from __future__ import annotations

import io
import math
import tempfile
from contextlib import closing
from dataclasses import dataclass, field

import pyarrow as pa
from botocore.client import BaseClient
from jobkit import s3 as s3io
from jobkit.context import JobContext
from jobkit.errors import BadInput, JobError
from jobkit.keys import manifest_key, shard_index_key, shards_prefix, split_index_key
from jobkit.log import JsonLogger, Stopwatch, utc_now
from jobkit.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_RECORDED_INPUT_COLUMNS,
    MAX_RECORDED_INPUTS,
    Dialect,
    InputRef,
    Manifest,
    Rejections,
    ShardIndex,
    SplitIndex,
    SplitInput,
    Timing,
)
from jobkit.options import Options

from ingest.delimited import DelimitedReader
from ingest.encoding import TextEncoding, open_text
from ingest.inputs import resolve_inputs
from ingest.jsonlines import JsonLinesReader
from ingest.lines import CHUNK_BYTES
from ingest.parquet_input import ParquetReader, open_parquet, parquet_schema
from ingest.rejects import RejectTracker
from ingest.schema import describe
from ingest.shards import ShardWriter
from ingest.sniff import choose_format, sniff_text
from ingest.splits import (
    SPLIT_FORMATS,
    TEXT_SPLIT_FORMATS,
    UTF8_BOM_BYTES,
    Head,
    RangedFile,
    open_head,
    plan_row_groups,
    plan_splits,
    schema_text,
    split_size,
    why_not_splittable,
)
from ingest.streams import GZIP_MAGIC, CountingSource, Gunzip, Peekable

Reader = DelimitedReader | JsonLinesReader | ParquetReader
# Upper bound on how much a gzip input expands, used only to raise the shard size early
# enough that a huge input stays within max_shards (the last shard is a hard cap anyway).
GZIP_EXPANSION = 5
# For tests: smaller chunks put chunk boundaries where a test needs them without 4 MiB inputs.
CHUNK_BYTES_VARIABLE = "SLUICE_INGEST_CHUNK_BYTES"


def run(ctx: JobContext, log: JsonLogger) -> None:
    options = ctx.options()
    source = ctx.input()
    bucket = ctx.work_bucket
    target, max_shards = ctx.shard_target_bytes(), ctx.max_shards()
    if options.shard_target_mb is not None:
        target = max(1, int(options.shard_target_mb * 1024 * 1024))
    s3 = s3io.client()
    # A manifest from an earlier attempt must not vouch for shards this attempt rewrites.
    s3.delete_object(Bucket=bucket, Key=manifest_key(ctx.work_prefix))
    try:
        manifest = _ingest(ctx, log, s3, source, options, target, max_shards)
    except BadInput:
        removed = s3io.delete_prefix(s3, bucket, shards_prefix(ctx.work_prefix))
        log.info("removed shards of the failed ingest", shards_removed=removed)
        raise
    data = manifest.model_dump_json().encode()
    if len(data) > MAX_MANIFEST_BYTES:  # bounded by construction; this guards the contract
        raise RuntimeError(f"manifest would be {len(data)} bytes, over {MAX_MANIFEST_BYTES}")
    s3io.put_bytes(s3, bucket, manifest_key(ctx.work_prefix), data, "application/json")
    log.info(
        "manifest written",
        shard_count=manifest.shard_count,
        rows=manifest.rows,
        rows_rejected=manifest.rows_rejected,
        seconds=manifest.timings.seconds,
        rows_per_second=manifest.timings.detail.get("rows_per_second"),
    )


def _ingest(
    ctx: JobContext,
    log: JsonLogger,
    s3: BaseClient,
    source: InputRef,
    options: Options,
    target: int,
    max_shards: int,
) -> Manifest:
    clock = Stopwatch()
    inputs = resolve_inputs(s3, source)
    many = len(inputs) > 1 or inputs[0] is not source
    split_target = ctx.split_target_bytes()
    if options.split_target_mb is not None:
        split_target = max(1, int(options.split_target_mb * 1024 * 1024))
    planned = _plan_splits(ctx, log, s3, source, inputs, many, options, split_target, max_shards, clock)
    if planned is not None:
        return planned
    rejects = RejectTracker(options.max_bad_row_fraction)
    first: Reader | None = None
    first_fmt, gzipped, bytes_read, rows, shard_bytes = "", False, 0, 0, target
    writer: ShardWriter | None = None
    read: list[InputRef] = []
    with tempfile.TemporaryDirectory(prefix="sluice-ingest-") as tmpdir:
        try:
            for number, item in enumerate(inputs):
                obj = _open_input(s3, item)
                with closing(obj.body):
                    raw = CountingSource(obj.body)
                    head = Peekable(raw)
                    item_gzipped = head.peek(2) == GZIP_MAGIC
                    fmt = choose_format(item.key, options.format, head.peek(4), item_gzipped)
                    text = Peekable(Gunzip(head)) if item_gzipped else head
                    encoding = None
                    if fmt != "parquet":
                        decoded, encoding = open_text(text, options.encoding)
                        text = decoded if isinstance(decoded, Peekable) else Peekable(decoded)
                    fmt = fmt or sniff_text(text.peek(64 * 1024))
                    log.info("reading input", input=item.uri(), size=obj.size, format=fmt, gzip=item_gzipped)
                    try:
                        reader = _reader(fmt, text, options, rejects, tmpdir, encoding, chunk_bytes(ctx))
                        if first is None:
                            first, first_fmt, gzipped = reader, fmt, item_gzipped
                            # Shards grow beyond the target when the input is so large that
                            # max_shards would not hold it otherwise, so they stay balanced
                            # instead of the last one taking the rest.
                            total = sum(i.size or 0 for i in inputs) if many else obj.size
                            expected = max(total, obj.size) * (GZIP_EXPANSION if item_gzipped else 1)
                            shard_bytes = max(target, math.ceil(expected / max_shards))
                            writer = ShardWriter(
                                s3,
                                ctx.work_bucket,
                                ctx.work_prefix,
                                reader.schema,
                                shard_bytes,
                                max_shards,
                                tmpdir,
                                log,
                            )
                        else:
                            _match_first(reader, fmt, first, first_fmt, item, inputs[0])
                        assert writer is not None
                        for table in reader.tables():
                            writer.write(table if table.schema == first.schema else _cast(table, first, item))
                    except BadInput as exc:
                        if many:  # say which of the listed objects is at fault
                            raise BadInput(f"{item.key}: {exc}") from None
                        raise
                    rows += reader.rows_accepted
                    bytes_read += raw.bytes_read
                    read.append(
                        item.model_copy(update={"size": obj.size, "etag": obj.etag}) if many else item
                    )
                    log.info(
                        "input read",
                        input=item.uri(),
                        number=number + 1,
                        of=len(inputs),
                        rows=reader.rows_accepted,
                    )
            assert first is not None and writer is not None
            rejects.check(rows + rejects.count)
            if rows == 0:
                raise BadInput(_no_rows(first_fmt, rejects.count))
            shards = writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    index = ShardIndex(run_id=ctx.run_id, shards=shards).model_dump_json().encode()
    s3io.put_bytes(s3, ctx.work_bucket, shard_index_key(ctx.work_prefix), index, "application/json")
    seconds = clock.seconds()
    return Manifest(
        run_id=ctx.run_id,
        input=source,
        inputs=read[:MAX_RECORDED_INPUTS] if many else None,
        input_count=len(read),
        format=first_fmt,
        compression="gzip" if gzipped else None,
        dialect=first.dialect if isinstance(first, DelimitedReader) else None,
        options=options,
        input_column_count=len(first.input_columns),
        input_columns=[c[:100] for c in first.input_columns[:MAX_RECORDED_INPUT_COLUMNS]],
        columns=describe(first.schema, options),
        shard_count=len(shards),
        max_failed_shards=math.floor(options.max_failed_shard_fraction * len(shards)),
        shards_prefix=shards_prefix(ctx.work_prefix),
        shard_index_key=shard_index_key(ctx.work_prefix),
        rows=rows,
        rows_read=rows + rejects.count,
        rows_rejected=rejects.count,
        rejected=rejects.summary(),
        bytes_read=bytes_read,
        bytes_written=sum(s.bytes for s in shards),
        timings=Timing(
            started_at=clock.started_at,
            finished_at=utc_now(),
            seconds=seconds,
            detail={
                "rows_per_second": round(rows / seconds, 1) if seconds else 0.0,
                "mb_per_second": round(bytes_read / 1e6 / seconds, 2) if seconds else 0.0,
                "target_shard_bytes": float(shard_bytes),
            },
        ),
        job_id=ctx.batch.job_id,
        attempt=ctx.batch.attempt,
    )


@dataclass
class _Planned:
    """What planning learnt of one object: from its head (text) or its footer (Parquet)."""

    format: str
    input_columns: list[str]
    schema: pa.Schema
    dialect: Dialect | None = None
    data_start: int = 0
    lines_before_data: int = 0
    row_group_bytes: list[int] = field(default_factory=list)  # Parquet: compressed bytes per row group
    footer_bytes: int = 0  # Parquet: bytes read from the end of the object


def _plan_splits(
    ctx: JobContext,
    log: JsonLogger,
    s3: BaseClient,
    source: InputRef,
    inputs: list[InputRef],
    many: bool,
    options: Options,
    target: int,
    max_shards: int,
    clock: Stopwatch,
) -> Manifest | None:
    """A split run's manifest, from the head (or Parquet footer) of each object; None: one pass.

    Anything unusual in a text object (a gzip, another format, an error in its head) takes the
    one-pass path, which reports errors as it always has; so does an input of at most one split
    target. A Parquet footer that cannot be read is bad input here, with one pass's message:
    reading the whole object only to say so would gain nothing.
    """
    if options.format not in (None, *SPLIT_FORMATS):
        return None
    if many and all(i.size is not None for i in inputs) and sum(i.size or 0 for i in inputs) <= target:
        return None  # sizes as listed (a prefix): small runs are not worth planning
    first: _Planned | None = None
    planned: list[SplitInput] = []
    row_group_bytes: list[list[int]] = []
    bytes_read = 0
    for item in inputs:
        head = open_head(s3, item)
        if head is None:
            return None
        bytes_read += len(head.data)
        if not many and head.size <= target:
            return None
        pinned = SplitInput(
            bucket=item.bucket,
            key=item.key,
            versionId=head.version_id,
            etag=head.etag,
            size=head.size,
            data_start=0,
            lines_before_data=0,
        )
        try:
            found = _plan_object(ctx, log, s3, item, head, pinned, options)
        except BadInput as exc:  # only a Parquet footer's errors get here
            if first is not None and first.format != "parquet":
                return None  # the one-pass path names the mismatch of formats first
            raise BadInput(f"{item.key}: {exc}" if many else str(exc)) from None
        if found is None:
            return None
        bytes_read += found.footer_bytes
        if first is not None and (found.format != first.format or found.input_columns != first.input_columns):
            return None  # the one-pass path names the mismatch
        first = first or found
        # One pass reads a later JSON or Parquet object in its own types, then casts them to the
        # first's (CSV: the first's types hold for all); the children do the same.
        own = found.format in ("jsonl", "parquet") and found.schema != first.schema
        planned.append(
            pinned.model_copy(
                update={
                    "data_start": found.data_start,
                    "lines_before_data": found.lines_before_data,
                    "arrow_schema": schema_text(found.schema) if own else None,
                }
            )
        )
        row_group_bytes.append(found.row_group_bytes)
    assert first is not None
    if many and sum(p.size for p in planned) <= target:
        return None  # sizes from the heads (a list of keys): small runs are not worth planning
    if first.format == "parquet":
        data_bytes = sum(sum(groups) for groups in row_group_bytes)
        size = split_size(data_bytes, target, max_shards)
        splits = plan_row_groups(row_group_bytes, size, max_shards)
    else:
        data_bytes = sum(p.size - p.data_start for p in planned)
        size = split_size(data_bytes, target, max_shards)
        splits = plan_splits(planned, size)
    if not splits:
        return None  # no data at all: the one-pass path says so
    index = SplitIndex(
        run_id=ctx.run_id,
        format=first.format,
        input_columns=first.input_columns,
        inputs=planned,
        splits=splits,
        arrow_schema=schema_text(first.schema),
    )
    key = split_index_key(ctx.work_prefix)
    s3io.put_bytes(s3, ctx.work_bucket, key, index.model_dump_json().encode(), "application/json")
    log.info(
        "splits planned",
        format=first.format,
        splits=len(splits),
        split_bytes=size,
        inputs=len(planned),
        bytes=data_bytes,
    )
    seconds = clock.seconds()
    recorded = [
        item.model_copy(update={"size": p.size, "etag": p.etag})
        for item, p in zip(inputs, planned, strict=True)
    ]
    return Manifest(
        run_id=ctx.run_id,
        input=source,
        inputs=recorded[:MAX_RECORDED_INPUTS] if many else None,
        input_count=len(planned),
        format=first.format,
        compression=None,
        dialect=first.dialect,
        options=options,
        input_column_count=len(first.input_columns),
        input_columns=[c[:100] for c in first.input_columns[:MAX_RECORDED_INPUT_COLUMNS]],
        columns=describe(first.schema, options),
        shard_count=len(splits),
        max_failed_shards=math.floor(options.max_failed_shard_fraction * len(splits)),
        shards_prefix=shards_prefix(ctx.work_prefix),
        shard_index_key=shard_index_key(ctx.work_prefix),
        split_index_key=key,
        rows=None,
        rows_read=None,
        rows_rejected=None,
        rejected=Rejections(),
        bytes_read=bytes_read,
        bytes_written=0,
        timings=Timing(
            started_at=clock.started_at,
            finished_at=utc_now(),
            seconds=seconds,
            detail={"split_bytes": float(size), "planned_bytes": float(data_bytes)},
        ),
        job_id=ctx.batch.job_id,
        attempt=ctx.batch.attempt,
    )


def _plan_object(
    ctx: JobContext,
    log: JsonLogger,
    s3: BaseClient,
    item: InputRef,
    head: Head,
    pinned: SplitInput,
    options: Options,
) -> _Planned | None:
    """The object's format, columns and types, as one pass would find them; None: not splittable.

    Raises BadInput only for a Parquet footer or schema that one pass would refuse too.
    """
    raw = Peekable(io.BytesIO(head.data))
    if raw.peek(2) == GZIP_MAGIC:
        return None
    try:
        fmt = choose_format(item.key, options.format, raw.peek(4), False)
    except BadInput:
        return None
    if fmt == "parquet":
        # The footer alone, through ranged GETs (If-Match the ETag just seen).
        file = RangedFile(s3, pinned)
        parquet = open_parquet(file)
        input_columns, schema = parquet_schema(parquet, options)
        metadata = parquet.metadata
        groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
        return _Planned(
            format=fmt,
            input_columns=input_columns,
            schema=schema,
            row_group_bytes=[
                sum(g.column(c).total_compressed_size for c in range(g.num_columns)) for g in groups
            ],
            footer_bytes=file.bytes_fetched,
        )
    reader: DelimitedReader | JsonLinesReader | None = None
    try:
        decoded, encoding = open_text(raw, options.encoding)
        text = decoded if isinstance(decoded, Peekable) else Peekable(decoded)
        fmt = fmt or sniff_text(text.peek(64 * 1024))
        if fmt not in TEXT_SPLIT_FORMATS:
            return None
        if fmt == "jsonl":
            why = why_not_splittable(fmt, False, encoding, options)
            if why is None:  # types as one pass infers them (its default chunk decides the sample)
                reader = JsonLinesReader(text, options, RejectTracker(1.0))
        else:
            reader = DelimitedReader(text, fmt, options, RejectTracker(1.0), encoding, chunk_bytes(ctx))
            why = why_not_splittable(fmt, False, encoding, options, reader)
    except BadInput:
        return None
    if why is not None or reader is None:
        log.info("input read in one pass", input=item.uri(), reason=why)
        return None
    bom = UTF8_BOM_BYTES if encoding.bom else 0
    if isinstance(reader, DelimitedReader):
        return _Planned(
            format=fmt,
            input_columns=reader.input_columns,
            schema=reader.schema,
            dialect=reader.dialect,
            data_start=reader.data_offset + bom,
            lines_before_data=reader.lines_before_data,
        )
    return _Planned(format=fmt, input_columns=reader.input_columns, schema=reader.schema, data_start=bom)


def _match_first(
    reader: Reader, fmt: str, first: Reader, first_fmt: str, item: InputRef, head: InputRef
) -> None:
    """A listed object joins the run only if it has the first object's format and columns."""
    if fmt != first_fmt:
        raise BadInput(f"is {fmt}, but {head.key} is {first_fmt}; one run reads one format")
    if reader.input_columns != first.input_columns:
        raise BadInput(
            f"columns {_shown(reader.input_columns)} differ from {head.key}'s {_shown(first.input_columns)}"
        )
    if isinstance(reader, DelimitedReader):
        # The first object's column types hold for all: a value that does not fit is a bad row.
        reader.schema = first.schema


def _cast(table: pa.Table, first: Reader, item: InputRef) -> pa.Table:
    try:
        return table.cast(first.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BadInput(f"its values do not fit the first object's column types: {exc}") from None


def _shown(columns: list[str]) -> str:
    return ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")


def _open_input(s3: BaseClient, source: InputRef) -> s3io.ObjectStream:
    try:
        obj = s3io.open_object(s3, source.bucket, source.key, source.versionId)
    except s3io.NotFound:
        raise BadInput(f"input object {source.uri()} does not exist") from None
    if source.etag and not source.versionId and obj.etag != source.etag.strip('"'):
        obj.body.close()
        raise BadInput(f"input object {source.uri()} changed since it was announced (ETag {obj.etag})")
    if obj.size == 0:
        obj.body.close()
        raise BadInput(f"input object {source.uri()} is empty (0 bytes)")
    return obj


def _reader(
    fmt: str,
    text: Peekable,
    options: Options,
    rejects: RejectTracker,
    tmpdir: str,
    encoding: TextEncoding | None,
    chunk_bytes: int,
) -> Reader:
    if fmt == "parquet":
        return ParquetReader(text, options, tmpdir)
    if fmt == "jsonl":
        return JsonLinesReader(text, options, rejects)
    return DelimitedReader(text, fmt, options, rejects, encoding, chunk_bytes)


def chunk_bytes(ctx: JobContext) -> int:
    raw = ctx.env.get(CHUNK_BYTES_VARIABLE)
    if not raw:
        return CHUNK_BYTES
    if not raw.isdigit() or int(raw) < 16:
        raise JobError(f"{CHUNK_BYTES_VARIABLE} must be an integer of at least 16, got {raw!r}")
    return int(raw)


def _no_rows(fmt: str, rejected: int) -> str:
    if rejected:
        return f"no valid rows: all {rejected} rows were rejected"
    if fmt in ("csv", "tsv"):
        return "input has a header row but no data rows"
    return "input has no records"
