"""Local cloud start and Batch job start: where `sluice local up` spends its time before it is
ready, and what a Python job image costs from RUNNING to its first log line.

1. `sluice local up` as a person runs it: spawn -> the "ready" line on stdout (the template is
   deployed and every resource usable), then SIGTERM -> exit. Median of the runs.
2. The same start in a helper process, by phase: importing the CLI and the cloud (moto and
   the services), `LocalCloud.start()` (moto backends, endpoint, IAM principals, engines), and
   the deploy of template.yaml split into YAML parsing, the SAM translation, boto3 client
   creation and each resource type's creators (the calls through the endpoint).
   `python -X importtime` ranks what the import phase imports.
3. Job start on that cloud, for each real job image (ingest, transform, aggregate): SubmitJob
   with one attempt and no run environment (the job logs its first line, then fails fast on
   the missing SLUICE_RUN_ID), timed SubmitJob -> createdAt -> startedAt (RUNNING) -> first
   log line.
Steps 2 and 3 run in pairs of helpers, taking turns so they share the machine's load:
"before" with the start-up cuts switched off (`_without_cuts`, no SAM cache, jobs exec'ed:
SLUICE_BATCH_ZYGOTE=0) and "after" as the code runs. The first job of an image starts its
zygote (inside STARTING), so it is reported apart from the rest.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common, imports

IMAGES = ("ingest", "transform", "aggregate")
READY_LINE = "Sluice local cloud ready at"
POLL_S = 0.005
READY_TARGET_S = 2.0
JOB_START_TARGET_MS = 50.0
CLIENTS_PHASE = "deploy: boto3 clients (part of the creators' times)"


# -- 1. the real command ------------------------------------------------------------------


def local_up_once(timeout_s: float = 120) -> dict[str, float]:
    """Spawn `sluice local up`, wait for the ready line, stop it; seconds of each."""
    sluice = Path(common.PYTHON).with_name("sluice")
    argv = [str(sluice)] if sluice.exists() else [common.PYTHON, "-m", "sluice"]
    with tempfile.TemporaryDirectory(prefix="sluice-bench-up-") as cwd:
        env = common.bench_env(SLUICE_PROJECT_ROOT=str(common.ROOT))
        started = time.perf_counter()
        process = subprocess.Popen(
            [*argv, "local", "up"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        try:
            ready = None
            deadline = started + timeout_s
            for line in process.stdout:
                if line.startswith(READY_LINE):
                    ready = time.perf_counter() - started
                    break
                if time.perf_counter() > deadline:
                    break
            if ready is None:
                raise RuntimeError("sluice local up never printed its ready line")
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
            return {"ready_s": ready, "stop_s": time.perf_counter() - stopping}
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


# -- 2 and 3. the helper: phases, then job starts -----------------------------------------


class Phases:
    """Wall time per named phase, accumulated (benchmark-only wrappers around the deployer)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed


def _instrument(phases: Phases) -> None:
    from sluice.local.deploy import deployer
    from sluice.local.deploy.creators import base

    deployer.load_template = phases.wrap("deploy: parse template.yaml", deployer.load_template)
    deployer.apply_transforms = phases.wrap("deploy: SAM translate", deployer.apply_transforms)
    base.CreateContext.client = phases.wrap(CLIENTS_PHASE, base.CreateContext.client)  # type: ignore[method-assign]
    for rtype, creator in list(deployer.CREATORS.items()):
        deployer.CREATORS[rtype] = phases.wrap(f"create {rtype}", creator)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _job_starts(cloud: Any, rounds: int) -> dict[str, list[dict[str, float]]]:
    batch = cloud.client("batch")
    logs = cloud.client("logs")
    described = batch.describe_job_queues()["jobQueues"][0]
    queue = described["jobQueueName"]
    # A fair-share queue needs the share the pipeline submits under (template parameter).
    share = {"shareIdentifier": "sluice"} if described.get("schedulingPolicyArn") else {}
    found: dict[str, list[dict[str, float]]] = {image: [] for image in IMAGES}
    for index in range(rounds):
        for image in IMAGES:
            submitted = time.time() * 1000
            job_id = batch.submit_job(
                jobName=f"bench-start-{image}-{index}",
                jobQueue=queue,
                jobDefinition=f"sluice-{image}",
                retryStrategy={"attempts": 1},
                **share,
            )["jobId"]
            deadline = time.monotonic() + 120
            while (job := batch.describe_jobs(jobs=[job_id])["jobs"][0])["status"] not in (
                "SUCCEEDED",
                "FAILED",
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{image} job still {job['status']}")
                time.sleep(POLL_S)
            cloud.batch_engine.flush(timeout=30)
            stream = job["container"]["logStreamName"]
            group = (
                job["container"]
                .get("logConfiguration", {})
                .get("options", {})
                .get("awslogs-group", "/aws/batch/job")
            )
            events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)[
                "events"
            ]
            if not events:
                raise RuntimeError(f"{image} job {job_id} wrote no log line")
            first = events[0]["timestamp"]
            found[image].append(
                {
                    "submit_to_first_line_ms": first - submitted,
                    "queue_ms": job["startedAt"] - job["createdAt"],
                    "running_to_first_line_ms": first - job["startedAt"],
                    "first_line_to_stop_ms": job["stoppedAt"] - first,
                }
            )
    return found


