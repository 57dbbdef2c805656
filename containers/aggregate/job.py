"""Aggregate: every partial the manifest promises -> result.parquet, result.csv, summary.json, _SUCCESS.

Refuses to run on an incomplete set of partials: that means the transform stage has not
finished, which is a pipeline fault (retryable), not bad input. The `_SUCCESS` marker is
removed first and written last, so its presence always means a consistent result.

The one exception is a run that tolerates failed shards (`max_failed_shard_fraction`): the
state machine sets SLUICE_ALLOW_MISSING_SHARDS when the transform array failed within the
manifest's `max_failed_shards`. The result then covers the shards that exist, summary.json
lists the missing ones and the rows they held, and `_INCOMPLETE` is written beside `_SUCCESS`.
A later complete aggregate (a rerun that filled the gaps) removes `_INCOMPLETE`.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from botocore.client import BaseClient
from ingest.job import chunk_bytes
from ingest.splits import read_split, split_schema
from jobkit import s3 as s3io
from jobkit.context import JobContext
from jobkit.errors import BadInput, JobError
from jobkit.keys import (
    INCOMPLETE_MARKER,
    RESULT_CSV,
    RESULT_PARQUET,
    SUCCESS_MARKER,
    SUMMARY_JSON,
    output_key,
    partial_key,
    partials_prefix,
    shard_index_key,
    split_rejects_prefix,
)
from jobkit.log import JsonLogger, Stopwatch, utc_now
from jobkit.manifest import (
    MAX_REJECT_EXAMPLES,
    ByteRange,
    Manifest,
    Rejections,
    ShardIndex,
    Split,
    SplitIndex,
    SplitRejects,
)
from jobkit.options import Options
from jobkit.partials import ROWS, PartialBuilder, finalize, merge_partials
from jobkit.workdir import read_manifest

ALLOW_MISSING_VARIABLE = "SLUICE_ALLOW_MISSING_SHARDS"
DOWNLOAD_THREADS = 16
MERGE_BATCH = 64  # partials merged at a time: bounds memory for high-cardinality group keys


def run(ctx: JobContext, log: JsonLogger) -> None:
    clock = Stopwatch()
    s3 = s3io.client()
    work, out_bucket, out_prefix = ctx.work_bucket, ctx.output_bucket, ctx.output_prefix
    manifest = read_manifest(s3, work, ctx.work_prefix)
    options = manifest.options  # the spec the shards were built for, as ingest recorded it
    allowed = manifest.max_failed_shards if ctx.env.get(ALLOW_MISSING_VARIABLE) == "true" else 0
    missing = _check_partials(s3, work, ctx.work_prefix, manifest.shard_count, allowed)
    s3.delete_object(Bucket=out_bucket, Key=output_key(out_prefix, SUCCESS_MARKER))

    present = [i for i in range(manifest.shard_count) if i not in set(missing)]
    merged, stats = _merge_all(s3, work, ctx.work_prefix, present, options)
    merged_rows = sum(merged[ROWS].to_pylist())
    rows_missing: int | None
    if manifest.split_index_key is not None:
        merged, counts = _check_splits(ctx, log, s3, manifest, merged, stats, missing)
        merged_rows = sum(merged[ROWS].to_pylist())
        manifest = manifest.model_copy(update=counts)
        rows_missing = None  # a split's rows are counted only by the child that reads it
    else:
        rows_missing = _rows_of(s3, work, ctx.work_prefix, missing)
    if merged_rows + (rows_missing or 0) != manifest.rows:
        raise JobError(
            f"partials cover {merged_rows} rows (and missing shards {rows_missing}) but the manifest "
            f"promises {manifest.rows}: stale or foreign partials under {partials_prefix(ctx.work_prefix)}"
        )
    result = finalize(merged, options)

    keys = {name: output_key(out_prefix, name) for name in (RESULT_PARQUET, RESULT_CSV, SUMMARY_JSON)}
    s3io.put_bytes(s3, out_bucket, keys[RESULT_PARQUET], _parquet(result), "application/vnd.apache.parquet")
    s3io.put_bytes(s3, out_bucket, keys[RESULT_CSV], _csv(result), "text/csv; charset=utf-8")
    summary = _summary(ctx, manifest, options, result, stats, clock, out_bucket, keys)
    summary["complete"] = not missing
    summary["missing_shards"] = missing
    summary["rows_missing"] = rows_missing
    s3io.put_json(s3, out_bucket, keys[SUMMARY_JSON], summary)
    incomplete = output_key(out_prefix, INCOMPLETE_MARKER)
    if missing:
        s3io.put_json(s3, out_bucket, incomplete, {"missing_shards": missing, "rows_missing": rows_missing})
        log.warning("result is incomplete", missing_shards=missing, rows_missing=rows_missing)
    else:
        s3.delete_object(Bucket=out_bucket, Key=incomplete)
    s3io.put_bytes(s3, out_bucket, output_key(out_prefix, SUCCESS_MARKER), b"", "text/plain")
    log.info(
        "result written",
        output=f"s3://{out_bucket}/{out_prefix}",
        groups=result.num_rows,
        rows=merged_rows,
        partials=manifest.shard_count,
        seconds=clock.seconds(),
    )


def _check_splits(
    ctx: JobContext,
    log: JsonLogger,
    s3: BaseClient,
    manifest: Manifest,
    merged: pa.Table,
    stats: list[dict[str, str]],
    missing: list[int],
) -> tuple[pa.Table, dict[str, object]]:
    """A split run: the row counts the children found, and the whole input's bad-row budget.

    When a split ended inside a quoted field, the splits after it began mid-record: their
    partials are discarded and the input is read here in one pass (ingest/splits.py).
    """
    bucket = ctx.work_bucket
    assert manifest.split_index_key is not None
    rejects: list[SplitRejects] = []
    if any(s.get("spill") == "true" for s in stats):
        log.warning("a quoted field crosses a split boundary: reading the input in one pass")
        index = SplitIndex.model_validate(s3io.read_json(s3, bucket, manifest.split_index_key))
        whole = index.model_copy(
            update={
                "splits": [
                    Split(
                        ranges=[
                            ByteRange(input=n, start=i.data_start, end=i.size)
                            for n, i in enumerate(index.inputs)
                        ]
                    )
                ]
            }
        )
        builder = PartialBuilder(split_schema(index, manifest), manifest.options)
        result = read_split(s3, whole, 0, manifest, builder.add, chunk_bytes(ctx))
        merged = builder.result()
        rows, rows_read = result.rows, result.rows_read
        rejects = [result.rejects] if result.rejects is not None else []
    else:
        rows = sum(int(s.get("rows", 0)) for s in stats)
        rows_read = sum(int(s.get("rows-read", 0)) for s in stats)
        keys = sorted(s3io.list_keys(s3, bucket, split_rejects_prefix(ctx.work_prefix)))
        rejects = [SplitRejects.model_validate(s3io.read_json(s3, bucket, key)) for key in keys]
    for record in rejects:
        if record.fatal is not None:  # a child stopped on it: tolerating its gap would hide it
            raise BadInput(record.fatal)
    count = sum(r.count for r in rejects)
    by_reason: dict[str, int] = {}
    for record in rejects:
        for reason, n in record.by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    examples = [e for r in rejects for e in r.examples][:MAX_REJECT_EXAMPLES]
    many = manifest.input_count > 1
    if count:
        first = (
            f"{examples[0].key + ': ' if many else ''}line {examples[0].line}: {examples[0].reason}"
            if examples
            else f"{count} malformed rows ({', '.join(sorted(by_reason))})"
        )
        fraction = count / rows_read if rows_read else 1.0
        limit = manifest.options.max_bad_row_fraction
        if limit == 0:
            raise BadInput(f"{first} (max_bad_row_fraction is 0)")
        if fraction > limit:
            raise BadInput(
                f"{count} of {rows_read} rows rejected ({fraction:.2%}), more than "
                f"max_bad_row_fraction {limit}; first: {first}"
            )
    if rows == 0 and not missing:
        raise BadInput(
            f"no valid rows: all {count} rows were rejected"
            if count
            else "input has a header row but no data rows"
            if manifest.format in ("csv", "tsv")
            else "input has no records"
        )
    counts: dict[str, object] = {
        "rows": rows,
        "rows_read": rows_read,
        "rows_rejected": count,
        "rejected": Rejections(count=count, by_reason=by_reason, examples=list(examples)),
    }
    return merged, counts


def _check_partials(s3: BaseClient, bucket: str, work_prefix: str, count: int, allowed: int) -> list[int]:
    """The shards whose partial is missing, when there are at most `allowed` of them."""
    present = set(s3io.list_keys(s3, bucket, partials_prefix(work_prefix)))
    missing = [i for i in range(count) if partial_key(work_prefix, i) not in present]
    if missing and len(missing) <= allowed and len(missing) < count:
        return missing
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise JobError(
            f"{len(missing)} of {count} partials missing (shard {shown}) under "
            f"s3://{bucket}/{partials_prefix(work_prefix)}: the transform stage has not finished"
            + (f" (at most {allowed} may be missing)" if allowed else "")
        )
    return []


def _rows_of(s3: BaseClient, bucket: str, work_prefix: str, shards: list[int]) -> int:
    """Rows the given shards hold, from ingest's shards/index.json."""
    if not shards:
        return 0
    index = ShardIndex.model_validate(s3io.read_json(s3, bucket, shard_index_key(work_prefix)))
    rows = {info.index: info.rows for info in index.shards}
    return sum(rows[i] for i in shards)


