"""Throughput: the local pipeline beside DuckDB and Polars on the same generated CSV, in one run.

For each input size (100 MB and 1 GB of `sluice.sampledata` CSV):
- DuckDB and Polars compute the pipeline's default aggregation (group by category, country:
  count(*) as rows, count/sum/mean/min/max/stddev_samp of amount), each in a fresh process;
  the time compared is the query (read + parse + aggregate), imports excluded;
- the local pipeline runs the real template on the local cloud: upload the file (boto3
  upload_file, as `sluice` does) -> trigger Lambda -> Step Functions -> Batch jobs ingest,
  transform, aggregate. Wall time is upload start -> the execution's stop date (independent of
  how often the client polls); the client-observed time is reported too. Its result is
  checked against DuckDB's.
Then the ratio pipeline / fastest engine (target: at most 4x at 1 GB), and where the
pipeline's time went: per phase (bench.breakdown), S3 transfer rates through boto3 against the
endpoint (bench.s3speed), from this process, from another process, and against moto alone.

The stack is deployed with ShardTargetMb=64, template.yaml's default (what runs on AWS);
`sluice demo`'s 2 MB is a demo setting that turns small files into arrays. A variant run at
1 GB with 16 MB shards shows what a wider array changes.
"""

from __future__ import annotations

import hashlib
import json
import resource
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench import common, data, s3speed
from bench.breakdown import run_breakdown
from bench.engines import ENGINES
from bench.verify import compare
from sluice.runs.records import load_run

TARGET_RATIO = 4.0
EXECUTION_TARGET_RATIO = 2.0  # execution start -> SUCCEEDED vs the fastest engine, at 1 GB
CPU_TARGET_RATIO = 3.0  # CPU seconds of the whole run vs the engines' lowest, at 1 GB
ONE_PASS_MB = 102400  # split_target_mb above the input's size: ingest reads it in one pass
TARGET_SIZE = "1GB"
DEFAULT_SHARD_TARGET_MB = "64"  # template.yaml's ShardTargetMb default
VARIANT_SHARD_MB = 16.0
POLL_S = 0.05
WARMUP_ROWS = 10_000


@dataclass
class Session:
    cloud: Any
    outputs: Any
    clients: Any