def _without_cuts() -> None:
    """The start-up as it was before bench/README's "Start-up" changes, for a same-run baseline:
    boto3 sessions parse botocore's data each (and the deployer makes one per service), every
    moto IAM backend parses AWS's managed policies, template.yaml is parsed on every read, SAM
    translates every time (SLUICE_CACHE_DIR=off, set by the caller) and jobs are exec'ed
    (SLUICE_BATCH_ZYGOTE=0). The translator is imported up front as the cloud's import did."""
    import samtranslator.translator.translator  # noqa: F401

    from sluice.local.deploy import cfnyaml
    from sluice.local.deploy.creators import base
    from sluice.local.iam import backend as iam
    from sluice.local.wire import botodata

    botodata.install = lambda: None
    iam.install_managed_policy_cache = lambda: None
    cfnyaml._PARSED_KEPT = 0
    one_session_client = base.CreateContext.client

    def session_per_client(self: base.CreateContext, service: str) -> Any:
        self._session = None  # a new boto3 session for every service's client, as before
        return one_session_client(self, service)

    base.CreateContext.client = session_per_client  # type: ignore[method-assign]


def helper(rounds: int, baseline: bool) -> dict[str, Any]:
    """In a fresh interpreter: import, start, deploy (by phase), then the job starts."""
    begun = time.perf_counter()
    common.quiet_logs()
    if baseline:
        _without_cuts()
    import sluice.local.cloud  # noqa: F401  (what `local up` imports before starting)
    from sluice.cli.localrun import new_cloud, start_and_deploy

    imported = time.perf_counter()
    phases = Phases()
    _instrument(phases)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-startup-") as state:
        cloud = new_cloud(state_dir=Path(state) / "cloud")
        cloud.start()
        started = time.perf_counter()
        start_and_deploy(cloud)
        deployed = time.perf_counter()
        cpu_at_ready = _cpu_s()
        try:
            jobs = _job_starts(cloud, rounds)
            executor = getattr(cloud.batch_engine, "_executor", None)
            forked = getattr(executor, "forked", 0)
        finally:
            stopping = time.perf_counter()
            cloud.stop()
            stopped = time.perf_counter()
    deploy_s = deployed - started
    accounted = sum(seconds for name, seconds in phases.seconds.items() if name != CLIENTS_PHASE)
    return {
        "baseline": baseline,
        "zygote": os.environ.get("SLUICE_BATCH_ZYGOTE", "1") != "0",
        "phases_s": {
            "import sluice.cli.localrun, sluice.local.cloud": imported - begun,
            "LocalCloud.start (moto, endpoint, IAM, engines)": started - imported,
            **dict(sorted(phases.seconds.items(), key=lambda item: -item[1])),
            "deploy: the rest (outputs, evaluation, recording the stack)": deploy_s - accounted,
        },
        "import_to_ready_s": deployed - begun,
        "deploy_s": deploy_s,
        "cpu_s_at_ready": cpu_at_ready,
        "stop_s": stopped - stopping,
        "jobs": jobs,
        "forked": forked,
    }


def _helper_run(rounds: int, baseline: bool) -> dict[str, Any]:
    extra = {"SLUICE_BATCH_ZYGOTE": "0", "SLUICE_CACHE_DIR": "off"} if baseline else {}
    started = time.perf_counter()
    argv = [common.PYTHON, "-m", "bench.startup", "--helper", "--rounds", str(rounds)]
    found = common.run_json(
        argv + (["--baseline"] if baseline else []), cwd=common.ROOT, env=common.bench_env(**extra)
    )
    found["process_wall_s"] = time.perf_counter() - started
    return found


