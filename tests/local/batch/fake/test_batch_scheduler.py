"""Placement: queue priority, FIFO, compute-environment and machine capacity, disabled resources."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(20)


def test_job_lifecycle_and_events(batch):
    batch.basic()
    job = batch.submit()
    process = batch.process(job)
    assert batch.wait(job, "RUNNING")["container"]["logStreamName"].startswith("jd/default/")
    process.exit(0)
    done = batch.wait(job, "SUCCEEDED")
    # No event for SUBMITTED (https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html).
    assert batch.events.statuses(job) == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    assert done["statusReason"] == "Essential container in task exited"
    assert done["createdAt"] <= done["startedAt"] <= done["stoppedAt"]
    [attempt] = done["attempts"]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["container"]["taskArn"].startswith("arn:aws:ecs:us-east-1:123456789012:task/AWSBatch-ce-")


def test_higher_priority_queue_goes_first(batch):
    batch.environment(max_vcpus=1)
    batch.queue("low", priority=1)
    batch.queue("high", priority=10)
    batch.definition()
    blocker = batch.submit(queue="low")
    holder = batch.process(blocker)
    first = batch.submit("first", queue="low")
    second = batch.submit("second", queue="high")
    batch.wait(second, "RUNNABLE")
    assert (batch.status_now(first), batch.status_now(second)) == ("RUNNABLE", "RUNNABLE")
    holder.exit(0)
    batch.process(second).exit(0)
    batch.wait(first, "RUNNING")
    launched = [p.job_id for p in batch.executor.launched]
    assert launched == [blocker, second, first]


def test_fifo_within_a_queue(batch):
    batch.basic(max_vcpus=1)
    jobs = [batch.submit(f"j{i}") for i in range(4)]
    for job in jobs:
        batch.process(job).exit(0)
        batch.wait(job, "SUCCEEDED")
    assert [p.job_id for p in batch.executor.launched] == jobs


def test_compute_environment_max_vcpus_bounds_running_jobs(batch):
    batch.basic(max_vcpus=2)
    jobs = [batch.submit(f"j{i}") for i in range(3)]
    batch.executor.wait_launched(2)
    batch.wait(jobs[2], "RUNNABLE")
    assert batch.status_now(jobs[2]) == "RUNNABLE"
    assert len(batch.executor.running()) == 2
    batch.executor.running()[0].exit(0)
    batch.wait(jobs[2], "RUNNING")


def test_machine_vcpus_bound_running_jobs(make_batch):
    batch = make_batch(max_local_vcpus=1)
    batch.basic(max_vcpus=16)
    first, second = batch.submit("a"), batch.submit("b")
    batch.wait(first, "RUNNING")
    batch.wait(second, "RUNNABLE")
    assert batch.status_now(second) == "RUNNABLE"
    batch.process(first).exit(0)
    batch.wait(second, "RUNNING")


def test_machine_memory_bounds_running_jobs(make_batch):
    batch = make_batch(max_local_vcpus=64, max_local_memory_mib=4096)
    batch.basic(vcpus="1", memory="2048")
    jobs = [batch.submit(f"j{i}") for i in range(3)]
    batch.executor.wait_launched(2)
    batch.wait(jobs[2], "RUNNABLE")
    assert batch.status_now(jobs[2]) == "RUNNABLE"


def test_a_job_bigger_than_the_machine_runs_alone(make_batch):
    batch = make_batch(max_local_vcpus=2)
    batch.basic(vcpus="4", memory="8192")
    big, other = batch.submit("big"), batch.submit("other")
    batch.wait(big, "RUNNING")
    batch.wait(other, "RUNNABLE")
    assert batch.status_now(other) == "RUNNABLE"


def test_fractional_fargate_vcpus(batch):
    batch.basic(max_vcpus=1, vcpus="0.25", memory="512")
    jobs = [batch.submit(f"j{i}") for i in range(5)]
    batch.executor.wait_launched(4)
    batch.wait(jobs[4], "RUNNABLE")
    assert batch.status_now(jobs[4]) == "RUNNABLE"
    batch.executor.running()[0].exit(0)
    batch.wait(jobs[4], "RUNNING")


def test_a_job_that_never_fits_its_environment_stays_runnable(batch):
    batch.basic(max_vcpus=1, vcpus="2", memory="4096")
    job = batch.submit()
    batch.wait(job, "RUNNABLE")
    assert batch.status_now(job) == "RUNNABLE"  # as on AWS: RUNNABLE until capacity appears
    batch.client.update_compute_environment(computeEnvironment="ce", computeResources={"maxvCpus": 2})
    batch.wait(job, "RUNNING")


def test_compute_environments_are_tried_in_order(batch):
    batch.environment("small", max_vcpus=1)
    batch.environment("large", max_vcpus=8)
    batch.queue(environments=("small", "large"))
    batch.definition()
    first, second = batch.submit("a"), batch.submit("b")
    assert batch.process(first).spec.env["AWS_BATCH_CE_NAME"] == "small"
    assert batch.process(second).spec.env["AWS_BATCH_CE_NAME"] == "large"


def test_disabled_compute_environment_holds_work(batch):
    batch.basic()
    batch.client.update_compute_environment(computeEnvironment="ce", state="DISABLED")
    job = batch.submit()
    batch.wait(job, "RUNNABLE")
    assert batch.status_now(job) == "RUNNABLE"
    batch.client.update_compute_environment(computeEnvironment="ce", state="ENABLED")
    batch.wait(job, "RUNNING")


def test_disabled_queue_takes_no_new_jobs_but_finishes_its_own(batch):
    # "new jobs can't be added to the queue, but jobs already in the queue can finish"
    batch.basic(max_vcpus=1)
    running = batch.submit("running")
    waiting = batch.submit("waiting")
    holder = batch.process(running)
    batch.client.update_job_queue(jobQueue="q", state="DISABLED")
    holder.exit(0)
    batch.wait(waiting, "RUNNING")


def test_queue_deletion_terminates_its_jobs(batch):
    batch.basic(max_vcpus=1)
    running, waiting = batch.submit("running"), batch.submit("waiting")
    process = batch.process(running)
    batch.client.update_job_queue(jobQueue="q", state="DISABLED")
    batch.client.delete_job_queue(jobQueue="q")
    assert batch.wait(waiting, "FAILED")["statusReason"] == "Job queue deleted"
    assert batch.wait(running, "FAILED")["isTerminated"] is True
    assert process.signals == ["TERM"]
