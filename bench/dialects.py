"""Ingest rate per CSV dialect, and the plain-CSV rate against the code before dialect support.

Only the ingest job runs (as a process, against moto's server, as bench/jobmemory.py runs it):
it is the one stage whose parsing path depends on the dialect.

- Plain CSV, old and new code in the same run: the containers/ folder of BASELINE_REF (the last
  commit before dialect support) is unpacked with `git archive`, and old and new ingest take
  turns on the same file, so machine noise hits both alike. Target: new / old wall time <= 1.10.
- Each dialect of `sluice sample-data --dialect` on a file of the same size, read with the
  options that dialect needs; its rate relative to plain CSV of the same size says what the
  slower paths (quote-aware splitting, transcoding, comment skipping) cost.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common, data, s3speed
from bench.jobmemory import IN_BUCKET, OUT_BUCKET, WORK_BUCKET, JobProcess, job_env

# The last commit whose ingest had no dialect options (the round-one plain-CSV path).
BASELINE_REF = "d6ede7b"
PLAIN_RATIO_TARGET = 1.10
DIALECT_BYTES = 64_000_000
SMOKE_BYTES = 500_000
TURNS = 3  # old/new alternations on plain CSV


def baseline_containers(scratch: Path, ref: str) -> Path | None:
    """containers/ as it was at `ref`, or None when this checkout's history lacks it."""
    archive = scratch / "baseline.tar"
    with archive.open("wb") as out:
        done = subprocess.run(
            ["git", "archive", ref, "containers"], cwd=common.ROOT, stdout=out, stderr=subprocess.PIPE
        )
    if done.returncode != 0:
        common.say(f"  no baseline: git archive {ref} failed: {done.stderr.decode(errors='replace').strip()}")
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(scratch / "baseline", filter="data")
    return scratch / "baseline" / "containers"


