"""Trigger function: admission rules, deterministic names, duplicates, URL-encoded keys (moto mock_aws)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.helpers import load_function, sample_event

trigger = load_function("trigger")

BUCKET = "sluice-input-example"
NAME_RULE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class Env:
    def __init__(self, settings: Any, queue_url: str, state_machine_arn: str) -> None:
        self.settings = settings
        self.queue_url = queue_url
        self.state_machine_arn = state_machine_arn
        self.s3 = boto3.client("s3")
        self.sfn = boto3.client("stepfunctions")
        self.sqs = boto3.client("sqs")

    def put(self, key: str, body: bytes = b"a,b\n1,2\n", **extra: Any) -> dict[str, Any]:
        return self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)

    def event_for(self, key: str, put: dict[str, Any], size: int, encoded_key: str | None = None) -> dict:
        event = copy.deepcopy(sample_event("s3-object-created.json"))
        event["detail"]["object"].update(
            {
                "key": encoded_key or key,
                "size": size,
                "etag": put["ETag"].strip('"'),
                "version-id": put.get("VersionId"),
                "sequencer": "00617F08299329D189",
            }
        )
        if put.get("VersionId") is None:
            del event["detail"]["object"]["version-id"]
        return event

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def notifications(self) -> list[str]:
        """Rejection events the trigger put on the default bus, as `s3://bucket/key: reason`."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        events = [json.loads(m["Body"]) for m in messages]
        assert all(e["detail-type"] == trigger.REJECTION_DETAIL_TYPE for e in events)
        return [f"s3://{e['detail']['bucket']}/{e['detail']['key']}: {e['detail']['reason']}" for e in events]


@pytest.fixture
def env() -> Iterator[Env]:
    with mock_aws():
        for cached in (trigger._s3, trigger._sfn, trigger._events):
            cached.cache_clear()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = boto3.client("stepfunctions").create_state_machine(
            name="pipeline",
            roleArn=role,
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="rejections-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events")
        events.put_rule(
            Name="rejections",
            EventPattern=json.dumps(
                {"source": [trigger.REJECTION_SOURCE], "detail-type": [trigger.REJECTION_DETAIL_TYPE]}
            ),
        )
        events.put_targets(Rule="rejections", Targets=[{"Id": "inbox", "Arn": queue_arn}])
        settings = trigger.Settings(
            state_machine_arn=machine,
            input_prefix="incoming/",
            input_suffix="",
            parts_prefix="parts/",
            max_input_bytes=1_000_000,
        )
        yield Env(settings, queue_url, machine)


def test_sample_event_starts_one_execution_with_documented_input(env: Env) -> None:
    key = "incoming/sales-2026-11.csv"
    put = env.put(key)
    result = trigger.handle(env.event_for(key, put, size=8), env.settings)

    assert result["status"] == "started"
    [execution] = env.executions()
    assert execution["name"] == result["executionName"]
    assert NAME_RULE.match(execution["name"])
    described = env.sfn.describe_execution(executionArn=execution["executionArn"])
    payload = json.loads(described["input"])
    assert payload == {
        "input": {
            "bucket": BUCKET,
            "key": key,
            "size": 8,
            "versionId": put["VersionId"],
            "etag": put["ETag"].strip('"'),
        },
        "options": {},
    }
    assert env.notifications() == []


def test_duplicate_event_while_running_starts_nothing_new(env: Env) -> None:
    # StartExecution with the same name and input while the first is running returns the original
    # execution (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
    key = "incoming/dup.csv"
    event = env.event_for(key, env.put(key), size=8)
    results = [trigger.handle(copy.deepcopy(event), env.settings) for _ in range(5)]
    assert {r["status"] for r in results} <= {"started", "duplicate"}
    assert len({r["executionName"] for r in results}) == 1
    assert len(env.executions()) == 1


def test_duplicate_event_after_run_closed_is_execution_already_exists(env: Env) -> None:
    key = "incoming/dup-closed.csv"
    event = env.event_for(key, env.put(key), size=8)
    assert trigger.handle(copy.deepcopy(event), env.settings)["status"] == "started"
    [execution] = env.executions()
    env.sfn.stop_execution(executionArn=execution["executionArn"])
    assert trigger.handle(copy.deepcopy(event), env.settings)["status"] == "duplicate"
    assert len(env.executions()) == 1


def test_new_upload_of_same_key_is_a_new_run(env: Env) -> None:
    key = "incoming/same-key.csv"
    first = trigger.handle(env.event_for(key, env.put(key, b"a\n1\n"), size=4), env.settings)
    second = trigger.handle(env.event_for(key, env.put(key, b"a\n2\n"), size=4), env.settings)
    assert first["executionName"] != second["executionName"]
    assert len(env.executions()) == 2


