"""Step Functions on the local cloud: the Batch `.sync` integration and execution events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from sluice.local.stepfunctions import backend as stepfunctions
from tests.helpers import ROOT
from tests.local.helpers import Local, drain_queue, queue_with_rule, service_role, wait_until


def service_role_once(local: Local) -> str:
    """The state machines' role (created on first use in each test's cloud)."""
    try:
        return str(local.client("iam").get_role(RoleName="sfn")["Role"]["Arn"])
    except local.client("iam").exceptions.NoSuchEntityException:
        return service_role(local.client("iam"), "sfn", "states.amazonaws.com")


SUBMIT_PARAMETERS: dict[str, Any] = {
    "JobName": "transform",
    "JobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
    "JobDefinition": "transform-jd",
    "ArrayProperties": {"Size": 3},
    "DependsOn": [{"JobId": "ingest-job", "Type": "N_TO_N"}],
    "RetryStrategy": {"Attempts": 2, "EvaluateOnExit": [{"OnExitCode": "65", "Action": "EXIT"}]},
    "Timeout": {"AttemptDurationSeconds": 600},
    "ContainerOverrides": {
        "Command": ["python", "-m", "transform"],
        "Environment": [{"Name": "SLUICE_RUN_ID", "Value.$": "$$.Execution.Name"}],
        "ResourceRequirements": [{"Type": "VCPU", "Value": "1"}],
    },
    # Map keys are user data: they must reach Batch exactly as written.
    "Parameters": {"sluiceRun.$": "$$.Execution.Name", "MixedCase": "v", "lower": "w"},
    "Tags": {"Team": "data"},
}

# What AWS Batch's SubmitJob takes for SUBMIT_PARAMETERS (botocore member names).
EXPECTED_SUBMIT_JOB = {
    "jobName": "transform",
    "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
    "jobDefinition": "transform-jd",
    "arrayProperties": {"size": 3},
    "dependsOn": [{"jobId": "ingest-job", "type": "N_TO_N"}],
    "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "65", "action": "EXIT"}]},
    "timeout": {"attemptDurationSeconds": 600},
    "containerOverrides": {
        "command": ["python", "-m", "transform"],
        "environment": [
            {"name": "SLUICE_RUN_ID", "value": "run-1"},
            # Step Functions adds this to every .sync Batch job.
            {"name": "MANAGED_BY_AWS", "value": "STARTED_BY_STEP_FUNCTIONS"},
        ],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}],
    },
    "parameters": {"sluiceRun": "run-1", "MixedCase": "v", "lower": "w"},
    "tags": {"Team": "data"},
}


def batch_task(**extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", **extra}


def create_machine(local: Local, states: dict[str, Any], start_at: str, name: str = "pipeline") -> str:
    definition = {"StartAt": start_at, "States": states}
    sfn = local.client("stepfunctions")
    return sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=service_role_once(local)
    )["stateMachineArn"]


def start(local: Local, machine_arn: str, name: str = "run-1", execution_input: Any = None) -> str:
    sfn = local.client("stepfunctions")
    body = json.dumps(
        execution_input if execution_input is not None else {"input": {"bucket": "b", "key": "k"}}
    )
    return sfn.start_execution(stateMachineArn=machine_arn, name=name, input=body)["executionArn"]


def finished(local: Local, execution_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    sfn = local.client("stepfunctions")
    return wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d,
        timeout,
    )


@pytest.mark.timeout(30)
def test_submit_job_sync_speaks_batch_casing_both_ways(local: Local) -> None:
    machine = create_machine(local, {"Run": batch_task(Parameters=SUBMIT_PARAMETERS, End=True)}, "Run")
    execution = start(local, machine)

    job = local.batch.wait_for_job()
    submitted = [body for operation, body in local.batch.requests if operation == "submitjob"]
    assert submitted == [EXPECTED_SUBMIT_JOB]

    local.batch.finish(job["jobId"], "SUCCEEDED")
    described = finished(local, execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    # The .sync result is the job description in Step Functions' PascalCase...
    assert output["JobId"] == job["jobId"]
    assert output["Status"] == "SUCCEEDED"
    assert output["ArrayProperties"] == {"Size": 3}
    assert output["Container"]["Environment"][0] == {"Name": "SLUICE_RUN_ID", "Value": "run-1"}
    # ...but map keys are user data and keep their case.
    assert output["Parameters"] == {"sluiceRun": "run-1", "MixedCase": "v", "lower": "w"}


@pytest.mark.timeout(30)
def test_failed_job_fails_the_task_with_states_task_failed(local: Local) -> None:
    states = {
        "Run": batch_task(
            Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"},
            Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Failed"}],
            End=True,
        ),
        "Failed": {"Type": "Pass", "End": True},
    }
    execution = start(local, create_machine(local, states, "Run"))
    job = local.batch.wait_for_job()
    local.batch.finish(job["jobId"], "FAILED", reason="Essential container in task exited")

    described = finished(local, execution)
    assert described["status"] == "SUCCEEDED"  # caught
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])  # AWS puts the job description in the cause
    assert cause["JobId"] == job["jobId"]
    assert cause["Status"] == "FAILED"
    assert cause["StatusReason"] == "Essential container in task exited"


@pytest.mark.timeout(30)
def test_moto_still_sends_pascal_case_to_batch_without_the_fix(local: Local) -> None:
    """Fails once moto fixes issue 10076 upstream: then sluice.local.stepfunctions.backend' casing
    conversion is no longer needed and should go."""
    states = {
        "Run": batch_task(Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"}, End=True)
    }
    machine = create_machine(local, states, "Run")
    with stepfunctions.suspended():
        described = finished(local, start(local, machine))
    # boto3 is handed `JobName` where its model has `jobName`; the call dies before it is sent.
    assert [operation for operation, _ in local.batch.requests] == []
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Runtime"
    assert described["cause"].endswith("'JobName'")


GET_MANIFEST = {
    "Type": "Task",
    "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
    "Parameters": {"Bucket": "work-bucket", "Key": "manifest.json"},
    "ResultSelector": {"manifest.$": "States.StringToJson($.Body)", "type.$": "$.ContentType"},
    "End": True,
}


@pytest.mark.timeout(30)
def test_aws_sdk_get_object_returns_the_body_as_text(local: Local) -> None:
    s3 = local.client("s3")
    s3.create_bucket(Bucket="work-bucket")
    s3.put_object(
        Bucket="work-bucket", Key="manifest.json", Body=b'{"shard_count": 3}', ContentType="application/json"
    )
    machine = create_machine(local, {"Read": GET_MANIFEST}, "Read")
    described = finished(local, start(local, machine))
    assert json.loads(described["output"]) == {"manifest": {"shard_count": 3}, "type": "application/json"}
    with stepfunctions.suspended():  # fails once moto turns the stream into text itself
        assert finished(local, start(local, machine, name="moto"))["status"] == "FAILED"


@pytest.mark.timeout(30)
def test_aws_sdk_errors_are_named_as_aws_names_them(local: Local) -> None:
    """`S3.NoSuchKeyException`, which a Catch written for AWS names (moto writes `s3.`):
    https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html"""
    local.client("s3").create_bucket(Bucket="work-bucket")
    missing = {**GET_MANIFEST, "Parameters": {"Bucket": "work-bucket", "Key": "absent.json"}}
    machine = create_machine(local, {"Read": missing}, "Read")
    assert finished(local, start(local, machine))["error"] == "S3.NoSuchKeyException"
    with stepfunctions.suspended():
        assert finished(local, start(local, machine, name="moto"))["error"] == "s3.NoSuchKeyException"


@pytest.mark.timeout(30)
def test_nested_start_execution_sync(local: Local) -> None:
    child = create_machine(
        local, {"Echo": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}, "Echo", name="child"
    )
    parent_states = {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution.sync",
            "Parameters": {"StateMachineArn": child, "Name": "child-run", "Input": {"x": 1}},
            "End": True,
        }
    }
    described = finished(local, start(local, create_machine(local, parent_states, "Call", name="parent")))
    output = json.loads(described["output"])
    assert output["Status"] == "SUCCEEDED"
    assert json.loads(output["Output"]) == {"ok": 1}
    assert output["ExecutionArn"].endswith(":child:child-run")
    assert isinstance(output["StartDate"], int)  # epoch milliseconds


@pytest.mark.timeout(30)
def test_fail_state_rethrows_a_caught_states_error(local: Local) -> None:
    states = {
        "Run": batch_task(
            Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"},
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
            End=True,
        ),
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    }
    execution = start(local, create_machine(local, states, "Run"))
    job = local.batch.wait_for_job()
    local.batch.finish(job["jobId"], "FAILED")
    described = finished(local, execution)
    assert described["error"] == "States.TaskFailed"
    assert json.loads(described["cause"])["JobId"] == job["jobId"]


@pytest.mark.timeout(30)
def test_sync_wait_wakes_on_batch_job_events(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    # With polling effectively off, only the Batch Job State Change event can end the wait.
    monkeypatch.setattr(stepfunctions, "SYNC_FALLBACK_POLL_SECONDS", 60.0)
    states = {
        "Run": batch_task(Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"}, End=True)
    }
    execution = start(local, create_machine(local, states, "Run"))
    job = local.batch.wait_for_job()
    local.batch.wait_until_polled()
    local.batch.finish(job["jobId"], "SUCCEEDED")
    assert finished(local, execution, timeout=5.0)["status"] == "SUCCEEDED"


@pytest.mark.timeout(30)
def test_stop_execution_terminates_the_running_job(local: Local) -> None:
    states = {
        "Run": batch_task(Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"}, End=True)
    }
    execution = start(local, create_machine(local, states, "Run"))
    job = local.batch.wait_for_job()
    local.batch.wait_until_polled()

    local.client("stepfunctions").stop_execution(executionArn=execution)

    assert finished(local, execution)["status"] == "ABORTED"
    terminations = local.batch.wait_for(
        lambda: [body for operation, body in local.batch.requests if operation == "terminatejob"]
    )
    assert terminations[0]["jobId"] == job["jobId"]
    assert "ABORTED" in terminations[0]["reason"]
    assert local.batch.jobs[job["jobId"]]["status"] == "FAILED"


@pytest.mark.timeout(30)
def test_failing_execution_terminates_jobs_still_running(local: Local) -> None:
    def branch(name: str) -> dict[str, Any]:
        parameters = {"JobName": name, "JobQueue": "q", "JobDefinition": "jd"}
        return {"StartAt": name, "States": {name: batch_task(Parameters=parameters, End=True)}}

    states = {"Both": {"Type": "Parallel", "Branches": [branch("slow"), branch("doomed")], "End": True}}
    execution = start(local, create_machine(local, states, "Both"))
    jobs = local.batch.wait_for(lambda: len(local.batch.jobs) == 2 and dict(local.batch.jobs))
    by_name = {job["jobName"]: job["jobId"] for job in jobs.values()}

    local.batch.finish(by_name["doomed"], "FAILED")

    described = finished(local, execution)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.TaskFailed"
    terminated = local.batch.wait_for(
        lambda: [body["jobId"] for operation, body in local.batch.requests if operation == "terminatejob"]
    )
    assert terminated == [by_name["slow"]]


@pytest.mark.timeout(30)
def test_moto_still_turns_branch_errors_into_states_runtime_without_the_fix(local: Local) -> None:
    """Fails once moto re-raises a branch's States.* error itself (then drop correction 5)."""
    topic = local.client("sns").create_topic(Name="tokens")["TopicArn"]
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
        "Parameters": {"TopicArn": topic, "Message.$": "$$.Task.Token"},
        "TimeoutSeconds": 1,  # nobody sends the token: States.Timeout after 1 s
        "End": True,
    }
    branch = {"StartAt": "Wait", "States": {"Wait": wait}}
    machine = create_machine(local, {"P": {"Type": "Parallel", "Branches": [branch], "End": True}}, "P")
    assert finished(local, start(local, machine, name="fixed"))["error"] == "States.Timeout"
    with stepfunctions.suspended():
        assert finished(local, start(local, machine, name="moto"))["error"] == "States.Runtime"


