"""EventBridge on the local cloud: pattern matching and delivery to rule targets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from sluice.local.events.backend import matches
from tests.local.helpers import (
    Local,
    allow_eventbridge,
    drain_queue,
    queue_with_rule,
    service_role,
    wait_until,
)

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "1",
    "detail-type": "Batch Job State Change",
    "source": "aws.batch",
    "account": "123456789012",
    "time": "2024-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:batch:us-east-1:123456789012:job/abc"],
    "detail": {
        "jobName": "transform",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/sluice-JobQueue",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "arrayProperties": {"size": 4},
        "attempts": [{"container": {"exitCode": 65}}],
        "parameters": {"sluiceRun": "run-1"},
        "nothing": None,
        "empty": "",
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.batch"], "detail": {"status": ["FAILED"]}}, True),
        ({"source": ["aws.batch"], "detail": {"status": ["SUCCEEDED"]}}, False),
        ({"detail": {"arrayProperties": {"size": [{"exists": True}]}}}, True),
        ({"detail": {"arrayProperties": {"index": [{"exists": True}]}}}, False),
        ({"detail": {"arrayProperties": {"index": [{"exists": False}]}}}, True),
        (
            {"detail": {"jobQueue": [{"prefix": "arn:aws:batch:us-east-1:123456789012:job-queue/sluice-"}]}},
            True,
        ),
        ({"detail": {"jobQueue": [{"suffix": "JobQueue"}]}}, True),
        ({"detail": {"jobName": [{"anything-but": ["ingest", "aggregate"]}]}}, True),
        ({"detail": {"jobName": [{"anything-but": {"prefix": "trans"}}]}}, False),
        ({"detail": {"attempts": {"container": {"exitCode": [{"numeric": [">", 0, "<=", 65]}]}}}}, True),
        ({"detail": {"attempts": {"container": {"exitCode": [{"numeric": ["=", 1]}]}}}}, False),
        ({"detail": {"status": [{"equals-ignore-case": "failed"}]}}, True),
        ({"detail": {"statusReason": [{"wildcard": "Essential*exited"}]}}, True),
        ({"$or": [{"detail": {"status": ["SUCCEEDED"]}}, {"detail": {"jobName": ["transform"]}}]}, True),
        ({"resources": ["arn:aws:batch:us-east-1:123456789012:job/abc"]}, True),
        ({"detail": {"nothing": [None]}}, True),
        ({"detail": {"empty": [""]}}, True),
    ],
)
def test_matches_supports_the_operators_the_rules_use(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, EVENT) is expected
    assert matches(json.dumps(pattern), EVENT) is expected


def test_moto_still_ignores_fields_inside_arrays_of_objects() -> None:
    """Fails once moto's matcher looks inside arrays (then ArrayAwareEventPattern can go)."""
    pattern = {"detail": {"attempts": {"container": {"exitCode": [65]}}}}
    assert EventPattern(json.dumps(pattern), pattern).matches_event(EVENT) is False
    assert matches(pattern, EVENT) is True


def test_matches_rejects_invalid_patterns() -> None:
    with pytest.raises(Exception, match="must be an object or an array"):
        matches({"source": "aws.batch"}, EVENT)


def put(local: Local, *entries: dict[str, Any], bus: str | None = None) -> dict[str, Any]:
    request = [
        {
            "Source": "sluice.test",
            "DetailType": "Test",
            "Detail": json.dumps(detail),
            **({"EventBusName": bus} if bus else {}),
        }
        for detail in entries
    ]
    return local.client("events").put_events(Entries=request)


def rule(
    local: Local, name: str, targets: list[dict[str, Any]], pattern: dict[str, Any] | None = None, **kw: Any
) -> None:
    events = local.client("events")
    rule_arn = events.put_rule(
        Name=name, EventPattern=json.dumps(pattern or {"source": ["sluice.test"]}), **kw
    )["RuleArn"]
    for target in targets:
        allow_eventbridge(local, rule_arn, target["Arn"])
    events.put_targets(Rule=name, EventBusName=kw.get("EventBusName", "default"), Targets=targets)


@pytest.mark.timeout(30)
def test_sns_target_with_input_transformer_reaches_the_outbox(local: Local) -> None:
    topic = local.client("sns").create_topic(Name="alerts")["TopicArn"]
    transformer = {
        "InputPathsMap": {"job": "$.detail.job", "reason": "$.detail.reason"},
        "InputTemplate": '"Job <job> failed: <reason>. Rule <aws.events.rule-name>"',
    }
    rule(local, "alerts", [{"Id": "sns", "Arn": topic, "InputTransformer": transformer}])

    put(local, {"job": "ingest", "reason": "bad input"})
    assert local.cloud.events.wait_idle(10)

    [note] = local.cloud.notifications()
    assert note["topic_arn"] == topic
    assert note["message"] == '"Job ingest failed: bad input. Rule alerts"'


@pytest.mark.timeout(30)
def test_sqs_target_with_input_path(local: Local) -> None:
    queue = queue_with_rule(local, "inputpath", {"source": ["sluice.test"]}, InputPath="$.detail")
    put(local, {"n": 1})
    assert [json.loads(body) for body in drain_queue(local, queue)] == [{"n": 1}]


