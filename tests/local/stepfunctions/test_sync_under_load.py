"""A `.sync` Batch task whose own DescribeJobs polls fail transiently keeps waiting for its job.

Under overload (thousands of separate uploads on two cores) the endpoint reset connections and
answered slowly; moto's `.sync` resolver turned one failed poll into States.Runtime, so the
execution ended (FAILED) while its job ran on, and the cleanup's TerminateJob failed the same
way. On AWS a Run a Job (.sync) task ends only when its job ends, or at TimeoutSeconds /
HeartbeatSeconds (https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from sluice.local.stepfunctions import backend as stepfunctions
from tests.local.helpers import Local, wait_until
from tests.local.stepfunctions.test_stepfunctions import batch_task, create_machine, finished, start

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _error(start_response: Callable[..., Any], status: str, code: str) -> list[bytes]:
    data = json.dumps({"__type": code, "message": "overloaded"}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("x-amzn-ErrorType", code),
        ],
    )
    return [data]


class Flaky:
    """Wraps the Batch app: the first calls of `operation` fail the ways an overloaded endpoint
    does (connection dropped without an answer, 500, 429 throttling), then calls pass through."""

    FAILURES = ("drop", "500", "429")

    def __init__(self, app: WSGIApp, operation: str) -> None:
        self.app = app
        self.operation = operation
        self.failed: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].rstrip("/").rsplit("/", 1)[-1] == self.operation:
            with self._lock:
                failure = self.FAILURES[len(self.failed)] if len(self.failed) < len(self.FAILURES) else None
                if failure is not None:
                    self.failed.append(failure)
            if failure == "drop":
                raise ConnectionResetError("endpoint overloaded")  # the server closes, no answer
            if failure == "500":
                return _error(start_response, "500 Internal Server Error", "ServerException")
            if failure == "429":
                return _error(start_response, "429 Too Many Requests", "TooManyRequestsException")
        return self.app(environ, start_response)


def flaky_batch(local: Local, monkeypatch: pytest.MonkeyPatch, operation: str) -> Flaky:
    router = local.cloud._router
    assert router is not None
    flaky = Flaky(router.routes["batch"], operation)
    monkeypatch.setitem(router.routes, "batch", flaky)
    return flaky


def one_job_machine(local: Local) -> str:
    states = {
        "Run": batch_task(
            Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"},
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
            End=True,
        ),
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    }
    return create_machine(local, states, "Run")


@pytest.mark.timeout(30)
def test_sync_task_outlives_failed_describe_jobs_polls(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    flaky = flaky_batch(local, monkeypatch, "describejobs")
    execution = start(local, one_job_machine(local))
    job = local.batch.wait_for_job()

    # Every failure kind was met, and then a poll reached Batch: the wait is still on.
    sfn = local.client("stepfunctions")
    wait_until(
        lambda: (
            any(op == "describejobs" for op, _ in local.batch.requests)
            or sfn.describe_execution(executionArn=execution)["status"] != "RUNNING"
        )
    )
    assert flaky.failed == ["drop", "500", "429"]
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "RUNNING", (described.get("error"), described.get("cause"))

    local.batch.finish(job["jobId"], "SUCCEEDED")
    described = finished(local, execution)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["JobId"] == job["jobId"]
    assert not [op for op, _ in local.batch.requests if op == "terminatejob"]


@pytest.mark.timeout(30)
def test_terminating_a_left_job_retries_transient_failures(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stepfunctions, "TERMINATE_FIRST_BACKOFF_SECONDS", 0.05, raising=False)
    flaky = flaky_batch(local, monkeypatch, "terminatejob")
    execution = start(local, one_job_machine(local))
    job = local.batch.wait_for_job()
    local.batch.wait_until_polled()

    local.client("stepfunctions").stop_execution(executionArn=execution)

    assert finished(local, execution)["status"] == "ABORTED"
    local.batch.wait_for(lambda: local.batch.jobs[job["jobId"]]["status"] == "FAILED")
    assert flaky.failed == ["drop", "500", "429"]
    terminations = [body for op, body in local.batch.requests if op == "terminatejob"]
    assert [body["jobId"] for body in terminations] == [job["jobId"]]
    assert "ABORTED" in terminations[0]["reason"]


def test_only_transient_errors_are_retried() -> None:
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
            "DescribeJobs",
        )

    assert stepfunctions.is_transient(ConnectionClosedError(endpoint_url="http://127.0.0.1"))
    assert stepfunctions.is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1"))
    assert stepfunctions.is_transient(client_error("ServerException", 500))
    assert stepfunctions.is_transient(client_error("TooManyRequestsException", 429))
    assert stepfunctions.is_transient(client_error("ThrottlingException", 400))
    assert not stepfunctions.is_transient(client_error("AccessDeniedException", 403))
    assert not stepfunctions.is_transient(client_error("ClientException", 400))
    assert not stepfunctions.is_transient(ValueError("bug"))
