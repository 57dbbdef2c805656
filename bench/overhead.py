"""Orchestration overhead: the real pipeline with no work in it, StartExecution -> SUCCEEDED.

What is measured, and why this is the honest number. The deployed template's own state
machine definition is copied with one change: its three Batch job definitions are replaced
by copies that run `true` (same queue, platform, vCPU/memory, retry strategy, timeout and
log configuration; only image and command differ). Every state runs as in a real run:
ValidateInput, CheckOptions, PrepareRun (intrinsics), RunIngest (.sync), ReadManifest (a real
S3 getObject of a manifest saying 10 shards, written beforehand at the key the execution's
name determines, since `true` writes nothing), ChooseFanOut, RunTransformArray (.sync, an
array of 10 children), RunAggregate (.sync), SummarizeRun. So the time is all orchestration:
Step Functions' interpreter, Batch submission/scheduling, process spawn, `.sync` completion
and S3 - with nothing of the jobs' work. Median of 5 runs after one warm-up.

The trigger leg (S3 upload -> EventBridge -> trigger Lambda -> StartExecution) cannot start the
no-op copy (the trigger starts the deployed pipeline, whose manifest key depends on a name
the trigger derives), so it is measured on its own on the same cloud: a one-row CSV is
uploaded into the input prefix and the time from the PUT's start to the execution's start
date is taken (the first upload after deploy meets a cold Lambda worker and is reported
apart). Upload -> SUCCEEDED of a no-op pipeline is reported as the sum of the two medians.
Those real executions run to the end, which gives the real pipeline's floor too: upload ->
SUCCEEDED on the smallest possible input, three Python jobs included.

A third variant, three `.sync` tasks and nothing else (ingest -> array of 10 -> aggregate),
shows what the other states cost.
"""

from __future__ import annotations

import copy
import json
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common
from bench.breakdown import run_breakdown
from sluice.runs.records import load_run

TARGET_S = 2.0
ARRAY_SIZE = 10
POLL_S = 0.02
SYNC_RESOURCE = "arn:aws:states:::batch:submitJob.sync"
_REPORT = re.compile(r"Duration: ([\d.]+) ms.*?(?:Init Duration: ([\d.]+) ms)?\s*$")


def _wait_done(sfn: Any, arn: str, timeout_s: float = 120) -> tuple[dict[str, Any], float]:
    """The final DescribeExecution and when (perf_counter) this client first saw it."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described, time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} still running after {timeout_s} s")
        time.sleep(POLL_S)


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def noop_job_definitions(batch: Any, definition: dict[str, Any]) -> dict[str, str]:
    """Register a `true` copy of every job definition the state machine uses: real ARN -> copy's ARN."""
    copies: dict[str, str] = {}
    for state in definition["States"].values():
        if state.get("Resource") != SYNC_RESOURCE:
            continue
        arn = state["Parameters"]["JobDefinition"]
        if arn in copies:
            continue
        real = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]
        container = copy.deepcopy(real["containerProperties"])
        container["image"] = "sluice-bench/noop:latest"  # no ECR repository: runs as a host command
        container["command"] = ["true"]
        kwargs = {
            key: real[key]
            for key in (
                "platformCapabilities",
                "retryStrategy",
                "timeout",
                "propagateTags",
                "schedulingPriority",
            )
            if key in real
        }
        registered = batch.register_job_definition(
            jobDefinitionName=f"{real['jobDefinitionName']}-noop",
            type="container",
            containerProperties=container,
            **kwargs,
        )
        copies[arn] = registered["jobDefinitionArn"]
    return copies


def three_task_definition(queue: str, definitions: list[str], share: str | None) -> dict[str, Any]:
    """ingest -> array of ARRAY_SIZE -> aggregate, `.sync` each, nothing else."""

    def task(name: str, definition: str, following: str | None, array: bool = False) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "JobName": f"bench-{name}",
            "JobQueue": queue,
            "JobDefinition": definition,
        }
        if share is not None:  # the stack's queue is fair-share (template.yaml)
            parameters["ShareIdentifier"] = share
        if array:
            parameters["ArrayProperties"] = {"Size": ARRAY_SIZE}
        state: dict[str, Any] = {"Type": "Task", "Resource": SYNC_RESOURCE, "Parameters": parameters}
        state["ResultPath"] = None
        state.update({"Next": following} if following else {"End": True})
        return state

    ingest, transform, aggregate = definitions
    return {
        "StartAt": "Ingest",
        "States": {
            "Ingest": task("ingest", ingest, "Transform"),
            "Transform": task("transform", transform, "Aggregate", array=True),
            "Aggregate": task("aggregate", aggregate, None),
        },
    }


