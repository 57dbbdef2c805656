"""The template's EventBridge rules route each sample failure event to exactly one notifier.

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


def resolve(node: Any) -> Any:
    """Stand the sample ARNs in for the template's Refs."""
    if isinstance(node, dict):
        if node == {"Ref": "JobQueue"}:
            return QUEUE_ARN
        if node == {"Ref": "PipelineStateMachine"}:
            return MACHINE_ARN
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return EventPattern(json.dumps(pattern), pattern).matches_event(event)


@pytest.fixture(scope="module")
def patterns() -> dict[str, dict[str, Any]]:
    resources = load_template()["Resources"]
    return {
        "single-job": resolve(resources["FailedJobRule"]["Properties"]["EventPattern"]),
        "array-parent": resolve(
            resources["NotifyFunction"]["Properties"]["Events"]["FailedArrayJob"]["Properties"]["Pattern"]
        ),
        "execution": resolve(resources["FailedExecutionRule"]["Properties"]["EventPattern"]),
    }


@pytest.mark.parametrize(
    ("event_file", "expected"),
    [
        ("batch-job-failed.json", {"single-job"}),
        ("batch-array-parent-failed.json", {"array-parent"}),
        ("batch-array-child-failed.json", set()),
        ("execution-failed.json", {"execution"}),
        ("s3-object-created.json", set()),
    ],
)
def test_each_failure_reaches_exactly_its_notifier(
    patterns: dict[str, dict[str, Any]], event_file: str, expected: set[str]
) -> None:
    event = sample_event(event_file)
    assert {name for name, pattern in patterns.items() if matches(pattern, event)} == expected


@pytest.mark.parametrize("status", ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"])
def test_non_failed_job_transitions_never_notify(patterns: dict[str, dict[str, Any]], status: str) -> None:
    for event_file in ("batch-job-failed.json", "batch-array-parent-failed.json"):
        event = copy.deepcopy(sample_event(event_file))
        event["detail"]["status"] = status
        assert not any(matches(p, event) for p in patterns.values())


def test_jobs_of_other_queues_never_notify(patterns: dict[str, dict[str, Any]]) -> None:
    event = copy.deepcopy(sample_event("batch-job-failed.json"))
    event["detail"]["jobQueue"] = "arn:aws:batch:us-east-1:123456789012:job-queue/someone-else"
    assert not any(matches(p, event) for p in patterns.values())


@pytest.mark.parametrize(
    ("status", "notifies"), [("TIMED_OUT", True), ("ABORTED", True), ("SUCCEEDED", False)]
)
def test_execution_statuses(patterns: dict[str, dict[str, Any]], status: str, notifies: bool) -> None:
    event = copy.deepcopy(sample_event("execution-failed.json"))
    event["detail"]["status"] = status
    assert matches(patterns["execution"], event) is notifies