@pytest.mark.timeout(30)
def test_execution_status_change_events(local: Local) -> None:
    queue = queue_with_rule(
        local,
        "states-events",
        {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]},
    )
    ok = create_machine(
        local, {"Done": {"Type": "Pass", "Result": {"rows": 3}, "End": True}}, "Done", name="ok"
    )
    bad = create_machine(
        local, {"Boom": {"Type": "Fail", "Error": "BadInput", "Cause": "no rows"}}, "Boom", name="bad"
    )
    succeeded = start(local, ok, name="good-run", execution_input={"input": {"key": "k"}})
    failed = start(local, bad, name="bad-run")
    finished(local, succeeded)
    finished(local, failed)

    events = [json.loads(body) for body in drain_queue(local, queue)]
    by_run = {(e["detail"]["name"], e["detail"]["status"]): e for e in events}
    assert set(by_run) == {
        ("good-run", "RUNNING"),
        ("good-run", "SUCCEEDED"),
        ("bad-run", "RUNNING"),
        ("bad-run", "FAILED"),
    }

    done = by_run[("good-run", "SUCCEEDED")]
    assert done["source"] == "aws.states"
    assert done["resources"] == [succeeded]
    detail = done["detail"]
    assert detail["executionArn"] == succeeded
    assert detail["stateMachineArn"] == ok
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert json.loads(detail["input"]) == {"input": {"key": "k"}}
    assert detail["inputDetails"] == {"included": True}
    assert json.loads(detail["output"]) == {"rows": 3}
    assert detail["outputDetails"] == {"included": True}
    assert detail["error"] is None and detail["cause"] is None

    running = by_run[("good-run", "RUNNING")]["detail"]
    assert running["stopDate"] is None and running["output"] is None and running["outputDetails"] is None

    boom = by_run[("bad-run", "FAILED")]["detail"]
    assert (boom["error"], boom["cause"]) == ("BadInput", "no rows")
    assert boom["output"] is None and boom["outputDetails"] is None
    # Delivered in order: each execution's RUNNING before its end.
    order = [(e["detail"]["name"], e["detail"]["status"]) for e in events]
    assert order.index(("good-run", "RUNNING")) < order.index(("good-run", "SUCCEEDED"))