def state_timings(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Each state's time from the execution history (entered -> exited)."""
    entered: dict[str, Any] = {}
    found = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            if "stateEnteredEventDetails" in event:
                entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
            elif "stateExitedEventDetails" in event:
                name = event["stateExitedEventDetails"]["name"]
                if name in entered:
                    seconds = (event["timestamp"] - entered.pop(name)).total_seconds()
                    found.append({"state": name, "seconds": round(seconds, 3)})
    return found


def run_noop(session: Any, machine_arn: str, payload: dict[str, Any], with_manifest: bool) -> dict[str, Any]:
    clients, outputs = session["clients"], session["outputs"]
    name = f"bench-noop-{uuid.uuid4().hex[:12]}"
    if with_manifest:
        clients.s3.put_object(
            Bucket=outputs.work_bucket,
            Key=f"work/{name}/manifest.json",
            Body=json.dumps({"run_id": name, "shard_count": ARRAY_SIZE}).encode(),
        )
    start_ms, started = int(time.time() * 1000), time.perf_counter()
    arn = clients.sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))[
        "executionArn"
    ]
    final, seen = _wait_done(clients.sfn, arn)
    if final["status"] != "SUCCEEDED":
        raise RuntimeError(f"no-op execution {final['status']}: {final.get('cause')}")
    run = load_run(clients.sfn, clients.batch, arn)
    breakdown = run_breakdown(run, clients.logs, outputs.job_log_group)
    return {
        "start_to_succeeded_s": round((_ms(final["stopDate"]) - start_ms) / 1000, 3),
        "execution_s": round((_ms(final["stopDate"]) - _ms(final["startDate"])) / 1000, 3),
        "client_observed_s": round(seen - started, 3),
        "phases": breakdown["phases"],
        "stages": breakdown["stages"],
        "states": state_timings(clients.sfn, arn),
    }


def trigger_leg(session: Any, runs: int) -> list[dict[str, Any]]:
    """Upload a one-row CSV into the input prefix: PUT start -> the execution's start date, and
    -> its stop date (the real pipeline, real jobs, on the smallest input)."""
    from sluice.runs.start import find_execution_for

    clients, outputs = session["clients"], session["outputs"]
    body = b"transaction_id,category,country,amount\ntx-1,books,US,1.5\n"
    found = []
    for index in range(runs):
        key = f"{outputs.input_prefix}bench/trigger-{index}-{uuid.uuid4().hex[:6]}.csv"
        started_ms = int(time.time() * 1000)
        clients.s3.put_object(Bucket=outputs.input_bucket, Key=key, Body=body)
        head = clients.s3.head_object(Bucket=outputs.input_bucket, Key=key)
        arn = find_execution_for(clients, outputs, key, head, timeout_s=60)
        final, _ = _wait_done(clients.sfn, arn)
        if final["status"] != "SUCCEEDED":
            raise RuntimeError(f"one-row pipeline run {final['status']}: {final.get('cause')}")
        found.append(
            {
                "put_to_execution_start_s": round((_ms(final["startDate"]) - started_ms) / 1000, 3),
                "put_to_succeeded_s": round((_ms(final["stopDate"]) - started_ms) / 1000, 3),
            }
        )
    return found


def lambda_reports(logs: Any, function_name: str) -> list[dict[str, float | None]]:
    """Duration / Init Duration from the trigger's REPORT lines (what Lambda bills and logs)."""
    group = f"/aws/lambda/{function_name}"
    reports = []
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, filterPattern="REPORT")
        for page in pages:
            for event in page["events"]:
                match = _REPORT.search(event["message"])
                if match:
                    init = float(match.group(2)) if match.group(2) else None
                    reports.append({"duration_ms": float(match.group(1)), "init_ms": init})
    except logs.exceptions.ResourceNotFoundException:
        pass
    return reports


# Local IAM may cost at most 20% of the no-op pipeline (the round-two target).
IAM_OVERHEAD_TARGET = 1.2


