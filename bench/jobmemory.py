"""Job memory: peak RSS of ingest, transform and aggregate on the benchmark input.

The jobs run as the local cloud runs them (`python -m <job>` in containers/, the Batch and
SLUICE_* environment the state machine sets) against moto's server in another process, so
the server's memory is not counted. Peak RSS comes from wait4()'s rusage of each job process
(ru_maxrss: the largest resident set the process reached). Transform children run as many at
a time as there are cores, as the local Batch engine would run them.

Target: ingest under 512 MB (MiB here) on the 1 GB input. Transform and aggregate are held
against the MEMORY their job definitions reserve in template.yaml (exceeding it gets a
Fargate task killed).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common, data, s3speed

INGEST_TARGET_MIB = 512.0
JOBS = ("ingest", "transform", "aggregate")
SHARD_TARGET_MB = "64"  # template.yaml's ShardTargetMb default
IN_BUCKET, WORK_BUCKET, OUT_BUCKET = "bench-input", "bench-work", "bench-output"


def reserved_memory_mib() -> dict[str, int]:
    """MEMORY of each job definition in template.yaml."""
    from sluice.local.deploy.cfnyaml import load_template

    resources = load_template(common.ROOT / "template.yaml")["Resources"]
    found = {}
    for job in JOBS:
        properties = resources[f"{job.capitalize()}JobDefinition"]["Properties"]["ContainerProperties"]
        for requirement in properties.get("ResourceRequirements", []):
            if requirement["Type"] == "MEMORY":
                found[job] = int(requirement["Value"])
    return found


def job_env(
    aws: dict[str, str], run_id: str, source: dict[str, Any], index: int | None, size: int | None
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",  # the Dockerfiles' ENV
        **aws,
        "SLUICE_RUN_ID": run_id,
        "SLUICE_INPUT": json.dumps(source),
        "SLUICE_OPTIONS": "{}",
        "SLUICE_WORK_PREFIX": f"work/{run_id}/",
        "SLUICE_OUTPUT_PREFIX": f"results/{source['key']}/{run_id}/",
        "SLUICE_WORK_BUCKET": WORK_BUCKET,
        "SLUICE_OUTPUT_BUCKET": OUT_BUCKET,
        "SLUICE_SHARD_TARGET_MB": SHARD_TARGET_MB,
        "AWS_BATCH_JOB_ID": f"{run_id}-job",
        "AWS_BATCH_JOB_ATTEMPT": "1",
        "AWS_BATCH_JQ_NAME": "bench",
        "AWS_BATCH_CE_NAME": "bench",
    }
    if index is not None and size is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(size)
    return env


# Forks and execs the job from a small interpreter, then reports the job's rusage. Why not
# wait4() on a child of this process: Linux records the peak RSS of the address space a
# process leaves at exec, and subprocess spawns with vfork, which shares this (large) process's
# address space, so every child's ru_maxrss would be at least this process's peak.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write("%d %d %f %f" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime, usage.ru_stime))
"""


class JobProcess:
    """One job process under the launcher; output goes to a file so nothing blocks on a pipe."""

    def __init__(self, job: str, env: dict[str, str], scratch: Path, containers: Path | None = None) -> None:
        self.job = job
        self.output = tempfile.TemporaryFile(dir=scratch)
        self.usage = scratch / f"usage-{uuid.uuid4().hex}"
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            [common.PYTHON, "-S", "-c", LAUNCHER, str(self.usage), common.PYTHON, "-m", job],
            cwd=containers or common.CONTAINERS,  # another checkout's jobs, for old/new comparisons
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> dict[str, Any]:
        self.popen.wait()
        wall = time.perf_counter() - self.started
        self.output.seek(0)
        text = self.output.read().decode("utf-8", "replace")
        self.output.close()
        code, max_rss_kib, user, system = self.usage.read_text().split()
        if self.popen.returncode != 0 or int(code) != 0:
            raise RuntimeError(f"{self.job} exited {code}:\n{text[-3000:]}")
        return {
            "peak_rss_mib": round(int(max_rss_kib) / 1024, 1),  # KiB on Linux
            "wall_s": round(wall, 3),
            "cpu_s": round(float(user) + float(system), 3),
        }


def launcher_floor_mib(scratch: Path) -> float:
    """ru_maxrss of `true` under the launcher: the floor every reported number includes."""
    usage = scratch / "usage-floor"
    subprocess.run([common.PYTHON, "-S", "-c", LAUNCHER, str(usage), "/bin/true"], check=True)
    return round(int(usage.read_text().split()[1]) / 1024, 1)


