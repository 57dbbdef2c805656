"""The pipeline ASL is valid for the interpreter the local cloud runs and wired to the template."""

from __future__ import annotations

import json
import re
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
    "IngestJobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/sluice-ingest:1",
    "TransformJobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/sluice-transform:1",
    "AggregateJobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/sluice-aggregate:1",
    "WorkBucketName": "sluice-work-example",
    "OutputBucketName": "sluice-output-example",
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
    assert set(batch_tasks) == {"RunIngest", "RunTransformSingle", "RunTransformArray", "RunAggregate"}
    for state in batch_tasks.values():
        assert state["Resource"] == "arn:aws:states:::batch:submitJob.sync"


def test_retries_only_transient_errors_with_jitter_and_catches_into_one_failure(definition: dict) -> None:
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        for retrier in state["Retry"]:
            assert "States.ALL" not in retrier["ErrorEquals"], name
            assert "States.TaskFailed" not in retrier["ErrorEquals"], name
            assert retrier["JitterStrategy"] == "FULL", name
        [catcher] = state["Catch"]
        assert catcher == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DescribeFailure"}


def test_jobs_get_the_documented_environment(definition: dict[str, Any]) -> None:
    expected = {
        "SLUICE_RUN_ID",
        "SLUICE_INPUT",
        "SLUICE_OPTIONS",
        "SLUICE_WORK_PREFIX",
        "SLUICE_OUTPUT_PREFIX",
    }
    for name in ("RunIngest", "RunTransformSingle", "RunTransformArray", "RunAggregate"):
        parameters = definition["States"][name]["Parameters"]
        assert {e["Name"] for e in parameters["ContainerOverrides"]["Environment"]} == expected
        assert set(parameters["Parameters"]) == {"sluiceInput.$", "sluiceRun.$"}
    assert definition["States"]["RunTransformArray"]["Parameters"]["ArrayProperties"] == {
        "Size.$": "$.manifest.document.shard_count"
    }


def test_no_jsonata_or_variables(definition: dict[str, Any]) -> None:
    text = json.dumps(definition)
    assert "QueryLanguage" not in text and '"Assign"' not in text and "{%" not in text
