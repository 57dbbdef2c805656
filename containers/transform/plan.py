"""Plan a rerun: which shards of a run still lack their partial.

`python -m transform plan` (the transform image with Command ["plan"]) runs before a rerun's
transform stage. Keys are pure functions of (run, shard), so a partial that exists is a shard
that already succeeded, byte for byte what a new attempt would write; only the others need to
run. The plan goes to `work/<run>/reruns/<execution>.json`; array child i of the rerun then
transforms shard `shards[i]` (transform/job.py reads it through SLUICE_SHARD_PLAN).
"""

from __future__ import annotations

from jobkit import s3 as s3io
from jobkit.context import JobContext
from jobkit.errors import JobError
from jobkit.keys import partial_key, partials_prefix, rerun_plan_key
from jobkit.log import JsonLogger
from jobkit.manifest import RerunPlan
from jobkit.workdir import read_manifest

EXECUTION_VARIABLE = "SLUICE_EXECUTION_NAME"  # the rerun's own execution name


def run(ctx: JobContext, log: JsonLogger) -> None:
    execution = ctx.env.get(EXECUTION_VARIABLE)
    if not execution:
        raise JobError(f"environment variable {EXECUTION_VARIABLE} is not set")
    s3 = s3io.client()
    bucket = ctx.work_bucket
    manifest = read_manifest(s3, bucket, ctx.work_prefix)
    present = set(s3io.list_keys(s3, bucket, partials_prefix(ctx.work_prefix)))
    missing = [i for i in range(manifest.shard_count) if partial_key(ctx.work_prefix, i) not in present]
    plan = RerunPlan(
        run_id=ctx.run_id,
        execution=execution,
        shards=missing,
        shard_count=len(missing),
        of=manifest.shard_count,
    )
    key = rerun_plan_key(ctx.work_prefix, execution)
    s3io.put_json(s3, bucket, key, plan.model_dump())
    log.info("rerun planned", plan=f"s3://{bucket}/{key}", missing=len(missing), shards=manifest.shard_count)