def measure(repeat: int, iam: str = "enforce") -> dict[str, Any]:
    from sluice.aws import Clients
    from sluice.cli.localrun import start_and_deploy
    from sluice.local.cloud import LocalCloud

    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-overhead-") as state:
        with LocalCloud(project_root=common.ROOT, state_dir=Path(state), iam=iam) as cloud:  # type: ignore[arg-type]
            outputs = start_and_deploy(cloud)
            clients = Clients(endpoint_url=cloud.endpoint_url)
            session = {"cloud": cloud, "outputs": outputs, "clients": clients}
            described = clients.sfn.describe_state_machine(stateMachineArn=outputs.state_machine_arn)
            definition = json.loads(described["definition"])
            copies = noop_job_definitions(clients.batch, definition)
            noop = copy.deepcopy(definition)
            for state in noop["States"].values():
                if state.get("Resource") == SYNC_RESOURCE:
                    state["Parameters"]["JobDefinition"] = copies[state["Parameters"]["JobDefinition"]]
            noop_arn = clients.sfn.create_state_machine(
                name="sluice-bench-noop-pipeline", definition=json.dumps(noop), roleArn=described["roleArn"]
            )["stateMachineArn"]
            ordered = [
                definition["States"][state]["Parameters"]["JobDefinition"]
                for state in ("RunIngest", "RunTransformArray", "RunAggregate")
            ]
            share = definition["States"]["RunIngest"]["Parameters"].get("ShareIdentifier")
            minimal = three_task_definition(
                outputs.values["JobQueueArn"], [copies[arn] for arn in ordered], share
            )
            minimal_arn = clients.sfn.create_state_machine(
                name="sluice-bench-noop-minimal", definition=json.dumps(minimal), roleArn=described["roleArn"]
            )["stateMachineArn"]
            payload = {
                "input": {"bucket": outputs.input_bucket, "key": "incoming/bench/noop.csv", "size": 1},
                "options": {},
            }
            warmup = run_noop(session, noop_arn, payload, with_manifest=True)
            common.say(f"  no-op pipeline warm-up: {warmup['start_to_succeeded_s']} s")
            found["warmup"] = warmup
            found["pipeline"] = []
            for _ in range(repeat):
                found["pipeline"].append(run_noop(session, noop_arn, payload, with_manifest=True))
                common.say(f"  no-op pipeline: {found['pipeline'][-1]['start_to_succeeded_s']} s")
            found["minimal"] = [
                run_noop(session, minimal_arn, payload, with_manifest=False) for _ in range(repeat)
            ]
            common.say(f"  three .sync tasks only: {[r['start_to_succeeded_s'] for r in found['minimal']]} s")
            found["trigger"] = trigger_leg(session, repeat + 1)
            common.say(f"  trigger leg: {[r['put_to_execution_start_s'] for r in found['trigger']]} s")
            cloud.settle(10)
            found["trigger_lambda_reports"] = lambda_reports(
                clients.logs, outputs.values["TriggerFunctionName"]
            )
    return found


def build_metrics(found: dict[str, Any]) -> list[common.Metric]:
    pipeline = common.summary([r["start_to_succeeded_s"] for r in found["pipeline"]])["median"]
    minimal = common.summary([r["start_to_succeeded_s"] for r in found["minimal"]])["median"]
    warm_trigger = found["trigger"][1:] or found["trigger"]
    trigger = common.summary([r["put_to_execution_start_s"] for r in warm_trigger])["median"]
    real = common.summary([r["put_to_succeeded_s"] for r in warm_trigger])["median"]
    reports = found["trigger_lambda_reports"]
    off = found.get("iam_off")
    off_pipeline = (
        common.summary([r["start_to_succeeded_s"] for r in off["pipeline"]])["median"] if off else None
    )
    durations = [r["duration_ms"] for r in reports if r["init_ms"] is None]
    inits = [r["init_ms"] for r in reports if r["init_ms"] is not None]
    return [
        common.metric(
            f"no-op pipeline, {ARRAY_SIZE}-child array: StartExecution -> SUCCEEDED (median of {len(found['pipeline'])})",
            pipeline,
            "s",
            target=("<=", TARGET_S),
            note="real ASL, `true` jobs",
        ),
        common.metric(
            "no-op pipeline: upload -> SUCCEEDED (trigger leg + the above, medians)",
            trigger + pipeline,
            "s",
            target=("<=", TARGET_S),
        ),
        common.metric(
            "no-op pipeline with IAM off (authentication only), same run, median",
            off_pipeline,
            "s",
        ),
        common.metric(
            "IAM enforce / IAM off, no-op pipeline medians",
            pipeline / off_pipeline if off_pipeline else None,
            "x",
            target=("<=", IAM_OVERHEAD_TARGET),
            note="SigV4 check and policy evaluation on every request",
        ),
        common.metric("trigger leg: PUT start -> execution start (warm, median)", trigger, "s"),
        common.metric(
            "trigger leg, first upload after deploy (cold Lambda worker)",
            found["trigger"][0]["put_to_execution_start_s"],
            "s",
        ),
        common.metric("real pipeline, one-row CSV: upload -> SUCCEEDED (median)", real, "s"),
        common.metric("three .sync tasks only (no Pass/Choice/S3 states), median", minimal, "s"),
        common.metric(
            "trigger Lambda duration incl. StartExecution (local REPORT lines, warm median)",
            statistics.median(durations) if durations else None,
            "ms",
        ),
        common.metric(
            "trigger Lambda Init Duration (local worker, cold)",
            statistics.median(inits) if inits else None,
            "ms",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    common.quiet_logs()
    started, described = time.perf_counter(), common.machine()
    repeat = 2 if args.smoke else args.repeat
    common.say("overhead: no-op pipeline")
    found = measure(repeat)
    common.say("overhead: the same with IAM off")
    found["iam_off"] = measure(repeat, iam="off")
    path = common.write_result(
        common.results_dir_of(args),
        "overhead",
        smoke=args.smoke,
        metrics=build_metrics(found),
        details=found,
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
