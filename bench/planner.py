"""Planner: a split run's ingest reads a bounded head, so its time and memory do not grow with the input.

Ingest runs as a process (`python -m ingest`, the Batch environment the state machine sets)
against moto's server in another process, on CSV inputs of 100 MB, 1 GB and 5 GB. The 5 GB
object is assembled on the server from five copies of the 1 GB one (UploadPartCopy), which
is the same to the planner as 5 GB uploaded: it only reads the head and the size. Measured
per input: wall time, CPU time and peak RSS of the ingest process (wait4 rusage), bytes
the planner read, and the splits it planned.

Targets (docs/splits.md): the planner at 5 GB within 1.5x the time and 1.25x the peak RSS it
takes at 100 MB, and the bytes it reads the same at every size.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common, data, s3speed
from bench.jobmemory import IN_BUCKET, OUT_BUCKET, WORK_BUCKET, JobProcess, job_env

TIME_RATIO_TARGET = 1.5
RSS_RATIO_TARGET = 1.25
COPIES_FOR_5GB = 5


def _put_inputs(s3: Any, sizes: dict[str, Path]) -> dict[str, dict[str, Any]]:
    for bucket in (IN_BUCKET, WORK_BUCKET, OUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    sources: dict[str, dict[str, Any]] = {}
    for label, path in sizes.items():
        key = f"incoming/{label}/{path.name}"
        s3.upload_file(str(path), IN_BUCKET, key)
        sources[label] = {"key": key}
    if "1GB" in sources:  # 5 GB: five server-side copies of the 1 GB object as parts
        key = "incoming/5GB/input.csv"
        upload = s3.create_multipart_upload(Bucket=IN_BUCKET, Key=key)
        parts = []
        for number in range(1, COPIES_FOR_5GB + 1):
            copied = s3.upload_part_copy(
                Bucket=IN_BUCKET,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=number,
                CopySource={"Bucket": IN_BUCKET, "Key": sources["1GB"]["key"]},
            )
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(
            Bucket=IN_BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
        sources["5GB"] = {"key": key}
    for source in sources.values():
        head = s3.head_object(Bucket=IN_BUCKET, Key=source["key"])
        source.update(bucket=IN_BUCKET, size=head["ContentLength"], etag=head["ETag"].strip('"'))
    return sources


def plan_once(
    s3: Any, endpoint: str, source: dict[str, Any], scratch: Path, split_mb: str | None
) -> dict[str, Any]:
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    env = job_env(aws, run_id, source, None, None)
    if split_mb is not None:
        env["SLUICE_SPLIT_TARGET_MB"] = split_mb
    usage = JobProcess("ingest", env, scratch).wait()
    manifest = json.loads(
        s3.get_object(Bucket=WORK_BUCKET, Key=f"work/{run_id}/manifest.json")["Body"].read()
    )
    if manifest.get("split_index_key") is None:
        raise RuntimeError(f"{source['key']} was not split: the planner is not what was measured")
    return {
        **usage,
        "bytes_read": manifest["bytes_read"],
        "splits": manifest["shard_count"],
        "split_bytes": manifest["timings"]["detail"].get("split_bytes"),
        "input_bytes": source["size"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="generated inputs (shared with throughput)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="planner runs per input (median)")
    args = parser.parse_args(argv)
    common.quiet_logs()
    started, described = time.perf_counter(), common.machine()
    sizes = dict(data.SMOKE_SIZES) if args.smoke else dict(data.SIZES)
    common.say("planner: a split run's ingest on 100 MB, 1 GB and 5 GB")
    from bench.batch_fanout import moto_logs_server

    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-planner-") as scratch_dir:
        scratch = Path(scratch_dir)
        paths = {
            label: data.ensure_csv(args.data_dir or scratch, label, size)[0] for label, size in sizes.items()
        }
        with moto_logs_server() as endpoint:
            s3 = s3speed.client(endpoint)
            sources = _put_inputs(s3, paths)
            for _ in range(args.repeat):  # inputs take turns, so load hits every size alike
                for label, source in sources.items():
                    runs.setdefault(label, []).append(
                        plan_once(s3, endpoint, source, scratch, "1" if args.smoke else None)
                    )
            for label, found in runs.items():
                common.say(
                    f"  {label}: {[r['wall_s'] for r in found]} s, {[r['peak_rss_mib'] for r in found]} MiB"
                )
    medians = {
        label: {
            "wall_s": common.summary([r["wall_s"] for r in found])["median"],
            "cpu_s": common.summary([r["cpu_s"] for r in found])["median"],
            "peak_rss_mib": common.summary([r["peak_rss_mib"] for r in found])["median"],
            "bytes_read": found[0]["bytes_read"],
            "splits": found[0]["splits"],
        }
        for label, found in runs.items()
    }
    labels = list(medians)
    small, large = labels[0], labels[-1]
    metrics = []
    for label in labels:
        m = medians[label]
        metrics.append(
            common.metric(
                f"planner wall, {label} (median)",
                m["wall_s"],
                "s",
                note=f"{m['splits']} splits; CPU {m['cpu_s']} s; {m['peak_rss_mib']} MiB peak; read {m['bytes_read']:,} bytes",
            )
        )
    metrics.append(
        common.metric(
            f"planner CPU time {large} / {small}",
            medians[large]["cpu_s"] / medians[small]["cpu_s"],
            "x",
            target=("<=", TIME_RATIO_TARGET),
            note=f"wall {large} / {small}: {medians[large]['wall_s'] / medians[small]['wall_s']:.2f}x",
        )
    )
    metrics.append(
        common.metric(
            f"planner peak RSS {large} / {small}",
            medians[large]["peak_rss_mib"] / medians[small]["peak_rss_mib"],
            "x",
            target=("<=", RSS_RATIO_TARGET),
        )
    )
    metrics.append(
        common.metric(
            f"planner bytes read {large} / {small}",
            medians[large]["bytes_read"] / medians[small]["bytes_read"],
            "x",
            target=("<=", 1.0),
        )
    )
    path = common.write_result(
        common.results_dir_of(args),
        "planner",
        smoke=args.smoke,
        metrics=metrics,
        details={"runs": runs, "medians": medians},
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
