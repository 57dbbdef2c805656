"""Every error the `sluice` command reports is one line, `sluice: <what is wrong>; <what to do>`, with
the documented exit code and no traceback (2 usage/input, 3 environment, 1 the run failed).

One table, each case a subprocess of the real entry point. None starts the local cloud: each fails
before the cloud would start, or against an endpoint that is unreachable or a canned one in this
module (`FakeAws`), which answers with the errors AWS returns (refused or expired credentials, a
stack, an execution that does not exist).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import ROOT

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-pipeline"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there

# Query-protocol (CloudFormation) errors: (HTTP status, code, message), by scenario.
QUERY_ERRORS = {
    "refused": (403, "InvalidClientTokenId", "The security token included in the request is invalid."),
    "expired": (403, "ExpiredToken", "The security token included in the request is expired"),
    "denied": (
        403,
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/someone is not authorized to perform: "
        "cloudformation:DescribeStacks",
    ),
    "nostack": (400, "ValidationError", "Stack with id sluice does not exist"),
}
STACK = f"""<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
<DescribeStacksResult><Stacks><member>
<StackName>sluice</StackName>
<StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/sluice/1</StackId>
<CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>
<Outputs>
<member><OutputKey>StateMachineArn</OutputKey><OutputValue>{STATE_MACHINE}</OutputValue></member>
<member><OutputKey>InputBucketName</OutputKey><OutputValue>sluice-input</OutputValue></member>
<member><OutputKey>OutputBucketName</OutputKey><OutputValue>sluice-output</OutputValue></member>
<member><OutputKey>WorkBucketName</OutputKey><OutputValue>sluice-work</OutputValue></member>
</Outputs>
</member></Stacks></DescribeStacksResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</DescribeStacksResponse>"""


class FakeAws(BaseHTTPRequestHandler):
    """AWS as seen through `--endpoint-url http://HOST:PORT/<scenario>`: the first path segment picks
    the answer (botocore keeps the endpoint's path)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scenario = self.path.strip("/").split("/")[0]
        target = self.headers.get("X-Amz-Target", "")
        if scenario == "stack" and target.endswith(".DescribeExecution"):
            body = {"__type": "ExecutionDoesNotExist", "message": "Execution Does Not Exist"}
            self.answer(400, json.dumps(body), "application/x-amz-json-1.0")
        elif scenario == "stack":
            self.answer(200, STACK, "text/xml")
        else:
            status, code, message = QUERY_ERRORS[scenario]
            error = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            self.answer(status, f"<ErrorResponse>{error}<RequestId>1</RequestId></ErrorResponse>", "text/xml")

    def answer(self, status: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def fake_aws() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@dataclass(frozen=True)
class Case:
    """`args` may name {tmp} (the case's directory, also its cwd), {root} (this checkout), {fake}
    (the FakeAws URL) and {port} (a port something listens on). `files`: relative path -> bytes,
    None for a directory. `raises`: an exception the command raises, for errors only a live cloud
    produces (the entry point is run with the command replaced by one that raises it)."""

    id: str
    args: tuple[str, ...]
    code: int
    message: str
    files: dict[str, bytes | None] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    raises: str | None = None


DATA = b"timestamp,account,category,country,amount\n2026-01-01T00:00:00Z,a,b,DE,1.5\n"
CASES = [
    Case(
        "options-file-not-utf8",
        ("run", "s3://bucket/key", "--options", "@{tmp}/options.json", "--endpoint-url", UNREACHABLE),
        2,
        r"options file .*options\.json is not UTF-8 text \(byte 15\); save it as UTF-8 JSON",
        files={"options.json": b'{"group_by": ["\xe9"]}'},
    ),
    Case(
        "options-file-missing",
        ("local", "run", "{tmp}/data.csv", "--options", "@{tmp}/missing.json"),
        2,
        r"options file .*missing\.json does not exist; ",
        files={"data.csv": DATA},
    ),
    Case(
        "outbox-is-a-directory",
        ("notifications", "--outbox", "{tmp}/outbox"),
        2,
        r"outbox .*outbox is a directory; pass the outbox\.jsonl file",
        files={"outbox": None},
    ),
    Case(
        "outbox-corrupt-line",
        ("notifications", "--outbox", "{tmp}/outbox.jsonl"),
        2,
        r"outbox\.jsonl line 2 is not JSON .*; ",
        files={"outbox.jsonl": b'{"subject": "ok", "message": "fine"}\n{"subject": \n'},
    ),
    Case(
        "sample-data-into-a-directory",
        ("sample-data", "{tmp}", "--rows", "10"),
        2,
        r"OUT .* is a directory; name a file",
    ),
    Case(
        "sample-data-unknown-dialect",
        ("sample-data", "{tmp}/sales.csv", "--rows", "10", "--dialect", "klingon"),
        2,
        r"--dialect klingon is not one of semicolon-decimal-comma, na-nulls, ",
    ),
    Case(
        "sample-data-parent-missing",
        ("sample-data", "{tmp}/missing/sales.csv", "--rows", "10"),
        2,
        r"directory .*missing does not exist; create it first",
    ),
    Case(
        "report-out-is-a-directory",
        ("report", "some-run", "--out", "{tmp}", "--endpoint-url", UNREACHABLE),
        2,
        r"--out .* is a directory; --out names the report file",
    ),
    Case(
        "local-run-out-is-a-file",
        ("local", "run", "{tmp}/data.csv", "--out", "{tmp}/data.csv"),
        2,
        r"--out .*data\.csv is a file; --out names a directory",
        files={"data.csv": DATA},
        env={"SLUICE_PROJECT_ROOT": "{root}"},
    ),
    Case(
        "local-run-empty-file",
        ("local", "run", "{tmp}/empty.csv"),
        2,
        r"empty\.csv is empty \(0 bytes\); the trigger rejects empty objects",
        files={"empty.csv": b""},
        env={"SLUICE_PROJECT_ROOT": "{root}"},
    ),
    Case(
        "endpoint-url-without-scheme",
        ("status", "--endpoint-url", "127.0.0.1:4566"),
        2,
        r"endpoint URL 127\.0\.0\.1:4566 has no scheme; did you mean http://127\.0\.0\.1:4566",
    ),
    Case(
        "endpoint-env-without-scheme",
        ("status",),
        2,
        r"endpoint URL localhost:4566 \(AWS_ENDPOINT_URL\) has no scheme; did you mean http://localhost:4566",
        env={"AWS_ENDPOINT_URL": "localhost:4566"},
    ),
    Case(
        "local-up-port-in-use",
        ("local", "up", "--port", "{port}"),
        3,
        r"port {port} on 127\.0\.0\.1 is already in use; stop what uses it, or pick another --port",
        env={"SLUICE_PROJECT_ROOT": "{root}"},
    ),
    Case(
        "project-root-without-template",
        ("local", "run", "{tmp}/data.csv"),
        3,
        r"SLUICE_PROJECT_ROOT=.*empty has no template\.yaml; set it to the Sluice checkout",
        files={"data.csv": DATA, "empty": None},
        env={"SLUICE_PROJECT_ROOT": "{tmp}/empty"},
    ),
    Case(
        "demo-project-root-without-template",
        ("demo", "--rows", "1000000"),
        3,
        r"SLUICE_PROJECT_ROOT=.*empty has no template\.yaml; ",
        files={"empty": None},
        env={"SLUICE_PROJECT_ROOT": "{tmp}/empty"},
    ),
    Case(
        "template-does-not-parse",
        ("local", "run", "{tmp}/data.csv"),
        3,
        r"local deploy failed: cannot parse .*template\.yaml.*; fix the template",
        files={"data.csv": DATA, "broken/template.yaml": b"Resources: [unclosed\n"},
        env={"SLUICE_PROJECT_ROOT": "{tmp}/broken"},
    ),
    Case(
        "deploy-error",
        ("local", "run", "{tmp}/data.csv"),
        3,
        r"local deploy failed: Trigger: creating AWS::Lambda::Function failed: boom; fix the template",
        files={"data.csv": DATA},
        env={"SLUICE_PROJECT_ROOT": "{root}"},
        raises="sluice.local.deploy.errors.DeployError('Trigger', 'creating AWS::Lambda::Function failed: boom')",
    ),
    Case(
        "run-not-started",
        ("local", "run", "{tmp}/data.csv"),
        1,
        r"no execution started for s3://sluice-input/incoming/data\.csv within 30 s; the trigger may "
        r"have rejected it: see `sluice notifications`",
        files={"data.csv": DATA},
        env={"SLUICE_PROJECT_ROOT": "{root}"},
        raises="sluice.runs.start.RunNotStartedError('no execution started for "
        "s3://sluice-input/incoming/data.csv within 30 s; the trigger may have rejected it: see "
        "`sluice notifications`')",
    ),
    Case(
        "run-timed-out",
        ("run", "s3://bucket/key", "--endpoint-url", UNREACHABLE),
        1,
        r"execution did not finish in time: arn:aws:states:.*:run-1 still RUNNING after 3600 s; it may "
        r"still be running: `sluice status run-1`",
        raises="sluice.runs.follow.RunTimeoutError('arn:aws:states:us-east-1:123456789012:execution:"
        "sluice-pipeline:run-1 still RUNNING after 3600 s')",
    ),
    Case(
        "status-unknown-execution",
        ("status", "no-such-run", "--endpoint-url", "{fake}/stack"),
        2,
        r"no execution no-such-run in .*stateMachine:sluice-pipeline; `sluice status` lists recent runs",
    ),
    Case(
        "report-unknown-execution",
        ("report", "no-such-run", "--endpoint-url", "{fake}/stack"),
        2,
        r"no execution no-such-run in .*stateMachine:sluice-pipeline; `sluice status` lists recent runs",
    ),
    Case(
        "endpoint-unreachable",
        ("status", "--endpoint-url", UNREACHABLE),
        3,
        r"endpoint http://127\.0\.0\.1:9 is not reachable; start the local cloud \(`sluice local up`\)",
    ),
    Case(
        "credentials-refused",
        ("status", "--endpoint-url", "{fake}/refused"),
        3,
        r"credentials refused \(InvalidClientTokenId: The security token .* invalid\.\); export the "
        r"credentials `sluice local up` printed \(`\. \.sluice/local/credentials\.env`\)",
    ),
    Case(
        "credentials-expired",
        ("status", "--endpoint-url", "{fake}/expired"),
        3,
        r"credentials refused \(ExpiredToken: .*\); export the credentials `sluice local up` printed",
    ),
    Case(
        "no-credentials",
        ("status", "--endpoint-url", UNREACHABLE),
        3,
        r"no AWS credentials found; export the credentials `sluice local up` printed",
        env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true"},
    ),
    Case(
        "other-aws-error",
        ("status", "--endpoint-url", "{fake}/denied"),
        1,
        r"AWS error: An error occurred \(AccessDenied\) when calling the DescribeStacks operation: "
        r"User: .* is not authorized .*; ",
    ),
    Case(
        "stack-not-found",
        ("status", "--endpoint-url", "{fake}/nostack"),
        2,
        r"stack sluice not found: Stack with id sluice does not exist; deploy it",
    ),
]


def raising_entry_point(expression: str) -> str:
    """`python -c` source: the `sluice` entry point whose command raises `expression`."""
    module = expression.split("(", 1)[0].rsplit(".", 1)[0]
    return (
        f"import sys, {module}, sluice.cli.commands as commands\n"
        "def dispatch(args):\n"
        f"    raise {expression}\n"
        "commands.dispatch = dispatch\n"
        "from sluice.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_error_is_one_line_with_its_exit_code(
    case: Case, tmp_path: Path, fake_aws: str, busy_port: int
) -> None:
    values = {"tmp": str(tmp_path), "root": str(ROOT), "fake": fake_aws, "port": str(busy_port)}
    for name, content in case.files.items():
        path = tmp_path / name
        if content is None:
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "HOME": str(tmp_path)})
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "SLUICE_PROJECT_ROOT": str(tmp_path)})
    env.update({name: value.format(**values) for name, value in case.env.items()})
    env = {name: value for name, value in env.items() if value}
    args = [arg.format(**values) for arg in case.args]
    command = ["-c", raising_entry_point(case.raises), *args] if case.raises else ["-m", "sluice.cli", *args]

    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=50, cwd=tmp_path, env=env
    )

    assert "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("sluice:")] == [
        result.stderr.strip()
    ], result.stderr  # one line, the error's, and nothing else
    assert result.returncode == case.code, result.stderr
    assert re.fullmatch(rf"sluice: .*{case.message.format(**values)}.*", result.stderr.strip()), result.stderr
