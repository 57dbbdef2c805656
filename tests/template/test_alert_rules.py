"""The template's EventBridge rules send each incident to the notify function once, and nothing else.

A run's failure reaches people through its execution's status change only: Batch job events
(single jobs, array parents, array children) are not routed anywhere, so one failed run is one
alert. A rejected upload arrives as the trigger's `Sluice Upload Rejected` event.

moto 5.2.5's TestEventPattern answers without `Result`, so patterns are checked with the
matcher the local cloud delivers with.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests.helpers import load_template, sample_event

QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/sluice-JobQueue"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:PipelineStateMachine-abc"
INPUT_BUCKET = "sluice-input-example"


def resolve(node: Any) -> Any:
    """Stand the sample ARNs in for the template's Refs."""
    if isinstance(node, dict):
        if node == {"Ref": "JobQueue"}:
            return QUEUE_ARN
        if node == {"Ref": "PipelineStateMachine"}:
            return MACHINE_ARN
        if node == {"Ref": "InputBucket"}:
            return INPUT_BUCKET
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)


def all_patterns() -> dict[str, dict[str, Any]]:
    """Every event pattern in the template: standalone rules and SAM EventBridgeRule events."""
    found: dict[str, dict[str, Any]] = {}
    for lid, resource in load_template()["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule":
            found[lid] = resolve(properties["EventPattern"])
        for name, event in (properties.get("Events") or {}).items():
            if event["Type"] == "EventBridgeRule":
                found[f"{lid}.{name}"] = resolve(event["Properties"]["Pattern"])
    return found


@pytest.fixture(scope="module")
def patterns() -> dict[str, dict[str, Any]]:
    return all_patterns()


@pytest.mark.parametrize(
    ("event_file", "expected"),
    [
        ("batch-job-failed.json", set()),
        ("batch-array-parent-failed.json", set()),
        ("batch-array-child-failed.json", set()),
        ("execution-failed.json", {"NotifyFunction.RunFinished"}),
        ("upload-rejected.json", {"NotifyFunction.UploadRejected"}),
        ("s3-object-created.json", {"TriggerFunction.ObjectCreated"}),
    ],
)
def test_each_event_reaches_exactly_one_target(
    patterns: dict[str, dict[str, Any]], event_file: str, expected: set[str]
) -> None:
    event = copy.deepcopy(sample_event(event_file))
    if event_file == "s3-object-created.json":
        event["detail"]["bucket"]["name"] = INPUT_BUCKET
    assert {name for name, pattern in patterns.items() if matches(pattern, event)} == expected


@pytest.mark.parametrize(
    ("status", "notifies"),
    [("FAILED", True), ("TIMED_OUT", True), ("ABORTED", True), ("SUCCEEDED", True), ("RUNNING", False)],
)
def test_execution_statuses(patterns: dict[str, dict[str, Any]], status: str, notifies: bool) -> None:
    """Every finished run reaches the notify function: a success with gaps is always announced,
    a complete one only with NotifyOnSuccess (decided by the function, tests/functions)."""
    event = copy.deepcopy(sample_event("execution-failed.json"))
    event["detail"]["status"] = status
    assert matches(patterns["NotifyFunction.RunFinished"], event) is notifies


def test_executions_of_other_state_machines_never_notify(patterns: dict[str, dict[str, Any]]) -> None:
    event = copy.deepcopy(sample_event("execution-failed.json"))
    event["detail"]["stateMachineArn"] = MACHINE_ARN.replace("PipelineStateMachine", "SomeoneElses")
    assert not matches(patterns["NotifyFunction.RunFinished"], event)


def test_rejections_from_other_buckets_never_notify(patterns: dict[str, dict[str, Any]]) -> None:
    event = copy.deepcopy(sample_event("upload-rejected.json"))
    event["detail"]["bucket"] = "another-stacks-input"
    assert not matches(patterns["NotifyFunction.UploadRejected"], event)
