"""The local Lambda runtime through boto3: API, warm workers, errors, timeouts, logs."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from sluice.local.awslambda import LambdaServiceError
from tests.local.awslambda.helpers import ROLE, LocalEndpoint, handler_zip


def invoke(endpoint, name: str, payload: dict | None = None, **kwargs) -> tuple[dict, dict]:
    response = endpoint.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kwargs
    )
    return response, json.loads(response["Payload"].read() or b"null")


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_create_get_list_delete(endpoint, make_function):
    lam = endpoint.client("lambda")
    name = make_function("app.echo", Timeout=7, MemorySize=256, Environment={"Variables": {"GREETING": "hi"}})
    config = lam.get_function_configuration(FunctionName=name)
    assert config["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert (config["Handler"], config["Runtime"], config["Timeout"], config["MemorySize"]) == (
        "app.echo",
        "python3.13",
        7,
        256,
    )
    assert config["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert config["State"] == "Active" and config["Version"] == "$LATEST"
    assert name in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert (
        lam.get_function(FunctionName=config["FunctionArn"])["Configuration"]["CodeSha256"]
        == config["CodeSha256"]
    )

    with pytest.raises(ClientError) as exc:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.echo",
            Code={"ZipFile": handler_zip()},
        )
    assert error_code(exc) == "ResourceConflictException"

    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=name)
    assert error_code(exc) == "ResourceNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_validation_errors(endpoint):
    lam = endpoint.client("lambda")
    with pytest.raises(ClientError) as exc:
        lam.create_function(
            FunctionName=f"reserved-{uuid.uuid4().hex[:6]}",
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.echo",
            Code={"ZipFile": handler_zip()},
            Environment={"Variables": {"AWS_REGION": "eu-west-1"}},
        )
    assert error_code(exc) == "InvalidParameterValueException"
    assert "AWS_REGION" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        lam.create_function(
            FunctionName=f"badzip-{uuid.uuid4().hex[:6]}",
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.echo",
            Code={"ZipFile": b"not a zip"},
        )
    assert error_code(exc) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert error_code(exc) == "ResourceNotFoundException"


def test_warm_reuse_env_and_context(endpoint, make_function):
    name = make_function("app.echo", Timeout=5, MemorySize=256, Environment={"Variables": {"GREETING": "hi"}})
    first, body = invoke(endpoint, name, {"n": 1, "list_queues": True})
    assert first["StatusCode"] == 200 and "FunctionError" not in first
    assert first["ExecutedVersion"] == "$LATEST"
    assert body["event"] == {"n": 1, "list_queues": True}
    assert isinstance(body["queues"], list)  # the handler's own boto3 client reached the endpoint

    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith(env["AWS_LAMBDA_LOG_STREAM_NAME"][-32:])
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["_HANDLER"] == "app.echo"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["AWS_ENDPOINT_URL"] == endpoint.url
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["GREETING"] == "hi"
    assert body["cwd"] == env["LAMBDA_TASK_ROOT"]

    context = body["context"]
    assert context["function_name"] == name
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert context["memory_limit_in_mb"] == "256"  # a string, as in the AWS Python runtime
    assert context["log_group_name"] == f"/aws/lambda/{name}"
    assert context["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < context["remaining_ms"] <= 5000
    uuid.UUID(context["aws_request_id"])

    _, again = invoke(endpoint, name, {"n": 2})
    assert again["pid"] == body["pid"]  # warm: the same worker process served it
    assert again["context"]["aws_request_id"] != context["aws_request_id"]
    assert endpoint.runtime.worker_pids(name) == [body["pid"]]


def test_update_configuration_replaces_workers(endpoint, make_function):
    lam = endpoint.client("lambda")
    name = make_function("app.echo", Environment={"Variables": {"GREETING": "one"}})
    _, before = invoke(endpoint, name)
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"GREETING": "two"}})
    _, after = invoke(endpoint, name)
    assert after["env"]["GREETING"] == "two"
    assert after["pid"] != before["pid"]


def test_timeout_kills_the_worker(endpoint, make_function):
    name = make_function("app.sleepy", Timeout=1)
    started = time.monotonic()
    response, body = invoke(endpoint, name, {"seconds": 30})
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert body["errorMessage"].startswith("RequestId: ")
    assert endpoint.runtime.worker_pids(name) == []

    ok, body = invoke(endpoint, name, {"seconds": 0})
    assert "FunctionError" not in ok and body == {"slept": 0}


def test_handler_exception_shape(endpoint, make_function):
    name = make_function("app.boom")
    response, body = invoke(endpoint, name, {"why": "bad input"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom: bad input"
    uuid.UUID(body["requestId"])
    assert body["stackTrace"] and all(isinstance(frame, str) for frame in body["stackTrace"])
    assert 'app.py", line' in body["stackTrace"][-1] and "raise ValueError" in body["stackTrace"][-1]
    assert not any("bootstrap.py" in frame for frame in body["stackTrace"])


def test_init_and_exit_errors(endpoint, make_function):
    name = make_function("broken.handler")
    response, body = invoke(endpoint, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert (
        body["errorMessage"]
        == "Unable to import module 'broken': No module named 'module_that_does_not_exist'"
    )

    missing = make_function("app.nope")
    _, body = invoke(endpoint, missing)
    assert body["errorType"] == "Runtime.HandlerNotFound"

    exits = make_function("app.exits")
    response, body = invoke(endpoint, exits)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")


def test_logs_reach_cloudwatch(endpoint, make_function):
    name = make_function("app.chatty")
    response, body = invoke(endpoint, name, LogType="Tail")
    assert body == "ok"
    assert endpoint.runtime.flush_logs(10)
    logs = endpoint.client("logs")
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
    assert messages[0].startswith("START RequestId: ")
    assert "plain print line" in messages
    assert any(m.startswith("[INFO]\t") and m.endswith("an info record") for m in messages)
    assert any(m.startswith("[WARNING]\t") and "a warning record" in m for m in messages)
    assert messages[-2].startswith("END RequestId: ")
    assert messages[-1].startswith("REPORT RequestId: ") and "Init Duration" in messages[-1]
    assert "plain print line" in base64.b64decode(response["LogResult"]).decode()


def test_permissions_invoke_config_concurrency_tags(endpoint, make_function):
    lam = endpoint.client("lambda")
    name = make_function("app.echo")
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    lam.add_permission(
        FunctionName=name,
        StatementId="events",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn="arn:aws:events:us-east-1:123456789012:rule/r",
    )
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(":rule/r")
    with pytest.raises(ClientError) as exc:
        lam.add_permission(
            FunctionName=name,
            StatementId="events",
            Action="lambda:InvokeFunction",
            Principal="sns.amazonaws.com",
        )
    assert error_code(exc) == "ResourceConflictException"
    lam.remove_permission(FunctionName=name, StatementId="events")
    with pytest.raises(ClientError) as exc:
        lam.get_policy(FunctionName=name)
    assert error_code(exc) == "ResourceNotFoundException"

    destination = "arn:aws:sqs:us-east-1:123456789012:somewhere"
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=1,
        MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnFailure": {"Destination": destination}},
    )
    config = lam.get_function_event_invoke_config(FunctionName=name)
    assert config["MaximumRetryAttempts"] == 1 and config["MaximumEventAgeInSeconds"] == 120
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == destination
    assert config["FunctionArn"] == f"{arn}:$LATEST"
    with pytest.raises(ClientError) as exc:
        lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=5)
    assert exc.value.response["Error"]["Code"] in ("InvalidParameterValueException", "ParamValidation")
    lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert error_code(exc) == "ResourceNotFoundException"

    assert (
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)[
            "ReservedConcurrentExecutions"
        ]
        == 0
    )
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert error_code(exc) == "TooManyRequestsException"
    lam.delete_function_concurrency(FunctionName=name)
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200

    lam.tag_resource(Resource=arn, Tags={"team": "data"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "data"}
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {}


def test_versions_and_aliases(endpoint, make_function):
    lam = endpoint.client("lambda")
    name = make_function("app.echo")
    version = lam.publish_version(FunctionName=name)["Version"]
    assert version == "1"
    alias = lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    assert alias["AliasArn"].endswith(f":{name}:live")
    response, body = invoke(endpoint, name, Qualifier="live")
    assert response["ExecutedVersion"] == "1"
    assert body["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert body["context"]["invoked_function_arn"].endswith(":live")


def test_python_invoke_method_and_dry_run(endpoint, make_function):
    name = make_function("app.echo")
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    result = endpoint.runtime.invoke(arn, b'{"via": "python"}')
    assert result["StatusCode"] == 200 and "FunctionError" not in result
    assert json.loads(result["Payload"])["event"] == {"via": "python"}
    assert endpoint.client("lambda").invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        endpoint.client("lambda").invoke(FunctionName=name, Payload=b"not json")
    assert error_code(exc) == "InvalidRequestContentException"


def test_worker_processes_end_with_the_function(endpoint, make_function):
    lam = endpoint.client("lambda")
    name = make_function("app.echo")
    _, body = invoke(endpoint, name)
    lam.delete_function(FunctionName=name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(body["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("worker process still running after DeleteFunction")


def test_concurrent_invocations_get_their_own_workers(endpoint, make_function):
    name = make_function("app.sleepy", Timeout=10)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: endpoint.runtime.invoke(name, b'{"seconds": 0.5}'), range(2)))
    assert all("FunctionError" not in r for r in results)
    assert len(endpoint.runtime.worker_pids(name)) == 2  # two environments, both warm now


def test_reserved_concurrency_throttles_the_excess(endpoint, make_function):
    name = make_function("app.sleepy", Timeout=10)
    endpoint.client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    endpoint.runtime.invoke(name, b'{"seconds": 0}')  # warm the single environment
    busy = threading.Thread(target=endpoint.runtime.invoke, args=(name, b'{"seconds": 1}'))
    busy.start()
    try:
        deadline = time.monotonic() + 5
        while endpoint.runtime.busy_workers(name) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the environment is taken
        with pytest.raises(LambdaServiceError) as exc:
            endpoint.runtime.invoke(name, b'{"seconds": 0}')
        assert exc.value.code == "TooManyRequestsException" and exc.value.status == 429
        assert exc.value.fields["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        busy.join(10)


def test_stop_ends_busy_workers(tmp_path):
    local = LocalEndpoint(tmp_path, retry_delays=(0.1, 0.1))
    local.start()
    stopped = False
    try:
        name = "stop-test"
        local.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.sleepy",
            Code={"ZipFile": handler_zip()},
            Timeout=60,
        )
        results: list[dict] = []
        caller = threading.Thread(
            target=lambda: results.append(local.runtime.invoke(name, b'{"seconds": 60}'))
        )
        caller.start()
        deadline = time.monotonic() + 10
        while local.runtime.busy_workers(name) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert local.runtime.busy_workers(name) == 1
        started = time.monotonic()
        local.stop()
        stopped = True
        caller.join(10)
        assert time.monotonic() - started < 10
        assert results and results[0]["FunctionError"] == "Unhandled"
        assert json.loads(results[0]["Payload"])["errorType"] == "Runtime.ExitError"
    finally:
        if not stopped:
            local.stop()