@pytest.mark.parametrize(
    ("key", "body", "size", "reason"),
    [
        ("elsewhere/file.csv", b"a\n1\n", 4, "outside the input prefix 'incoming/'"),
        ("incoming/empty.csv", b"", 0, "empty (0 bytes)"),
        ("incoming/huge.csv", b"x" * 1_000_001, 1_000_001, "above the limit of 1000000 bytes"),
        ("incoming/bad\x07name.csv", b"a\n1\n", 4, "control characters"),
    ],
)
def test_rejections_notify_with_object_and_reason(
    env: Env, key: str, body: bytes, size: int, reason: str
) -> None:
    result = trigger.handle(env.event_for(key, env.put(key, body), size=size), env.settings)
    assert result["status"] == "rejected"
    assert reason in result["reason"]
    assert env.executions() == []
    [message] = env.notifications()
    assert f"s3://{BUCKET}/{key}" in message
    assert reason in message


def test_suffix_filter_rejects_other_extensions(env: Env) -> None:
    settings = trigger.Settings(**{**env.settings.__dict__, "input_suffix": ".csv"})
    key = "incoming/notes.txt"
    result = trigger.handle(env.event_for(key, env.put(key), size=8), settings)
    assert result["status"] == "rejected"
    assert "suffix '.csv'" in result["reason"]


def test_object_gone_before_trigger_ran_is_rejected(env: Env) -> None:
    key = "incoming/gone.csv"
    put = env.put(key)
    event = env.event_for(key, put, size=8)
    event["detail"]["object"]["version-id"] = "no-such-version"
    result = trigger.handle(event, env.settings)
    assert result["status"] == "rejected"
    assert "no longer exists" in result["reason"]


def test_url_encoded_key_is_decoded_once(env: Env) -> None:
    sample = sample_event("s3-object-created-encoded-key.json")
    encoded = sample["detail"]["object"]["key"]
    real_key = "incoming/q4 report été 100%.csv"
    put = env.put(real_key)
    result = trigger.handle(env.event_for(real_key, put, size=8, encoded_key=encoded), env.settings)
    assert result["status"] == "started"
    assert result["key"] == real_key


def test_literal_plus_and_percent_in_key_are_not_decoded(env: Env) -> None:
    key = "incoming/a+b %41.csv"
    result = trigger.handle(env.event_for(key, env.put(key), size=8), env.settings)
    assert result["status"] == "started"
    assert result["key"] == key


def test_options_from_object_metadata(env: Env) -> None:
    key = "incoming/with-options.csv"
    options = {"group_by": ["country"], "metrics": {"amount": ["sum"]}}
    put = env.put(key, Metadata={"sluice-options": json.dumps(options)})
    trigger.handle(env.event_for(key, put, size=8), env.settings)
    [execution] = env.executions()
    payload = json.loads(env.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert payload["options"] == options


def test_invalid_options_metadata_is_rejected(env: Env) -> None:
    key = "incoming/bad-options.csv"
    put = env.put(key, Metadata={"sluice-options": "{not json"})
    result = trigger.handle(env.event_for(key, put, size=8), env.settings)
    assert result["status"] == "rejected"
    assert "not valid JSON" in result["reason"]


@pytest.mark.parametrize(
    "key",
    [
        "incoming/sales.csv",
        "incoming/" + "x" * 900 + ".csv",
        "incoming/日本語のファイル.csv",
        "incoming/spaces and (parens) [brackets] {braces}.tsv.gz",
        "incoming/..",
        "incoming/-_-",
        "incoming/emoji-🚀.jsonl",
    ],
)
def test_execution_names_are_valid_and_deterministic(key: str) -> None:
    name = trigger.execution_name(BUCKET, key, "v1", "seq")
    assert NAME_RULE.match(name), name
    assert name == trigger.execution_name(BUCKET, key, "v1", "seq")
    assert name != trigger.execution_name(BUCKET, key, "v2", "seq")
    assert name != trigger.execution_name(BUCKET, key, "v1", "seq2")


def test_lambda_handler_reads_settings_from_environment(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_MACHINE_ARN", env.settings.state_machine_arn)
    monkeypatch.setenv("INPUT_PREFIX", "incoming/")
    key = "incoming/sales-2026-11.csv"
    event = env.event_for(key, env.put(key), size=8)

    class Context:
        function_name = "trigger"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:trigger"
        aws_request_id = "req-1"

    assert trigger.lambda_handler(event, Context())["status"] == "started"


def test_parts_of_a_many_file_run_start_nothing_and_alert_nobody(env: Env) -> None:
    key = "parts/batch-7/a.csv"
    result = trigger.handle(env.event_for(key, env.put(key), size=8), env.settings)
    assert result["status"] == "ignored"
    assert env.executions() == [] and env.notifications() == []