@pytest.mark.timeout(30)
def test_aborted_execution_event(local: Local) -> None:
    queue = queue_with_rule(local, "aborted", {"source": ["aws.states"], "detail": {"status": ["ABORTED"]}})
    states = {
        "Run": batch_task(Parameters={"JobName": "ingest", "JobQueue": "q", "JobDefinition": "jd"}, End=True)
    }
    execution = start(local, create_machine(local, states, "Run"))
    local.batch.wait_for_job()
    local.batch.wait_until_polled()
    local.client("stepfunctions").stop_execution(executionArn=execution)
    finished(local, execution)
    [event] = [json.loads(body) for body in drain_queue(local, queue)]
    assert event["detail"]["executionArn"] == execution
    assert event["detail"]["stopDate"] is not None


def test_large_output_is_left_out_of_the_event() -> None:
    class Machine:
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m"

    class Execution:
        exec_arn = "arn:aws:states:us-east-1:123456789012:execution:m:r"
        state_machine = Machine()
        name = "r"
        input_data = {"small": True}
        output = {"blob": "x" * 300_000}
        error = cause = None
        start_date = stop_date = None

    detail = stepfunctions.status_change_detail(Execution(), "SUCCEEDED")
    assert detail["output"] is None and detail["outputDetails"] == {"included": False}
    assert detail["input"] == '{"small":true}' and detail["inputDetails"] == {"included": True}


