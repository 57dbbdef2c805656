"""Jobs stuck in RUNNABLE: blocked reason, `Batch Job Queue Blocked` events, jobStateTimeLimitActions."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from werkzeug.test import Client

from tests.local.batch.fake.helpers import MODEL, assert_shape, output_shape

pytestmark = pytest.mark.timeout(20)

CPU_REASON = (
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue "
    "cannot meet the CPU requirement of the job."
)
CANCELED = (
    "Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
)


def call(engine, operation: str, body: dict) -> tuple[int, dict]:
    """The raw JSON answer (boto3 drops keys its model lacks)."""
    http = MODEL.operation_model(operation).http
    response = Client(engine.wsgi_app).open(http["requestUri"], method=http["method"], data=json.dumps(body))
    return response.status_code, json.loads(response.data)


def action(reason: str = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", seconds: int = 600, **extra):
    return {"reason": reason, "state": "RUNNABLE", "maxTimeSeconds": seconds, "action": "CANCEL", **extra}


def test_queue_stores_and_describes_time_limit_actions(batch):
    batch.environment()
    actions = [action(), action("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", 86_400)]
    batch.queue(jobStateTimeLimitActions=actions)
    response = batch.client.describe_job_queues(jobQueues=["q"])
    [queue] = response["jobQueues"]
    assert queue["jobStateTimeLimitActions"] == actions
    status, payload = call(batch.engine, "DescribeJobQueues", {})  # raw JSON: boto3 drops unknown keys
    assert status == 200
    assert_shape(payload, output_shape("DescribeJobQueues"))
    batch.client.update_job_queue(jobQueue="q", jobStateTimeLimitActions=[action(seconds=900)])
    [queue] = batch.client.describe_job_queues(jobQueues=["q"])["jobQueues"]
    assert queue["jobStateTimeLimitActions"] == [action(seconds=900)]
    batch.client.update_job_queue(jobQueue="q", jobStateTimeLimitActions=[])
    [queue] = batch.client.describe_job_queues(jobQueues=["q"])["jobQueues"]
    assert "jobStateTimeLimitActions" not in queue


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"action": "TERMINATE"}, "action must be CANCEL"),
        ({"state": "STARTING"}, "state must be RUNNABLE"),
        ({"maxTimeSeconds": 599}, "between 600 and 86400"),
        ({"maxTimeSeconds": 86_401}, "between 600 and 86400"),
        ({"reason": ""}, "reason must be specified"),
    ],
)
def test_time_limit_actions_are_validated(batch, bad, message):
    batch.environment()
    with pytest.raises(botocore.exceptions.ClientError, match=message) as raised:
        batch.client.create_job_queue(
            jobQueueName="q",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}],
            jobStateTimeLimitActions=[{**action(), **bad}],
        )
    assert raised.value.response["Error"]["Code"] == "ClientException"
    batch.queue()
    with pytest.raises(botocore.exceptions.ClientError, match=message):
        batch.client.update_job_queue(jobQueue="q", jobStateTimeLimitActions=[{**action(), **bad}])
    assert batch.client.describe_job_queues(jobQueues=["q"])["jobQueues"][0]["priority"] == 1


def test_job_bigger_than_every_environment_stays_runnable_and_blocks_the_queue(batch):
    batch.environment(max_vcpus=2)
    queue_arn = batch.queue()
    batch.definition(vcpus="4", memory="8192")
    batch.definition("small", vcpus="1", memory="2048")
    big = batch.submit("big", parameters={"sluiceRun": "run-1"})
    behind = batch.submit("behind", definition="small")
    entry = batch.events.wait_blocked(big)
    assert (entry["Source"], entry["DetailType"]) == ("aws.batch", "Batch Job Queue Blocked")
    job_arn = f"arn:aws:batch:us-east-1:123456789012:job/{big}"
    assert entry["Resources"] == [job_arn, queue_arn]
    detail = entry["Detail"]
    assert_shape(detail, MODEL.shape_for("JobDetail"))
    assert (detail["status"], detail["statusReason"]) == ("RUNNABLE", CPU_REASON)
    assert detail["parameters"] == {"sluiceRun": "run-1"}
    assert batch.describe(big)["statusReason"] == CPU_REASON
    batch.wait(behind, "RUNNABLE")
    # FIFO: the job behind the blocked head waits too; no time-limit action, so nothing is cancelled.
    assert (batch.status_now(big), batch.status_now(behind)) == ("RUNNABLE", "RUNNABLE")
    assert batch.executor.launched == []
    assert len(batch.events.blocked) == 1  # one event, not one per scheduling pass
    # A state-change listener sees RUNNABLE once: the blocked event is not a state change.
    assert batch.events.statuses(big) == ["RUNNABLE"]


def test_time_limit_action_cancels_the_blocked_job_and_the_queue_moves_on(batch):
    batch.engine.time_limit_scale = 0.5 / 600  # the 600 s minimum lasts half a second
    batch.environment(max_vcpus=2)
    batch.queue(jobStateTimeLimitActions=[action("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"), action()])
    batch.definition(vcpus="4", memory="8192")
    batch.definition("small", vcpus="1", memory="2048")
    big = batch.submit("big")
    behind = batch.submit("behind", definition="small")
    batch.events.wait_blocked(big)
    failed = batch.wait(big, "FAILED")
    assert failed["statusReason"] == CANCELED
    assert failed["isCancelled"] is True
    assert failed["attempts"] == []
    batch.process(behind).exit(0)
    batch.wait(behind, "SUCCEEDED")
    assert batch.events.statuses(big) == ["RUNNABLE", "FAILED"]


def test_raising_max_vcpus_unblocks_the_job_before_the_limit(batch):
    batch.engine.time_limit_scale = 30 / 600
    batch.environment(max_vcpus=2)
    batch.queue(jobStateTimeLimitActions=[action()])
    batch.definition(vcpus="4", memory="8192")
    big = batch.submit("big")
    batch.events.wait_blocked(big)
    batch.client.update_compute_environment(computeEnvironment="ce", computeResources={"maxvCpus": 4})
    batch.process(big).exit(0)
    done = batch.wait(big, "SUCCEEDED")
    assert done["statusReason"] == "Essential container in task exited"
    assert batch.wait(big, "RUNNING").get("statusReason") is None
    with batch.engine.lock:
        job = batch.engine.scheduler.find_job(big)
        assert not batch.engine.scheduler.time_limits.is_blocked(job)


def test_action_added_later_counts_from_when_the_job_was_blocked(batch):
    batch.engine.time_limit_scale = 0.5 / 600
    batch.environment(max_vcpus=2)
    batch.queue()
    batch.definition(vcpus="4", memory="8192")
    big = batch.submit("big")
    batch.events.wait_blocked(big)
    batch.client.update_job_queue(jobQueue="q", jobStateTimeLimitActions=[action()])
    assert batch.wait(big, "FAILED")["statusReason"] == CANCELED
    assert len(batch.events.blocked) == 1


def test_a_job_waiting_for_capacity_in_use_is_not_blocked(batch):
    batch.engine.time_limit_scale = 0.5 / 600
    batch.basic(max_vcpus=1)
    batch.client.update_job_queue(jobQueue="q", jobStateTimeLimitActions=[action()])
    first = batch.submit("first")
    second = batch.submit("second")
    holder = batch.process(first)
    batch.wait(second, "RUNNABLE")
    with batch.engine.lock:  # the scheduler is between passes: it saw `second` wait at the head
        job = batch.engine.scheduler.find_job(second)
        assert job is not None and job.status == "RUNNABLE"
        assert not batch.engine.scheduler.time_limits.is_blocked(job)  # capacity will free up
    assert batch.events.blocked == []
    assert "statusReason" not in batch.describe(second)
    holder.exit(0)
    batch.process(second).exit(0)
    batch.wait(second, "SUCCEEDED")
