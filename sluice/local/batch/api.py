"""The Batch REST-JSON API as a WSGI app: routes, request bodies, responses and errors.

Routes come from botocore's Batch service model, so a request boto3 serialises lands on the
operation boto3 meant. Errors carry the error type both in the ``x-amzn-errortype`` header and
in the body's ``__type``, with a ``message``, which is how botocore's rest-json parser reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import botocore.session

from sluice.local.batch import queries
from sluice.local.batch.errors import BatchError, ClientException, ServerException
from sluice.local.batch.scheduler import CANCEL, TERMINATE_JOB, Scheduler
from sluice.local.batch.validation import check_reason

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], dict[str, list[str]]], dict[str, Any]]
_TAGS_PATH = "/v1/tags/"
MAX_TAGS = 50


def _routes() -> dict[tuple[str, str], str]:
    model = botocore.session.get_session().get_service_model("batch")
    routes = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        routes[(http["method"], http["requestUri"])] = name
    return routes


class BatchApi:
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._registry = scheduler.registry
        self._routes = _routes()
        self._handlers: dict[str, Handler] = {
            "CreateComputeEnvironment": self._create_compute_environment,
            "DescribeComputeEnvironments": self._locked(self._registry.describe_environments),
            "UpdateComputeEnvironment": self._update_compute_environment,
            "DeleteComputeEnvironment": self._delete_compute_environment,
            "CreateJobQueue": self._create_job_queue,
            "DescribeJobQueues": self._locked(self._registry.describe_queues),
            "UpdateJobQueue": self._update_job_queue,
            "DeleteJobQueue": self._delete_job_queue,
            "RegisterJobDefinition": self._register_job_definition,
            "DescribeJobDefinitions": self._locked(self._registry.describe_definitions),
            "DeregisterJobDefinition": self._deregister_job_definition,
            "SubmitJob": self._submit_job,
            "DescribeJobs": self._locked(lambda body: queries.describe_jobs(self._scheduler, body)),
            "ListJobs": self._locked(lambda body: queries.list_jobs(self._scheduler, body)),
            "CancelJob": self._cancel_job,
            "TerminateJob": self._terminate_job,
            "TagResource": self._tag_resource,
            "UntagResource": self._untag_resource,
            "ListTagsForResource": self._list_tags_for_resource,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            operation, body = self._parse(environ)
            handler = self._handlers.get(operation)
            if handler is None:
                raise ClientException(f"{operation} isn't supported by the local Batch engine")
            query = parse_qs(environ.get("QUERY_STRING", ""))
            return _respond(start_response, 200, handler(body, query))
        except BatchError as error:
            return _error(start_response, error)
        except _UnknownOperation as error:
            return _respond(
                start_response,
                404,
                {"__type": "UnknownOperationException", "message": str(error)},
                error_type=None,
            )
        except Exception as error:
            log.exception("Batch API request failed")
            return _error(start_response, ServerException(f"Internal error: {error}"))

    def _parse(self, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ClientException("The request body isn't valid JSON") from None
        if not isinstance(body, dict):
            raise ClientException("The request body must be a JSON object")
        if path.startswith(_TAGS_PATH):
            # The ARN is the rest of the (already percent-decoded) path.
            body["resourceArn"] = path[len(_TAGS_PATH) :]
            path = _TAGS_PATH + "{resourceArn}"
        operation = self._routes.get((method, path))
        if operation is None:
            raise _UnknownOperation(f"No Batch operation at {method} {path}")
        return operation, body

    def _locked(self, call: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
        def handler(body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
            with self._scheduler.cond:
                return call(body)

        return handler

    # -- compute environments and queues --------------------------------------------------------------

    def _create_compute_environment(
        self, body: dict[str, Any], query: dict[str, list[str]]
    ) -> dict[str, Any]:
        with self._scheduler.cond:
            ce = self._registry.create_environment(body)
            self._scheduler.resources_changed()
            return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}

    def _update_compute_environment(
        self, body: dict[str, Any], query: dict[str, list[str]]
    ) -> dict[str, Any]:
        with self._scheduler.cond:
            ce = self._registry.update_environment(body)
            self._scheduler.resources_changed()
            return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}

    def _delete_compute_environment(
        self, body: dict[str, Any], query: dict[str, list[str]]
    ) -> dict[str, Any]:
        with self._scheduler.cond:
            self._registry.delete_environment(body)
            self._scheduler.resources_changed()
            return {}

    def _create_job_queue(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            queue = self._registry.create_queue(body)
            self._scheduler.resources_changed()
            return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def _update_job_queue(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            queue = self._registry.update_queue(body)
            self._scheduler.resources_changed()
            return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def _delete_job_queue(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            queue = self._registry.delete_queue(body)
            self._scheduler.queue_deleted(queue)
            return {}

    # -- job definitions -----------------------------------------------------------------------------

    def _register_job_definition(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            definition = self._registry.register_definition(body)
            return {
                "jobDefinitionName": definition.name,
                "jobDefinitionArn": definition.arn,
                "revision": definition.revision,
            }

    def _deregister_job_definition(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            self._registry.deregister_definition(body)
            return {}

    # -- jobs ------------------------------------------------------------------------------------------

    def _submit_job(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            job = self._scheduler.submit(body)
            return {"jobArn": job.arn, "jobName": job.spec.name, "jobId": job.job_id}

    def _cancel_job(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        return self._stop_job(body, CANCEL)

    def _terminate_job(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        return self._stop_job(body, TERMINATE_JOB)

    def _stop_job(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        reason = check_reason(body.get("reason"))
        with self._scheduler.cond:
            job = self._scheduler.require_job(str(body.get("jobId", "")))
            self._scheduler.cancel(job, reason, kind)
            return {}

    # -- tags ------------------------------------------------------------------------------------------

    def _tag_resource(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        tags = body.get("tags") or {}
        with self._scheduler.cond:
            current = self._tags_of(body["resourceArn"])
            merged = {**current, **tags}
            _check_tags(merged)
            current.update(tags)
            return {}

    def _untag_resource(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        keys = query.get("tagKeys") or []
        if not keys:
            raise ClientException("tagKeys must be provided")
        with self._scheduler.cond:
            current = self._tags_of(body["resourceArn"])
            for key in keys:
                current.pop(key, None)
            return {}

    def _list_tags_for_resource(self, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        with self._scheduler.cond:
            return {"tags": dict(self._tags_of(body["resourceArn"]))}

    def _tags_of(self, arn: str) -> dict[str, str]:
        """The live tag map of a compute environment, queue, job definition or job.

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
            return definition.request.setdefault("tags", {})
        if kind == "job":
            return self._scheduler.require_job(name).spec.tags
        raise ClientException(f"Resource {arn} not found")


class _UnknownOperation(Exception):
    pass


def _check_tags(tags: dict[str, Any]) -> None:
    if len(tags) > MAX_TAGS:
        raise ClientException(f"A resource can have at most {MAX_TAGS} tags")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise ClientException("Tag keys must be 1-128 characters and values at most 256 characters")
        if key.lower().startswith("aws:"):
            raise ClientException("Tag keys starting with aws: are reserved")


def _respond(
    start_response: Callable[..., Any], status: int, body: dict[str, Any], error_type: str | None = None
) -> list[bytes]:
    payload = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if error_type:
        headers.append(("x-amzn-errortype", error_type))
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
    start_response(f"{status} {reason}", headers)
    return [payload]


def _error(start_response: Callable[..., Any], error: BatchError) -> list[bytes]:
    return _respond(
        start_response, error.status, {"__type": error.code, "message": error.message}, error_type=error.code
    )
