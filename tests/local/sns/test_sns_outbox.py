"""The notifications outbox: every SNS publish, whoever made it, as one JSON line."""

from __future__ import annotations

import json

import pytest

from tests.local.helpers import Local, service_role, wait_until


@pytest.mark.timeout(30)
def test_publish_is_recorded_with_subject_attributes_and_email_recipients(local: Local) -> None:
    sns = local.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    sns.publish(
        TopicArn=topic,
        Subject="Sluice run failed",
        Message="ingest failed: bad input",
        MessageAttributes={"run": {"DataType": "String", "StringValue": "run-1"}},
    )

    [note] = local.cloud.notifications()
    assert note["topic_arn"] == topic
    assert note["subject"] == "Sluice run failed"
    assert note["message"] == "ingest failed: bad input"
    # Attributes as SNS hands them to subscribers ({"Type", "Value"}).
    assert note["attributes"] == {"run": {"Type": "String", "Value": "run-1"}}
    assert note["email"] == ["oncall@example.com"]
    assert note["time"].endswith("Z") and note["message_id"]
    # The file itself is JSON lines, for the CLI.
    lines = local.cloud.outbox_path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [note]


@pytest.mark.timeout(30)
def test_publish_batch_and_state_machine_publishes_are_recorded(local: Local) -> None:
    sns = local.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[{"Id": "1", "Message": "one"}, {"Id": "2", "Message": "two"}],
    )
    sfn = local.client("stepfunctions")
    definition = {
        "StartAt": "Tell",
        "States": {
            "Tell": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": topic, "Message.$": "$.text"},
                "End": True,
            }
        },
    }
    role = service_role(local.client("iam"), "r", "states.amazonaws.com")
    machine = sfn.create_state_machine(name="tell", definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    sfn.start_execution(stateMachineArn=machine, name="t1", input=json.dumps({"text": "three"}))

    messages = wait_until(lambda: len(notes := local.cloud.notifications()) == 3 and notes)
    assert [note["message"] for note in messages] == ["one", "two", "three"]
