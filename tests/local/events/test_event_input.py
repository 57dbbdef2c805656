"""What EventBridge targets receive: Input, InputPath, InputTransformer (eb-transform-target-input)."""

from __future__ import annotations

import json

import pytest

from sluice.local.events.target_input import MISSING, RuleContext, json_path, render_template, target_input

EVENT = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "Batch Job State Change",
    "source": "aws.batch",
    "account": "123456789012",
    "time": "2024-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:batch:us-east-1:123456789012:job/abc"],
    "detail": {
        "jobName": "ingest",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "attempts": [{"container": {"exitCode": 65}}, {"container": {"exitCode": 1}}],
        "parameters": {"sluiceInput": "s3://in/data.csv"},
    },
}
CONTEXT = RuleContext(
    rule_name="job-failed",
    rule_arn="arn:aws:events:us-east-1:123456789012:rule/job-failed",
    ingestion_time="2024-01-01T00:00:01.000Z",
)


def transform(paths: dict[str, str], template: str) -> str | None:
    target = {"Arn": "x", "InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}
    return target_input(target, EVENT, CONTEXT)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EVENT),
        ("$.detail-type", "Batch Job State Change"),
        ("$.resources[0]", "arn:aws:batch:us-east-1:123456789012:job/abc"),
        ("$.detail.attempts[1].container.exitCode", 1),
        ("$.detail.attempts[*].container.exitCode", [65, 1]),
        ("$.detail.parameters.*", ["s3://in/data.csv"]),
        ("$.detail.nothing", MISSING),
        ("$.resources[5]", MISSING),
    ],
)
def test_json_path(path: str, expected: object) -> None:
    assert json_path(EVENT, path) == expected


def test_json_path_rejects_what_eventbridge_does_not_support() -> None:
    with pytest.raises(ValueError):
        json_path(EVENT, "$..jobName")


def test_default_input_is_the_whole_event() -> None:
    assert json.loads(target_input({"Arn": "x"}, EVENT, CONTEXT)) == EVENT


def test_constant_input_is_sent_as_written() -> None:
    assert target_input({"Arn": "x", "Input": '{"fixed": 1}'}, EVENT, CONTEXT) == '{"fixed": 1}'


def test_input_path_selects_part_of_the_event() -> None:
    assert json.loads(target_input({"Arn": "x", "InputPath": "$.detail.parameters"}, EVENT, CONTEXT)) == {
        "sluiceInput": "s3://in/data.csv"
    }
    assert target_input({"Arn": "x", "InputPath": "$.detail.nothing"}, EVENT, CONTEXT) is None


def test_text_template_inserts_strings_raw() -> None:
    paths = {"job": "$.detail.jobName", "status": "$.detail.status"}
    assert transform(paths, "<job> is in state <status>") == "ingest is in state FAILED"


def test_quoted_string_template_keeps_its_quotes() -> None:
    # AWS delivers a quoted-string template as written: SNS email shows the quotes.
    assert transform({"job": "$.detail.jobName"}, '"Job <job> failed"') == '"Job ingest failed"'


def test_json_template_quotes_unquoted_strings_and_keeps_values_typed() -> None:
    rendered = transform(
        {
            "job": "$.detail.jobName",
            "code": "$.detail.attempts[0].container.exitCode",
            "params": "$.detail.parameters",
        },
        '{"job": <job>, "code": <code>, "params": <params>, "text": "<job> exited <code>"}',
    )
    assert json.loads(rendered) == {
        "job": "ingest",
        "code": 65,
        "params": {"sluiceInput": "s3://in/data.csv"},
        "text": "ingest exited 65",
    }


def test_object_inside_a_string_loses_its_inner_quotes() -> None:
    rendered = transform({"params": "$.detail.parameters"}, '{"text": "params <params>"}')
    assert json.loads(rendered) == {"text": "params {sluiceInput:s3://in/data.csv}"}


def test_missing_paths_become_null_in_json_and_nothing_in_text() -> None:
    assert json.loads(transform({"gone": "$.detail.nothing"}, '{"v": <gone>, "s": "x<gone>y"}')) == {
        "v": None,
        "s": "xy",
    }
    assert transform({"gone": "$.detail.nothing"}, "value=<gone>.") == "value=."


def test_reserved_variables() -> None:
    rendered = transform(
        {},
        '{"rule": "<aws.events.rule-name>", "arn": "<aws.events.rule-arn>", '
        '"at": "<aws.events.event.ingestion-time>", "envelope": <aws.events.event>, "full": <aws.events.event.json>}',
    )
    parsed = json.loads(rendered)
    assert parsed["rule"] == "job-failed"
    assert parsed["arn"] == CONTEXT.rule_arn
    assert parsed["at"] == CONTEXT.ingestion_time
    assert "detail" not in parsed["envelope"] and parsed["envelope"]["id"] == EVENT["id"]
    assert parsed["full"] == EVENT


def test_unknown_placeholders_and_angle_brackets_are_left_alone() -> None:
    assert render_template("a < b and <unknown>", {}) == "a < b and <unknown>"