def run_jobs(endpoint: str, path: Path, scratch: Path) -> dict[str, Any]:
    s3 = s3speed.client(endpoint)
    for bucket in (IN_BUCKET, WORK_BUCKET, OUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    key = f"incoming/{path.name}"
    s3.upload_file(str(path), IN_BUCKET, key)
    head = s3.head_object(Bucket=IN_BUCKET, Key=key)
    source = {"bucket": IN_BUCKET, "key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"')}
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    found: dict[str, Any] = {"input_bytes": path.stat().st_size}
    found["ingest"] = JobProcess("ingest", job_env(aws, run_id, source, None, None), scratch).wait()
    manifest = json.loads(
        s3.get_object(Bucket=WORK_BUCKET, Key=f"work/{run_id}/manifest.json")["Body"].read()
    )
    shards = manifest["shard_count"]
    found["shards"] = shards
    children: list[dict[str, Any]] = []
    width = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    pending = list(range(shards))
    while pending:
        batch, pending = pending[:width], pending[width:]
        index_of = (lambda i: i) if shards > 1 else (lambda i: None)
        running = [
            JobProcess(
                "transform",
                job_env(aws, run_id, source, index_of(i), shards if shards > 1 else None),
                scratch,
            )
            for i in batch
        ]
        children.extend(process.wait() for process in running)
    found["transform"] = {
        "children": len(children),
        "peak_rss_mib": max(child["peak_rss_mib"] for child in children),
        "peak_rss_mib_per_child": [child["peak_rss_mib"] for child in children],
        "wall_s": [child["wall_s"] for child in children],
    }
    found["aggregate"] = JobProcess("aggregate", job_env(aws, run_id, source, None, None), scratch).wait()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--skip-1gb", action="store_true", help="measure on the 100 MB input only")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="generated inputs (shared with throughput)"
    )
    args = parser.parse_args(argv)
    common.quiet_logs()
    started, described = time.perf_counter(), common.machine()
    if args.smoke:
        sizes = dict(data.SMOKE_SIZES)
    elif args.skip_1gb:
        sizes = {"100MB": data.SIZES["100MB"]}
    else:
        sizes = dict(data.SIZES)
    common.say("jobmemory: ingest, transform, aggregate as processes")
    from bench.batch_fanout import moto_logs_server

    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-jobs-") as scratch_dir:
        scratch = Path(scratch_dir)
        floor = launcher_floor_mib(scratch)
        for label, size in sizes.items():
            path, _ = data.ensure_csv(args.data_dir or scratch, label, size)
            with moto_logs_server() as endpoint:  # a fresh server per input: its memory is freed
                runs[label] = run_jobs(endpoint, path, scratch)
            common.say(
                f"  {label}: ingest {runs[label]['ingest']['peak_rss_mib']} MiB, "
                f"transform {runs[label]['transform']['peak_rss_mib']} MiB, "
                f"aggregate {runs[label]['aggregate']['peak_rss_mib']} MiB"
            )
    reserved = reserved_memory_mib()
    largest = max(sizes, key=lambda label: sizes[label])
    metrics = []
    for label in sizes:
        main_input = label == largest
        for job in JOBS:
            peak = runs[label][job]["peak_rss_mib"]
            if job == "ingest":
                target: tuple[str, float] | None = ("<", INGEST_TARGET_MIB) if main_input else None
                note = "" if main_input else f"target judged on {largest}"
            else:
                target = ("<=", float(reserved[job])) if main_input and job in reserved else None
                note = "target: the job definition's MEMORY" if target else ""
            metrics.append(common.metric(f"{job} peak RSS, {label}", peak, "MiB", target=target, note=note))
    if not args.smoke and "1GB" not in sizes:
        metrics.append(
            common.metric(
                "ingest peak RSS, 1GB", None, "MiB", target=("<", INGEST_TARGET_MIB), note="1GB skipped"
            )
        )
    path = common.write_result(
        common.results_dir_of(args),
        "jobmemory",
        smoke=args.smoke,
        metrics=metrics,
        details={
            "runs": runs,
            "reserved_memory_mib": reserved,
            "shard_target_mb": SHARD_TARGET_MB,
            "launcher_floor_mib": floor,
        },
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
