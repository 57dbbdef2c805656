"""Job start floor: SubmitJob -> the job's first log line, for a real Python job.

On the local cloud (the real template deployed), a small file runs through the pipeline
once; then the transform job definition is submitted again, one job at a time, with that
run's SLUICE_* environment (transform is idempotent: it rewrites the same partial). Each
job's time is split with the timestamps the APIs give: SubmitJob call -> createdAt
(SUBMITTED) -> startedAt (RUNNING; RUNNABLE and STARTING lie between and are not exposed by
DescribeJobs) -> first log line ("started", written by jobkit once the job's modules are
imported) -> stoppedAt.

The same job started directly (no engine) shows what the interpreter and the imports cost on
their own; `python -c pass`, `import pyarrow, boto3` and `-X importtime` break it down. Last,
the floor of a fork server: a pre-imported template process forks one child per attempt (a
zygote, as Android starts apps, or multiprocessing's forkserver with preloading); the child
writes the same first line. The engine has forked Python jobs that way since 2026-12-05
(`sluice/local/batch/zygote.py`), so the engine numbers above include it; bench/startup.py
compares it with a plain exec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common, imports
from bench.breakdown import log_span, run_breakdown
from sluice.runs.records import load_run

JOB = "transform"
OWN_PACKAGES = ("jobkit", "ingest", "transform", "aggregate")
POLL_S = 0.01


def _ms_now() -> int:
    return int(time.time() * 1000)


def _wait_job(batch: Any, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']}")
        time.sleep(POLL_S)


def engine_starts(runs: int) -> dict[str, Any]:
    """The in-situ pipeline run's jobs, then `runs` transform jobs submitted one at a time."""
    from sluice import sampledata
    from sluice.aws import Clients
    from sluice.cli.localrun import start_and_deploy
    from sluice.local.cloud import LocalCloud
    from sluice.runs.start import drop_file, find_execution_for

    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-start-") as state:
        source = Path(state) / "small.csv"
        sampledata.generate(str(source), rows=20_000, seed=7)
        with LocalCloud(project_root=common.ROOT, state_dir=Path(state) / "cloud") as cloud:
            outputs = start_and_deploy(cloud, {"ShardTargetMb": "64"})
            clients = Clients(endpoint_url=cloud.endpoint_url)
            key, head = drop_file(clients, outputs, source, f"{outputs.input_prefix}bench/small.csv", None)
            arn = find_execution_for(clients, outputs, key, head, timeout_s=60)
            while (final := clients.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                time.sleep(0.05)
            if final["status"] != "SUCCEEDED":
                raise RuntimeError(f"pipeline run {final['status']}: {final.get('cause')}")
            cloud.batch_engine.flush(timeout=30)
            run = load_run(clients.sfn, clients.batch, arn)
            found["pipeline_run"] = run_breakdown(run, clients.logs, outputs.job_log_group)["stages"]
            transform = next(job for job in run.jobs if job.stage == JOB)
            described = clients.batch.describe_jobs(jobs=[transform.job_id])["jobs"][0]
            sluice_env = [
                {"name": item["name"], "value": item["value"]}
                for item in described["container"].get("environment", [])
                if item["name"].startswith("SLUICE_")
                and item["name"] not in ("SLUICE_WORK_BUCKET", "SLUICE_OUTPUT_BUCKET")
            ]
            found["engine"] = []
            for index in range(runs):
                submitted = _ms_now()
                job_id = clients.batch.submit_job(
                    jobName=f"bench-start-{index}",
                    jobQueue=described["jobQueue"],
                    jobDefinition=described["jobDefinition"],
                    containerOverrides={"environment": sluice_env},
                    # The stack's queue is fair-share: the job's share, as the state machine gives it.
                    **(
                        {"shareIdentifier": described["shareIdentifier"]}
                        if described.get("shareIdentifier")
                        else {}
                    ),
                )["jobId"]
                job = _wait_job(clients.batch, job_id)
                if job["status"] != "SUCCEEDED":
                    raise RuntimeError(f"transform job {job['status']}: {job.get('statusReason')}")
                cloud.batch_engine.flush(timeout=30)
                span = log_span(clients.logs, outputs.job_log_group, job["container"].get("logStreamName"))
                first = span.first_ms if span else None
                found["engine"].append(
                    {
                        "submit_call_ms": job["createdAt"] - submitted,
                        "queue_ms": job["startedAt"] - job["createdAt"],
                        "start_to_first_line_ms": None if first is None else first - job["startedAt"],
                        "submit_to_first_line_ms": None if first is None else first - submitted,
                        "first_line_to_stopped_ms": None if first is None else job["stoppedAt"] - first,
                    }
                )
            # The same job run directly, with the environment the engine gives it.
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONUNBUFFERED": "1",
                **cloud.environment,
                **{item["name"]: item["value"] for item in described["container"].get("environment", [])},
            }
            found["direct"] = [direct_first_line(env) for _ in range(runs)]
    return found