def _job_summary(jobs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for image, runs in jobs.items():
        summary[image] = {
            "cold": runs[0] if runs else None,
            "warm_running_to_first_line_ms": common.summary(
                [r["running_to_first_line_ms"] for r in runs[1:]]
            ),
            "warm_submit_to_first_line_ms": common.summary([r["submit_to_first_line_ms"] for r in runs[1:]]),
        }
    return summary


def _warm(helpers: list[dict[str, Any]], field: str) -> float | None:
    """Median over every image's jobs but the first (which starts the image's zygote)."""
    values = [run[field] for found in helpers for runs in found["jobs"].values() for run in runs[1:]]
    return common.summary(values)["median"]


def _cold(helpers: list[dict[str, Any]], field: str) -> float | None:
    values = [runs[0][field] for found in helpers for runs in found["jobs"].values() if runs]
    return common.summary(values)["median"]


def _median(helpers: list[dict[str, Any]], field: str) -> float | None:
    return common.summary([found[field] for found in helpers])["median"]


def _phase_medians(helpers: list[dict[str, Any]]) -> dict[str, float | None]:
    names = list(dict.fromkeys(name for found in helpers for name in found["phases_s"]))
    return {name: common.summary([f["phases_s"].get(name, 0.0) for f in helpers])["median"] for name in names}


def _ratio(after: float | None, before: float | None) -> float | None:
    return None if after is None or not before else after / before


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--helper", action="store_true", help=argparse_hidden())
    parser.add_argument("--baseline", action="store_true", help=argparse_hidden())
    parser.add_argument("--rounds", type=int, default=None, help="jobs per image (the first is cold)")
    parser.add_argument("--up-runs", type=int, default=None, help="`sluice local up` runs")
    parser.add_argument("--pairs", type=int, default=None, help="before/after helper pairs")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.smoke else 5)
    if args.helper:
        print(json.dumps(helper(rounds, args.baseline)))
        return 0
    started = time.perf_counter()
    described = common.machine()
    up_runs = args.up_runs or (1 if args.smoke else 3)
    common.say(f"sluice local up -> ready, {up_runs} runs")
    ups = [local_up_once() for _ in range(up_runs)]
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    for pair in range(args.pairs or (1 if args.smoke else 2)):
        common.say(f"phases and job starts, pair {pair + 1}: before (no cuts, exec), after (cuts, zygote)")
        before.append(_helper_run(rounds, baseline=True))
        after.append(_helper_run(rounds, baseline=False))
    text = imports.importtime("import sluice.cli.localrun, sluice.local.cloud", cwd=common.ROOT)
    found: dict[str, Any] = {
        "local_up": {
            "ready_s": common.summary([u["ready_s"] for u in ups]),
            "stop_s": common.summary([u["stop_s"] for u in ups]),
        },
        "phases_before_s": _phase_medians(before),
        "phases_after_s": _phase_medians(after),
        "jobs_before": [_job_summary(b["jobs"]) for b in before],
        "jobs_after": [_job_summary(a["jobs"]) for a in after],
        "forked_after": [a["forked"] for a in after],
        "helpers_before": before,
        "helpers_after": after,
        "import_packages": imports.package_costs(text, own=("sluice",), limit=15),
        "import_total_ms": imports.total_ms(text, ("sluice.cli.localrun", "sluice.local.cloud")),
    }
    ready = found["local_up"]["ready_s"]["median"]
    ready_before, ready_after = _median(before, "import_to_ready_s"), _median(after, "import_to_ready_s")
    running_before = _warm(before, "running_to_first_line_ms")
    running_after = _warm(after, "running_to_first_line_ms")
    metrics = [
        common.metric("sluice local up -> ready (median)", ready, "s", target=("<=", READY_TARGET_S)),
        common.metric(
            "sluice local up: SIGTERM -> exit (median)", found["local_up"]["stop_s"]["median"], "s"
        ),
        common.metric("in-process import -> deployed, before (median)", ready_before, "s"),
        common.metric("in-process import -> deployed, after (median)", ready_after, "s"),
        common.metric("after / before, import -> deployed", _ratio(ready_after, ready_before), "ratio"),
        common.metric("CPU seconds at ready, before (median)", _median(before, "cpu_s_at_ready"), "s"),
        common.metric("CPU seconds at ready, after (median)", _median(after, "cpu_s_at_ready"), "s"),
        common.metric("deploy of template.yaml, before (median)", _median(before, "deploy_s"), "s"),
        common.metric("deploy of template.yaml, after (median)", _median(after, "deploy_s"), "s"),
        common.metric(
            "import of the CLI and the cloud (-X importtime, after)", found["import_total_ms"], "ms"
        ),
        common.metric("job start, exec: RUNNING -> first log line (median, 3 images)", running_before, "ms"),
        common.metric(
            "job start, zygote: RUNNING -> first log line (median, 3 images)",
            running_after,
            "ms",
            target=("<=", JOB_START_TARGET_MS),
            note="each image's first job excluded (it starts the zygote, in STARTING)",
        ),
        common.metric(
            "zygote / exec, RUNNING -> first log line", _ratio(running_after, running_before), "ratio"
        ),
        common.metric(
            "job start, exec: SubmitJob -> first log line (median)",
            _warm(before, "submit_to_first_line_ms"),
            "ms",
        ),
        common.metric(
            "job start, zygote: SubmitJob -> first log line (median)",
            _warm(after, "submit_to_first_line_ms"),
            "ms",
        ),
        common.metric(
            "job start, zygote: an image's first job, SubmitJob -> first log line (median)",
            _cold(after, "submit_to_first_line_ms"),
            "ms",
            note="includes starting the image's zygote",
        ),
        common.metric(
            "job start, exec: an image's first job, SubmitJob -> first log line (median)",
            _cold(before, "submit_to_first_line_ms"),
            "ms",
        ),
    ]
    path = common.write_result(
        common.results_dir_of(args),
        "startup",
        smoke=args.smoke,
        metrics=metrics,
        details=found,
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