def test_execution_registered_but_not_started_reads_as_running() -> None:
    from types import SimpleNamespace

    from moto.stepfunctions.parser.backend.execution import Execution

    fresh = SimpleNamespace(exec_status=None)
    with stepfunctions.suspended():
        # moto 5.2.5: a ListExecutions racing StartExecution hits this and answers HTTP 500.
        with pytest.raises(AttributeError):
            Execution.status.fget(fresh)
    stepfunctions.install(None)
    try:
        assert Execution.status.fget(fresh) == "RUNNING"
    finally:
        stepfunctions.uninstall()


WAIT_FOREVER = {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}


@pytest.mark.timeout(30)
def test_stop_execution_keeps_error_and_cause(local: Local) -> None:
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
    sfn = local.client("stepfunctions")
    execution = start(local, create_machine(local, WAIT_FOREVER, "Hold", name="stoppable"))
    sfn.stop_execution(executionArn=execution, error="Ops.Stopped", cause="maintenance window")
    described = finished(local, execution)
    assert described["status"] == "ABORTED"
    assert (described.get("error"), described.get("cause")) == ("Ops.Stopped", "maintenance window")


@pytest.mark.timeout(30)
def test_moto_still_drops_the_stop_reason_without_the_fix(local: Local) -> None:
    """Fails once moto keeps StopExecution's error and cause: then correction 6 can go."""
    sfn = local.client("stepfunctions")
    execution = start(local, create_machine(local, WAIT_FOREVER, "Hold", name="stoppable-moto"))
    with stepfunctions.suspended():
        sfn.stop_execution(executionArn=execution, error="Ops.Stopped", cause="maintenance window")
        described = finished(local, execution)
    assert described["status"] == "ABORTED"
    assert not described.get("error") and not described.get("cause")


