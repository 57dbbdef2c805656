"""Ingest: input object -> Parquet shards -> shards/index.json -> manifest.json (last).

A failed ingest never leaves a manifest (the state machine would otherwise go on with it),
and on bad input it removes the shards it wrote.
"""

from __future__ import annotations

import math
import tempfile
from contextlib import closing

from botocore.client import BaseClient
from jobkit import s3 as s3io
from jobkit.context import JobContext
from jobkit.errors import BadInput, JobError
from jobkit.keys import manifest_key, shard_index_key, shards_prefix
from jobkit.log import JsonLogger, Stopwatch, utc_now
from jobkit.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_RECORDED_INPUT_COLUMNS,
    InputRef,
    Manifest,
    ShardIndex,
    Timing,
)
from jobkit.options import Options

from ingest.delimited import DelimitedReader
from ingest.encoding import TextEncoding, open_text
from ingest.jsonlines import JsonLinesReader
from ingest.lines import CHUNK_BYTES
from ingest.parquet_input import ParquetReader
from ingest.rejects import RejectTracker
from ingest.schema import describe
from ingest.shards import ShardWriter
from ingest.sniff import choose_format, sniff_text
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
    obj = _open_input(s3, source)
    rejects = RejectTracker(options.max_bad_row_fraction)
    with tempfile.TemporaryDirectory(prefix="sluice-ingest-") as tmpdir, closing(obj.body):
        raw = CountingSource(obj.body)
        head = Peekable(raw)
        gzipped = head.peek(2) == GZIP_MAGIC
        fmt = choose_format(source.key, options.format, head.peek(4), gzipped)
        text = Peekable(Gunzip(head)) if gzipped else head
        encoding = None
        if fmt != "parquet":
            decoded, encoding = open_text(text, options.encoding)
            text = decoded if isinstance(decoded, Peekable) else Peekable(decoded)
        fmt = fmt or sniff_text(text.peek(64 * 1024))
        log.info("reading input", input=source.uri(), size=obj.size, format=fmt, gzip=gzipped)
        reader = _reader(fmt, text, options, rejects, tmpdir, encoding, _chunk_bytes(ctx))
        # Shards grow beyond the target when the input is so large that max_shards would not
        # hold it otherwise, so they stay balanced instead of the last one taking the rest.
        expected = obj.size * (GZIP_EXPANSION if gzipped else 1)
        shard_bytes = max(target, math.ceil(expected / max_shards))
        writer = ShardWriter(
            s3, ctx.work_bucket, ctx.work_prefix, reader.schema, shard_bytes, max_shards, tmpdir, log
        )
        try:
            for table in reader.tables():
                writer.write(table)
            rejects.check(reader.rows_accepted + rejects.count)
            if reader.rows_accepted == 0:
                raise BadInput(_no_rows(fmt, rejects.count))
            shards = writer.close()
        except BaseException:
            writer.abort()
            raise
    index = ShardIndex(run_id=ctx.run_id, shards=shards).model_dump_json().encode()
    s3io.put_bytes(s3, ctx.work_bucket, shard_index_key(ctx.work_prefix), index, "application/json")
    seconds = clock.seconds()
    rows = reader.rows_accepted
    return Manifest(
        run_id=ctx.run_id,
        input=source,
        format=fmt,
        compression="gzip" if gzipped else None,
        dialect=reader.dialect if isinstance(reader, DelimitedReader) else None,
        options=options,
        input_column_count=len(reader.input_columns),
        input_columns=[c[:100] for c in reader.input_columns[:MAX_RECORDED_INPUT_COLUMNS]],
        columns=describe(reader.schema, options),
        shard_count=len(shards),
        max_failed_shards=math.floor(options.max_failed_shard_fraction * len(shards)),
        shards_prefix=shards_prefix(ctx.work_prefix),
        shard_index_key=shard_index_key(ctx.work_prefix),
        rows=rows,
        rows_read=rows + rejects.count,
        rows_rejected=rejects.count,
        rejected=rejects.summary(),
        bytes_read=raw.bytes_read,
        bytes_written=sum(s.bytes for s in shards),
        timings=Timing(
            started_at=clock.started_at,
            finished_at=utc_now(),
            seconds=seconds,
            detail={
                "rows_per_second": round(rows / seconds, 1) if seconds else 0.0,
                "mb_per_second": round(raw.bytes_read / 1e6 / seconds, 2) if seconds else 0.0,
                "target_shard_bytes": float(shard_bytes),
            },
        ),
        job_id=ctx.batch.job_id,
        attempt=ctx.batch.attempt,
    )


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


def _chunk_bytes(ctx: JobContext) -> int:
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
