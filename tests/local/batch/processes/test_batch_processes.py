"""Jobs as real processes through boto3: exit codes, environment, logs, timeouts, reclaim, events."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluice.local.batch import BatchEngine
from sluice.local.batch import executor as executor_module
from sluice.local.batch.testing import EventRecorder
from tests.helpers import ROOT
from tests.local.batch.processes.helpers import batch_client, serve

pytestmark = pytest.mark.timeout(30)


HOST_LOST = re.compile(r"Host EC2 \(instance i-[0-9a-f]{17}\) terminated\.")


def shell(batch, script: str, name: str = "jd", *args: str, **extra) -> None:
    batch.definition(name, command=("sh", "-c", script, "sh", *args), **extra)


def setup(batch, script: str = "true", *args: str, **extra) -> None:
    batch.environment()
    batch.queue()
    shell(batch, script, "jd", *args, **extra)


def log_messages(
    batch, logs, job_id: str, group: str = "/aws/batch/job", stream: str | None = None
) -> list[str]:
    assert batch.engine.flush(timeout=10)
    stream = stream or batch.describe(job_id)["container"]["logStreamName"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return [event["message"] for event in events]


def test_exit_codes(batch):
    setup(batch)
    shell(batch, "exit 7", "fails")
    ok, bad = batch.submit("ok"), batch.submit("bad", definition="fails")
    assert batch.wait(ok, "SUCCEEDED")["container"]["exitCode"] == 0
    failed = batch.wait(bad, "FAILED")
    assert (failed["statusReason"], failed["container"]["exitCode"]) == (
        "Essential container in task exited",
        7,
    )
    assert failed["attempts"][0]["statusReason"] == "Essential container in task exited"


def test_environment_parameters_and_logs(batch, logs, moto_endpoint, monkeypatch):
    monkeypatch.setenv("SLUICE_ENGINE_SECRET", "must-not-leak")
    setup(
        batch,
        'echo "id=$AWS_BATCH_JOB_ID attempt=$AWS_BATCH_JOB_ATTEMPT index=$AWS_BATCH_JOB_ARRAY_INDEX '
        'size=$AWS_BATCH_JOB_ARRAY_SIZE queue=$AWS_BATCH_JQ_NAME ce=$AWS_BATCH_CE_NAME"; '
        'echo "endpoint=$AWS_ENDPOINT_URL param=$1 stage=$STAGE secret=${SLUICE_ENGINE_SECRET:-absent}"; '
        "echo to-stderr >&2",
        "Ref::input",
        parameters={"input": "default"},
        container={"environment": [{"name": "STAGE", "value": "transform"}]},
    )
    parent = batch.submit("array", arrayProperties={"size": 2}, parameters={"input": "s3://in/key"})
    batch.wait(parent, "SUCCEEDED")
    messages = log_messages(batch, logs, f"{parent}:1")
    assert messages == [
        f"id={parent}:1 attempt=1 index=1 size=2 queue=q ce=ce",
        f"endpoint={moto_endpoint} param=s3://in/key stage=transform secret=absent",
        "to-stderr",
    ]


def test_custom_log_group_and_batched_output(batch, logs):
    setup(
        batch,
        "seq 1 3000",
        container={
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/sluice/jobs"}}
        },
    )
    job = batch.submit()
    batch.wait(job, "SUCCEEDED")
    assert batch.engine.flush(timeout=10)
    stream = batch.describe(job)["container"]["logStreamName"]
    messages, token = [], None
    while True:
        page = logs.get_log_events(
            logGroupName="/sluice/jobs",
            logStreamName=stream,
            startFromHead=True,
            **({"nextToken": token} if token else {}),
        )
        if not page["events"]:
            break
        messages += [event["message"] for event in page["events"]]
        token = page["nextForwardToken"]
    assert messages == [str(n) for n in range(1, 3001)]


def test_a_silent_job_still_has_its_log_stream(batch, logs):
    setup(batch)
    job = batch.submit()
    batch.wait(job, "SUCCEEDED")
    assert log_messages(batch, logs, job) == []


def test_timeout_sends_sigterm_and_is_not_retried(batch):
    batch.environment()
    batch.queue()
    batch.definition(
        command=("sleep", "30"), timeout={"attemptDurationSeconds": 60}, retryStrategy={"attempts": 2}
    )
    job = batch.submit()
    detail = batch.wait(job, "FAILED", timeout=10)
    assert detail["statusReason"] == "Job attempt duration exceeded timeout"
    [attempt] = detail["attempts"]
    assert attempt["container"]["exitCode"] == 143  # 128 + SIGTERM, as Docker reports it


def test_timeout_kills_a_job_that_ignores_sigterm(batch):
    setup(batch, 'trap "" TERM; sleep 30', timeout={"attemptDurationSeconds": 60})
    detail = batch.wait(batch.submit(), "FAILED", timeout=10)
    assert detail["attempts"][0]["container"]["exitCode"] == 137  # SIGKILL after the (scaled) 30 s grace


def test_reclaim_then_retry_succeeds(batch, logs):
    setup(
        batch,
        'if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then exec sleep 30; fi; echo "finished on attempt $AWS_BATCH_JOB_ATTEMPT"',
        retryStrategy={
            "attempts": 2,
            "evaluateOnExit": [
                {"onStatusReason": "Host EC2*", "action": "RETRY"},
                {"onReason": "*", "action": "EXIT"},
            ],
        },
    )
    job = batch.submit()
    batch.wait(job, "RUNNING")
    assert batch.engine.reclaim(job_id=job) == [job]
    detail = batch.wait(job, "SUCCEEDED", timeout=10)
    first, second = detail["attempts"]
    assert HOST_LOST.fullmatch(first["statusReason"])
    assert second["statusReason"] == "Essential container in task exited"
    assert first["container"]["logStreamName"] != second["container"]["logStreamName"]
    assert log_messages(batch, logs, job) == ["finished on attempt 2"]


def test_terminate_a_running_job(batch):
    batch.environment()
    batch.queue()
    batch.definition(command=("sleep", "30"))
    job = batch.submit()
    batch.wait(job, "RUNNING")
    batch.client.terminate_job(jobId=job, reason="Stopped by the operator")
    detail = batch.wait(job, "FAILED", timeout=10)
    assert (detail["statusReason"], detail["isTerminated"]) == ("Stopped by the operator", True)
    assert detail["attempts"][0]["container"]["exitCode"] == 143


def test_missing_executable_fails_to_start(batch):
    batch.environment()
    batch.queue()
    batch.definition(command=("/nonexistent/sluice-job",))
    detail = batch.wait(batch.submit(), "FAILED")
    [attempt] = detail["attempts"]
    assert attempt["statusReason"] == "Task failed to start"
    assert attempt["container"]["reason"].startswith("CannotStartContainerError:")


def test_processes_left_behind_are_killed_with_the_job(batch, logs):
    setup(batch, "sleep 30 & echo $!")
    job = batch.submit()
    batch.wait(job, "SUCCEEDED")
    [pid] = log_messages(batch, logs, job)
    assert gone(pid)


def test_event_sequences(batch):
    setup(batch)
    job = batch.submit("single")
    parent = batch.submit("array", arrayProperties={"size": 3})
    batch.wait(job, "SUCCEEDED")
    batch.wait(parent, "SUCCEEDED")
    assert batch.engine.flush(timeout=10)
    assert batch.events.statuses(job) == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    assert batch.events.statuses(parent) == ["PENDING", "SUCCEEDED"]
    for index in range(3):
        assert batch.events.statuses(f"{parent}:{index}") == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    running = [d for d in batch.events.details(job) if d["status"] == "RUNNING"][0]
    assert running["container"]["logStreamName"].startswith("jd/default/")


@pytest.mark.timeout(60)
def test_a_thousand_children_finish_in_under_ten_seconds(moto_endpoint):
    """The fan-out budget on a 2-core laptop, with the machine's default vCPU limit.

    Wall time is the budget. When other work overloads the machine (load average above its
    core count), wall time measures the neighbours, so the CPU time this process spent (engine,
    API and in-process moto together) is held to the same budget instead.
    """
    events = EventRecorder()
    engine = BatchEngine(endpoint_url=moto_endpoint, emit_event=events)
    engine.start()
    server, thread = serve(engine)
    try:
        client = batch_client(server.server_port)
        ce = client.create_compute_environment(
            computeEnvironmentName="ce", type="MANAGED", computeResources={"type": "FARGATE", "maxvCpus": 64}
        )["computeEnvironmentArn"]
        client.create_job_queue(
            jobQueueName="q", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
        )
        client.register_job_definition(
            jobDefinitionName="true",
            type="container",
            platformCapabilities=["FARGATE"],
            containerProperties={
                "image": "sluice/true",
                "command": ["true"],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
            },
        )
        start, cpu_start = time.monotonic(), time.process_time()
        parent = client.submit_job(
            jobName="fanout", jobQueue="q", jobDefinition="true", arrayProperties={"size": 1000}
        )["jobId"]
        events.wait_status(parent, "SUCCEEDED", timeout=45)
        wall, cpu = time.monotonic() - start, time.process_time() - cpu_start
        busy = os.getloadavg()[0] > (os.cpu_count() or 1)
        assert (cpu if busy else wall) < 10, (
            f"1,000 children: {wall:.1f} s wall, {cpu:.1f} s CPU, busy={busy}"
        )
    finally:
        server.shutdown()
        thread.join()
        engine.stop()


@pytest.mark.timeout(90)
def test_fanout_benchmark_smoke(tmp_path):
    output = tmp_path / "fanout.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "batch_fanout.py"),
            "--smoke",
            "--no-logs",
            "--output",
            str(output),
        ],
        check=True,
        capture_output=True,
        timeout=80,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    report = json.loads(output.read_text())
    assert [(run["variant"], run["children"], run["status"]) for run in report["runs"]] == [
        ("scheduler", 50, "SUCCEEDED"),
        ("processes", 50, "SUCCEEDED"),
    ]
    assert all(run["events"] == 4 * 50 + 2 for run in report["runs"])


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return path.read_text().strip()


def gone(pid: str, timeout: float = 5.0) -> bool:
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + timeout
    while status.exists() and "zombie" not in status.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_without_pidfds_waiter_threads_report_exits(batch, monkeypatch):
    """The path macOS takes: no pidfd, one waiter thread per running process."""
    monkeypatch.setattr(executor_module, "_HAS_PIDFD", False)
    setup(batch, "echo hi; exit 3")
    batch.definition("slow", command=("sleep", "30"), timeout={"attemptDurationSeconds": 60})
    jobs = [batch.submit(f"j{i}") for i in range(3)]
    slow = batch.submit("slow", definition="slow")
    for job in jobs:
        assert batch.wait(job, "FAILED")["container"]["exitCode"] == 3
    assert batch.wait(slow, "FAILED", timeout=10)["container"]["exitCode"] == 143


def test_stop_kills_running_attempts(batch, tmp_path):
    pidfile = tmp_path / "pid"
    setup(batch, f"echo $$ > {pidfile}; exec sleep 30")
    job = batch.submit()
    batch.wait(job, "RUNNING")
    pid = wait_for_file(pidfile)
    batch.engine.stop()
    assert gone(pid)