def test_stop_waits_for_the_worker_environment() -> None:
    import datetime as dt
    import threading
    from types import SimpleNamespace

    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    stopped: list[str | None] = []
    worker = SimpleNamespace(env=None)
    now = dt.datetime.now(dt.UTC)
    with stepfunctions.suspended():
        # moto 5.2.5: a stop that arrives before the worker thread built `env` fails.
        with pytest.raises(AttributeError):
            ExecutionWorker.stop(worker, stop_date=now, error="E", cause="C")
    timer = threading.Timer(
        0.05,
        lambda: setattr(worker, "env", SimpleNamespace(set_stop=lambda **kw: stopped.append(kw["error"]))),
    )
    stepfunctions.install(None)
    try:
        timer.start()
        ExecutionWorker.stop(worker, stop_date=now, error="E", cause="C")
    finally:
        timer.join()
        stepfunctions.uninstall()
    assert stopped == ["E"]


@pytest.mark.timeout(30)
def test_pipeline_sync_state_times_out_into_pipeline_failed(local: Local) -> None:
    """A `.sync` job that never ends: the state's TimeoutSecondsPath (here 1 x 1 + 1 + 1 = 3 s)
    fails it with States.Timeout, the Catch leads to PipelineFailed, and the job is terminated."""
    values = {
        "JobQueueArn": "q",
        "IngestJobDefinitionArn": "ingest",
        "TransformJobDefinitionArn": "transform",
        "AggregateJobDefinitionArn": "aggregate",
        "WorkBucketName": "work",
        "OutputBucketName": "output",
        "JobAttempts": "1",
        "JobAttemptTimeoutSeconds": "1",
        "MaxRunnableSeconds": "1",
        "SyncMarginSeconds": "1",
    }
    text = (ROOT / "statemachines" / "pipeline.asl.json").read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    sfn = local.client("stepfunctions")
    machine = sfn.create_state_machine(name="pipeline", definition=text, roleArn=service_role_once(local))[
        "stateMachineArn"
    ]
    execution = start(local, machine)
    job = local.batch.wait_for_job()
    assert job["jobName"] == "sluice-ingest"

    described = finished(local, execution, timeout=15)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Timeout"
    history = sfn.get_execution_history(executionArn=execution)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered[-2:] == ["DescribeFailure", "PipelineFailed"]
    terminated = local.batch.wait_for(
        lambda: [body["jobId"] for operation, body in local.batch.requests if operation == "terminatejob"]
    )
    assert terminated == [job["jobId"]]


@pytest.mark.timeout(60)
def test_a_definition_is_parsed_once_and_every_execution_gets_its_own_program(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Correction 12: the parsed program is reused by copy, and executions stay independent (a
    Map's iterations and a Pass's result are each execution's own)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parses: list[str] = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        parses.append(definition)
        return original(definition)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    programs: list[Any] = []
    patched = stepfunctions._evaluation_entrypoint

    def recording(self: Any) -> Any:
        programs.append(patched(self))
        return programs[-1]

    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_entrypoint", recording)
    states = {
        "Double": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "Times2",
                "States": {
                    "Times2": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $)"}, "End": True}
                },
            },
            "ResultPath": "$.doubled",
            "End": True,
        }
    }
    machine = create_machine(local, states, "Double", name="parse-once")
    parses.clear()  # CreateStateMachine validates by parsing; executions are what count
    arns = [start(local, machine, f"run-{n}", {"items": list(range(n, n + 3))}) for n in range(4)]
    outputs = [json.loads(finished(local, arn)["output"]) for arn in arns]
    assert [o["doubled"] for o in outputs] == [[{"v": 2 * i} for i in range(n, n + 3)] for n in range(4)]
    assert len([p for p in parses if '"Double"' in p]) == 1  # the machine's own definition, once
    assert len(programs) == 4 and len({id(p) for p in programs}) == 4
