"""The Batch API: each operation's handler over the scheduler and registry.

Routing, request parsing and responses come from the shared rest-json layer
(sluice.local.wire.restjson), driven by botocore's Batch service model, so a request boto3
serialises lands on the operation boto3 meant. Errors carry the error type both in the
``x-amzn-ErrorType`` header and in the body's ``__type``, with a ``message``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import parse_qs

from sluice.local.batch import errors, queries
from sluice.local.batch.errors import ClientException
from sluice.local.batch.registry import Registries, Registry
from sluice.local.batch.scheduler import CANCEL, TERMINATE_JOB, Scheduler
from sluice.local.batch.validation import check_reason
from sluice.local.wire.restjson import RestJsonService

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_TAGS = 50
# `Credential=AKID/20240101/eu-west-1/batch/aws4_request`: the region a request was signed for.
_SCOPE_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")


def request_region(environ: dict[str, Any]) -> str | None:
    """The region of a request's SigV4 credential scope (header or presigned query), if signed."""
    match = _SCOPE_REGION.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if match is None and "X-Amz-Credential=" in str(environ.get("QUERY_STRING", "")):
        credential = parse_qs(str(environ["QUERY_STRING"])).get("X-Amz-Credential", [""])[0]
        match = _SCOPE_REGION.search(f"Credential={credential}")
    return match.group(1) if match else None


