"""Jobs as the API shows them: JobDetail (DescribeJobs, events) and JobSummary (ListJobs).

Shapes: https://docs.aws.amazon.com/batch/latest/APIReference/API_JobDetail.html and
API_AttemptDetail.html; camelCase keys, epoch-millisecond times, absent rather than null.
"""

from __future__ import annotations

import copy
from typing import Any

from sluice.local.batch.models import STATUSES, Attempt, Job
from sluice.local.batch.multinode import MAIN_NODE_ADDRESS


def task_arn(attempt: Attempt) -> str:
    """arn:aws:ecs:<region>:<account>:task/<cluster name>/<task id>."""
    return f"{attempt.ce.ecs_cluster_arn.replace(':cluster/', ':task/', 1)}/{attempt.task_id}"


def attempt_detail(attempt: Attempt) -> dict[str, Any]:
    container: dict[str, Any] = {"taskArn": task_arn(attempt), "networkInterfaces": []}
    _put(container, "exitCode", attempt.exit_code)
    _put(container, "reason", attempt.reason)
    _put(container, "logStreamName", attempt.log_stream)
    detail: dict[str, Any] = {"container": container}
    _put(detail, "startedAt", attempt.started_at)
    _put(detail, "stoppedAt", attempt.stopped_at)
    _put(detail, "statusReason", attempt.status_reason)
    return detail


def job_detail(job: Job) -> dict[str, Any]:
    spec = job.spec
    detail: dict[str, Any] = {
        "jobArn": job.arn,
        "jobName": spec.name,
        "jobId": job.job_id,
        "jobQueue": spec.queue.arn,
        "status": job.status,
        # Attempts appear once they have stopped; a running attempt shows in `container`.
        "attempts": [attempt_detail(a) for a in job.attempts if a.stopped_at is not None],
        "createdAt": job.created_at,
        "dependsOn": [dict(item) for item in spec.depends_on],
        "jobDefinition": spec.definition.arn,
        "parameters": dict(spec.parameters),
        "container": _container(job),
        "tags": dict(spec.tags),
        "propagateTags": spec.propagate_tags,
        "platformCapabilities": [spec.definition.platform],
    }
    _put(detail, "statusReason", job.status_reason)
    _put(detail, "startedAt", job.started_at)
    _put(detail, "stoppedAt", job.stopped_at)
    _put(detail, "retryStrategy", spec.retry_request)
    if spec.timeout_seconds is not None:
        detail["timeout"] = {"attemptDurationSeconds": spec.timeout_seconds}
    _put(detail, "schedulingPriority", spec.scheduling_priority)
    _put(detail, "shareIdentifier", spec.share_identifier)
    if job.is_cancelled:
        detail["isCancelled"] = True
    if job.is_terminated:
        detail["isTerminated"] = True
    array = _array_properties(job)
    if array is not None:
        detail["arrayProperties"] = array
    _put_multinode(detail, job)
    return detail


def job_summary(job: Job) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "jobArn": job.arn,
        "jobId": job.job_id,
        "jobName": job.spec.name,
        "createdAt": job.created_at,
        "status": job.status,
        "jobDefinition": job.spec.definition.arn,
    }
    _put(summary, "statusReason", job.status_reason)
    _put(summary, "startedAt", job.started_at)
    _put(summary, "stoppedAt", job.stopped_at)
    attempt = job.current_attempt
    if attempt is not None and attempt.stopped_at is not None:
        container: dict[str, Any] = {}
        _put(container, "exitCode", attempt.exit_code)
        _put(container, "reason", attempt.reason)
        summary["container"] = container
    if job.index is not None:
        summary["arrayProperties"] = {"index": job.index}
    elif job.spec.array_size is not None:
        summary["arrayProperties"] = {"size": job.spec.array_size}
    if job.is_cancelled:
        summary["isCancelled"] = True
    if job.is_terminated:
        summary["isTerminated"] = True
    if job.spec.multinode is not None:
        summary["nodeProperties"] = {"numNodes": job.spec.multinode.num_nodes}
    elif job.node_index is not None and job.parent is not None and job.parent.spec.multinode is not None:
        summary["nodeProperties"] = {
            "isMainNode": job.node_index == job.parent.spec.multinode.main_node,
            "numNodes": job.parent.spec.multinode.num_nodes,
            "nodeIndex": job.node_index,
        }
    return summary


def _container(job: Job) -> dict[str, Any]:
    container = dict(job.spec.container)
    attempt = job.current_attempt
    if attempt is not None:
        container["taskArn"] = task_arn(attempt)
        container["networkInterfaces"] = []
        _put(container, "logStreamName", attempt.log_stream)
        if attempt.stopped_at is not None:
            _put(container, "exitCode", attempt.exit_code)
            _put(container, "reason", attempt.reason)
    return container


def _array_properties(job: Job) -> dict[str, Any] | None:
    if job.index is not None:
        return {"index": job.index}
    if job.spec.array_size is None:
        return None
    summary = job.summary or {}
    properties: dict[str, Any] = {
        "size": job.spec.array_size,
        "statusSummary": {status: summary.get(status, 0) for status in STATUSES},
    }
    _put(properties, "statusSummaryLastUpdatedAt", job.summary_updated_at)
    return properties


def _put_multinode(detail: dict[str, Any], job: Job) -> None:
    """A multi-node parallel job shows `nodeProperties` and no `container`; its nodes show
    `nodeDetails` and their task's private address (the main node's is the one child nodes get
    in AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS). Shapes as AWS returns them (captured in
    https://github.com/aws/aws-parallelcluster/tree/develop/cli/tests/awsbatch/data/aws_api_responses)."""
    multinode = job.spec.multinode
    if multinode is not None:
        del detail["container"]
        detail["nodeProperties"] = copy.deepcopy(multinode.properties)
        return
    parent = job.parent
    if job.node_index is None or parent is None or parent.spec.multinode is None:
        return
    detail["nodeDetails"] = {
        "nodeIndex": job.node_index,
        "isMainNode": job.node_index == parent.spec.multinode.main_node,
    }
    interfaces = [{"privateIpv4Address": MAIN_NODE_ADDRESS}]  # every node runs on this host
    for container in [detail["container"], *(attempt["container"] for attempt in detail["attempts"])]:
        if "taskArn" in container:
            container["networkInterfaces"] = copy.deepcopy(interfaces)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value
