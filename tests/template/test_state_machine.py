"""The pipeline ASL is valid for the interpreter the local cloud runs and wired to the template."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

from tests.helpers import ROOT, load_template

ASL_PATH = ROOT / "statemachines" / "pipeline.asl.json"
SAMPLE_SUBSTITUTIONS = {
    "JobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/sluice-JobQueue",
    "ShareIdentifier": "sluice",
    "IngestJobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/sluice-ingest:1",
    "TransformJobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/sluice-transform:1",
    "AggregateJobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/sluice-aggregate:1",
    "WorkBucketName": "sluice-work-example",
    "OutputBucketName": "sluice-output-example",
    "JobAttempts": "3",
    "JobAttemptTimeoutSeconds": "3600",
    "MaxRunnableSeconds": "3600",
    "SyncMarginSeconds": "600",
}


def substituted() -> str:
    text = ASL_PATH.read_text()
    for name, value in SAMPLE_SUBSTITUTIONS.items():
        text = text.replace("${" + name + "}", value)
    return text


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(substituted())


def test_substitutions_match_the_template() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    machine = load_template()["Resources"]["PipelineStateMachine"]["Properties"]
    assert used == set(machine["DefinitionSubstitutions"]) == set(SAMPLE_SUBSTITUTIONS)


def test_parses_and_passes_static_analysis() -> None:
    AmazonStateLanguageParser.parse(substituted())
    StaticAnalyser().analyse(substituted())


def test_creates_in_step_functions() -> None:
    with mock_aws():
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(name="pipeline", definition=substituted(), roleArn=role)[
            "stateMachineArn"
        ]
        assert (
            json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])["StartAt"]
            == "ValidateInput"
        )


def test_every_batch_step_is_sync_and_never_sync2(definition: dict[str, Any]) -> None:
    batch_tasks = {
        name: state
        for name, state in definition["States"].items()
        if state["Type"] == "Task" and ":batch:" in state["Resource"]
    }
    assert set(batch_tasks) == {
        "RunIngest",
        "PlanRerun",
        "RunTransformSingle",
        "RunTransformArray",
        "RunAggregate",
    }
    for state in batch_tasks.values():
        assert state["Resource"] == "arn:aws:states:::batch:submitJob.sync"


def test_every_job_runs_under_the_stacks_share_of_the_fair_share_queue(definition: dict[str, Any]) -> None:
    """A fair-share queue refuses a job without a share identifier or a scheduling priority
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html), and the queue is
    always fair-share: the stack's own policy, or the one SchedulingPolicyArn names."""
    resources = load_template()["Resources"]
    assert resources["JobQueue"]["Properties"]["SchedulingPolicyArn"] == {
        "Fn::If": ["CreateSchedulingPolicy", {"Ref": "SchedulingPolicy"}, {"Ref": "SchedulingPolicyArn"}]
    }
    assert resources["SchedulingPolicy"]["Condition"] == "CreateSchedulingPolicy"
    for name in ("IngestJobDefinition", "TransformJobDefinition", "AggregateJobDefinition"):
        assert isinstance(resources[name]["Properties"]["SchedulingPriority"], int)
    for name, state in definition["States"].items():
        if state["Type"] == "Task" and ":batch:" in state["Resource"]:
            assert state["Parameters"]["ShareIdentifier"] == "sluice", name


def test_retries_only_transient_errors_with_jitter_and_catches_into_one_failure(definition: dict) -> None:
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        for retrier in state["Retry"]:
            assert "States.ALL" not in retrier["ErrorEquals"], name
            assert "States.TaskFailed" not in retrier["ErrorEquals"], name
            assert retrier["JitterStrategy"] == "FULL", name
        *special, catcher = state["Catch"]
        assert catcher == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DescribeFailure"}
        # Before it, only the documented detours: a rerun without a manifest runs ingest, and a
        # transform array that failed within max_failed_shards goes on to aggregate (docs/rerun.md).
        expected = {
            "FindRunManifest": [
                {"ErrorEquals": ["S3.NoSuchKeyException"], "ResultPath": None, "Next": "RunIngest"}
            ],
            "RunTransformArray": [
                {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "CheckShardTolerance"}
            ],
        }
        assert special == expected.get(name, []), name


