"""What each `sluice` command does (the parser lives in sluice.cli.arguments)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sluice.cli.arguments import check_out_dir, check_out_file, clients_for, outputs_for, parse_options
from sluice.cli.exits import EXIT_FAILED, EXIT_OK, UsageError
from sluice.runs.follow import TERMINAL, watch
from sluice.runs.records import RunRecord, load_run
from sluice.runs.start import RerunError, drop_file, find_execution_for, run_id_of, start_rerun, start_run

DEFAULT_OUTBOX = Path(".sluice/local/outbox.jsonl")


def dispatch(args: argparse.Namespace) -> int:
    handlers = {
        "demo": cmd_demo,
        "local": cmd_local,
        "drop": cmd_drop,
        "run": cmd_run,
        "rerun": cmd_rerun,
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
        raise UsageError("--rows must be at least 1; e.g. --rows 100000")
    check_out_dir(args.out)
    return run_demo(rows=args.rows, out_dir=args.out, iam=IamSettings(mode=args.iam))


def cmd_local(args: argparse.Namespace) -> int:
    from sluice.cli.localrun import IamSettings, local_run, local_up

    if args.local_command == "up":
        settings = IamSettings(
            mode=args.iam,
            allowed_origins=tuple(args.allow_origin),
            fixed_admin_key=args.fixed_admin_key,
            allow_reset=args.allow_reset,
        )
        return local_up(port=args.port, spot_reclaim=args.spot_reclaim, iam=settings)
    # Everything the run needs from the arguments is checked before the local cloud starts.
    options = parse_options(args.options)
    if args.file.stat().st_size == 0:
        raise UsageError(
            f"{args.file} is empty (0 bytes); the trigger rejects empty objects, so give a file with data"
        )
    check_out_dir(args.out)
    return local_run(
        args.file,
        options=options,
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
    arn = find_execution_for(clients, outputs, key, head)  # RunNotStartedError: exit 1 (sluice.cli.main)
    print(f"execution {arn}")
    return EXIT_OK


def split_s3_uri(uri: str) -> tuple[str, str]:
    problem = f"{uri} is not an s3://BUCKET/KEY URI; e.g. s3://my-bucket/incoming/data.csv"
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise UsageError(problem)
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise UsageError(problem)
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


def cmd_rerun(args: argparse.Namespace) -> int:
    changes = parse_options(args.options)
    clients, outputs = clients_for(args), outputs_for(args)
    try:  # RUN may name the run or any of its reruns
        named = clients.sfn.describe_execution(executionArn=resolve_execution(clients, outputs, args.run))
    except ClientError as error:
        raise unknown_execution(error, args.run, outputs) or error from None
    run_id = run_id_of(named)
    try:
        arn, latest = start_rerun(clients, outputs, run_id, changes)
    except RerunError as error:
        raise UsageError(str(error)) from None
    if arn is None:
        print(f"run {run_id} already succeeded ({latest['name']}); nothing to rerun")
        return EXIT_OK
    print(f"execution {arn} reruns {run_id} (its last execution {latest['name']} ended {latest['status']})")
    if args.no_wait:
        return EXIT_OK
    final = watch(clients, arn)
    return EXIT_OK if final["status"] == "SUCCEEDED" else EXIT_FAILED


def resolve_execution(clients: Any, outputs: Any, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    machine = outputs.state_machine_arn
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name_or_arn}"


# DescribeExecution's answers for a name or ARN that names no execution: the caller's input.
NO_SUCH_EXECUTION = {"ExecutionDoesNotExist", "InvalidArn", "StateMachineDoesNotExist"}


def unknown_execution(error: ClientError, name_or_arn: str, outputs: Any) -> UsageError | None:
    """A UsageError when `error` says the execution the user named does not exist."""
    if error.response.get("Error", {}).get("Code") not in NO_SUCH_EXECUTION:
        return None
    return UsageError(
        f"no execution {name_or_arn} in {outputs.state_machine_arn}; `sluice status` lists recent runs"
    )


def load_named_run(clients: Any, outputs: Any, name_or_arn: str) -> RunRecord:
    try:
        return load_run(clients.sfn, clients.batch, resolve_execution(clients, outputs, name_or_arn))
    except ClientError as error:
        raise unknown_execution(error, name_or_arn, outputs) or error from None


def cmd_status(args: argparse.Namespace) -> int:
    clients, outputs = clients_for(args), outputs_for(args)
    if not args.execution:
        executions = clients.sfn.list_executions(stateMachineArn=outputs.state_machine_arn, maxResults=20)
        for execution in executions["executions"]:
            stop = execution.get("stopDate")
            took = f"{(stop - execution['startDate']).total_seconds():.1f}s" if stop else "running"
            print(f"{execution['status']:<10} {took:>9}  {execution['name']}")
        return EXIT_OK
    run = load_named_run(clients, outputs, args.execution)
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
        raise UsageError(f"no job {job_id}; `sluice status EXECUTION` lists the jobs of a run")
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


def read_outbox(path: Path) -> list[dict[str, Any]]:
    """The outbox's notifications, one JSON object a line; a line that is not one is an input error
    naming the file and line (nothing is printed from a file that is not an outbox)."""
    if path.is_dir():
        raise UsageError(
            f"outbox {path} is a directory; pass the outbox.jsonl file (default {DEFAULT_OUTBOX})"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"outbox {path} is not UTF-8 text (byte {error.start}); pass the outbox.jsonl the local cloud wrote"
        ) from None
    notes: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            note = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{path} line {number} is not JSON ({error.msg}); the outbox has one JSON object a line: "
                "fix or delete that line"
            ) from None
        if not isinstance(note, dict):
            raise UsageError(
                f"{path} line {number} is not a JSON object; the outbox has one JSON object a line: "
                "fix or delete that line"
            )
        notes.append(note)
    return notes


def cmd_notifications(args: argparse.Namespace) -> int:
    path = args.outbox or DEFAULT_OUTBOX
    if not path.exists():
        print(f"no notifications yet ({path} does not exist)")
        return EXIT_OK
    for note in read_outbox(path):
        print(f"--- {note.get('time', '')} {note.get('subject') or ''}".rstrip())
        print(note.get("message", ""))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from sluice.runs.collect import build_report_data
    from sluice.runs.report import write_report

    check_out_file(args.out)
    clients, outputs = clients_for(args), outputs_for(args)
    arn = resolve_execution(clients, outputs, args.execution)
    try:
        data = build_report_data(clients, outputs, arn)
    except ClientError as error:
        raise unknown_execution(error, args.execution, outputs) or error from None
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
        raise UsageError("--rows must be at least 1; e.g. --rows 100000")
    if args.dialect is not None and args.dialect not in sampledata.DIALECTS:
        raise UsageError(f"--dialect {args.dialect} is not one of {', '.join(sampledata.DIALECTS)}")
    out: Path = args.out
    if out.is_dir():
        raise UsageError(f"OUT {out} is a directory; name a file in it, e.g. {out / 'sales.csv'}")
    parent = out.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist; create it first, or write OUT elsewhere")
    try:
        sampledata.generate(out, rows=args.rows, seed=args.seed, dialect=args.dialect)
    except ValueError as error:
        reason = str(error).replace(";", ",")
        raise UsageError(
            f"{reason}; name OUT .csv, .tsv, .jsonl or .parquet (+.gz for the text formats)"
        ) from None
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror}; choose a path you can write") from None
    print(f"wrote {args.rows} rows to {out}" + (f" ({args.dialect} dialect)" if args.dialect else ""))
    return EXIT_OK