class IngestRunner:
    """Runs the ingest job on uploaded inputs and returns its wall/CPU time and manifest."""

    def __init__(self, endpoint: str, scratch: Path) -> None:
        self.scratch = scratch
        self.s3 = s3speed.client(endpoint)
        for bucket in (IN_BUCKET, WORK_BUCKET, OUT_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        self.aws = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def upload(self, path: Path) -> dict[str, Any]:
        key = f"incoming/{uuid.uuid4().hex[:8]}/{path.name}"
        self.s3.upload_file(str(path), IN_BUCKET, key)
        return {"bucket": IN_BUCKET, "key": key, "size": path.stat().st_size}

    def run(self, source: dict[str, Any], options: dict[str, Any], containers: Path) -> dict[str, Any]:
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        env = job_env(self.aws, run_id, source, None, None)
        env["SLUICE_OPTIONS"] = json.dumps(options)
        measured = JobProcess("ingest", env, self.scratch, containers=containers).wait()
        prefix = f"work/{run_id}/"
        manifest = json.loads(
            self.s3.get_object(Bucket=WORK_BUCKET, Key=f"{prefix}manifest.json")["Body"].read()
        )
        listing = self.s3.list_objects_v2(Bucket=WORK_BUCKET, Prefix=prefix).get("Contents", [])
        for item in listing:  # keep the server's memory flat across runs
            self.s3.delete_object(Bucket=WORK_BUCKET, Key=item["Key"])
        measured["mb_per_s"] = round(source["size"] / 1e6 / measured["wall_s"], 1)
        # Per CPU-second too: other work on this machine stretches wall time, much less CPU time.
        measured["mb_per_cpu_s"] = round(source["size"] / 1e6 / measured["cpu_s"], 1)
        measured["rows"] = manifest.get("rows")
        measured["dialect"] = manifest.get("dialect")
        return measured


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--skip-1gb", action="store_true", help="compare plain CSV on 100 MB, not 1 GB")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="generated inputs (shared with throughput)"
    )
    parser.add_argument(
        "--baseline", default=BASELINE_REF, help="git ref whose ingest is the plain-CSV baseline"
    )
    args = parser.parse_args(argv)
    common.quiet_logs()
    from bench.batch_fanout import moto_logs_server
    from sluice import sampledata

    started, described = time.perf_counter(), common.machine()
    plain_label = "smoke" if args.smoke else ("100MB" if args.skip_1gb else "1GB")
    plain_size = data.SMOKE_SIZES[next(iter(data.SMOKE_SIZES))] if args.smoke else data.SIZES[plain_label]
    dialect_bytes = SMOKE_BYTES if args.smoke else DIALECT_BYTES
    turns = 1 if args.smoke else TURNS
    common.say(f"dialects: ingest rate per dialect; plain CSV ({plain_label}) against {args.baseline}")
    details: dict[str, Any] = {"baseline_ref": args.baseline, "dialect_bytes": dialect_bytes}
    metrics = []
    with tempfile.TemporaryDirectory(prefix="sluice-bench-dialects-") as scratch_dir:
        scratch = Path(scratch_dir)
        old = baseline_containers(scratch, args.baseline)
        plain_path, _ = data.ensure_csv(args.data_dir or scratch, plain_label, plain_size)
        with moto_logs_server() as endpoint:
            runner = IngestRunner(endpoint, scratch)
            source = runner.upload(plain_path)
            new_runs: list[dict[str, Any]] = []
            old_runs: list[dict[str, Any]] = []
            for _ in range(turns):
                new_runs.append(runner.run(source, {}, common.CONTAINERS))
                if old is not None:
                    old_runs.append(runner.run(source, {}, old))
            details["plain"] = {"bytes": source["size"], "new": new_runs, "old": old_runs}
            new_wall = statistics.median(r["wall_s"] for r in new_runs)
            common.say(f"  plain {plain_label}: new {new_wall:.2f} s")
            if old_runs:
                old_wall = statistics.median(r["wall_s"] for r in old_runs)
                common.say(f"  plain {plain_label}: old {old_wall:.2f} s")
                new_cpu = statistics.median(r["cpu_s"] for r in new_runs)
                old_cpu = statistics.median(r["cpu_s"] for r in old_runs)
                metrics.append(
                    common.metric(
                        f"plain CSV ingest, new / {args.baseline} CPU time, {plain_label} (median of {turns})",
                        new_cpu / old_cpu,
                        "x",
                        target=("<=", PLAIN_RATIO_TARGET),
                        note=f"new {new_cpu:.2f} s, old {old_cpu:.2f} s of CPU",
                    )
                )
                metrics.append(
                    common.metric(
                        f"plain CSV ingest, new / {args.baseline} wall time, {plain_label} (median of {turns})",
                        new_wall / old_wall,
                        "x",
                        target=("<=", PLAIN_RATIO_TARGET),
                        note=f"new {source['size'] / 1e6 / new_wall:.0f} MB/s, old {source['size'] / 1e6 / old_wall:.0f} MB/s",
                    )
                )
            else:
                metrics.append(
                    common.metric(
                        f"plain CSV ingest, new / {args.baseline} wall time, {plain_label}",
                        None,
                        "x",
                        target=("<=", PLAIN_RATIO_TARGET),
                        note="baseline not in this checkout's history",
                    )
                )

            same_size = scratch / "plain-same-size.csv"
            sampledata.generate(same_size, size_bytes=dialect_bytes, seed=7)
            reference = runner.run(runner.upload(same_size), {}, common.CONTAINERS)
            details["plain_same_size"] = reference
            details["dialects"] = {}
            for name, dialect in sampledata.DIALECTS.items():
                path = scratch / f"{name}.csv"
                sampledata.generate(path, size_bytes=dialect_bytes, seed=7, dialect=name)
                measured = runner.run(runner.upload(path), dict(dialect.options), common.CONTAINERS)
                path.unlink()
                details["dialects"][name] = measured
                paths = ", ".join((measured.get("dialect") or {}).get("paths", [])) or "?"
                common.say(f"  {name}: {measured['mb_per_s']} MB/s ({paths})")
                metrics.append(
                    common.metric(
                        f"ingest rate per CPU-second, {name} / plain CSV ({dialect_bytes / 1e6:.0f} MB each)",
                        measured["mb_per_cpu_s"] / reference["mb_per_cpu_s"],
                        "x",
                        note=f"{measured['mb_per_s']} MB/s wall, {measured['mb_per_cpu_s']} MB per CPU-s; path: {paths}",
                    )
                )
    path = common.write_result(
        common.results_dir_of(args),
        "dialects",
        smoke=args.smoke,
        metrics=metrics,
        details=details,
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
