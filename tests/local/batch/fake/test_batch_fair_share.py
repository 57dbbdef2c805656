"""Fair-share scheduling: the scheduling-policy API, queue and job rules, and placement by share.

AWS pages: https://docs.aws.amazon.com/batch/latest/APIReference/API_FairsharePolicy.html,
API_ShareAttributes.html, API_CreateJobQueue.html, API_UpdateJobQueue.html, API_SubmitJob.html,
API_DeleteSchedulingPolicy.html, https://docs.aws.amazon.com/batch/latest/userguide/share-identifiers.html,
https://docs.aws.amazon.com/batch/latest/userguide/fair-share-scheduling.html.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local.batch.fake.helpers import assert_shape, output_shape
from tests.local.batch.processes.helpers import in_region

pytestmark = pytest.mark.timeout(30)

ARN_PREFIX = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/"


def fair_share_setup(batch: Any, *, slots: int, policy: dict[str, Any] | None = None) -> str:
    """A 1-vCPU definition and a fair-share queue on a DISABLED environment of `slots` vCPUs:
    jobs wait RUNNABLE until `open_capacity`, so a whole backlog is ordered in one pass."""
    batch.environment(max_vcpus=slots, state="DISABLED")
    arn = batch.client.create_scheduling_policy(name="fair", fairsharePolicy=policy or {})["arn"]
    batch.queue(schedulingPolicyArn=arn)
    # A fair-share queue refuses a job with no scheduling priority at all (see the test below).
    batch.definition(vcpus="1", memory="2048", schedulingPriority=0)
    return str(arn)


def open_capacity(batch: Any) -> None:
    batch.client.update_compute_environment(computeEnvironment="ce", state="ENABLED")


def submit_many(batch: Any, share: str, count: int, **extra: Any) -> list[str]:
    return [batch.submit(f"{share}{i}", shareIdentifier=share, **extra) for i in range(count)]


def running_by_share(batch: Any, shares: dict[str, list[str]]) -> dict[str, int]:
    running = {p.job_id for p in batch.executor.running()}
    return {share: len(running & set(jobs)) for share, jobs in shares.items()}


def finish(batch: Any, job_id: str) -> None:
    batch.process(job_id).exit(0)
    batch.wait(job_id, "SUCCEEDED")


def client_error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    assert caught.value.response["Error"]["Code"] == "ClientException"
    return str(caught.value.response["Error"]["Message"])


# -- the scheduling-policy API ---------------------------------------------------------------------


def test_scheduling_policy_round_trip(batch):
    client = batch.client
    policy = {
        "shareDecaySeconds": 3600,
        "computeReservation": 25,
        "shareDistribution": [
            {"shareIdentifier": "teamA", "weightFactor": 0.5},
            {"shareIdentifier": "user*", "weightFactor": 2.0},
            {"shareIdentifier": "teamB"},
        ],
    }
    created = client.create_scheduling_policy(name="pol", fairsharePolicy=policy, tags={"team": "x"})
    arn = created["arn"]
    assert created == {
        "name": "pol",
        "arn": ARN_PREFIX + "pol",
        "ResponseMetadata": created["ResponseMetadata"],
    }
    raw = client.describe_scheduling_policies(arns=[arn])
    raw.pop("ResponseMetadata")
    assert_shape(raw, output_shape("DescribeSchedulingPolicies"))
    assert raw["schedulingPolicies"] == [
        {"name": "pol", "arn": arn, "fairsharePolicy": policy, "tags": {"team": "x"}}
    ]

    client.update_scheduling_policy(arn=arn, fairsharePolicy={"computeReservation": 5})
    assert client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"][0]["fairsharePolicy"] == {
        "shareDecaySeconds": 0,
        "computeReservation": 5,
        "shareDistribution": [],
    }

    client.tag_resource(resourceArn=arn, tags={"stage": "dev"})
    client.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"stage": "dev"}

    client.delete_scheduling_policy(arn=arn)
    assert client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"] == []
    assert "does not exist" in client_error(client.delete_scheduling_policy, arn=arn)


def test_created_without_a_fairshare_policy_shows_the_defaults(batch):
    arn = batch.client.create_scheduling_policy(name="plain")["arn"]
    [policy] = batch.client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]
    assert policy["fairsharePolicy"] == {
        "shareDecaySeconds": 0,
        "computeReservation": 0,
        "shareDistribution": [],
    }
    assert policy["tags"] == {}


def test_list_scheduling_policies_pages(batch):
    arns = [batch.client.create_scheduling_policy(name=f"p{i}")["arn"] for i in range(5)]
    first = batch.client.list_scheduling_policies(maxResults=3)
    second = batch.client.list_scheduling_policies(maxResults=3, nextToken=first["nextToken"])
    assert [p["arn"] for p in first["schedulingPolicies"] + second["schedulingPolicies"]] == arns
    assert "nextToken" not in second
    assert [p["arn"] for p in batch.client.list_scheduling_policies()["schedulingPolicies"]] == arns


def test_scheduling_policies_are_regional(batch):
    west = in_region(batch, "us-west-2")
    arn = west.client.create_scheduling_policy(name="pol")["arn"]
    assert arn == "arn:aws:batch:us-west-2:123456789012:scheduling-policy/pol"
    assert batch.client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"] == []
    assert batch.client.list_scheduling_policies()["schedulingPolicies"] == []


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"shareDecaySeconds": -1}, "shareDecaySeconds"),
        ({"shareDecaySeconds": 604801}, "shareDecaySeconds"),
        ({"computeReservation": 100}, "computeReservation"),
        ({"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 0.0}]}, "weightFactor"),
        ({"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 1000.0}]}, "weightFactor"),
        ({"shareDistribution": [{"shareIdentifier": "user-1"}]}, "alphanumeric"),
        ({"shareDistribution": [{"shareIdentifier": "a" * 256}]}, "alphanumeric"),
        ({"shareDistribution": [{"shareIdentifier": "a**"}]}, "alphanumeric"),
        ({"shareDistribution": [{"shareIdentifier": "UserA*"}, {"shareIdentifier": "UserA1"}]}, "overlaps"),
        ({"shareDistribution": [{"shareIdentifier": "User*"}, {"shareIdentifier": "UserA*"}]}, "overlaps"),
        ({"shareDistribution": [{"shareIdentifier": "x"}, {"shareIdentifier": "x"}]}, "overlaps"),
        ({"shareDistribution": [{"shareIdentifier": f"s{i}"} for i in range(501)]}, "at most 500"),
    ],
)
def test_fairshare_policy_limits(batch, policy, message):
    assert message in client_error(batch.client.create_scheduling_policy, name="bad", fairsharePolicy=policy)
    assert batch.client.list_scheduling_policies()["schedulingPolicies"] == []


def test_fairshare_policy_limits_accept_the_bounds(batch):
    policy = {
        "shareDecaySeconds": 604800,
        "computeReservation": 99,
        "shareDistribution": [
            {"shareIdentifier": "a" * 255, "weightFactor": 0.0001},
            {"shareIdentifier": "b*", "weightFactor": 999.9999},
            {"shareIdentifier": "c"},
        ],
    }
    arn = batch.client.create_scheduling_policy(name="edge", fairsharePolicy=policy)["arn"]
    assert (
        batch.client.describe_scheduling_policies(arns=[arn])["schedulingPolicies"][0]["fairsharePolicy"]
        == policy
    )


def test_policy_name_duplicate_and_quota_share_are_refused(batch):
    batch.client.create_scheduling_policy(name="pol")
    assert "already exists" in client_error(batch.client.create_scheduling_policy, name="pol")
    assert "pattern" in client_error(batch.client.create_scheduling_policy, name="no spaces")
    assert "quotaSharePolicy" in client_error(
        batch.client.create_scheduling_policy,
        name="quota",
        quotaSharePolicy={"idleResourceAssignmentStrategy": "FIFO"},
    )


# -- queues ----------------------------------------------------------------------------------------


def test_queue_policy_rules(batch):
    client = batch.client
    batch.environment()
    first = client.create_scheduling_policy(name="first")["arn"]
    second = client.create_scheduling_policy(name="second")["arn"]
    assert "does not exist" in client_error(
        client.create_job_queue,
        jobQueueName="q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}],
        schedulingPolicyArn=ARN_PREFIX + "missing",
    )
    fair = batch.queue("fair", schedulingPolicyArn=first)
    fifo = batch.queue("fifo")
    [described] = client.describe_job_queues(jobQueues=[fair])["jobQueues"]
    assert described["schedulingPolicyArn"] == first
    assert "schedulingPolicyArn" not in client.describe_job_queues(jobQueues=[fifo])["jobQueues"][0]

    # A FIFO queue can't have a policy added; a fair-share queue's can be replaced, not removed.
    assert "FIFO" in client_error(client.update_job_queue, jobQueue="fifo", schedulingPolicyArn=first)
    assert "replaced, not removed" in client_error(
        client.update_job_queue, jobQueue="fair", schedulingPolicyArn=""
    )
    assert "does not exist" in client_error(
        client.update_job_queue, jobQueue="fair", schedulingPolicyArn=ARN_PREFIX + "missing", priority=7
    )
    assert client.describe_job_queues(jobQueues=[fair])["jobQueues"][0]["priority"] == 1  # nothing applied
    client.update_job_queue(jobQueue="fair", schedulingPolicyArn=second)
    assert client.describe_job_queues(jobQueues=[fair])["jobQueues"][0]["schedulingPolicyArn"] == second

    # A policy a queue uses can't be deleted; once the queue is gone, it can.
    assert "used by job queue" in client_error(client.delete_scheduling_policy, arn=second)
    client.delete_scheduling_policy(arn=first)
    client.update_job_queue(jobQueue="fair", state="DISABLED")
    client.delete_job_queue(jobQueue="fair")
    client.delete_scheduling_policy(arn=second)


# -- jobs ------------------------------------------------------------------------------------------


def test_share_identifier_rules_and_job_detail(batch):
    batch.environment()
    arn = batch.client.create_scheduling_policy(name="pol")["arn"]
    batch.queue("fair", schedulingPolicyArn=arn)
    batch.queue("fifo")
    batch.definition(schedulingPriority=5)
    assert "must be specified" in client_error(
        batch.client.submit_job, jobName="j", jobQueue="fair", jobDefinition="jd"
    )
    assert "can't be specified" in client_error(
        batch.client.submit_job, jobName="j", jobQueue="fifo", jobDefinition="jd", shareIdentifier="A"
    )
    assert "alphanumeric" in client_error(
        batch.client.submit_job, jobName="j", jobQueue="fair", jobDefinition="jd", shareIdentifier="A*"
    )
    assert "schedulingPriorityOverride" in client_error(
        batch.client.submit_job,
        jobName="j",
        jobQueue="fair",
        jobDefinition="jd",
        shareIdentifier="A",
        schedulingPriorityOverride=10000,
    )

    from_definition = batch.submit("d", queue="fair", shareIdentifier="A")
    overridden = batch.submit("o", queue="fair", shareIdentifier="B", schedulingPriorityOverride=0)
    array = batch.submit("arr", queue="fair", shareIdentifier="C", arrayProperties={"size": 2})
    assert (
        batch.describe(from_definition)["shareIdentifier"],
        batch.describe(from_definition)["schedulingPriority"],
    ) == ("A", 5)
    assert (
        batch.describe(overridden)["shareIdentifier"],
        batch.describe(overridden)["schedulingPriority"],
    ) == ("B", 0)
    child = batch.client.describe_jobs(jobs=[f"{array}:1"])["jobs"][0]
    assert child["shareIdentifier"] == "C"  # array children inherit the share
    raw = batch.client.describe_jobs(jobs=[from_definition])
    raw.pop("ResponseMetadata")
    assert_shape(raw, output_shape("DescribeJobs"))
    assert "shareIdentifier" not in batch.describe(batch.submit("f", queue="fifo"))


def test_definition_scheduling_priority_range(batch):
    message = client_error(
        batch.client.register_job_definition,
        jobDefinitionName="jd",
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "x",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
        schedulingPriority=10000,
    )
    assert "schedulingPriority" in message


def test_at_most_500_active_share_identifiers_per_queue(batch):
    fair_share_setup(batch, slots=1)
    for index in range(500):
        batch.submit(f"j{index}", shareIdentifier=f"s{index}")
    assert "500 active share identifiers" in client_error(
        batch.client.submit_job, jobName="new", jobQueue="q", jobDefinition="jd", shareIdentifier="s500"
    )
    batch.submit("again", shareIdentifier="s7")  # an active share takes more jobs


# -- placement -------------------------------------------------------------------------------------


def test_two_shares_submitting_at_once_split_the_capacity(batch):
    # FIFO would start A's four jobs; equal weights split the slots between the shares.
    fair_share_setup(batch, slots=4)
    shares = {"A": submit_many(batch, "A", 6), "B": submit_many(batch, "B", 6)}
    open_capacity(batch)
    batch.executor.wait_launched(4)
    assert running_by_share(batch, shares) == {"A": 2, "B": 2}


def test_capacity_divides_by_weight_while_both_have_backlog(batch):
    # weightFactor 3 vs 1: a lower weight gets more, so B runs three jobs for each of A's.
    fair_share_setup(
        batch,
        slots=8,
        policy={
            "shareDistribution": [
                {"shareIdentifier": "A", "weightFactor": 3},
                {"shareIdentifier": "B*", "weightFactor": 1},
            ]
        },
    )
    shares = {"A": submit_many(batch, "A", 12), "Bx": submit_many(batch, "Bx", 20)}
    open_capacity(batch)
    batch.executor.wait_launched(8)
    assert running_by_share(batch, shares) == {"A": 2, "Bx": 6}
    # As slots free, whichever share finished a job gets the slot back: the 1:3 split holds.
    for round_ in range(6):
        share = "A" if round_ % 2 else "Bx"
        running = [p.job_id for p in batch.executor.running() if p.job_id in shares[share]]
        finish(batch, running[0])
        batch.executor.wait_launched(9 + round_)
        assert batch.executor.launched[-1].job_id in shares[share]
        assert running_by_share(batch, shares) == {"A": 2, "Bx": 6}


def test_priority_orders_jobs_within_a_share(batch):
    fair_share_setup(batch, slots=1)
    batch.definition("urgent", schedulingPriority=50)
    low = batch.submit("low", shareIdentifier="A")  # the definition's priority: 0
    mid = batch.submit("mid", shareIdentifier="A", schedulingPriorityOverride=20)
    high = batch.submit("high", definition="urgent", shareIdentifier="A")
    mid_too = batch.submit("mid2", shareIdentifier="A", schedulingPriorityOverride=20)
    open_capacity(batch)
    for job in (high, mid, mid_too, low):
        finish(batch, job)
    assert [p.job_id for p in batch.executor.launched] == [high, mid, mid_too, low]


def test_compute_reservation_holds_capacity_for_shares_not_yet_active(batch):
    # computeReservation 50: one active share leaves 50% of 4 vCPUs free, two leave 25%.
    fair_share_setup(batch, slots=4, policy={"computeReservation": 50})
    shares = {"A": submit_many(batch, "A", 4)}
    open_capacity(batch)
    batch.executor.wait_launched(2)
    batch.wait(shares["A"][2], "RUNNABLE")
    assert running_by_share(batch, shares) == {"A": 2}
    shares["B"] = submit_many(batch, "B", 4)
    batch.executor.wait_launched(3)
    batch.wait(shares["B"][1], "RUNNABLE")
    assert running_by_share(batch, shares) == {"A": 2, "B": 1}
    assert batch.status_now(shares["A"][2]) == batch.status_now(shares["B"][1]) == "RUNNABLE"


@pytest.mark.parametrize(("decay_seconds", "first"), [(1, "A"), (600, "B")])
def test_share_decay_forgets_old_usage(batch, decay_seconds, first):
    """A used 1 s of a vCPU long ago, B 0.2 s just now. With a 1 s window A's usage has decayed
    below B's, so A goes first; with 600 s A still counts as the heavier user, so B does."""
    fair_share_setup(batch, slots=1, policy={"shareDecaySeconds": decay_seconds})
    open_capacity(batch)
    old = batch.submit("old", shareIdentifier="A")
    batch.process(old)
    time.sleep(1.0)  # the usage under test is vCPU time itself
    finish(batch, old)
    time.sleep(2.8)
    recent = batch.submit("recent", shareIdentifier="B")
    batch.process(recent)
    time.sleep(0.2)
    batch.client.update_compute_environment(computeEnvironment="ce", state="DISABLED")
    finish(batch, recent)
    jobs = {"A": batch.submit("a", shareIdentifier="A"), "B": batch.submit("b", shareIdentifier="B")}
    open_capacity(batch)
    batch.executor.wait_launched(3)
    assert batch.executor.launched[2].job_id == jobs[first]


def test_a_fair_share_job_needs_a_scheduling_priority(batch):
    """Batch refuses it with this ClientException (quoted by API users, e.g. nextflow-io/nextflow
    pull request 3505; API_SubmitJob does not say so)."""
    fair_share_setup(batch, slots=1)
    batch.definition("unranked", vcpus="1", memory="2048")
    message = client_error(
        batch.client.submit_job,
        jobName="j",
        jobQueue="q",
        jobDefinition="unranked",
        shareIdentifier="A",
    )
    assert (
        "Either schedulingPriority in job definition or schedulingPriorityOverride should be specified"
        in message
    )
    assert batch.submit("ranked", definition="unranked", shareIdentifier="A", schedulingPriorityOverride=1)
