"""A job's log events are readable the moment DescribeJobs shows it terminal, and Batch's default
log group exists before any job runs (https://docs.aws.amazon.com/batch/latest/userguide/using_awslogs.html).

These read the logs without `engine.flush()`: what a client sees is what DescribeJobs promises.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from sluice.local.batch import BatchEngine
from tests.local.batch.processes.helpers import Harness

pytestmark = pytest.mark.timeout(90)

GROUP = "/aws/batch/job"
LINES = 3
TERMINAL = ("SUCCEEDED", "FAILED")


def read_events(logs: Any, stream: str) -> tuple[list[str], list[str]]:
    """(GetLogEvents messages, FilterLogEvents messages) of one stream, read once, right now."""
    got = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
    filtered = logs.filter_log_events(logGroupName=GROUP, logStreamNames=[stream])["events"]
    return [e["message"] for e in got], [e["message"] for e in filtered]


def test_default_log_group_exists_before_the_first_job(moto_endpoint: str, logs: Any) -> None:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()  # no group left over
    engine = BatchEngine(endpoint_url=moto_endpoint)
    engine.start()
    try:
        deadline = time.monotonic() + 10
        names: list[str] = []
        while GROUP not in names and time.monotonic() < deadline:
            names = [
                g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
            ]
        assert GROUP in names, "the default log group was not created at engine start"
        assert engine.scheduler.jobs == {}
    finally:
        engine.stop()


def test_every_terminal_job_has_all_its_log_events(batch: Harness, logs: Any) -> None:
    """Many short jobs, each read the instant it is seen terminal; each line is there at once."""
    batch.environment(max_vcpus=64)
    batch.queue()
    script = " ".join(f'echo "$AWS_BATCH_JOB_ID line {n}";' for n in range(LINES))
    batch.definition("jd", command=("sh", "-c", script))
    batch.definition("failing", command=("sh", "-c", script + " exit 3"))
    jobs = [batch.submit(f"job{i}", definition="failing" if i % 5 == 4 else "jd") for i in range(60)]
    pending = set(jobs)
    problems: list[str] = []
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for chunk in [sorted(pending)[i : i + 100] for i in range(0, len(pending), 100)]:
            for job in batch.client.describe_jobs(jobs=chunk)["jobs"]:
                if job["status"] not in TERMINAL:
                    continue
                pending.discard(job["jobId"])
                stream = job["container"]["logStreamName"]
                expected = [f"{job['jobId']} line {n}" for n in range(LINES)]
                try:
                    got, filtered = read_events(logs, stream)
                except logs.exceptions.ResourceNotFoundException as error:
                    problems.append(f"{job['jobId']} {job['status']}: {error}")
                    continue
                if got != expected or filtered != expected:
                    problems.append(f"{job['jobId']} {job['status']}: get {got}, filter {filtered}")
    assert not pending, f"{len(pending)} jobs did not finish"
    assert not problems, f"{len(problems)} of {len(jobs)} terminal jobs lacked log events: {problems[:5]}"
