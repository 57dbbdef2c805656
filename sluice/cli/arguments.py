"""The `sluice` argument parser and the argument helpers the commands share."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any, NoReturn

from sluice.aws import Clients
from sluice.cli.exits import EXIT_USAGE, UsageError
from sluice.stack import DEFAULT_STACK, load_outputs

DESCRIPTION = """The `sluice` command line: run the pipeline locally in one command, or drive a deployed stack.

Exit codes: 0 succeeded; 1 the run failed; 2 usage or input error; 3 environment (endpoint
unreachable, credentials refused or expired, port in use, project root or template.yaml missing,
local deploy failed); 130 interrupted. Errors are one line: `sluice: <what is wrong>; <what to do>`.
"""
OPTIONS_EXAMPLE = """'{"group_by": ["country"]}'"""


class Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line like every other `sluice` error (still exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"sluice: usage error: {message}; see `{self.prog} --help`\n")


def parse_options(value: str | None) -> dict[str, Any]:
    """`--options` takes JSON or @file.json."""
    if not value:
        return {}
    text = value
    source = "--options"
    if value.startswith("@"):
        path = Path(value[1:])
        source = f"options file {path}"
        if not path.exists():
            raise UsageError(f"{source} does not exist; give an existing JSON file after @")
        if not path.is_file():
            raise UsageError(f"{source} is not a file; give a JSON file after @")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise UsageError(
                f"{source} is not UTF-8 text (byte {error.start}); save it as UTF-8 JSON"
            ) from None
        except OSError as error:
            raise UsageError(f"cannot read {source}: {error.strerror}; check its permissions") from None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{source} is not valid JSON: {error.msg} at position {error.pos}; "
            f"pass a JSON object, e.g. {OPTIONS_EXAMPLE}"
        ) from None
    if not isinstance(options, dict):
        raise UsageError(f"--options must be a JSON object; e.g. {OPTIONS_EXAMPLE}")
    return options


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value} is not a file")
    return path


def _writable(path: Path, flag: str, start: Path) -> None:
    """The nearest existing of `start` and its ancestors is a directory we may write into."""
    ancestor = start
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a directory; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {ancestor} is not writable; choose another path")


def check_out_dir(path: Path | None, flag: str = "--out") -> None:
    """An output directory: existing or creatable, and writable; checked before any slow work."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file; {flag} names a directory for the outputs and the report")
    _writable(path, flag, path.absolute())