@pytest.mark.timeout(30)
def test_sqs_target_gets_the_full_event_by_default(local: Local) -> None:
    queue = queue_with_rule(
        local, "whole", {"source": ["sluice.test"], "detail": {"n": [{"numeric": [">", 1]}]}}
    )
    put(local, {"n": 1}, {"n": 2})
    [event] = [json.loads(body) for body in drain_queue(local, queue)]
    assert event["detail"] == {"n": 2}
    assert event["source"] == "sluice.test" and event["detail-type"] == "Test"
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert event["time"].endswith("Z") and event["version"] == "0"


@pytest.mark.timeout(30)
def test_lambda_target_is_invoked_asynchronously_with_constant_input(local: Local) -> None:
    function = "arn:aws:lambda:us-east-1:123456789012:function:notify"
    rule(local, "to-lambda", [{"Id": "fn", "Arn": function, "Input": '{"constant": true}'}])
    put(local, {"n": 1})
    [(arn, payload, invocation_type)] = local.lam.wait_for_invocations(1)
    assert (arn, json.loads(payload), invocation_type) == (function, {"constant": True}, "Event")


@pytest.mark.timeout(30)
def test_step_functions_target_starts_an_execution(local: Local) -> None:
    sfn = local.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="echo",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=service_role(local.client("iam"), "r", "states.amazonaws.com", "events.amazonaws.com"),
    )["stateMachineArn"]
    rule(
        local,
        "to-sfn",
        [
            {
                "Id": "sm",
                "Arn": machine,
                "InputPath": "$.detail",
                "RoleArn": "arn:aws:iam::123456789012:role/r",  # the role made above
            }
        ],
    )
    put(local, {"bucket": "b", "key": "k"})
    assert local.cloud.events.wait_idle(10)

    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    described = wait_until(
        lambda: (
            (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "SUCCEEDED"
            and d
        )
    )
    assert json.loads(described["input"]) == {"bucket": "b", "key": "k"}


@pytest.mark.timeout(30)
def test_logs_target(local: Local) -> None:
    logs = local.client("logs")
    logs.create_log_group(logGroupName="/aws/events/sluice")
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/events/sluice:*"
    rule(local, "to-logs", [{"Id": "logs", "Arn": group_arn}])
    put(local, {"n": 7})
    assert local.cloud.events.wait_idle(10)
    [stream] = logs.describe_log_streams(logGroupName="/aws/events/sluice")["logStreams"]
    [record] = logs.get_log_events(logGroupName="/aws/events/sluice", logStreamName=stream["logStreamName"])[
        "events"
    ]
    assert json.loads(record["message"])["detail"] == {"n": 7}


@pytest.mark.timeout(30)
def test_disabled_scheduled_and_other_bus_rules_get_nothing(local: Local) -> None:
    events = local.client("events")
    events.create_event_bus(Name="other")
    sqs = local.client("sqs")
    url = sqs.create_queue(QueueName="nothing")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule(local, "disabled", [{"Id": "q", "Arn": arn}], State="DISABLED")
    rule(local, "elsewhere", [{"Id": "q", "Arn": arn}], EventBusName="other")
    events.put_rule(Name="scheduled", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="scheduled", Targets=[{"Id": "q", "Arn": arn}])

    put(local, {"n": 1})
    assert drain_queue(local, url) == []
    put(local, {"n": 2}, bus="other")
    assert [json.loads(body)["detail"] for body in drain_queue(local, url)] == [{"n": 2}]


@pytest.mark.timeout(30)
def test_events_are_delivered_in_order_and_a_failing_target_does_not_stop_the_rest(local: Local) -> None:
    missing_topic = "arn:aws:sns:us-east-1:123456789012:does-not-exist"
    queue = queue_with_rule(local, "ordered", {"source": ["sluice.test"]}, InputPath="$.detail.n")
    local.client("events").put_targets(Rule="ordered-rule", Targets=[{"Id": "broken", "Arn": missing_topic}])
    for start in range(0, 30, 10):
        put(local, *({"n": n} for n in range(start, start + 10)))
    assert [int(body) for body in drain_queue(local, queue)] == list(range(30))
    failures = [f for f in local.cloud.events.failures if f.target_arn == missing_topic]
    assert len(failures) == 30


@pytest.mark.timeout(30)
def test_put_events_reports_bad_entries(local: Local) -> None:
    response = local.client("events").put_events(
        Entries=[
            {"Source": "sluice.test", "DetailType": "Test", "Detail": "not json"},
            {"Source": "sluice.test", "DetailType": "Test", "Detail": "{}"},
            {"DetailType": "Test", "Detail": "{}"},
        ]
    )
    assert response["FailedEntryCount"] == 2
    codes = [entry.get("ErrorCode") for entry in response["Entries"]]
    assert codes == ["MalformedDetail", None, "InvalidArgument"]
    assert response["Entries"][1]["EventId"]


def test_test_event_pattern_answers_with_result(local: Local) -> None:
    events = local.client("events")
    pattern = json.dumps({"source": ["aws.batch"], "detail": {"status": ["FAILED"]}})
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(EVENT))["Result"] is True
    other = dict(EVENT, source="aws.s3")
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(other))["Result"] is False