def run_engines(inputs: dict[str, Path], repeat: int, scratch: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for label, path in inputs.items():
        found[label] = {}
        for engine in ENGINES:
            result = scratch / f"{engine}-{label}.parquet"
            query, cpu, process, imports = [], [], [], []
            last: dict[str, Any] = {}
            for _ in range(repeat):
                started = time.perf_counter()
                last = common.run_json(
                    [common.PYTHON, "-m", "bench.engines", engine, str(path), str(result)],
                    env=common.bench_env(),
                )
                process.append(time.perf_counter() - started)
                query.append(last["query_s"])
                cpu.append(last["query_cpu_s"])
                imports.append(last["import_s"])
            found[label][engine] = {
                "query_s": common.summary(query),
                "query_cpu_s": common.summary(cpu),
                "process_s": common.summary(process),
                "import_s": common.summary(imports),
                "groups": last["groups"],
                "rows": last["rows"],
                "result": str(result),
            }
            common.say(f"  {engine} {label}: query {found[label][engine]['query_s']['median']} s")
    return found


def _cpu_s() -> float:
    """CPU seconds of this process (client, endpoint, moto, engines) and its reaped children (jobs).

    The trigger Lambda's warm worker is not reaped, so its few milliseconds are not counted.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def wait_done(sfn: Any, arn: str, timeout_s: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} still running after {timeout_s} s")
        time.sleep(POLL_S)


def run_pipeline(
    session: Session, path: Path, oracle: Path | None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Upload -> SUCCEEDED once; returns wall times, the phase breakdown and the result check."""
    from sluice.runs.start import find_execution_for

    clients, outputs = session.clients, session.outputs
    key = f"{outputs.input_prefix}bench/{uuid.uuid4().hex[:8]}/{path.name}"
    cpu_before = _cpu_s()
    upload_start_ms, started = int(time.time() * 1000), time.perf_counter()
    # sluice.runs.start.drop_file's upload, without its HeadObject inside the timed upload: the
    # trigger runs while the client still waits for that answer.
    extra = {"Metadata": {"sluice-options": json.dumps(options)}} if options else None
    clients.s3.upload_file(str(path), outputs.input_bucket, key, ExtraArgs=extra)
    upload_end_ms = int(time.time() * 1000)
    head = clients.s3.head_object(Bucket=outputs.input_bucket, Key=key)
    arn = find_execution_for(clients, outputs, key, head, timeout_s=120)
    final = wait_done(clients.sfn, arn)
    observed = time.perf_counter() - started
    if final["status"] != "SUCCEEDED":
        raise RuntimeError(f"{path.name}: execution {final['status']}: {final.get('cause')}")
    session.cloud.batch_engine.flush(timeout=60)  # job logs shipped before reading them
    cpu = _cpu_s() - cpu_before
    run = load_run(clients.sfn, clients.batch, arn)
    breakdown = run_breakdown(run, clients.logs, outputs.job_log_group, upload_start_ms, upload_end_ms)
    output = json.loads(final.get("output") or "{}")
    prefix = (output.get("output") or {}).get("prefix")
    check: dict[str, Any] | None = None
    if oracle is not None and prefix:
        body = clients.s3.get_object(Bucket=outputs.output_bucket, Key=f"{prefix}result.parquet")[
            "Body"
        ].read()
        check = compare(pq.read_table(pa.BufferReader(body)), pq.read_table(oracle))
    for bucket, doomed in (
        (outputs.input_bucket, key),
        (outputs.work_bucket, f"work/{run.name}/"),
        (outputs.output_bucket, prefix),
    ):
        if doomed:  # moto keeps every object until deleted: free it for the next run
            s3speed.delete_prefix(clients.s3, bucket, doomed)
    size = path.stat().st_size
    wall = breakdown["total_s"]
    return {
        "input_bytes": size,
        "options": options or {},
        "wall_s": wall,
        "observed_s": round(observed, 3),
        "cpu_s": round(cpu, 3),
        "mb_per_s": round(size / wall / 1e6, 1) if wall else None,
        "shards": output.get("shardCount"),
        "result_check": check,
        "breakdown": breakdown,
    }


def pipeline_runs(
    inputs: dict[str, Path],
    engines: dict[str, dict[str, Any]],
    repeat: int,
    shard_target_mb: str,
    warmup: Path | None,
    variant: float | None,
    s3_file: Path,
) -> dict[str, Any]:
    from sluice.aws import Clients
    from sluice.cli.localrun import start_and_deploy
    from sluice.local.cloud import LocalCloud

    found: dict[str, Any] = {"runs": {}, "warmup": None, "variant": None}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-cloud-") as state:
        with LocalCloud(project_root=common.ROOT, state_dir=Path(state)) as cloud:
            started = time.perf_counter()
            outputs = start_and_deploy(cloud, {"ShardTargetMb": shard_target_mb})
            found["deploy_s"] = round(time.perf_counter() - started, 3)
            session = Session(cloud, outputs, Clients(endpoint_url=cloud.endpoint_url))
            if warmup is not None:
                found["warmup"] = run_pipeline(session, warmup, None)
                common.say(f"  pipeline warm-up (first run after deploy): {found['warmup']['wall_s']} s")
            for label, path in inputs.items():
                oracle = Path(engines[label]["duckdb"]["result"])
                runs, one_pass = [], []
                for _ in range(repeat):
                    runs.append(run_pipeline(session, path, oracle))
                    common.say(f"  pipeline {label}: {runs[-1]['wall_s']} s")
                    if label == TARGET_SIZE:
                        # The same input read in one pass by ingest (no split run), taking turns
                        # with the split runs so load on the machine hits both alike.
                        one_pass.append(run_pipeline(session, path, oracle, {"split_target_mb": ONE_PASS_MB}))
                        common.say(f"  pipeline {label}, one pass: {one_pass[-1]['wall_s']} s")
                found["runs"][label] = runs
                if one_pass:
                    found["one_pass"] = one_pass
            if variant and TARGET_SIZE in inputs:
                oracle = Path(engines[TARGET_SIZE]["duckdb"]["result"])
                found["variant"] = run_pipeline(
                    session, inputs[TARGET_SIZE], oracle, {"shard_target_mb": variant}
                )
                common.say(
                    f"  pipeline {TARGET_SIZE} with {variant} MB shards: {found['variant']['wall_s']} s"
                )
            found["s3"] = s3_rates(cloud.endpoint_url, outputs.work_bucket, s3_file)
    found["s3"]["moto_server_separate_process"] = common.run_json(
        [common.PYTHON, "-m", "bench.s3speed", "--file", str(s3_file), "--moto-server"],
        env=common.bench_env(),
    )
    found["s3"]["moto_in_process_no_http"] = common.run_json(
        [common.PYTHON, "-m", "bench.s3speed", "--file", str(s3_file), "--mock"], env=common.bench_env()
    )
    return found


def s3_rates(endpoint_url: str, bucket: str, path: Path) -> dict[str, Any]:
    """The local endpoint from this process (where `sluice local run` uploads) and from another
    process (where jobs and `aws s3 cp` run)."""
    same = s3speed.measure(s3speed.client(endpoint_url), bucket, path)
    other = common.run_json(
        [
            common.PYTHON,
            "-m",
            "bench.s3speed",
            "--file",
            str(path),
            "--endpoint",
            endpoint_url,
            "--bucket",
            bucket,
        ],
        env=common.bench_env(),
    )
    return {
        "file_bytes": path.stat().st_size,
        "endpoint_client_in_cloud_process": same,
        "endpoint_client_separate_process": other,
    }


def upload_hash_floor(nbytes: int, sample_bytes: int = 64 * 1024 * 1024) -> dict[str, float]:
    """CPU seconds an exact S3 upload of `nbytes` spends on hashes alone, at this machine's rates.

    What S3 requires of a SigV4 upload over HTTP: the client hashes the payload for the
    signature (SHA-256) and adds the flexible checksum botocore sends by default (CRC32); the
    server hashes the body again to check the signature's payload hash, computes the part's
    MD5 for its ETag, and checks the CRC32. Rates are measured here on one buffer, best of 3.
    """
    data = bytes(range(256)) * (sample_bytes // 256)

    def seconds_per_byte(hash_once: Any) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            hash_once(data)
            best = min(best, time.process_time() - start)
        return best / len(data)

    sha256 = seconds_per_byte(lambda b: hashlib.sha256(b).digest())
    md5 = seconds_per_byte(lambda b: hashlib.md5(b).digest())  # S3 ETags are MD5s
    crc32 = seconds_per_byte(zlib.crc32)
    return {
        "sha256_mb_per_cpu_s": round(1e-6 / sha256, 1),
        "md5_mb_per_cpu_s": round(1e-6 / md5, 1),
        "crc32_mb_per_cpu_s": round(1e-6 / crc32, 1),
        "floor_cpu_s": round(nbytes * (2 * sha256 + md5 + 2 * crc32), 3),
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def build_metrics(
    inputs: dict[str, Path], engines: dict[str, Any], pipeline: dict[str, Any]
) -> list[common.Metric]:
    metrics: list[common.Metric] = []
    for label in inputs:
        walls = [run["wall_s"] for run in pipeline["runs"][label]]
        wall = common.summary(walls)["median"]
        fastest_engine = min(ENGINES, key=lambda e: engines[label][e]["query_s"]["median"])
        fastest = engines[label][fastest_engine]["query_s"]["median"]
        ratio = wall / fastest if wall and fastest else None
        target = ("<=", TARGET_RATIO) if label == TARGET_SIZE else None
        metrics.append(common.metric(f"pipeline wall, {label} (upload -> SUCCEEDED, median)", wall, "s"))
        for engine in ENGINES:
            metrics.append(
                common.metric(
                    f"{engine} query, {label} (median)", engines[label][engine]["query_s"]["median"], "s"
                )
            )
        note = f"fastest: {fastest_engine}" + ("" if target else f"; the target applies at {TARGET_SIZE}")
        metrics.append(
            common.metric(f"pipeline / fastest engine, {label}", ratio, "x", target=target, note=note)
        )
        executions = [
            sum(p["seconds"] or 0.0 for p in run["breakdown"]["phases"][2:])
            for run in pipeline["runs"][label]
        ]
        execution = common.summary(executions)["median"]
        metrics.append(
            common.metric(
                f"pipeline without the upload, {label} (execution start -> stop, median)",
                execution,
                "s",
                note=f"{execution / fastest:.1f}x the fastest engine" if execution and fastest else "",
            )
        )
        at_target = label == TARGET_SIZE
        metrics.append(
            common.metric(
                f"pipeline without the upload / fastest engine, {label}",
                execution / fastest if execution and fastest else None,
                "x",
                target=("<=", EXECUTION_TARGET_RATIO) if at_target else None,
            )
        )
        cpu = common.summary([run["cpu_s"] for run in pipeline["runs"][label]])["median"]
        fastest_cpu = min(engines[label][e]["query_cpu_s"]["median"] for e in ENGINES)
        metrics.append(
            common.metric(
                f"pipeline CPU time, {label} (all processes, median)",
                cpu,
                "s",
                note=f"{cpu / fastest_cpu:.1f}x the engines' lowest query CPU ({fastest_cpu:.2f} s); "
                "CPU time is less sensitive than wall time to other work on the machine",
            )
        )
        metrics.append(
            common.metric(
                f"pipeline CPU / engines' lowest query CPU, {label}",
                cpu / fastest_cpu if cpu and fastest_cpu else None,
                "x",
                target=("<=", CPU_TARGET_RATIO) if at_target else None,
            )
        )
        if at_target and pipeline.get("one_pass"):
            single = pipeline["one_pass"]
            single_exec = common.summary(
                [sum(p["seconds"] or 0.0 for p in run["breakdown"]["phases"][2:]) for run in single]
            )["median"]
            single_cpu = common.summary([run["cpu_s"] for run in single])["median"]
            metrics.append(
                common.metric(
                    f"split run / one-pass run, {label} (execution start -> stop, medians)",
                    execution / single_exec if execution and single_exec else None,
                    "x",
                    note=f"one pass: {single_exec:.2f} s execution, {single_cpu:.1f} CPU s",
                )
            )
            metrics.append(
                common.metric(
                    f"split run / one-pass run, {label} (CPU seconds, medians)",
                    cpu / single_cpu if cpu and single_cpu else None,
                    "x",
                )
            )
        checks = [run["result_check"] for run in pipeline["runs"][label] if run["result_check"]]
        metrics.append(
            common.metric(
                f"pipeline result = DuckDB's, {label}",
                1.0 if checks and all(c["matches"] for c in checks) else 0.0,
                "bool",
                target=(">=", 1.0),
            )
        )
    if TARGET_SIZE not in inputs:
        metrics.append(
            common.metric(
                f"pipeline / fastest engine, {TARGET_SIZE}",
                None,
                "x",
                target=("<=", TARGET_RATIO),
                note=f"not measured: {TARGET_SIZE} input skipped",
            )
        )
    if TARGET_SIZE in inputs:
        floor = upload_hash_floor(inputs[TARGET_SIZE].stat().st_size)
        pipeline["upload_hash_floor"] = floor
        lowest_cpu = min(engines[TARGET_SIZE][e]["query_cpu_s"]["median"] for e in ENGINES)
        metrics.append(
            common.metric(
                f"exact upload's hashing alone, {TARGET_SIZE} (CPU seconds, both sides)",
                floor["floor_cpu_s"],
                "s",
                note=(
                    f"{floor['floor_cpu_s'] / lowest_cpu:.2f}x the engines' lowest query CPU: SHA-256 x2 "
                    f"({floor['sha256_mb_per_cpu_s']} MB/CPU s), MD5 ({floor['md5_mb_per_cpu_s']}), "
                    f"CRC32 x2 ({floor['crc32_mb_per_cpu_s']})"
                ),
            )
        )
    s3 = pipeline["s3"]
    for where, label in (
        ("endpoint_client_in_cloud_process", "endpoint, client in the cloud's process"),
        ("endpoint_client_separate_process", "endpoint, client in another process"),
        ("moto_server_separate_process", "moto's own server, another process"),
    ):
        for op in ("upload_file", "get_object_stream"):
            metrics.append(common.metric(f"S3 {op} MB/s ({label})", s3[where][op]["mb_per_s"], "MB/s"))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-1gb", action="store_true", help="only the 100 MB input (the target is at 1 GB)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and size (median)")
    parser.add_argument(
        "--pipeline-repeat", type=int, default=None, help="pipeline runs per size (default --repeat)"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="keep generated inputs here (reused)")
    parser.add_argument("--shard-target-mb", default=DEFAULT_SHARD_TARGET_MB)
    parser.add_argument("--variant-shard-mb", type=float, default=VARIANT_SHARD_MB, help="0: no variant run")
    args = parser.parse_args(argv)
    common.quiet_logs()
    started, described = time.perf_counter(), common.machine()
    sizes = dict(data.SMOKE_SIZES) if args.smoke else dict(data.SIZES)
    if args.skip_1gb:
        sizes.pop(TARGET_SIZE, None)
    repeat = 1 if args.smoke else args.repeat
    pipeline_repeat = 1 if args.smoke else (args.pipeline_repeat or args.repeat)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-data-") as scratch_dir:
        scratch = Path(scratch_dir)
        directory = args.data_dir or scratch
        inputs, generated = {}, {}
        for label, size in sizes.items():
            inputs[label], generated[label] = data.ensure_csv(directory, label, size)
        warmup = None
        if not args.smoke:
            from sluice import sampledata

            warmup = scratch / "warmup.csv"
            sampledata.generate(str(warmup), rows=WARMUP_ROWS, seed=data.SEED)
        s3_file = inputs[min(inputs, key=lambda label: abs(sizes[label] - 100_000_000))]
        common.say("throughput: engines")
        engines = run_engines(inputs, repeat, scratch)
        common.say("throughput: local pipeline")
        pipeline = pipeline_runs(
            inputs,
            engines,
            pipeline_repeat,
            args.shard_target_mb,
            warmup,
            None if args.smoke or not args.variant_shard_mb else args.variant_shard_mb,
            s3_file,
        )
    for label in engines:
        for engine in engines[label].values():
            engine.pop("result")
    details = {
        "inputs": {label: {"bytes": sizes[label], "generate_s": generated[label]} for label in inputs},
        "shard_target_mb": args.shard_target_mb,
        "engines": engines,
        "pipeline": pipeline,
        "median_runs": {label: _median_run(runs) for label, runs in pipeline["runs"].items()},
        "skipped": [] if TARGET_SIZE in inputs else [TARGET_SIZE],
    }
    path = common.write_result(
        common.results_dir_of(args),
        "throughput",
        smoke=args.smoke,
        metrics=build_metrics(inputs, engines, pipeline),
        details=details,
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
