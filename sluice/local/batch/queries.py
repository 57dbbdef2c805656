"""DescribeJobs and ListJobs (caller holds the scheduler's lock).

https://docs.aws.amazon.com/batch/latest/APIReference/API_ListJobs.html
https://docs.aws.amazon.com/batch/latest/APIReference/API_KeyValuesPair.html (filters)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.local.batch.errors import ClientException
from sluice.local.batch.models import RUNNING, STATUSES, Job
from sluice.local.batch.multinode import nodes_of
from sluice.local.batch.paging import paginate
from sluice.local.batch.render import job_detail, job_summary
from sluice.local.batch.scheduler import Scheduler

MAX_DESCRIBE = 100


def describe_jobs(scheduler: Scheduler, request: dict[str, Any]) -> dict[str, Any]:
    job_ids = request.get("jobs")
    if not job_ids:
        raise ClientException("jobs must be provided")
    if len(job_ids) > MAX_DESCRIBE:
        raise ClientException(f"Maximum number of jobs supported is {MAX_DESCRIBE}")  # observed AWS wording
    # Unknown IDs are left out of the answer, not an error.
    found = (scheduler.find_regional_job(job_id) for job_id in job_ids)
    return {"jobs": [job_detail(job) for job in found if job is not None]}


def list_jobs(scheduler: Scheduler, request: dict[str, Any]) -> dict[str, Any]:
    jobs = _jobs_in_scope(scheduler, request)
    filters = request.get("filters")
    if filters:
        # "If the filters parameter is specified, the jobStatus parameter is ignored and jobs
        # with any status are returned." Only one filter can be used at a time.
        if len(filters) > 1:
            raise ClientException("Only one filter can be used at a time")
        match = _filter(filters[0])
        jobs = [job for job in jobs if match(job)]
    else:
        # "If you don't specify a status, only RUNNING jobs are returned."
        status = request.get("jobStatus") or RUNNING
        if status not in STATUSES:
            raise ClientException(f"jobStatus must be one of {', '.join(STATUSES)}")
        jobs = [job for job in jobs if job.status == status]
    page, token = paginate(jobs, request.get("maxResults"), request.get("nextToken"), default=100, limit=1000)
    body: dict[str, Any] = {"jobSummaryList": [job_summary(job) for job in page]}
    if token:
        body["nextToken"] = token
    return body


def _jobs_in_scope(scheduler: Scheduler, request: dict[str, Any]) -> list[Job]:
    scopes = [key for key in ("jobQueue", "arrayJobId", "multiNodeJobId") if request.get(key)]
    if len(scopes) != 1:
        raise ClientException("Specify exactly one of jobQueue, arrayJobId or multiNodeJobId")
    if request.get("arrayJobId"):
        parent = scheduler.find_regional_job(request["arrayJobId"])
        return list(parent.children or ()) if parent is not None else []
    if request.get("multiNodeJobId"):
        return nodes_of(scheduler.find_regional_job(request["multiNodeJobId"]))
    # A queue lists its top-level jobs; array children are listed through arrayJobId.
    return list(scheduler.registry.current().queue(request["jobQueue"]).jobs)


def _filter(item: dict[str, Any]) -> Callable[[Job], bool]:
    name = item.get("name")
    values = item.get("values") or []
    if len(values) != 1:
        raise ClientException("A ListJobs filter takes exactly one value")
    value = values[0]
    if name == "JOB_NAME":  # case-insensitive; a trailing * matches a prefix
        wanted = value.lower()
        if wanted.endswith("*"):
            return lambda job: job.spec.name.lower().startswith(wanted[:-1])
        return lambda job: job.spec.name.lower() == wanted
    if name == "JOB_DEFINITION":
        if value.startswith("arn:"):  # an ARN names one revision; no wildcard
            return lambda job: job.spec.definition.arn == value
        if value.endswith("*"):
            return lambda job: job.spec.definition.name.startswith(value[:-1])
        return lambda job: job.spec.definition.name == value
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        try:
            stamp = int(value)
        except ValueError:
            raise ClientException(f"{name} must be epoch milliseconds") from None
        if name == "BEFORE_CREATED_AT":
            return lambda job: job.created_at < stamp
        return lambda job: job.created_at > stamp
    raise ClientException(
        "filter name must be JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT or AFTER_CREATED_AT"
    )
