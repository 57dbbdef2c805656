"""Transform: shards/part-<i>.parquet -> partials/part-<i>.parquet.

Array child i transforms shard i, except in a rerun, where SLUICE_SHARD_PLAN names the plan
(transform/plan.py) and child i transforms the plan's i-th missing shard.

The partial is byte-for-byte the same on every attempt: rows sorted by group key, arithmetic
single-threaded in a fixed order, no timestamps in the file. Timings go to the log and to the
object's S3 user metadata, which aggregate reads along with the data (and which is not part
of the bytes).
"""

from __future__ import annotations

import io
import signal
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.client import BaseClient
from ingest.job import chunk_bytes
from ingest.splits import read_split, split_schema
from jobkit import s3 as s3io
from jobkit.context import JobContext
from jobkit.errors import BadInput, JobError
from jobkit.keys import partial_key, shard_key, split_rejects_key
from jobkit.log import JsonLogger, Stopwatch
from jobkit.manifest import Manifest, RerunPlan, SplitIndex, SplitRejects
from jobkit.options import Options
from jobkit.partials import PartialBuilder, merge_partials, partial_from_rows
from jobkit.workdir import read_manifest

BATCH_ROWS = 1_000_000  # bounds memory per step for shards larger than the usual target
PARTIAL_WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": False}
SHARD_PLAN_VARIABLE = "SLUICE_SHARD_PLAN"  # a rerun's plan key in the work bucket


def run(ctx: JobContext, log: JsonLogger) -> None:
    clock = Stopwatch()
    s3 = s3io.client()
    bucket = ctx.work_bucket
    manifest = read_manifest(s3, bucket, ctx.work_prefix)
    index = _shard_index(s3, bucket, ctx)
    if index >= manifest.shard_count:
        raise JobError(
            f"shard index {index} is out of range: the manifest lists {manifest.shard_count} shards"
        )
    options = manifest.options  # the spec the shards were built for, as ingest recorded it
    # Faults belong to this execution, not to the run's spec: a rerun without them runs clean.
    _inject_faults(ctx.options(), index, log)
    if manifest.split_index_key is not None:
        partial, rows, stats = _split_partial(ctx, log, s3, manifest, index)
    else:
        partial, rows = _shard_partial(s3, bucket, ctx, index, options)
        stats = {}
    data = partial_bytes(partial)
    seconds = clock.seconds()
    stats.update({"rows": str(rows), "groups": str(partial.num_rows), "seconds": str(seconds)})
    stats["attempt"] = str(ctx.batch.attempt)
    s3io.put_bytes(
        s3, bucket, partial_key(ctx.work_prefix, index), data, "application/vnd.apache.parquet", stats
    )
    log.info(
        "partial written",
        shard=index,
        rows=rows,
        groups=partial.num_rows,
        bytes=len(data),
        seconds=seconds,
        rows_per_second=round(rows / seconds, 1) if seconds else None,
    )


def _shard_partial(
    s3: BaseClient, bucket: str, ctx: JobContext, index: int, options: Options
) -> tuple[pa.Table, int]:
    key = shard_key(ctx.work_prefix, index)
    with tempfile.TemporaryFile(prefix="sluice-shard-") as local:
        try:
            s3io.download_to(s3, bucket, key, local)
        except s3io.NotFound:
            # Ingest wrote every shard before its manifest; a missing one is a pipeline fault.
            raise JobError(f"shard s3://{bucket}/{key} does not exist (did ingest finish?)") from None
        local.seek(0)
        return aggregate_shard(pq.ParquetFile(local), options)


def _split_partial(
    ctx: JobContext, log: JsonLogger, s3: BaseClient, manifest: Manifest, number: int
) -> tuple[pa.Table, int, dict[str, str]]:
    """Parse split `number` of the input (ingest/splits.py) straight into a partial.

    Rejected rows go to `splits/rejects-<i>.json` for aggregate, which enforces
    max_bad_row_fraction over the whole input; a stale one from an earlier attempt is removed.
    """
    bucket = ctx.work_bucket
    assert manifest.split_index_key is not None
    index = SplitIndex.model_validate(s3io.read_json(s3, bucket, manifest.split_index_key))
    if number >= len(index.splits):
        raise JobError(f"split {number} is out of range: the plan lists {len(index.splits)}")
    rejects_key = split_rejects_key(ctx.work_prefix, number)
    s3.delete_object(Bucket=bucket, Key=rejects_key)
    builder = PartialBuilder(split_schema(index, manifest), manifest.options, BATCH_ROWS)

    try:
        result = read_split(s3, index, number, manifest, builder.add, chunk_bytes(ctx))
    except BadInput as exc:
        fatal = SplitRejects(split=number, count=0, by_reason={}, examples=[], fatal=str(exc))
        s3io.put_json(s3, bucket, rejects_key, fatal.model_dump())
        raise
    if result.rejects is not None:
        s3io.put_json(s3, bucket, rejects_key, result.rejects.model_dump())
        log.warning("rows rejected", split=number, rejected=result.rejects.count)
    # Dashes, not underscores: a WSGI server cannot tell the two apart in header names.
    stats = {"rows-read": str(result.rows_read), "bytes-read": str(result.bytes_read)}
    if result.spill:
        stats["spill"] = "true"
        log.warning("split ended inside a quoted field; aggregate reads the input in one pass", split=number)
    return builder.result(), result.rows, stats


def _shard_index(s3: BaseClient, bucket: str, ctx: JobContext) -> int:
    plan_key = ctx.env.get(SHARD_PLAN_VARIABLE)
    if not plan_key:
        return ctx.batch.shard_index
    try:
        plan = RerunPlan.model_validate(s3io.read_json(s3, bucket, plan_key))
    except s3io.NotFound:
        raise JobError(f"rerun plan s3://{bucket}/{plan_key} does not exist") from None
    position = ctx.batch.shard_index
    if position >= len(plan.shards):
        raise JobError(
            f"array index {position} is out of range: the rerun plan lists {len(plan.shards)} shards"
        )
    return plan.shards[position]


def aggregate_shard(shard: pq.ParquetFile, options: Options) -> tuple[pa.Table, int]:
    partials, rows = [], 0
    for batch in shard.iter_batches(batch_size=BATCH_ROWS, columns=options.columns(), use_threads=True):
        table = pa.Table.from_batches([batch])
        rows += table.num_rows
        partials.append(partial_from_rows(table, options))
    if not partials:
        partials.append(partial_from_rows(shard.schema_arrow.empty_table(), options))
    return merge_partials(pa.concat_tables(partials), options), rows


def partial_bytes(partial: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(partial, sink, **PARTIAL_WRITE_OPTIONS)
    return sink.getvalue()


def _inject_faults(options: Options, index: int, log: JsonLogger) -> None:
    """Fault injection from the `fail_shards` / `hang_shards` options (see jobkit.options)."""
    if index in options.fail_shards:
        raise JobError(f"injected failure for shard {index}")
    if index in options.hang_shards:
        log.warning("injected hang: waiting to be killed", shard=index)
        while True:
            signal.pause()  # returns only on a signal; SIGTERM unwinds via Terminated
