"""Many small files: one input-manifest run over N files vs N separate uploads (N = 2,000).

Both on one local cloud with the deployed template, IAM enforced. The N files (a header and 20
rows each, the default spec's columns) are made once.

- **Manifest run:** the files are uploaded under the stack's parts prefix (the trigger ignores
  them), then one `.manifest.json` naming the prefix is uploaded into the input prefix. Wall time
  runs from the manifest's PUT to the execution's stop; the Batch jobs are counted from the run's
  records (an array counts its children).
- **Separate uploads:** the same N files are uploaded into the input prefix by 8 threads, each
  starting its own run. Wall time runs from the first PUT to the last of the N executions' stop.
  Jobs are counted from every run's records.

Reported: both wall times, their ratio, both job counts, and the separate runs' failures (which
must be 0).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import common

FILES = 2000
SMOKE_FILES = 10
ROWS = 20
UPLOAD_THREADS = 8


def small_csv(number: int) -> bytes:
    lines = ["category,country,amount"]
    lines += [f"c{(number + i) % 7},K{i % 3},{number * 0.5 + i}" for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def _executions(sfn: Any, machine: str, prefix: str) -> list[dict[str, Any]]:
    found = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        found += [e for e in page["executions"] if e["name"].startswith(prefix)]
    return found


def _jobs(clients: Any, arns: list[str]) -> int:
    from sluice.runs.records import load_run

    def count(arn: str) -> int:
        run = load_run(clients.sfn, clients.batch, arn)
        return sum(len(job.runs()) for job in run.jobs)

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(count, arns))


def manifest_run(session: dict[str, Any], files: int, tag: str) -> dict[str, Any]:
    from sluice.runs.start import find_execution_for

    clients, outputs = session["clients"], session["outputs"]
    parts = f"{outputs.values.get('PartsPrefix', 'parts/')}bench-{tag}/"
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(
            pool.map(
                lambda n: clients.s3.put_object(
                    Bucket=outputs.input_bucket, Key=f"{parts}f{n:05d}.csv", Body=small_csv(n)
                ),
                range(files),
            )
        )
    key = f"{outputs.input_prefix}bench-{tag}/run.manifest.json"
    started = time.time()
    clients.s3.put_object(Bucket=outputs.input_bucket, Key=key, Body=json.dumps({"prefix": parts}).encode())
    head = clients.s3.head_object(Bucket=outputs.input_bucket, Key=key)
    arn = find_execution_for(clients, outputs, key, head, timeout_s=120)
    final = _wait(clients.sfn, [arn], timeout_s=1800)[0]
    if final["status"] != "SUCCEEDED":
        raise RuntimeError(f"manifest run {final['status']}: {final.get('cause')}")
    return {
        "files": files,
        "wall_s": round(final["stopDate"].timestamp() - started, 3),
        "executions": 1,
        "jobs": _jobs(clients, [arn]),
    }


def separate_runs(session: dict[str, Any], files: int, tag: str) -> dict[str, Any]:
    clients, outputs = session["clients"], session["outputs"]
    name = f"mf{tag}"
    started = time.time()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(
            pool.map(
                lambda n: clients.s3.put_object(
                    Bucket=outputs.input_bucket,
                    Key=f"{outputs.input_prefix}bench-{tag}/{name}-{n:05d}.csv",
                    Body=small_csv(n),
                ),
                range(files),
            )
        )
    deadline = time.monotonic() + 3600
    while True:
        found = _executions(clients.sfn, outputs.state_machine_arn, f"{name}-")
        if len(found) >= files and all(e["status"] != "RUNNING" for e in found):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {files} separate runs started or finished")
        time.sleep(1.0)
    failed = [e for e in found if e["status"] != "SUCCEEDED"]
    return {
        "files": files,
        "wall_s": round(max(e["stopDate"].timestamp() for e in found) - started, 3),
        "executions": len(found),
        "failed": len(failed),
        "failures": _why(clients.sfn, failed),
        "jobs": _jobs(clients, [e["executionArn"] for e in found]),
    }


def _why(sfn: Any, failed: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Status, error and cause of (the first `limit`) executions that did not succeed."""
    reasons = []
    for execution in failed[:limit]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        reasons.append(
            {
                "name": execution["name"],
                "status": described["status"],
                "error": described.get("error"),
                "cause": (described.get("cause") or "")[:1000],
            }
        )
    return reasons


def _wait(sfn: Any, arns: list[str], timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        described = [sfn.describe_execution(executionArn=arn) for arn in arns]
        if all(d["status"] != "RUNNING" for d in described):
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arns} still running after {timeout_s} s")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=None, help=f"files per mode (default {FILES})")
    args = parser.parse_args(argv)
    common.quiet_logs()
    started, described = time.perf_counter(), common.machine()
    files = args.files or (SMOKE_FILES if args.smoke else FILES)
    common.say(f"manyfiles: one manifest run over {files} files vs {files} separate uploads")
    from sluice.aws import Clients
    from sluice.cli.localrun import start_and_deploy
    from sluice.local.cloud import LocalCloud

    with tempfile.TemporaryDirectory(prefix="sluice-bench-manyfiles-") as state:
        with LocalCloud(project_root=common.ROOT, state_dir=Path(state)) as cloud:
            outputs = start_and_deploy(cloud)
            session = {"outputs": outputs, "clients": Clients(endpoint_url=cloud.endpoint_url)}
            tag = uuid.uuid4().hex[:8]
            manifest = manifest_run(session, files, tag)
            common.say(f"  manifest run: {manifest['wall_s']} s, {manifest['jobs']} jobs")
            separate = separate_runs(session, files, tag)
            common.say(
                f"  separate uploads: {separate['wall_s']} s, {separate['executions']} runs, "
                f"{separate['jobs']} jobs, {separate['failed']} failed"
            )
    metrics = [
        common.metric(f"manifest run over {files} files, PUT -> SUCCEEDED", manifest["wall_s"], "s"),
        common.metric(f"manifest run over {files} files, Batch jobs", manifest["jobs"], "jobs"),
        common.metric(f"{files} separate uploads, first PUT -> last SUCCEEDED", separate["wall_s"], "s"),
        common.metric(f"{files} separate uploads, Batch jobs", separate["jobs"], "jobs"),
        common.metric(
            "separate uploads / manifest run, wall time",
            separate["wall_s"] / manifest["wall_s"] if manifest["wall_s"] else None,
            "x",
        ),
        common.metric(
            f"{files} separate uploads, failed runs", separate["failed"], "runs", target=("<=", 0.0)
        ),
    ]
    path = common.write_result(
        common.results_dir_of(args),
        "manyfiles",
        smoke=args.smoke,
        metrics=metrics,
        details={"manifest": manifest, "separate": separate, "rows_per_file": ROWS},
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
