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
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, cast

from sluice.local.batch import validation
from sluice.local.batch.errors import ClientException
from sluice.local.batch.fairshare import check_job_share, check_scheduling_priority
from sluice.local.batch.models import ENABLED, Job, JobQueue, JobSpec, Resources
from sluice.local.batch.multinode import MULTINODE, MultiNodeSpec, NodePlan, plan_nodes
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
    if request.get("ecsPropertiesOverride") or request.get("eksPropertiesOverride"):
        raise ClientException("ecsPropertiesOverride and eksPropertiesOverride aren't supported locally")

    parameters = {**(definition.request.get("parameters") or {}), **(request.get("parameters") or {})}
    if not all(isinstance(value, str) for value in parameters.values()):
        raise ClientException("parameters must be a string to string map")
    plan: NodePlan | None = None
    node_groups: list[_Container] = []
    if definition.request["type"] == MULTINODE:
        plan = _node_plan(request, definition.request["nodeProperties"], array_size, overrides)
        node_groups = [
            _resolve_container(group.container, group.overrides, parameters, fargate=False)
            for group in plan.groups
        ]
        # The job itself runs nothing; it holds the capacity of all its nodes (multinode.py).
        total = [node_groups[group].resources for group in plan.group_of_node]
        job_container = _Container(
            command=None,
            environment=(),
            resources=Resources(
                vcpu_milli=sum(item.vcpu_milli for item in total),
                memory_mib=sum(item.memory_mib for item in total),
                gpus=sum(item.gpus for item in total),
            ),
            container={},
        )
    elif request.get("nodeOverrides"):
        raise ClientException("nodeOverrides can only be used with multi-node parallel job definitions")
    else:
        job_container = _resolve_container(definition.container, overrides, parameters, fargate=fargate)

    retry_request = request.get("retryStrategy") or definition.request.get("retryStrategy")
    retry = parse_retry_strategy(retry_request)
    timeout_seconds = validation.check_timeout(request.get("timeout") or definition.request.get("timeout"))
    depends_on = request.get("dependsOn") or []
    dependencies = _resolve_dependencies(depends_on, array_size, find_job)

    overrides_chars = len(json.dumps(overrides, separators=(",", ":"))) if overrides else 0
    spec = JobSpec(
        name=name,
        arn_prefix=f"{registry.arn_prefix}job/",
        queue=queue,
        definition=definition,
        parameters=parameters,
        command=job_container.command,
        environment=job_container.environment,
        resources=job_container.resources,
        container=job_container.container,
        retry=retry,
        retry_request=copy.deepcopy(retry_request) if retry_request else None,
        timeout_seconds=timeout_seconds,
        depends_on=tuple(dict(item) for item in depends_on),
        array_size=array_size,
        tags=dict(request.get("tags") or {}),
        propagate_tags=bool(request.get("propagateTags", definition.request.get("propagateTags", False))),
        scheduling_priority=_scheduling_priority(request, definition.request, queue),
        share_identifier=check_job_share(request.get("shareIdentifier"), queue),
        overrides_too_long=overrides_chars > MAX_OVERRIDES_CHARS,
    )
    if plan is not None:
        spec = _with_nodes(spec, plan, node_groups)
    return Submission(spec=spec, dependencies=dependencies)


class _Container(NamedTuple):
    """A container's definition merged with its overrides, as a job (or node) runs it."""

    command: tuple[str, ...] | None
    environment: tuple[tuple[str, str], ...]
    resources: Resources
    container: dict[str, Any]  # DescribeJobs `container` before per-attempt fields


def _resolve_container(
    base: dict[str, Any], overrides: dict[str, Any], parameters: dict[str, str], *, fargate: bool
) -> _Container:
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
    container = _container_detail(base, command, environment, requirements, legacy_vcpus, legacy_memory)
    if overrides.get("instanceType"):  # multi-node parallel jobs only (checked by the caller)
        container["instanceType"] = overrides["instanceType"]
    return _Container(command, environment, resources, container)


def _node_plan(
    request: dict[str, Any], properties: dict[str, Any], array_size: int | None, overrides: dict[str, Any]
) -> NodePlan:
    """SubmitJob of a multinode definition: its nodes after nodeOverrides (multinode.py)."""
    if array_size is not None:
        # ND: AWS documents array jobs and MNP jobs apart and no way to combine them; refused.
        raise ClientException("arrayProperties can't be used with a multi-node parallel job")
    if overrides:
        # "A list of node overrides ... that specify the node range to target and the container
        # overrides for that node range" (SubmitJob.nodeOverrides) take their place (ND: refused).
        raise ClientException("Use nodeOverrides, not containerOverrides, for a multi-node parallel job")
    return plan_nodes(properties, request.get("nodeOverrides"))


def _with_nodes(spec: JobSpec, plan: NodePlan, groups: list[_Container]) -> JobSpec:
    """The job's spec with its nodes' specs: a node runs its group's container; the job's timeout
    runs on the main node, whose exit ends the whole job ("The timeout ... applies to the whole
    job and not to the nodes", job-lifecycle.html); nodes have no retry strategy of their own."""
    group_specs = [
        replace(
            spec,
            command=group.command,
            environment=group.environment,
            resources=group.resources,
            container=group.container,
            retry_request=None,
            timeout_seconds=None,
            depends_on=(),
        )
        for group in groups
    ]
    main_spec = replace(group_specs[plan.group_of_node[plan.main_node]], timeout_seconds=spec.timeout_seconds)
    node_specs = tuple(
        main_spec if index == plan.main_node else group_specs[group]
        for index, group in enumerate(plan.group_of_node)
    )
    ranges = []
    for group, resolved in zip(plan.groups, groups, strict=True):
        item: dict[str, Any] = {
            "targetNodes": group.target.text,
            "container": copy.deepcopy(resolved.container),
        }
        if group.instance_types:
            item["instanceTypes"] = list(group.instance_types)
        ranges.append(item)
    properties = {"numNodes": plan.num_nodes, "mainNode": plan.main_node, "nodeRangeProperties": ranges}
    return replace(spec, multinode=MultiNodeSpec(plan.num_nodes, plan.main_node, node_specs, properties))


def _scheduling_priority(request: dict[str, Any], definition: dict[str, Any], queue: JobQueue) -> int | None:
    """schedulingPriorityOverride (0-9999) over the definition's schedulingPriority; it orders jobs
    only within one share of a fair-share queue (API_SubmitJob), and is kept (not refused) on a FIFO
    queue, where it has no effect (ND).

    A fair-share queue needs one of the two. The API reference does not say so, but Batch refuses
    such a job with this ClientException (as quoted by users of the API, e.g. nextflow-io/nextflow
    pull request 3505), so the local engine does too.
    """
    override = check_scheduling_priority(
        request.get("schedulingPriorityOverride"), "schedulingPriorityOverride"
    )
    priority = override if override is not None else cast(int | None, definition.get("schedulingPriority"))
    if priority is None and queue.scheduling_policy_arn is not None:
        raise ClientException(
            "Either schedulingPriority in job definition or schedulingPriorityOverride should be specified."
        )
    return priority


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
        if job.node_index is not None:
            # ND: a node's status can change again when its job is retried; depend on the job.
            raise ClientException(f"Dependent job ID {job_id} is a node of a multi-node parallel job")
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
