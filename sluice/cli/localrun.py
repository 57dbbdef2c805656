"""One-command runs on the local cloud: `sluice demo`, `sluice local run`, `sluice local up`."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import json
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.aws import Clients
from sluice.cli.exits import EXIT_FAILED, EXIT_OK, EnvironmentProblem, UsageError
from sluice.cli.stopping import Stopped, StopSignals
from sluice.runs.collect import build_report_data
from sluice.runs.follow import watch
from sluice.runs.iamreport import build_iam_report
from sluice.runs.report import write_report
from sluice.runs.start import drop_file, find_execution_for
from sluice.stack import DEFAULT_STACK, StackOutputs, load_outputs

RESULT_PREVIEW_ROWS = 15
STATE_DIR = Path(".sluice/local")
# Small shards locally so even the demo's file fans out into a real array job.
LOCAL_PARAMETERS = {"ShardTargetMb": "2", "EnvironmentName": "dev"}
# The demo's file is small enough for one machine yet split in several shards, so the transform
# runs as an array job people can watch.
DEMO_OPTIONS = {"shard_target_mb": 0.5}


def project_root() -> Path:
    """The checkout holding template.yaml: $SLUICE_PROJECT_ROOT, else the current directory, else the
    package's. A SLUICE_PROJECT_ROOT without template.yaml is an error, not a reason to look elsewhere."""
    chosen = os.environ.get("SLUICE_PROJECT_ROOT")
    if chosen:
        if not (Path(chosen) / "template.yaml").is_file():
            raise EnvironmentProblem(
                f"SLUICE_PROJECT_ROOT={chosen} has no template.yaml; set it to the Sluice checkout "
                "(the directory holding template.yaml), or unset it"
            )
        return Path(chosen)
    candidates = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / "template.yaml").is_file():
            return candidate
    raise EnvironmentProblem(
        f"template.yaml not found in {' or '.join(map(str, candidates))}; run from the Sluice checkout "
        "or set SLUICE_PROJECT_ROOT to it"
    )


def check_project() -> None:
    """The project root and its template.yaml parse: checked before anything slow starts.
    A template that does not parse raises DeployError (exit 3, like any failed local deploy)."""
    from sluice.local.deploy.cfnyaml import load_template

    load_template(project_root() / "template.yaml")