def direct_first_line(env: dict[str, str]) -> dict[str, float]:
    """Spawn -> first line (start + imports) and last line -> exit (interpreter teardown)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [common.PYTHON, "-m", JOB],
        cwd=common.CONTAINERS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    first = last = None
    for _ in process.stdout:  # the job flushes every line
        last = time.perf_counter()
        first = first or last
    code = process.wait()
    exited = time.perf_counter()
    if code != 0 or first is None or last is None:
        raise RuntimeError(f"direct {JOB} exited {code}")
    return {
        "first_line_ms": (first - started) * 1000,
        "last_line_to_exit_ms": (exited - last) * 1000,
        "total_ms": (exited - started) * 1000,
    }


def process_ms(argv: list[str], runs: int, cwd: Path | None = None) -> dict[str, Any]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return common.summary(samples)


def zygote_child(runs: int) -> dict[str, Any]:
    """Runs in containers/: import the job once, then fork a child per 'attempt'."""
    import importlib

    started = time.perf_counter()
    importlib.import_module(f"{JOB}.job")
    importlib.import_module("jobkit.runner")
    from jobkit.log import JsonLogger

    preload_ms = (time.perf_counter() - started) * 1000
    samples = []
    for _ in range(runs):
        read_end, write_end = os.pipe()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the attempt: own process, own session, output to the engine's pipe
            os.close(read_end)
            os.setsid()
            os.dup2(write_end, 1)
            JsonLogger(job=JOB).info("started")
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            pipe.readline()
        samples.append((time.perf_counter() - started) * 1000)
        os.waitpid(pid, 0)
    return {"preload_ms": preload_ms, "fork_to_first_line_ms": common.summary(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--zygote-child", type=int, default=None, help="internal")
    args = parser.parse_args(argv)
    if args.zygote_child is not None:
        print(json.dumps(zygote_child(args.zygote_child)))
        return 0
    common.quiet_logs()
    started, described = time.perf_counter(), common.machine()
    runs = 2 if args.smoke else args.runs
    common.say("startfloor: job start through the engine, directly, and forked")
    found = engine_starts(runs)
    job_imports = f"import {JOB}.job, jobkit.runner"
    text = imports.importtime(job_imports, cwd=common.CONTAINERS)
    found["processes"] = {
        "python -c pass": process_ms([common.PYTHON, "-c", "pass"], runs * 2),
        "python -c 'import pyarrow, boto3'": process_ms([common.PYTHON, "-c", "import pyarrow, boto3"], runs),
        f"python -c '{job_imports}'": process_ms(
            [common.PYTHON, "-c", job_imports], runs, cwd=common.CONTAINERS
        ),
    }
    found["job_import_ms"] = imports.total_ms(text, (f"{JOB}.job", "jobkit.runner"))
    found["job_import_packages"] = imports.package_costs(text, OWN_PACKAGES)
    found["site_imports"] = imports.direct_imports(text, ("site",))
    found["zygote"] = common.run_json(
        [common.PYTHON, "-m", "bench.startfloor", "--zygote-child", str(runs * 3)],
        cwd=common.CONTAINERS,
        env=common.bench_env(),
    )
    engine = found["engine"]
    floor = common.summary(
        [r["submit_to_first_line_ms"] for r in engine if r["submit_to_first_line_ms"] is not None]
    )
    spawn = common.summary(
        [r["start_to_first_line_ms"] for r in engine if r["start_to_first_line_ms"] is not None]
    )
    queue = common.summary([r["queue_ms"] for r in engine])
    direct = common.summary([r["first_line_ms"] for r in found["direct"]])
    teardown = common.summary([r["last_line_to_exit_ms"] for r in found["direct"]])
    zygote = found["zygote"]["fork_to_first_line_ms"]["median"]
    share = spawn["median"] / floor["median"] if floor["median"] else None
    metrics = [
        common.metric(f"{JOB}: SubmitJob -> first log line (engine, median)", floor["median"], "ms"),
        common.metric("  of which SubmitJob -> RUNNING (API, scheduling)", queue["median"], "ms"),
        common.metric(
            "  of which RUNNING -> first log line (process start + imports)", spawn["median"], "ms"
        ),
        common.metric("share of the floor spent starting Python and importing", share, "ratio"),
        common.metric(f"{JOB} started directly: spawn -> first log line (median)", direct["median"], "ms"),
        common.metric(
            f"{JOB} started directly: last log line -> exit (interpreter teardown, median)",
            teardown["median"],
            "ms",
        ),
        common.metric("python -c pass (median)", found["processes"]["python -c pass"]["median"], "ms"),
        common.metric(
            "python -c 'import pyarrow, boto3' (median)",
            found["processes"]["python -c 'import pyarrow, boto3'"]["median"],
            "ms",
        ),
        common.metric(f"import {JOB}.job, jobkit.runner (-X importtime)", found["job_import_ms"], "ms"),
        common.metric(
            "proposal measured: fork of a pre-imported template -> first log line (median)",
            zygote,
            "ms",
            note="process isolation kept: one process per attempt",
        ),
    ]
    found["summary"] = {"submit_to_first_line_ms": floor, "start_to_first_line_ms": spawn, "queue_ms": queue}
    path = common.write_result(
        common.results_dir_of(args),
        "startfloor",
        smoke=args.smoke,
        metrics=metrics,
        details=found,
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