def _merge_all(
    s3: BaseClient, bucket: str, work_prefix: str, shards: list[int], options: Options
) -> tuple[pa.Table, list[dict[str, str]]]:
    def fetch(index: int) -> tuple[pa.Table, dict[str, str]]:
        data, metadata = s3io.read_bytes(s3, bucket, partial_key(work_prefix, index))
        return pq.read_table(io.BytesIO(data)), metadata

    merged: pa.Table | None = None
    stats: list[dict[str, str]] = []
    with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="fetch") as pool:
        for start in range(0, len(shards), MERGE_BATCH):
            fetched = list(pool.map(fetch, shards[start : start + MERGE_BATCH]))
            stats.extend(metadata for _, metadata in fetched)
            tables = ([merged] if merged is not None else []) + [t for t, _ in fetched]
            merged = merge_partials(pa.concat_tables(tables), options)
    assert merged is not None  # at least one shard: a run with none missing, or fewer missing than all
    return merged, stats


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pcsv.write_csv(table, sink)
    return sink.getvalue()


def _transform_timings(stats: list[dict[str, str]]) -> dict[str, float | int | None]:
    seconds = [float(s["seconds"]) for s in stats if "seconds" in s]
    rows = sum(int(s.get("rows", 0)) for s in stats)
    attempts = [int(s["attempt"]) for s in stats if "attempt" in s]
    total = sum(seconds)
    return {
        "partials": len(stats),
        "seconds_total": round(total, 3),
        "seconds_max": max(seconds, default=None),
        "seconds_mean": round(total / len(seconds), 3) if seconds else None,
        "rows_per_second": round(rows / total, 1) if total else None,
        "retried_partials": sum(1 for a in attempts if a > 1),
    }


