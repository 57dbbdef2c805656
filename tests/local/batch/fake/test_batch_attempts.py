"""Attempts: retries, timeouts, Spot reclaim, what a launch is given, launch failures."""

from __future__ import annotations

import os
import re

import pytest

from sluice.local.batch import LocalImage
from sluice.local.batch.testing import FakeExecutor

pytestmark = pytest.mark.timeout(20)

HOST_LOST = re.compile(r"Host EC2 \(instance i-[0-9a-f]{17}\) terminated\.")
RETRY_ON_HOST_LOSS = {
    "attempts": 2,
    "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ],
}


def test_failed_attempts_are_retried_then_recorded(batch):
    batch.basic(retryStrategy={"attempts": 3})
    job = batch.submit()
    for attempt in (1, 2, 3):
        process = batch.process(job, attempt)
        assert process.spec.env["AWS_BATCH_JOB_ATTEMPT"] == str(attempt)
        process.exit(1)
    detail = batch.wait(job, "FAILED")
    assert detail["statusReason"] == "Essential container in task exited"
    assert [a["container"]["exitCode"] for a in detail["attempts"]] == [1, 1, 1]
    assert {a["statusReason"] for a in detail["attempts"]} == {"Essential container in task exited"}
    assert len({a["container"]["logStreamName"] for a in detail["attempts"]}) == 3  # one stream per attempt
    assert batch.events.statuses(job) == ["RUNNABLE", "STARTING", "RUNNING"] * 3 + ["FAILED"]


def test_evaluate_on_exit_exits_on_bad_input(batch):
    batch.basic(retryStrategy={"attempts": 3, "evaluateOnExit": [{"onExitCode": "65", "action": "EXIT"}]})
    job = batch.submit()
    batch.process(job).exit(65)
    detail = batch.wait(job, "FAILED")
    assert len(detail["attempts"]) == 1
    assert detail["container"]["exitCode"] == 65


def test_success_on_a_later_attempt(batch):
    batch.basic()
    job = batch.submit(retryStrategy={"attempts": 2})  # SubmitJob's strategy replaces the definition's
    batch.process(job, 1).exit(137)
    batch.process(job, 2).exit(0)
    detail = batch.wait(job, "SUCCEEDED")
    assert [a["container"]["exitCode"] for a in detail["attempts"]] == [137, 0]
    assert detail["retryStrategy"] == {"attempts": 2}


def test_timeout_stops_the_attempt_and_is_not_retried(make_batch):
    batch = make_batch(max_local_vcpus=4, timeout_scale=0.001)  # 60 s → 60 ms
    batch.basic(retryStrategy={"attempts": 3}, timeout={"attemptDurationSeconds": 60})
    job = batch.submit()
    process = batch.process(job)
    detail = batch.wait(job, "FAILED")
    assert process.signals == ["TERM"]
    assert detail["statusReason"] == "Job attempt duration exceeded timeout"
    [attempt] = detail[
        "attempts"
    ]  # "If a job is terminated for exceeding the timeout duration, it isn't retried."
    assert (attempt["statusReason"], attempt["container"]["exitCode"]) == (
        "Job attempt duration exceeded timeout",
        143,
    )
    assert detail["timeout"] == {"attemptDurationSeconds": 60}


def test_timeout_kills_a_job_that_ignores_sigterm(make_batch):
    batch = make_batch(max_local_vcpus=4, timeout_scale=0.001)
    batch.executor.ignore_term = True
    batch.basic()
    job = batch.submit(timeout={"attemptDurationSeconds": 60})
    process = batch.process(job)
    detail = batch.wait(job, "FAILED")
    assert process.signals == ["TERM", "KILL"]
    assert detail["attempts"][0]["container"]["exitCode"] == 137


def test_a_finished_attempt_is_not_timed_out(make_batch):
    batch = make_batch(max_local_vcpus=4, timeout_scale=0.01)
    batch.basic(timeout={"attemptDurationSeconds": 60})
    job = batch.submit()
    process = batch.process(job)
    process.exit(0)
    batch.wait(job, "SUCCEEDED")
    assert process.signals == []