def test_jobs_get_the_documented_environment(definition: dict[str, Any]) -> None:
    expected = {
        "SLUICE_RUN_ID",
        "SLUICE_INPUT",
        "SLUICE_OPTIONS",
        "SLUICE_WORK_PREFIX",
        "SLUICE_OUTPUT_PREFIX",
    }
    # Besides the common five: the transform's shard plan (empty except in a rerun), the plan
    # job's execution name, aggregate's permission to finish with tolerated gaps.
    extra = {
        "RunIngest": set(),
        "PlanRerun": {"SLUICE_EXECUTION_NAME"},
        "RunTransformSingle": {"SLUICE_SHARD_PLAN"},
        "RunTransformArray": {"SLUICE_SHARD_PLAN"},
        "RunAggregate": {"SLUICE_ALLOW_MISSING_SHARDS"},
    }
    for name, more in extra.items():
        parameters = definition["States"][name]["Parameters"]
        assert {e["Name"] for e in parameters["ContainerOverrides"]["Environment"]} == expected | more
        assert set(parameters["Parameters"]) == {"sluiceInput.$", "sluiceRun.$"}
    assert definition["States"]["RunTransformArray"]["Parameters"]["ArrayProperties"] == {
        "Size.$": "$.fanout.size"
    }
    assert definition["States"]["PlanRerun"]["Parameters"]["ContainerOverrides"]["Command"] == ["plan"]


def test_no_jsonata_or_variables(definition: dict[str, Any]) -> None:
    text = json.dumps(definition)
    assert "QueryLanguage" not in text and '"Assign"' not in text and "{%" not in text


SYNC_TIMEOUT_PATHS = {
    "RunIngest": "$.run.limits.jobSeconds",
    "PlanRerun": "$.run.limits.jobSeconds",
    "RunTransformSingle": "$.run.limits.jobSeconds",
    "RunTransformArray": "$.run.limits.arraySeconds",
    "RunAggregate": "$.run.limits.jobSeconds",
}


def test_every_sync_batch_state_has_a_timeout(definition: dict[str, Any]) -> None:
    """An execution never waits forever on a job (a queue blocked for a reason Batch can't act on)."""
    for name, path in SYNC_TIMEOUT_PATHS.items():
        state = definition["States"][name]
        assert state["TimeoutSecondsPath"] == path, name
        assert "TimeoutSeconds" not in state and "HeartbeatSeconds" not in state, name


@pytest.mark.parametrize(
    ("attempts", "timeout", "runnable", "margin"),
    [
        ("3", "3600", "3600", "600"),
        ("1", "60", "600", "600"),
        ("10", "86400", "86400", "600"),
        ("7", "75", "900", "1"),
    ],
)
def test_prepare_run_computes_the_sync_limits(
    attempts: str, timeout: str, runnable: str, margin: str
) -> None:
    """jobSeconds = attempts x attempt timeout + RUNNABLE limit + margin; arraySeconds = 100 x that."""
    values = {
        **SAMPLE_SUBSTITUTIONS,
        "JobAttempts": attempts,
        "JobAttemptTimeoutSeconds": timeout,
        "MaxRunnableSeconds": runnable,
        "SyncMarginSeconds": margin,
    }
    text = ASL_PATH.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    prepare = {**json.loads(text)["States"]["PrepareRun"], "End": True}
    prepare.pop("Next")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="prepare",
            definition=json.dumps({"StartAt": "PrepareRun", "States": {"PrepareRun": prepare}}),
            roleArn=role,
        )["stateMachineArn"]
        execution = sfn.start_execution(
            stateMachineArn=machine, input=json.dumps({"input": {"bucket": "b", "key": "k"}, "options": {}})
        )["executionArn"]
        described = sfn.describe_execution(executionArn=execution)
        for _ in range(200):
            if described["status"] != "RUNNING":
                break
            time.sleep(0.05)
            described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "SUCCEEDED", described
    limits = json.loads(described["output"])["run"]["limits"]
    job = int(attempts) * int(timeout) + int(runnable) + int(margin)
    assert limits == {"jobSeconds": job, "arraySeconds": 100 * job}
