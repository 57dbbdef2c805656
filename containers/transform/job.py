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
from jobkit import s3 as s3io
from jobkit.context import JobContext
from jobkit.errors import JobError
from jobkit.keys import partial_key, shard_key
from jobkit.log import JsonLogger, Stopwatch
from jobkit.manifest import RerunPlan
from jobkit.options import Options
from jobkit.partials import merge_partials, partial_from_rows
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
    key = shard_key(ctx.work_prefix, index)
    with tempfile.TemporaryFile(prefix="sluice-shard-") as local:
        try:
            s3io.download_to(s3, bucket, key, local)
        except s3io.NotFound:
            # Ingest wrote every shard before its manifest; a missing one is a pipeline fault.
            raise JobError(f"shard s3://{bucket}/{key} does not exist (did ingest finish?)") from None
        local.seek(0)
        partial, rows = aggregate_shard(pq.ParquetFile(local), options)
    data = partial_bytes(partial)
    seconds = clock.seconds()
    stats = {"rows": str(rows), "groups": str(partial.num_rows), "seconds": str(seconds)}
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
