"""Batch Job State Change events and ListJobs."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.local.batch.fake.helpers import MODEL, assert_shape

pytestmark = pytest.mark.timeout(20)


def test_event_entries_are_putevents_entries_with_jobdetail(batch):
    batch.basic()
    job = batch.submit(parameters={"sluiceRun": "run-1"})
    batch.process(job).exit(0)
    batch.wait(job, "SUCCEEDED")
    entry = batch.events.entries[-1]
    assert (entry["Source"], entry["DetailType"]) == ("aws.batch", "Batch Job State Change")
    assert entry["Resources"] == [f"arn:aws:batch:us-east-1:123456789012:job/{job}"]
    assert isinstance(entry["Time"], dt.datetime) and entry["Time"].tzinfo is not None
    detail = json.loads(entry["Detail"])
    assert_shape(detail, MODEL.shape_for("JobDetail"))
    assert detail["parameters"] == {"sluiceRun": "run-1"}
    assert isinstance(detail["createdAt"], int)


def test_every_event_detail_fits_jobdetail(batch):
    batch.basic(retryStrategy={"attempts": 2})
    parent = batch.submit(arrayProperties={"size": 2})
    after = batch.submit("after", dependsOn=[{"jobId": parent}])
    batch.process(f"{parent}:0", 1).exit(1)
    batch.process(f"{parent}:0", 2).exit(0)
    batch.process(f"{parent}:1").exit(0)
    batch.process(after).exit(0)
    batch.wait(after, "SUCCEEDED")
    shape = MODEL.shape_for("JobDetail")
    for detail in batch.events.details():
        assert_shape(detail, shape)


def test_array_event_sequences(batch):
    batch.basic()
    parent = batch.submit(arrayProperties={"size": 3})
    for index in range(3):
        batch.process(f"{parent}:{index}").exit(0)
    batch.wait(parent, "SUCCEEDED")
    assert batch.events.statuses(parent) == ["PENDING", "SUCCEEDED"]
    for index in range(3):
        assert batch.events.statuses(f"{parent}:{index}") == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    final = batch.events.details(parent)[-1]
    assert final["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3


def test_events_are_delivered_outside_engine_locks(batch):
    """A receiver may call back into the engine (EventBridge targets do) without deadlocking."""
    batch.basic()
    seen = []
    batch.events.hook = lambda entry: seen.append(
        batch.client.describe_jobs(jobs=[json.loads(entry["Detail"])["jobId"]])["jobs"][0]["status"]
    )
    job = batch.submit()
    batch.process(job).exit(0)
    batch.wait(job, "SUCCEEDED")
    assert seen[-1] == "SUCCEEDED"


def summaries(batch, **request):
    return batch.client.list_jobs(**request)["jobSummaryList"]


def test_list_jobs_by_queue_and_status(batch):
    batch.basic(max_vcpus=1)
    running, waiting = batch.submit("running"), batch.submit("waiting")
    batch.wait(waiting, "RUNNABLE")
    batch.wait(running, "RUNNING")
    assert [s["jobId"] for s in summaries(batch, jobQueue="q")] == [running]  # RUNNING by default
    assert [s["jobId"] for s in summaries(batch, jobQueue="q", jobStatus="RUNNABLE")] == [waiting]
    batch.process(running).exit(4)
    batch.wait(running, "FAILED")
    [failed] = summaries(batch, jobQueue="q", jobStatus="FAILED")
    assert failed["container"] == {"exitCode": 4}
    assert failed["statusReason"] == "Essential container in task exited"


def test_list_array_children(batch):
    batch.basic()
    parent = batch.submit("array", arrayProperties={"size": 3})
    for index in range(3):
        batch.wait(f"{parent}:{index}", "RUNNING")
    children = summaries(batch, arrayJobId=parent)
    assert [s["arrayProperties"] for s in children] == [{"index": 0}, {"index": 1}, {"index": 2}]
    # A queue lists the parent, not its children.
    assert [s["jobId"] for s in summaries(batch, jobQueue="q", jobStatus="PENDING")] == [parent]
    assert summaries(batch, jobQueue="q", jobStatus="PENDING")[0]["arrayProperties"] == {"size": 3}


def test_list_jobs_filters(batch):
    batch.basic()
    batch.definition("other")
    ingest = batch.submit("Ingest-1")
    batch.submit("transform-1", definition="other")
    ingest_created = batch.describe(ingest)["createdAt"]

    def names(name, value):
        return sorted(
            s["jobName"] for s in summaries(batch, jobQueue="q", filters=[{"name": name, "values": [value]}])
        )

    assert names("JOB_NAME", "ingest-1") == ["Ingest-1"]  # case-insensitive
    assert names("JOB_NAME", "INGEST*") == ["Ingest-1"]
    assert names("JOB_DEFINITION", "other") == ["transform-1"]
    assert names("JOB_DEFINITION", "arn:aws:batch:us-east-1:123456789012:job-definition/jd:1") == ["Ingest-1"]
    assert names("JOB_DEFINITION", "*") == ["Ingest-1", "transform-1"]
    assert names("AFTER_CREATED_AT", str(ingest_created - 1)) == ["Ingest-1", "transform-1"]
    assert names("BEFORE_CREATED_AT", str(ingest_created)) == []


def test_list_jobs_pagination(batch):
    batch.basic(max_vcpus=1)
    jobs = [batch.submit(f"j{i}") for i in range(6)]
    batch.wait(jobs[-1], "RUNNABLE")
    seen, token = [], None
    while True:
        page = batch.client.list_jobs(
            jobQueue="q", jobStatus="RUNNABLE", maxResults=2, **({"nextToken": token} if token else {})
        )
        seen += [s["jobId"] for s in page["jobSummaryList"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == jobs[1:]
    paginator = batch.client.get_paginator("list_jobs")
    pages = list(paginator.paginate(jobQueue="q", jobStatus="RUNNABLE", PaginationConfig={"PageSize": 4}))
    assert [len(p["jobSummaryList"]) for p in pages] == [4, 1]


def test_list_jobs_needs_one_scope(batch):
    with pytest.raises(batch.client.exceptions.ClientException, match="exactly one"):
        batch.client.list_jobs()
