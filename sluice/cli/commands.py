"""What each `sluice` command does (the parser lives in sluice.cli.arguments)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from sluice.cli.arguments import clients_for, outputs_for, parse_options
from sluice.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from sluice.runs.follow import TERMINAL, watch
from sluice.runs.records import load_run
from sluice.runs.start import RunNotStartedError, drop_file, find_execution_for, start_run

DEFAULT_OUTBOX = Path(".sluice/local/outbox.jsonl")


def dispatch(args: argparse.Namespace) -> int:
    handlers = {
        "demo": cmd_demo,
        "local": cmd_local,
        "drop": cmd_drop,
        "run": cmd_run,
        "status": cmd_status,
        "logs": cmd_logs,
        "notifications": cmd_notifications,
        "report": cmd_report,
        "iam": cmd_iam,
        "sample-data": cmd_sample_data,
    }
    return handlers[args.command](args)


def cmd_demo(args: argparse.Namespace) -> int:
    from sluice.cli.localrun import IamSettings, run_demo

    if args.rows < 1:
        raise UsageError("--rows must be at least 1")
    return run_demo(rows=args.rows, out_dir=args.out, iam=IamSettings(mode=args.iam))


def cmd_local(args: argparse.Namespace) -> int:
    from sluice.cli.localrun import IamSettings, local_run, local_up

    if args.local_command == "up":
        settings = IamSettings(
            mode=args.iam, allowed_origins=tuple(args.allow_origin), fixed_admin_key=args.fixed_admin_key
        )
        return local_up(port=args.port, spot_reclaim=args.spot_reclaim, iam=settings)
    return local_run(
        args.file,
        options=parse_options(args.options),
        out_dir=args.out,
        spot_reclaim=args.spot_reclaim,
        iam=IamSettings(mode=args.iam),
    )


def cmd_iam(args: argparse.Namespace) -> int:
    from sluice.runs.iamreport import build_iam_report, render_iam_report

    report = build_iam_report(clients_for(args).client("iam"), args.state_dir)
    print(json.dumps(report, indent=2) if args.json else render_iam_report(report))
    return EXIT_OK


def cmd_drop(args: argparse.Namespace) -> int:
    clients, outputs = clients_for(args), outputs_for(args)
    key, head = drop_file(clients, outputs, args.file, args.key)
    print(f"uploaded s3://{outputs.input_bucket}/{key} (version {head.get('VersionId', '-')})")
    try:
        arn = find_execution_for(clients, outputs, key, head)
    except RunNotStartedError as error:
        print(f"sluice: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"execution {arn}")
    return EXIT_OK


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise UsageError(f"{uri} is not an s3://BUCKET/KEY URI")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise UsageError(f"{uri} is not an s3://BUCKET/KEY URI")
    return bucket, key


def cmd_run(args: argparse.Namespace) -> int:
    bucket, key = split_s3_uri(args.uri)
    options = parse_options(args.options)
    clients, outputs = clients_for(args), outputs_for(args)
    arn = start_run(clients, outputs, bucket, key, options)
    print(f"execution {arn}")
    if args.no_wait:
        return EXIT_OK
    final = watch(clients, arn)
    return EXIT_OK if final["status"] == "SUCCEEDED" else EXIT_FAILED


def resolve_execution(clients: Any, outputs: Any, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    machine = outputs.state_machine_arn
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name_or_arn}"


def cmd_status(args: argparse.Namespace) -> int:
    clients, outputs = clients_for(args), outputs_for(args)
    if not args.execution:
        executions = clients.sfn.list_executions(stateMachineArn=outputs.state_machine_arn, maxResults=20)
        for execution in executions["executions"]:
            stop = execution.get("stopDate")
            took = f"{(stop - execution['startDate']).total_seconds():.1f}s" if stop else "running"
            print(f"{execution['status']:<10} {took:>9}  {execution['name']}")
        return EXIT_OK
    arn = resolve_execution(clients, outputs, args.execution)
    run = load_run(clients.sfn, clients.batch, arn)
    print(f"{run.name}: {run.status}")
    if run.error:
        print(f"  error: {run.error}: {(run.cause or '')[:300]}")
    for job in run.jobs:
        size = f" array of {job.array_size}" if job.array_size else ""
        print(f"  {job.stage:<9} {job.status:<9} {job.job_id}{size} {job.status_reason or ''}".rstrip())
        for unit in job.children:
            if unit.status != "SUCCEEDED" or len(unit.attempts) > 1:
                print(
                    f"    [{unit.array_index}] {unit.status} attempts={len(unit.attempts)} {unit.status_reason or ''}"
                )
    return EXIT_OK if run.status in ("SUCCEEDED", "RUNNING") else EXIT_FAILED


def log_location(clients: Any, job_id: str) -> tuple[str, str, str]:
    jobs = clients.batch.describe_jobs(jobs=[job_id])["jobs"]
    if not jobs:
        raise UsageError(f"no job {job_id}")
    job = jobs[0]
    container = job.get("container", {})
    stream = container.get("logStreamName")
    group = (
        (container.get("logConfiguration") or {}).get("options", {}).get("awslogs-group", "/aws/batch/job")
    )
    return group, stream or "", job["status"]


def cmd_logs(args: argparse.Namespace) -> int:
    clients = clients_for(args)
    group, stream, status = log_location(clients, args.job_id)
    if not stream:
        print(f"job {args.job_id} is {status} and has no log stream yet", file=sys.stderr)
        return EXIT_OK if not args.follow else EXIT_FAILED
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = clients.logs.get_log_events(**kwargs)
        for event in page["events"]:
            print(event["message"])
        if page.get("nextForwardToken") != token:
            token = page.get("nextForwardToken")
            continue
        if not args.follow:
            return EXIT_OK
        _, _, status = log_location(clients, args.job_id)
        if status in ("SUCCEEDED", "FAILED"):
            return EXIT_OK
        time.sleep(0.5)


def cmd_notifications(args: argparse.Namespace) -> int:
    path = args.outbox or DEFAULT_OUTBOX
    if not path.exists():
        print(f"no notifications yet ({path} does not exist)")
        return EXIT_OK
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        note = json.loads(line)
        print(f"--- {note.get('time', '')} {note.get('subject') or ''}".rstrip())
        print(note.get("message", ""))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from sluice.runs.collect import build_report_data
    from sluice.runs.report import write_report

    clients, outputs = clients_for(args), outputs_for(args)
    arn = resolve_execution(clients, outputs, args.execution)
    data = build_report_data(clients, outputs, arn)
    denials_file = Path(".sluice/local/iam.jsonl")
    if denials_file.is_file():  # a `local up` session: its IAM denials during this run
        from sluice.runs.iamreport import read_jsonl

        start = (data.run.started_at or 0) / 1000
        stop = (data.run.stopped_at / 1000) if data.run.stopped_at else float("inf")
        window = [d for d in read_jsonl(denials_file) if start <= float(d.get("time", 0)) <= stop + 60]
        data = dataclasses.replace(data, iam_denials=window)
    directory = args.out.parent if args.out else Path("sluice-out") / data.run.name
    report = write_report(data, directory)
    if args.out and report != args.out:
        report.rename(args.out)
        report = args.out
    print(f"report {report}")
    return EXIT_OK if data.run.status in TERMINAL else EXIT_FAILED


def cmd_sample_data(args: argparse.Namespace) -> int:
    from sluice import sampledata

    if args.rows < 1:
        raise UsageError("--rows must be at least 1")
    try:
        sampledata.generate(args.out, rows=args.rows, seed=args.seed)
    except ValueError as error:
        print(f"sluice: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {args.rows} rows to {args.out}")
    return EXIT_OK