def check_out_file(path: Path | None, flag: str = "--out") -> None:
    """The report file: not a directory, in a directory that exists or can be created."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(
            f"{flag} {path} is a directory; {flag} names the report file, e.g. {path / 'report.html'}"
        )
    _writable(path, flag, path.absolute().parent)


def port_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return number


def fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} is not a number") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def add_reclaim_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spot-reclaim",
        type=fraction,
        default=os.environ.get("SLUICE_SPOT_RECLAIM", "0"),  # argparse applies `type` to string defaults
        metavar="FRACTION",
        help="reclaim this share of job attempts the way Spot does (default $SLUICE_SPOT_RECLAIM or 0)",
    )


def add_iam_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--iam",
        choices=("enforce", "audit", "off"),
        default="enforce",
        help="local IAM: enforce (deny what AWS would deny, the default), audit (allow, record what "
        "would be denied), off (authenticate only)",
    )


def key_pair(value: str) -> tuple[str, str]:
    access_key, sep, secret = value.partition(":")
    if not sep or not access_key or not secret:
        raise argparse.ArgumentTypeError("expected ACCESS_KEY:SECRET_KEY")
    return access_key, secret


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (the local cloud's); default $AWS_ENDPOINT_URL or AWS"
    )
    parser.add_argument(
        "--stack", default=DEFAULT_STACK, help=f"stack whose Outputs name things (default {DEFAULT_STACK})"
    )
    parser.add_argument("--region", help="AWS region (default from the environment, else us-east-1)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sluice", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the whole pipeline on generated data on the local cloud")
    demo.add_argument("--rows", type=int, default=1_000_000, help="rows of sample data (default 1000000)")
    demo.add_argument(
        "--out", type=Path, help="where to write results and the report (default ./sluice-out/<run>)"
    )
    add_iam_argument(demo)

    local = commands.add_parser("local", help="the local cloud")
    local_commands = local.add_subparsers(dest="local_command", metavar="LOCAL_COMMAND")
    up = local_commands.add_parser(
        "up", help="start the local cloud in the foreground and deploy template.yaml"
    )
    up.add_argument("--port", type=port_number, default=0, help="port on 127.0.0.1 (default: a free one)")
    add_reclaim_argument(up)
    add_iam_argument(up)
    up.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="serve requests from this browser origin (e.g. http://localhost:3000); repeatable; none by default",
    )
    up.add_argument(
        "--fixed-admin-key",
        type=key_pair,
        metavar="ACCESS_KEY:SECRET_KEY",
        help="let the administrator sign with this fixed key (e.g. testing:testing for test suites written "
        "for other emulators) instead of a new random one",
    )
    up.add_argument(
        "--allow-reset",
        action="store_true",
        help="serve POST /moto-api/reset (signed with the administrator's key) for test suites written for "
        "moto's server: it deletes every resource and stops every job",
    )
    run = local_commands.add_parser("run", help="one shot: start, deploy, upload FILE, wait, download, stop")
    run.add_argument("file", type=existing_file, metavar="FILE")
    run.add_argument("--options", help="aggregation options as JSON or @file.json")
    run.add_argument("--out", type=Path, help="output directory (default ./sluice-out/<run-id>/)")
    add_reclaim_argument(run)
    add_iam_argument(run)

    drop = commands.add_parser("drop", help="upload FILE to the input bucket (the trigger starts a run)")
    drop.add_argument("file", type=existing_file, metavar="FILE")
    drop.add_argument("--key", help="object key (default <InputPrefix><file name>)")
    add_target_arguments(drop)

    start = commands.add_parser("run", help="start an execution by hand for an object already in S3")
    start.add_argument("uri", metavar="s3://BUCKET/KEY")
    start.add_argument("--options", help="aggregation options as JSON or @file.json")
    start.add_argument("--no-wait", action="store_true", help="print the execution ARN and return")
    add_target_arguments(start)

    rerun = commands.add_parser(
        "rerun", help="finish a failed run: reuse what it wrote, transform only the missing shards"
    )
    rerun.add_argument(
        "run", metavar="RUN_ID", help="the run's execution name (or ARN), or one of its reruns'"
    )
    rerun.add_argument(
        "--options", help="changes to fail_shards/hang_shards as JSON, e.g. '{\"fail_shards\": []}'"
    )
    rerun.add_argument("--no-wait", action="store_true", help="print the execution ARN and return")
    add_target_arguments(rerun)

    status = commands.add_parser("status", help="recent executions, or one execution's jobs")
    status.add_argument("execution", nargs="?", help="execution name or ARN")
    add_target_arguments(status)

    logs = commands.add_parser("logs", help="a job's log lines from CloudWatch Logs")
    logs.add_argument("job_id", metavar="JOB_ID")
    logs.add_argument("--follow", action="store_true", help="keep printing new lines until the job ends")
    add_target_arguments(logs)

    notes = commands.add_parser("notifications", help="notifications the local cloud delivered")
    notes.add_argument("--outbox", type=Path, help="outbox file (default .sluice/local/outbox.jsonl)")

    report = commands.add_parser("report", help="write the HTML run report of an execution")
    report.add_argument("execution", help="execution name or ARN")
    report.add_argument("--out", type=Path, help="report file (default ./sluice-out/<run>/report.html)")
    add_target_arguments(report)

    iam = commands.add_parser("iam", help="local IAM: what each principal used and what nothing used")
    iam_commands = iam.add_subparsers(dest="iam_command", metavar="IAM_COMMAND")
    iam_report = iam_commands.add_parser(
        "report", help="per principal: actions used, the statements that allowed them, unused statements"
    )
    iam_report.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".sluice/local"),
        help="the local cloud's state (default .sluice/local)",
    )
    iam_report.add_argument("--json", action="store_true", help="print the report as JSON")
    add_target_arguments(iam_report)

    sample = commands.add_parser("sample-data", help="generate deterministic sample transactions")
    sample.add_argument(
        "out", type=Path, metavar="OUT", help="file to write (.csv, .tsv, .jsonl, .parquet, +.gz)"
    )
    sample.add_argument("--rows", type=int, required=True)
    sample.add_argument("--seed", type=int, default=7)
    # Checked by the command (the list lives in sluice.sampledata, which imports pyarrow).
    sample.add_argument(
        "--dialect",
        help="write CSV as real exports do, e.g. semicolon-decimal-comma, na-nulls, latin-1, utf-16, "
        "headerless-tsv, multiline-quoted, backslash-escape, comments-preamble",
    )
    return parser


def checked_endpoint_url(args: argparse.Namespace) -> str | None:
    """--endpoint-url, else $AWS_ENDPOINT_URL; an http(s) URL (botocore's own error is a traceback)."""
    url, source = getattr(args, "endpoint_url", None), ""
    if not url:
        url, source = os.environ.get("AWS_ENDPOINT_URL"), " (AWS_ENDPOINT_URL)"
    if not url or re.match(r"https?://[^/]", url):
        return url
    if "://" not in url:
        raise UsageError(f"endpoint URL {url}{source} has no scheme; did you mean http://{url}")
    raise UsageError(f"endpoint URL {url}{source} is not http(s); use http://HOST:PORT or https://HOST")


def clients_for(args: argparse.Namespace) -> Clients:
    return Clients(endpoint_url=checked_endpoint_url(args), region=getattr(args, "region", None))


def outputs_for(args: argparse.Namespace) -> Any:
    return load_outputs(clients_for(args).cloudformation, args.stack)


def elapsed_since(start: float) -> str:
    return f"{time.monotonic() - start:.1f}s"