def test_reclaim_a_job_then_retry_succeeds(batch):
    batch.basic(retryStrategy=RETRY_ON_HOST_LOSS)
    job = batch.submit()
    first = batch.process(job)
    batch.wait(job, "RUNNING")
    assert batch.engine.reclaim(job_id=job) == [job]
    assert first.signals == ["TERM"]
    batch.process(job, 2).exit(0)
    detail = batch.wait(job, "SUCCEEDED")
    reclaimed, succeeded = detail["attempts"]
    assert HOST_LOST.fullmatch(reclaimed["statusReason"])
    assert reclaimed["container"]["reason"] == reclaimed["statusReason"]
    assert "exitCode" not in reclaimed["container"]  # the host is gone: no exit code
    assert succeeded["container"]["exitCode"] == 0


def test_reclaimed_attempt_without_retry_fails_with_the_host_reason(batch):
    batch.basic()
    job = batch.submit()
    batch.process(job)
    batch.wait(job, "RUNNING")
    batch.engine.reclaim(job_id=job)
    assert HOST_LOST.fullmatch(batch.wait(job, "FAILED")["statusReason"])


def test_reclaim_a_share_of_running_attempts(batch):
    batch.basic(retryStrategy=RETRY_ON_HOST_LOSS)
    jobs = [batch.submit(f"j{i}") for i in range(4)]
    for job in jobs:
        batch.wait(job, "RUNNING")
    reclaimed = batch.engine.reclaim(fraction=0.5)
    assert len(reclaimed) == 2 and set(reclaimed) <= set(jobs)
    for job in reclaimed:
        batch.process(job, 2)
    assert batch.engine.reclaim(fraction=0.0) == []


def test_reclaim_an_array_reclaims_its_running_children(batch):
    batch.basic(retryStrategy=RETRY_ON_HOST_LOSS)
    parent = batch.submit(arrayProperties={"size": 2})
    for index in range(2):
        batch.wait(f"{parent}:{index}", "RUNNING")
    assert sorted(batch.engine.reclaim(job_id=parent)) == [f"{parent}:0", f"{parent}:1"]


