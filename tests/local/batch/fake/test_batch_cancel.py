"""CancelJob and TerminateJob in every state (API_CancelJob, API_TerminateJob)."""

from __future__ import annotations

import threading

import pytest

from sluice.local.batch.testing import FakeExecutor

pytestmark = pytest.mark.timeout(20)


def test_cancel_submitted(make_batch):
    batch = make_batch(max_local_vcpus=4, start=False)  # nothing takes it past SUBMITTED
    batch.basic()
    job = batch.submit()
    assert batch.describe(job)["status"] == "SUBMITTED"
    batch.client.cancel_job(jobId=job, reason="not needed")
    detail = batch.describe(job)
    assert (detail["status"], detail["statusReason"], detail["isCancelled"]) == ("FAILED", "not needed", True)
    batch.engine.start()
    other = batch.submit("other")
    batch.wait(other, "RUNNING")
    assert [p.job_id for p in batch.executor.launched] == [other]


def test_cancel_pending_takes_effect_when_dependencies_complete(batch):
    batch.basic()
    first = batch.submit("first")
    second = batch.submit("second", dependsOn=[{"jobId": first}])
    batch.wait(second, "PENDING")
    batch.client.cancel_job(jobId=second, reason="changed my mind")
    assert (
        batch.status_now(second) == "PENDING"
    )  # "A PENDING job is canceled after all dependency jobs are completed"
    batch.process(first).exit(0)
    detail = batch.wait(second, "FAILED")
    assert (detail["statusReason"], detail["isCancelled"]) == ("changed my mind", True)
    assert [p.job_id for p in batch.executor.launched] == [first]


def test_cancel_runnable(batch):
    batch.basic(max_vcpus=1)
    blocker, job = batch.submit("blocker"), batch.submit("job")
    batch.wait(job, "RUNNABLE")
    batch.client.cancel_job(jobId=job, reason="stop")
    assert batch.wait(job, "FAILED")["isCancelled"] is True
    batch.process(blocker).exit(0)
    batch.wait(blocker, "SUCCEEDED")
    assert [p.job_id for p in batch.executor.launched] == [blocker]


def test_cancel_leaves_starting_and_running_jobs_alone(make_batch):
    executor = FakeExecutor()
    executor.gate = threading.Event()  # launches wait: the job sits in STARTING
    batch = make_batch(executor=executor, max_local_vcpus=4)
    batch.basic()
    job = batch.submit()
    batch.wait(job, "STARTING")
    batch.client.cancel_job(jobId=job, reason="too late")
    assert batch.status_now(job) == "STARTING"
    executor.gate.set()
    process = batch.process(job)
    batch.wait(job, "RUNNING")
    batch.client.cancel_job(jobId=job, reason="too late")
    assert batch.status_now(job) == "RUNNING"
    assert process.signals == []
    process.exit(0)
    assert "isCancelled" not in batch.wait(job, "SUCCEEDED")


def test_terminate_starting_job(make_batch):
    executor = FakeExecutor()
    executor.gate = threading.Event()
    batch = make_batch(executor=executor, max_local_vcpus=4)
    batch.basic()
    job = batch.submit()
    batch.wait(job, "STARTING")
    batch.client.terminate_job(jobId=job, reason="abort")
    executor.gate.set()
    detail = batch.wait(job, "FAILED")
    assert (detail["statusReason"], detail["isTerminated"]) == ("abort", True)
    assert batch.process(job).signals == ["TERM"]


def test_terminate_running_job_is_not_retried(batch):
    batch.basic(retryStrategy={"attempts": 3})
    job = batch.submit()
    process = batch.process(job)
    batch.wait(job, "RUNNING")
    batch.client.terminate_job(jobId=job, reason="operator stop")
    detail = batch.wait(job, "FAILED")
    assert process.signals == ["TERM"]
    assert (detail["statusReason"], detail["isTerminated"]) == ("operator stop", True)
    [attempt] = detail["attempts"]
    assert attempt["container"]["exitCode"] == 143
    assert attempt["statusReason"] == "operator stop"
    assert len(batch.executor.launched) == 1


def test_terminate_kills_after_the_grace_period(make_batch):
    batch = make_batch(max_local_vcpus=4, timeout_scale=0.001)  # 30 s stop grace → 30 ms
    batch.executor.ignore_term = True
    batch.basic()
    job = batch.submit()
    process = batch.process(job)
    batch.wait(job, "RUNNING")
    batch.client.terminate_job(jobId=job, reason="stop")
    detail = batch.wait(job, "FAILED")
    assert process.signals == ["TERM", "KILL"]
    assert detail["attempts"][0]["container"]["exitCode"] == 137


def test_terminate_pending_and_runnable_jobs_cancels_them(batch):
    batch.basic(max_vcpus=1)
    blocker = batch.submit("blocker")
    runnable = batch.submit("runnable")
    batch.wait(runnable, "RUNNABLE")
    batch.client.terminate_job(jobId=runnable, reason="no")
    assert batch.wait(runnable, "FAILED")["isTerminated"] is True
    batch.process(blocker)


def test_cancel_and_terminate_finished_jobs_are_no_ops(batch):
    batch.basic()
    job = batch.submit()
    batch.process(job).exit(0)
    batch.wait(job, "SUCCEEDED")
    batch.client.cancel_job(jobId=job, reason="late")
    batch.client.terminate_job(jobId=job, reason="late")
    assert batch.describe(job)["status"] == "SUCCEEDED"


def test_cancel_array_cancels_waiting_children_then_the_parent(batch):
    batch.basic(max_vcpus=1)
    parent = batch.submit("array", arrayProperties={"size": 3})
    running = batch.process(f"{parent}:0")
    batch.wait(f"{parent}:2", "RUNNABLE")
    batch.client.cancel_job(jobId=parent, reason="cancel array")
    for index in (1, 2):
        assert batch.wait(f"{parent}:{index}", "FAILED")["statusReason"] == "cancel array"
    assert batch.status_now(parent) == "PENDING"  # waits for its running child
    assert running.signals == []
    running.exit(0)
    detail = batch.wait(parent, "FAILED")
    assert (detail["statusReason"], detail["isCancelled"]) == ("cancel array", True)


def test_terminate_array_stops_running_children(batch):
    batch.basic()
    parent = batch.submit("array", arrayProperties={"size": 2})
    processes = [batch.process(f"{parent}:{index}") for index in range(2)]
    batch.wait(f"{parent}:1", "RUNNING")
    batch.client.terminate_job(jobId=parent, reason="terminate array")
    detail = batch.wait(parent, "FAILED")
    assert detail["isTerminated"] is True
    assert [p.signals for p in processes] == [["TERM"], ["TERM"]]