class BatchApi:
    """The Batch operations, served over the shared rest-json layer (sluice.local.wire)."""

    def __init__(self, scheduler: Scheduler, ecs_cluster: Callable[[str, bool], None] | None = None) -> None:
        """`ecs_cluster(cluster ARN, create)`: creates or deletes a compute environment's ECS cluster."""
        self._ecs_cluster = ecs_cluster
        self._scheduler = scheduler
        self._registries: Registries = scheduler.registry
        handlers: dict[str, Handler] = {
            "CreateComputeEnvironment": self._create_compute_environment,
            "DescribeComputeEnvironments": self._locked(
                lambda body: self._registry.describe_environments(body)
            ),
            "UpdateComputeEnvironment": self._update_compute_environment,
            "DeleteComputeEnvironment": self._delete_compute_environment,
            "CreateJobQueue": self._create_job_queue,
            "DescribeJobQueues": self._locked(lambda body: self._registry.describe_queues(body)),
            "UpdateJobQueue": self._update_job_queue,
            "DeleteJobQueue": self._delete_job_queue,
            "RegisterJobDefinition": self._register_job_definition,
            "DescribeJobDefinitions": self._locked(lambda body: self._registry.describe_definitions(body)),
            "DeregisterJobDefinition": self._deregister_job_definition,
            "SubmitJob": self._submit_job,
            "DescribeJobs": self._locked(lambda body: queries.describe_jobs(self._scheduler, body)),
            "ListJobs": self._locked(lambda body: queries.list_jobs(self._scheduler, body)),
            "CancelJob": self._cancel_job,
            "TerminateJob": self._terminate_job,
            "CreateSchedulingPolicy": self._create_scheduling_policy,
            "DescribeSchedulingPolicies": self._locked(lambda body: self._registry.describe_policies(body)),
            "ListSchedulingPolicies": self._locked(lambda body: self._registry.list_policies(body)),
            "UpdateSchedulingPolicy": self._update_scheduling_policy,
            "DeleteSchedulingPolicy": self._delete_scheduling_policy,
            "TagResource": self._tag_resource,
            "UntagResource": self._untag_resource,
            "ListTagsForResource": self._list_tags_for_resource,
        }
        self._service = RestJsonService(
            "batch",
            handlers,
            unknown_operation=errors.unknown_operation,
            unsupported=errors.unsupported,
            bad_body=errors.bad_body,
            internal=errors.internal,
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Resources, ARNs and jobs belong to the region the request was signed for.
        with self._registries.serving(request_region(environ)):
            return list(self._service(environ, start_response))

    @property
    def _registry(self) -> Registry:
        return self._registries.current()

    def _locked(self, call: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
        def handler(body: dict[str, Any]) -> dict[str, Any]:
            with self._scheduler.cond:
                return call(body)

        return handler

    # -- compute environments and queues --------------------------------------------------------------

    def _create_compute_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_tags(body.get("tags") or {})
        with self._scheduler.cond:
            ce = self._registry.create_environment(body)
            self._scheduler.resources_changed()
        # Batch creates an ECS cluster for each compute environment, which ECS lists
        # (https://docs.aws.amazon.com/batch/latest/userguide/compute_environments.html).
        if self._ecs_cluster is not None:
            self._ecs_cluster(ce.ecs_cluster_arn, True)
        return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}

    def _update_compute_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            ce = self._registry.update_environment(body)
            self._scheduler.resources_changed()
            return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}

    def _delete_compute_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            ce = self._registry.delete_environment(body)
            self._scheduler.resources_changed()
        if self._ecs_cluster is not None:
            self._ecs_cluster(ce.ecs_cluster_arn, False)
        return {}

    def _create_job_queue(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_tags(body.get("tags") or {})
        with self._scheduler.cond:
            queue = self._registry.create_queue(body)
            self._scheduler.resources_changed()
            return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def _update_job_queue(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            queue = self._registry.update_queue(body)
            self._scheduler.resources_changed()
            return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def _delete_job_queue(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            queue = self._registry.delete_queue(body)
            self._scheduler.queue_deleted(queue)
            return {}

    # -- job definitions -----------------------------------------------------------------------------

    def _register_job_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_tags(body.get("tags") or {})
        with self._scheduler.cond:
            definition = self._registry.register_definition(body)
            return {
                "jobDefinitionName": definition.name,
                "jobDefinitionArn": definition.arn,
                "revision": definition.revision,
            }

    def _deregister_job_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            self._registry.deregister_definition(body)
            return {}

    # -- scheduling policies (fairshare.py) -------------------------------------------------------------

    def _create_scheduling_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_tags(body.get("tags") or {})
        with self._scheduler.cond:
            policy = self._registry.create_policy(body)
            return {"name": policy.name, "arn": policy.arn}

    def _update_scheduling_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            self._registry.update_policy(body)
            self._scheduler.resources_changed()  # new weights may start other jobs
            return {}

    def _delete_scheduling_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            self._registry.delete_policy(body)
            return {}

    # -- jobs ------------------------------------------------------------------------------------------

    def _submit_job(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_tags(body.get("tags") or {})
        with self._scheduler.cond:
            job = self._scheduler.submit(body)
            return {"jobArn": job.arn, "jobName": job.spec.name, "jobId": job.job_id}

    def _cancel_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._stop_job(body, CANCEL)

    def _terminate_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._stop_job(body, TERMINATE_JOB)

    def _stop_job(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        reason = check_reason(body.get("reason"))
        with self._scheduler.cond:
            job = self._scheduler.require_job(str(body.get("jobId", "")))
            self._scheduler.cancel(job, reason, kind)
            return {}

    # -- tags ------------------------------------------------------------------------------------------

    def _tag_resource(self, body: dict[str, Any]) -> dict[str, Any]:
        tags = body.get("tags") or {}
        with self._scheduler.cond:
            current = self._tags_of(body["resourceArn"])
            merged = {**current, **tags}
            _check_tags(merged)
            current.update(tags)
            return {}

    def _untag_resource(self, body: dict[str, Any]) -> dict[str, Any]:
        keys = body.get("tagKeys") or []
        if not keys:
            raise ClientException("tagKeys must be provided")
        with self._scheduler.cond:
            current = self._tags_of(body["resourceArn"])
            for key in keys:
                current.pop(key, None)
            return {}

    def _list_tags_for_resource(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._scheduler.cond:
            return {"tags": dict(self._tags_of(body["resourceArn"]))}

    def _tags_of(self, arn: str) -> dict[str, str]:
        """The live tag map of a compute environment, queue, job definition, scheduling policy or job.

        Array children share their parent's submission, and so its tags.
        """
        registry = self._registry
        if not arn.startswith(registry.arn_prefix):
            raise ClientException(f"Resource {arn} not found")
        kind, _, name = arn[len(registry.arn_prefix) :].partition("/")
        if kind == "compute-environment":
            return registry.environment(arn).tags
        if kind == "job-queue":
            return registry.queue(arn).tags
        if kind == "job-definition":
            definition = registry.find_definition(arn)
            if definition is None:
                raise ClientException(f"Resource {arn} not found")
            return cast(dict[str, str], definition.request.setdefault("tags", {}))
        if kind == "job":
            return self._scheduler.require_job(name).spec.tags
        if kind == "scheduling-policy":
            return registry.scheduling_policy(arn).tags
        raise ClientException(f"Resource {arn} not found")


def _check_tags(tags: dict[str, Any]) -> None:
    """At most 50 tags per resource, on the create calls as on TagResource; keys 1-128, values
    ≤256 characters; `aws:` is reserved.
    https://docs.aws.amazon.com/batch/latest/APIReference/API_TagResource.html,
    https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html (tags)"""
    if len(tags) > MAX_TAGS:
        raise ClientException(f"A resource can have at most {MAX_TAGS} tags")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise ClientException("Tag keys must be 1-128 characters and values at most 256 characters")
        if key.lower().startswith("aws:"):
            raise ClientException("Tag keys starting with aws: are reserved")