def test_reclaim_policy_with_stage_filter_and_grace(make_batch):
    executor = FakeExecutor(auto_exit=lambda spec: 0 if spec.env["AWS_BATCH_JOB_ATTEMPT"] == "2" else None)
    executor.ignore_term = True  # so the grace period's SIGKILL ends reclaimed attempts
    batch = make_batch(executor=executor, max_local_vcpus=64)
    batch.basic(retryStrategy=RETRY_ON_HOST_LOSS)
    batch.definition("other", retryStrategy=RETRY_ON_HOST_LOSS)
    batch.engine.set_reclaim_policy(
        1.0, grace_seconds=0.01, stage_filter=lambda c: c.job_definition == "jd" and c.attempt == 1, seed=7
    )
    reclaimed = batch.submit(arrayProperties={"size": 3})
    spared = batch.submit("spared", definition="other")
    done = batch.wait(reclaimed, "SUCCEEDED")
    assert done["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    for index in range(3):
        attempts = batch.describe(f"{reclaimed}:{index}")["attempts"]
        assert len(attempts) == 2 and HOST_LOST.fullmatch(attempts[0]["statusReason"])
    assert batch.process(f"{reclaimed}:0").signals == ["TERM", "KILL"]
    batch.wait(spared, "RUNNING")
    assert batch.process(spared).signals == []
    batch.engine.set_reclaim_policy(0.0)


def test_launch_environment_and_command(make_batch):
    os.environ["SLUICE_TEST_LEAK"] = "engine-only"
    try:
        image = LocalImage(
            entrypoint=["python", "-m", "job"], cmd=["--default"], env={"IMAGE_VAR": "1"}, workdir="/tmp"
        )
        batch = make_batch(
            max_local_vcpus=4, image_resolver=lambda name: image if name == "sluice/jd" else None
        )
        batch.basic(
            command=("Ref::mode", "--input", "Ref::input", "Ref::missing"),
            parameters={"mode": "transform", "input": "default"},
            container={
                "environment": [{"name": "A", "value": "definition"}, {"name": "B", "value": "definition"}]
            },
        )
        job = batch.submit(
            parameters={"input": "s3://bucket/key"},
            containerOverrides={"environment": [{"name": "B", "value": "override"}]},
        )
        spec = batch.process(job).spec
    finally:
        del os.environ["SLUICE_TEST_LEAK"]
    assert spec.argv == ("python", "-m", "job", "transform", "--input", "s3://bucket/key", "Ref::missing")
    assert spec.cwd == "/tmp"
    env = spec.env
    assert (env["A"], env["B"], env["IMAGE_VAR"]) == ("definition", "override", "1")
    assert (env["AWS_BATCH_JOB_ID"], env["AWS_BATCH_JQ_NAME"], env["AWS_BATCH_CE_NAME"]) == (job, "q", "ce")
    assert "AWS_BATCH_JOB_ARRAY_INDEX" not in env and "AWS_BATCH_JOB_ARRAY_SIZE" not in env
    assert "SLUICE_TEST_LEAK" not in env and "PATH" in env
    assert batch.describe(job)["container"]["command"] == list(spec.argv[3:])


def test_image_cmd_runs_without_a_command(make_batch):
    image = LocalImage(entrypoint=["/entry"], cmd=["default", "args"], env={}, workdir="/")
    batch = make_batch(max_local_vcpus=4, image_resolver=lambda name: image)
    batch.environment()
    batch.queue()
    batch.client.register_job_definition(
        jobDefinitionName="jd",
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "x",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )
    assert batch.process(batch.submit()).spec.argv == ("/entry", "default", "args")


def test_launch_failure_is_a_failed_attempt(make_batch):
    executor = FakeExecutor(launch_error=lambda spec: "exec: run: not found")
    batch = make_batch(executor=executor, max_local_vcpus=4)
    batch.basic(retryStrategy={"attempts": 2})
    job = batch.submit()
    detail = batch.wait(job, "FAILED")
    assert [a["statusReason"] for a in detail["attempts"]] == ["Task failed to start"] * 2
    assert detail["attempts"][0]["container"]["reason"] == "CannotStartContainerError: exec: run: not found"
    assert "RUNNING" not in batch.events.statuses(job)


def test_no_command_anywhere_fails_to_start(batch):
    batch.environment()
    batch.queue()
    batch.client.register_job_definition(
        jobDefinitionName="jd",
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "x",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )
    detail = batch.wait(batch.submit(), "FAILED")
    assert "no command" in detail["attempts"][0]["container"]["reason"]


def test_too_long_overrides_fail_after_submission(batch):
    batch.basic()
    job = batch.submit(containerOverrides={"environment": [{"name": "BIG", "value": "x" * 9000}]})
    assert batch.wait(job, "FAILED")["statusReason"] == "Container Overrides length must be at most 8192"
    assert batch.executor.launched == []


def test_log_stream_names(batch):
    batch.environment()
    batch.queue()
    batch.definition(
        "custom",
        container={
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-stream-prefix": "sluice"}}
        },
    )
    batch.definition("quiet", container={"logConfiguration": {"logDriver": "json-file"}})
    custom = batch.submit(definition="custom")
    quiet = batch.submit(definition="quiet")
    running = batch.wait(custom, "RUNNING")
    task_id = running["container"]["taskArn"].rsplit("/", 1)[1]
    assert running["container"]["logStreamName"] == f"sluice/default/{task_id}"
    assert "logStreamName" not in batch.wait(quiet, "RUNNING")["container"]
    starting = [d for d in batch.events.details(custom) if d["status"] == "STARTING"][0]
    assert "logStreamName" not in starting["container"]  # set when the attempt reaches RUNNING


def test_an_image_that_cannot_be_resolved_fails_like_a_failed_pull(make_batch):
    def resolver(image: str) -> LocalImage:
        raise FileNotFoundError(f"no Docker context for {image}")

    batch = make_batch(max_local_vcpus=4, image_resolver=resolver)
    batch.basic()
    detail = batch.wait(batch.submit(), "FAILED")
    [attempt] = detail["attempts"]
    assert attempt["statusReason"] == "Task failed to start"
    assert attempt["container"]["reason"] == "CannotPullContainerError: no Docker context for sluice/jd"