def check_port_free(port: int) -> None:
    """A fixed --port nothing else listens on, bound the way the endpoint binds it (SO_REUSEADDR)."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise EnvironmentProblem(
                    f"port {port} on 127.0.0.1 is already in use; stop what uses it, or pick another "
                    "--port (or none: a free one)"
                ) from None
            raise EnvironmentProblem(
                f"cannot listen on 127.0.0.1:{port} ({error.strerror}); pick another --port"
            ) from None


def start_and_deploy(cloud: Any, overrides: dict[str, str] | None = None) -> StackOutputs:
    root = project_root()
    stack = cloud.deploy(root / "template.yaml", {**LOCAL_PARAMETERS, **(overrides or {})})
    for logical_id, resource_type in getattr(stack, "not_emulated", []):
        print(f"  not emulated locally: {logical_id} ({resource_type})", file=sys.stderr)
    # cloud.deploy recorded the stack in the local CloudFormation, where every client finds its
    # Outputs the way it does on AWS (DescribeStacks).
    return load_outputs(cloud.client("cloudformation"), DEFAULT_STACK)


@dataclass(frozen=True)
class IamSettings:
    """How the local cloud authorizes: `--iam`, `--allow-origin`, `--fixed-admin-key`, `--allow-reset`."""

    mode: str = "enforce"
    allowed_origins: tuple[str, ...] = ()
    fixed_admin_key: tuple[str, str] | None = None
    allow_reset: bool = False


def new_cloud(
    port: int = 0, spot_reclaim: float = 0.0, state_dir: Path | None = None, iam: IamSettings | None = None
) -> Any:
    from sluice.local.cloud import LocalCloud

    iam = iam or IamSettings()
    return LocalCloud(
        port,
        project_root=project_root(),
        state_dir=state_dir,
        spot_reclaim_fraction=spot_reclaim,
        iam=iam.mode,  # type: ignore[arg-type]  # checked by argparse's choices
        allowed_origins=iam.allowed_origins,
        fixed_admin_key=iam.fixed_admin_key,
        allow_reset=iam.allow_reset,
    )


def print_iam_summary(cloud: Any, directory: Path | None = None) -> None:
    """What local IAM denied (or, in audit mode, would have denied) during the run."""
    denials = list(cloud.iam.audit.denials)
    if directory is not None:
        with (directory / "iam.jsonl").open("w", encoding="utf-8") as handle:
            for record in denials:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
    if cloud.iam_mode == "off":
        print("iam:           off (requests were authenticated, not authorized)")
        return
    verb = "denied" if cloud.iam_mode == "enforce" else "would have been denied (audit mode)"
    print(f"iam:           {cloud.iam_mode}; {len(denials)} request(s) {verb}")
    seen: set[str] = set()
    for record in denials:
        if record["message"] not in seen:
            seen.add(record["message"])
            print(f"  - {record['message']}")


def local_path_for(directory: Path, remainder: str) -> Path:
    """Where an object key's remainder (after the prefix) lands under `directory`.

    S3 keys may contain `..`, `.`, empty segments or a leading `/`; any of them could write
    outside `directory`, so such keys are refused rather than written.
    """
    parts = remainder.split("/")
    if not remainder or any(part in ("", ".", "..") for part in parts):
        raise UnsafeKeyError(f"object key remainder {remainder!r} would not stay inside {directory}")
    target = directory.joinpath(*parts)
    if not target.resolve().is_relative_to(directory.resolve()):
        raise UnsafeKeyError(f"object key remainder {remainder!r} would not stay inside {directory}")
    return target


class UnsafeKeyError(UsageError):
    """An object key that would be written outside the output directory (input error: exit 2)."""


def download_prefix(clients: Clients, bucket: str, prefix: str, directory: Path) -> list[Path]:
    written: list[Path] = []
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = local_path_for(directory, item["Key"][len(prefix) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            clients.s3.download_file(bucket, item["Key"], str(target))
            written.append(target)
    return written


def print_result_table(csv_path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    if not rows:
        return
    table = Table(
        title=f"result ({len(rows) - 1} groups, first {min(RESULT_PREVIEW_ROWS, len(rows) - 1)} shown)"
    )
    for column in rows[0]:
        table.add_column(column)
    for row in rows[1 : RESULT_PREVIEW_ROWS + 1]:
        table.add_row(*[_short(value) for value in row])
    # Wide enough for the metric columns even when stdout is not a terminal (rich assumes 80).
    Console(width=max(Console().width, 140)).print(table)


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "." not in value else f"{number:,.2f}"


def run_file(
    cloud: Any, outputs: StackOutputs, path: Path, options: dict[str, Any], out_dir: Path | None
) -> int:
    """Upload like a producer, follow the execution the trigger starts, and collect everything."""
    clients = Clients(endpoint_url=cloud.endpoint_url)
    started = time.monotonic()
    key, head = drop_file(clients, outputs, path, None, options)
    print(f"uploaded {path} to s3://{outputs.input_bucket}/{key}")
    arn = find_execution_for(clients, outputs, key, head)
    print(f"execution {arn.rsplit(':', 1)[-1]} started")
    final = watch(clients, arn)
    wall = time.monotonic() - started
    cloud.settle(10)  # the run's last requests (notifications, logs) are decided before reading
    data = dataclasses.replace(
        build_report_data(clients, outputs, arn),
        iam_denials=list(cloud.iam.audit.denials),
        iam_usage=build_iam_report(cloud.client("iam"), cloud.state_dir),
    )
    directory = out_dir or Path("sluice-out") / data.run.name
    directory.mkdir(parents=True, exist_ok=True)
    prefix = ((data.run.output or {}).get("output") or {}).get("prefix")
    files = download_prefix(clients, outputs.output_bucket, prefix, directory / "output") if prefix else []
    notifications = cloud.notifications()
    with (directory / "notifications.jsonl").open("w", encoding="utf-8") as handle:
        for note in notifications:
            handle.write(json.dumps(note) + "\n")
    report = write_report(data, directory)
    print(f"\nexecution {final['status']} in {wall:.1f}s (upload to end)")
    result_csv = directory / "output" / "result.csv"
    if result_csv.exists():
        print_result_table(result_csv)
    print(
        f"output:        s3://{outputs.output_bucket}/{prefix or '-'} -> {directory / 'output'} ({len(files)} files)"
    )
    print(f"report:        {report}")
    print(f"timeline:      {directory / 'timeline.png'}")
    print(f"notifications: {directory / 'notifications.jsonl'} ({len(notifications)})")
    for note in notifications:  # the subject says outcome, stage, file and reason; the file has the rest
        print(f"  - {note.get('subject') or note.get('message', '').split(chr(10), 1)[0]}")
    print_iam_summary(cloud, directory)
    return EXIT_OK if final["status"] == "SUCCEEDED" else EXIT_FAILED


def local_run(
    path: Path,
    *,
    options: dict[str, Any],
    out_dir: Path | None,
    spot_reclaim: float = 0.0,
    iam: IamSettings | None = None,
) -> int:
    check_project()
    # A stop signal ends the run, never the cleanup: the cloud stops, then the directory goes.
    with StopSignals() as signals, contextlib.ExitStack() as cleanup:
        state = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sluice-local-"))
        try:
            cloud = cleanup.enter_context(
                new_cloud(spot_reclaim=spot_reclaim, state_dir=Path(state), iam=iam)
            )
            print(f"local cloud at {cloud.endpoint_url}")
            outputs = start_and_deploy(cloud)
            return run_file(cloud, outputs, path, options, out_dir)
        finally:
            signals.shield()


def run_demo(rows: int, out_dir: Path | None, iam: IamSettings | None = None) -> int:
    from sluice import sampledata

    check_project()
    with StopSignals() as signals, contextlib.ExitStack() as cleanup:
        scratch = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sluice-demo-"))
        try:
            data = Path(scratch) / "transactions.csv"
            started = time.monotonic()
            sampledata.generate(data, rows=rows, seed=7)
            size_mb = data.stat().st_size / 1e6
            print(
                f"generated {rows:,} sample transactions ({size_mb:.1f} MB) in {time.monotonic() - started:.1f}s"
            )
            cloud = cleanup.enter_context(new_cloud(state_dir=Path(scratch) / "cloud", iam=iam))
            print(f"local cloud at {cloud.endpoint_url}; deploying template.yaml")
            outputs = start_and_deploy(cloud)
            return run_file(cloud, outputs, data, DEMO_OPTIONS, out_dir)
        finally:
            signals.shield()


def local_up(port: int = 0, spot_reclaim: float = 0.0, iam: IamSettings | None = None) -> int:
    """Serve until Ctrl-C, SIGTERM or SIGHUP (then exit 0); print the endpoint only once it answers
    requests."""
    check_project()
    check_port_free(port)
    state = STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)  # holds the administrator's key
    for stale in ("iam.jsonl", "iam-usage.jsonl"):
        (state / stale).unlink(missing_ok=True)  # one session's decisions, not every session's
    try:
        with StopSignals() as signals, contextlib.ExitStack() as cleanup:
            try:
                cloud = cleanup.enter_context(
                    new_cloud(port=port, spot_reclaim=spot_reclaim, state_dir=state, iam=iam)
                )
                serve(cloud, iam)
            finally:
                signals.shield()
    except Stopped:
        pass  # the way to end `local up`: the cloud has stopped
    print("local cloud stopped")
    return EXIT_OK


def serve(cloud: Any, iam: IamSettings | None) -> None:
    """Deploy, print how to reach the cloud, then wait for a stop signal (`Stopped`)."""
    outputs = start_and_deploy(cloud)
    print(f"Sluice local cloud ready at {cloud.endpoint_url} (IAM: {cloud.iam_mode})")
    exports = " ".join(f"{name}={value}" for name, value in cloud.environment.items())
    print(f"export {exports}")
    print(f"credentials:   {cloud.credentials_path} (0600; `. {cloud.credentials_path}` sets the same)")
    if iam is not None and iam.fixed_admin_key is not None:
        print(
            "warning: the administrator signs with the fixed key given by --fixed-admin-key",
            file=sys.stderr,
        )
    if iam is not None and iam.allow_reset:
        print(
            "warning: POST /moto-api/reset (administrator only) deletes everything: --allow-reset",
            file=sys.stderr,
        )
    print(f"input bucket: s3://{outputs.input_bucket}/{outputs.input_prefix}")
    print(f"notifications: {cloud.outbox_path}")
    sys.stdout.flush()
    while True:
        signal.pause()
