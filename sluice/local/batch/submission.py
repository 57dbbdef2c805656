"""SubmitJob: validate the request and resolve it into a :class:`JobSpec` and its dependencies.

Merging follows the job definition docs: definition parameters are defaults that SubmitJob
parameters override (https://docs.aws.amazon.com/batch/latest/userguide/example-use-parameters.html),
container overrides replace command, add/replace environment variables and resource
requirements (https://docs.aws.amazon.com/batch/latest/APIReference/API_ContainerOverrides.html).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sluice.local.batch import validation
from sluice.local.batch.errors import ClientException
from sluice.local.batch.models import ENABLED, Job, JobSpec
from sluice.local.batch.registry import Registry
from sluice.local.batch.retry import parse_retry_strategy

N_TO_N = "N_TO_N"
SEQUENTIAL = "SEQUENTIAL"
# Observed AWS limits: the whole job at most 30 KiB (rejected by SubmitJob), container overrides
# at most 8192 characters (accepted, then the job FAILS with this reason). Both seen in
# https://github.com/ASFHyP3/hyp3/issues/3041; the exact way AWS measures them is ND.
MAX_JOB_BYTES = 30 * 1024
MAX_OVERRIDES_CHARS = 8192
OVERRIDES_TOO_LONG = f"Container Overrides length must be at most {MAX_OVERRIDES_CHARS}"
_REF = "Ref::"


@dataclass(frozen=True, slots=True)
class Dependency:
    job: Job | None  # None for SEQUENTIAL (the previous child of the same array)
    kind: str | None  # None (whole job), N_TO_N or SEQUENTIAL


@dataclass(frozen=True, slots=True)
class Submission:
    spec: JobSpec
    dependencies: tuple[Dependency, ...]


def build_submission(
    request: dict[str, Any], registry: Registry, find_job: Callable[[str], Job | None]
) -> Submission:
    size = len(json.dumps(request, separators=(",", ":")).encode())
    if size > MAX_JOB_BYTES:
        raise ClientException(f"Job size must be less than 30 KiB, got {size // 1024} KiB")
    name = validation.check_job_name(request.get("jobName"))
    queue = registry.queue(_required(request, "jobQueue"))
    if queue.state != ENABLED:
        # "If the job queue state is DISABLED, new jobs can't be added to the queue" (JobQueueDetail.state).
        raise ClientException(f"JobQueue {queue.name} is not in ENABLED state, it can't accept new jobs")
    definition = registry.definition(_required(request, "jobDefinition"))
    fargate = definition.platform == "FARGATE"
    if fargate != queue.is_fargate:
        raise ClientException(
            f"Job definition {definition.name}:{definition.revision} ({definition.platform}) isn't compatible "
            f"with the compute environments of job queue {queue.name}"
        )
    array_size = validation.check_array_size(request.get("arrayProperties"))
    overrides = request.get("containerOverrides") or {}
    if overrides.get("instanceType"):
        raise ClientException("instanceType can only be overridden for multi-node parallel jobs")
    if (
        request.get("nodeOverrides")
        or request.get("ecsPropertiesOverride")
        or request.get("eksPropertiesOverride")
    ):
        raise ClientException(
            "nodeOverrides, ecsPropertiesOverride and eksPropertiesOverride aren't supported locally"
        )
    base = definition.container

    parameters = {**(definition.request.get("parameters") or {}), **(request.get("parameters") or {})}
    if not all(isinstance(value, str) for value in parameters.values()):
        raise ClientException("parameters must be a string to string map")
    override_command = validation.check_command(overrides.get("command"))
    raw_command = (
        override_command if override_command is not None else validation.check_command(base.get("command"))
    )
    command = substitute_parameters(raw_command, parameters) if raw_command is not None else None
    environment = _merge_environment(
        validation.check_environment(base.get("environment")),
        validation.check_environment(overrides.get("environment")),
    )
    requirements = _merge_requirements(
        base.get("resourceRequirements") or [], overrides.get("resourceRequirements") or []
    )
    legacy_vcpus = overrides.get("vcpus", base.get("vcpus"))
    legacy_memory = overrides.get("memory", base.get("memory"))
    resources = validation.resolve_resources(requirements, legacy_vcpus, legacy_memory, fargate=fargate)

    retry_request = request.get("retryStrategy") or definition.request.get("retryStrategy")
    retry = parse_retry_strategy(retry_request)
    timeout_seconds = validation.check_timeout(request.get("timeout") or definition.request.get("timeout"))
    depends_on = request.get("dependsOn") or []
    dependencies = _resolve_dependencies(depends_on, array_size, find_job)

    container = _container_detail(base, command, environment, requirements, legacy_vcpus, legacy_memory)
    overrides_chars = len(json.dumps(overrides, separators=(",", ":"))) if overrides else 0
    spec = JobSpec(
        name=name,
        arn_prefix=f"{registry.arn_prefix}job/",
        queue=queue,
        definition=definition,
        parameters=parameters,
        command=command,
        environment=environment,
        resources=resources,
        container=container,
        retry=retry,
        retry_request=copy.deepcopy(retry_request) if retry_request else None,
        timeout_seconds=timeout_seconds,
        depends_on=tuple(dict(item) for item in depends_on),
        array_size=array_size,
        tags=dict(request.get("tags") or {}),
        propagate_tags=bool(request.get("propagateTags", definition.request.get("propagateTags", False))),
        scheduling_priority=request.get(
            "schedulingPriorityOverride", definition.request.get("schedulingPriority")
        ),
        share_identifier=request.get("shareIdentifier"),
        overrides_too_long=overrides_chars > MAX_OVERRIDES_CHARS,
    )
    return Submission(spec=spec, dependencies=dependencies)


def substitute_parameters(command: tuple[str, ...], parameters: dict[str, str]) -> tuple[str, ...]:
    """Replace whole ``Ref::name`` arguments with parameter values.

    AWS documents placeholders as whole command elements (example-use-parameters.html); a
    placeholder without a value is left as written (ND).
    """
    return tuple(
        parameters.get(part[len(_REF) :], part) if part.startswith(_REF) else part for part in command
    )


def _required(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not value:
        raise ClientException(f"{key} must be provided")
    return cast(str, value)


def _merge_environment(
    base: tuple[tuple[str, str], ...], overrides: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    merged = dict(base)
    merged.update(overrides)
    return tuple(merged.items())


def _merge_requirements(base: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {item["type"]: dict(item) for item in base}
    merged.update({item["type"]: dict(item) for item in overrides})
    return list(merged.values())


def _resolve_dependencies(
    depends_on: list[dict[str, Any]], array_size: int | None, find_job: Callable[[str], Job | None]
) -> tuple[Dependency, ...]:
    if len(depends_on) > validation.MAX_DEPENDENCIES:
        raise ClientException(f"A job can depend on at most {validation.MAX_DEPENDENCIES} jobs")
    resolved = []
    for item in depends_on:
        kind = item.get("type")
        job_id = item.get("jobId")
        if kind not in (None, N_TO_N, SEQUENTIAL):
            raise ClientException(f"Dependency type must be N_TO_N or SEQUENTIAL, got {kind}")
        if kind is not None and array_size is None:
            raise ClientException(f"{kind} dependencies are only allowed for array jobs")
        if kind == SEQUENTIAL:
            if job_id:
                raise ClientException("A SEQUENTIAL dependency can't name a jobId")
            resolved.append(Dependency(job=None, kind=SEQUENTIAL))
            continue
        if not job_id:
            raise ClientException("dependsOn entries must name a jobId")
        job = find_job(job_id)
        if job is None:
            raise ClientException(f"Dependent job ID {job_id} does not exist")
        if kind == N_TO_N and (not job.is_array_parent or job.spec.array_size != array_size):
            raise ClientException(f"An N_TO_N dependency must name an array job of the same size ({job_id})")
        resolved.append(Dependency(job=job, kind=kind))
    return tuple(resolved)


def _container_detail(
    base: dict[str, Any],
    command: tuple[str, ...] | None,
    environment: tuple[tuple[str, str], ...],
    requirements: list[dict[str, Any]],
    legacy_vcpus: Any,
    legacy_memory: Any,
) -> dict[str, Any]:
    """DescribeJobs `container` as far as it is fixed at submission."""
    container = copy.deepcopy(base)
    container["command"] = list(command) if command is not None else []
    container["environment"] = [{"name": name, "value": value} for name, value in environment]
    container["resourceRequirements"] = requirements
    for key in ("volumes", "mountPoints", "ulimits", "secrets"):
        container.setdefault(key, [])
    if legacy_vcpus is not None:
        container["vcpus"] = legacy_vcpus
    if legacy_memory is not None:
        container["memory"] = legacy_memory
    return container