def _summary(
    ctx: JobContext,
    manifest: Manifest,
    options: Options,
    result: pa.Table,
    stats: list[dict[str, str]],
    clock: Stopwatch,
    bucket: str,
    keys: dict[str, str],
) -> dict[str, object]:
    return {
        "run_id": ctx.run_id,
        "input": manifest.input.model_dump(exclude_none=True),
        # An input manifest's objects (the first MAX_RECORDED_INPUTS) and how many it listed.
        "inputs": [i.model_dump(exclude_none=True) for i in manifest.inputs] if manifest.inputs else None,
        "input_count": manifest.input_count,
        "format": manifest.format,
        "compression": manifest.compression,
        # How a CSV/TSV input was read (detected delimiter, encoding, ...); null for other formats.
        "dialect": manifest.dialect.model_dump() if manifest.dialect is not None else None,
        "spec": options.spec(),
        "rows_in": manifest.rows_read,
        "rows_accepted": manifest.rows,
        "rows_rejected": manifest.rows_rejected,
        "rejected": manifest.rejected.model_dump(),
        "groups": result.num_rows,
        "shards": manifest.shard_count,
        "columns": result.column_names,
        "outputs": {name: f"s3://{bucket}/{key}" for name, key in keys.items()},
        "timings": {
            "ingest": manifest.timings.model_dump(),
            "transform": _transform_timings(stats),
            "aggregate": {
                "started_at": clock.started_at,
                "finished_at": utc_now(),
                "seconds": clock.seconds(),
            },
        },
    }
