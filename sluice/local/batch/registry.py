"""Compute environments, job queues and job definitions: create, describe, update, delete.

Not thread-safe by itself: the engine calls it while holding its lock, and tells the scheduler
when something that affects placement changed.
"""

from __future__ import annotations

import copy
import functools
import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import botocore.session

from sluice.local.batch import multinode, validation
from sluice.local.batch.errors import ClientException
from sluice.local.batch.fairshare import (
    MAX_DESCRIBE_ARNS,
    SchedulingPolicy,
    check_fairshare_policy,
    check_scheduling_priority,
)
from sluice.local.batch.models import (
    DISABLED,
    ENABLED,
    VALID,
    ComputeEnvironment,
    JobDefinition,
    JobQueue,
)
from sluice.local.batch.multinode import MULTINODE
from sluice.local.batch.paging import paginate
from sluice.local.batch.retry import parse_retry_strategy
from sluice.local.batch.timelimits import check_actions, describe_actions

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
MAX_QUEUE_ENVIRONMENTS = (
    3  # https://docs.aws.amazon.com/cdk/api/latest/docs/@aws-cdk_aws-batch.JobQueueProps.html
)
CE_TYPES = ("MANAGED", "UNMANAGED")
RESOURCE_TYPES = ("EC2", "SPOT", "FARGATE", "FARGATE_SPOT")
LOG_DRIVERS = ("json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens")


_QUEUE_SEQ = itertools.count(1)  # creation order across regions
# The region of the request being served (its SigV4 credential scope), set by the API.
_REQUEST_REGION: ContextVar[str | None] = ContextVar("batch_request_region", default=None)


class Registries:
    """One Registry per region: Batch resources are regional, and so are their ARNs
    (https://docs.aws.amazon.com/general/latest/gr/batch.html,
    https://docs.aws.amazon.com/batch/latest/userguide/batch-resources.html). The scheduler
    places the jobs of every region on this one machine."""

    def __init__(self, region: str, account_id: str) -> None:
        self.default_region = region
        self.account_id = account_id
        self._by_region: dict[str, Registry] = {region: Registry(region, account_id)}

    def region(self, name: str) -> Registry:
        registry = self._by_region.get(name)
        if registry is None:
            registry = self._by_region[name] = Registry(name, self.account_id)
        return registry

    def current(self) -> Registry:
        """The registry of the region the request being served was signed for."""
        return self.region(_REQUEST_REGION.get() or self.default_region)

    @staticmethod
    @contextmanager
    def serving(region: str | None) -> Iterator[None]:
        token = _REQUEST_REGION.set(region)
        try:
            yield
        finally:
            _REQUEST_REGION.reset(token)

    def all(self) -> list[Registry]:
        return list(self._by_region.values())

    def policy_of(self, queue: JobQueue) -> SchedulingPolicy | None:
        """A queue's fair-share scheduling policy (in the queue's region), None for a FIFO queue."""
        if queue.scheduling_policy_arn is None:
            return None
        region = queue.arn.split(":")[3]
        return self.region(region).find_policy(queue.scheduling_policy_arn)

    def queues_by_priority(self) -> list[JobQueue]:
        """Higher priority first; among equals, the older queue first (all regions)."""
        queues = [queue for registry in self._by_region.values() for queue in registry.queues.values()]
        return sorted(queues, key=lambda queue: (-queue.priority, queue.created_seq))


class Registry:
    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.arn_prefix = f"arn:aws:batch:{region}:{account_id}:"
        self.environments: dict[str, ComputeEnvironment] = {}
        self.queues: dict[str, JobQueue] = {}
        self.definitions: dict[str, list[JobDefinition]] = {}  # name -> revisions in order
        self.policies: dict[str, SchedulingPolicy] = {}  # scheduling policies by name

    def _here(self, ref: str) -> bool:
        """Whether a name or ARN can name a resource of this region (an ARN names its region)."""
        return not ref.startswith("arn:") or ref.startswith(self.arn_prefix)

    # -- compute environments ------------------------------------------------------------------

    def create_environment(self, request: dict[str, Any]) -> ComputeEnvironment:
        name = validation.check_resource_name(request.get("computeEnvironmentName"), "Compute environment")
        ce_type = request.get("type")
        if ce_type not in CE_TYPES:
            raise ClientException(f"type must be one of {', '.join(CE_TYPES)}")
        state = _state(request.get("state", ENABLED))
        resources = request.get("computeResources")
        if request.get("eksConfiguration"):
            raise ClientException("EKS compute environments aren't supported by the local Batch engine")
        if ce_type == "MANAGED":
            resources = _check_compute_resources(resources)
        elif resources:
            raise ClientException("computeResources can't be specified for an UNMANAGED compute environment")
        elif not request.get("serviceRole"):
            # "For UNMANAGED compute environments, you must explicitly specify a serviceRole."
            # https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateComputeEnvironment.html
            raise ClientException("Error executing request, Exception : ServiceRole is required.")
        if name in self.environments:
            raise ClientException("Object already exists")  # AWS's wording for a duplicate name
        ce_uuid = str(uuid.uuid4())
        ce = ComputeEnvironment(
            name=name,
            arn=f"{self.arn_prefix}compute-environment/{name}",
            ce_type=ce_type,
            state=state,
            compute_resources=copy.deepcopy(resources) if resources else None,
            service_role=request.get("serviceRole"),
            unmanaged_vcpus=request.get("unmanagedvCpus"),
            ecs_cluster_arn=(
                f"arn:aws:ecs:{self.region}:{self.account_id}:cluster/AWSBatch-{name}-{ce_uuid.replace('-', '')}"
            ),
            uuid=ce_uuid,
            tags=dict(request.get("tags") or {}),
        )
        self.environments[name] = ce
        return ce

    def environment(self, ref: str) -> ComputeEnvironment:
        ce = self.environments.get(_name_from(ref, "compute-environment/")) if self._here(ref) else None
        if ce is None:
            raise ClientException(f"Compute environment {ref} does not exist")
        return ce

    def describe_environments(self, request: dict[str, Any]) -> dict[str, Any]:
        return _describe(
            request, self.environments, "computeEnvironments", "compute-environment/", _environment_detail
        )

    def update_environment(self, request: dict[str, Any]) -> ComputeEnvironment:
        ce = self.environment(request.get("computeEnvironment", ""))
        if "state" in request:
            ce.state = _state(request["state"])
        update = request.get("computeResources")
        if update:
            if ce.compute_resources is None:
                raise ClientException(
                    "computeResources can't be updated for an UNMANAGED compute environment"
                )
            merged = {**ce.compute_resources, **copy.deepcopy(update)}
            ce.compute_resources = _check_compute_resources(merged)
        if "unmanagedvCpus" in request:
            ce.unmanaged_vcpus = request["unmanagedvCpus"]
        if "serviceRole" in request:
            ce.service_role = request["serviceRole"]
        return ce

    def delete_environment(self, request: dict[str, Any]) -> ComputeEnvironment:
        # "you must set its state to DISABLED ... and disassociate it from any job queues"
        # https://docs.aws.amazon.com/batch/latest/APIReference/API_DeleteComputeEnvironment.html
        ce = self.environment(request.get("computeEnvironment", ""))
        if ce.state != DISABLED:
            raise ClientException(f"Compute environment {ce.name} must be DISABLED before it can be deleted")
        if any(ce in queue.environments for queue in self.queues.values()):
            raise ClientException("Cannot delete, found existing JobQueue relationship")
        del self.environments[ce.name]
        return ce

    # -- job queues -------------------------------------------------------------------------------

    def create_queue(self, request: dict[str, Any]) -> JobQueue:
        name = validation.check_resource_name(request.get("jobQueueName"), "Job queue")
        priority = _priority(request.get("priority"))
        state = _state(request.get("state", ENABLED))
        order = self._environment_order(request.get("computeEnvironmentOrder"))
        actions = check_actions(request.get("jobStateTimeLimitActions"))
        policy_arn = request.get("schedulingPolicyArn")
        if policy_arn is not None:
            policy_arn = self.scheduling_policy(policy_arn).arn
        if name in self.queues:
            raise ClientException("Object already exists")
        queue = JobQueue(
            name=name,
            arn=f"{self.arn_prefix}job-queue/{name}",
            state=state,
            priority=priority,
            ce_order=order,
            scheduling_policy_arn=policy_arn,
            tags=dict(request.get("tags") or {}),
            created_seq=next(_QUEUE_SEQ),
            time_limit_actions=actions,
        )
        self.queues[name] = queue
        return queue

    def queue(self, ref: str) -> JobQueue:
        queue = self.queues.get(_name_from(ref, "job-queue/")) if self._here(ref) else None
        if queue is None:
            raise ClientException(f"JobQueue {ref} not found.")  # observed AWS message
        return queue

    def describe_queues(self, request: dict[str, Any]) -> dict[str, Any]:
        return _describe(request, self.queues, "jobQueues", "job-queue/", _queue_detail)

    def update_queue(self, request: dict[str, Any]) -> JobQueue:
        queue = self.queue(request.get("jobQueue", ""))
        actions = check_actions(request.get("jobStateTimeLimitActions"))
        policy_arn = queue.scheduling_policy_arn
        if "schedulingPolicyArn" in request:
            policy_arn = self._replacement_policy(queue, request["schedulingPolicyArn"])
        if "state" in request:
            queue.state = _state(request["state"])
        if "priority" in request:
            queue.priority = _priority(request["priority"])
        if "computeEnvironmentOrder" in request:
            queue.ce_order = self._environment_order(request["computeEnvironmentOrder"])
        queue.scheduling_policy_arn = policy_arn
        if "jobStateTimeLimitActions" in request:
            queue.time_limit_actions = actions
        return queue

    def _replacement_policy(self, queue: JobQueue, ref: Any) -> str:
        """UpdateJobQueue `schedulingPolicyArn`: a fair-share queue's policy "can be replaced but
        can't be removed"; a FIFO queue "can't have a fair-share scheduling policy added"
        (https://docs.aws.amazon.com/batch/latest/APIReference/API_UpdateJobQueue.html,
        https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateJobQueue.html)."""
        if queue.scheduling_policy_arn is None:
            raise ClientException(
                f"Job queue {queue.name} is a FIFO queue: a scheduling policy can't be added after creation"
            )
        if not ref:
            raise ClientException(
                f"Job queue {queue.name} has a fair-share scheduling policy: it can be replaced, not removed"
            )
        return self.scheduling_policy(str(ref)).arn

    def delete_queue(self, request: dict[str, Any]) -> JobQueue:
        # "You must first disable submissions for a queue with the UpdateJobQueue operation."
        # https://docs.aws.amazon.com/batch/latest/APIReference/API_DeleteJobQueue.html
        queue = self.queue(request.get("jobQueue", ""))
        if queue.state != DISABLED:
            raise ClientException(f"Job queue {queue.name} must be DISABLED before it can be deleted")
        del self.queues[queue.name]
        return queue

    def queues_by_priority(self) -> list[JobQueue]:
        """Higher priority first; among equals, the older queue first."""
        return sorted(self.queues.values(), key=lambda queue: (-queue.priority, queue.created_seq))

    def _environment_order(self, order: Any) -> list[tuple[int, ComputeEnvironment]]:
        if not order:
            raise ClientException("At least 1 compute environment must be provided")
        if len(order) > MAX_QUEUE_ENVIRONMENTS:
            raise ClientException(
                f"A job queue can have at most {MAX_QUEUE_ENVIRONMENTS} compute environments"
            )
        resolved = sorted(
            ((int(item["order"]), self.environment(item["computeEnvironment"])) for item in order),
            key=lambda pair: pair[0],
        )
        if len({position for position, _ in resolved}) != len(resolved):
            raise ClientException("computeEnvironmentOrder orders must be unique")
        if len({ce.name for _, ce in resolved}) != len(resolved):
            raise ClientException("A compute environment can appear only once in computeEnvironmentOrder")
        # All EC2 (EC2/SPOT) or all Fargate (FARGATE/FARGATE_SPOT), never mixed.
        # https://docs.aws.amazon.com/batch/latest/userguide/fargate-job-queues.html
        if len({ce.is_fargate for _, ce in resolved}) > 1:
            raise ClientException("A job queue can't mix EC2 and Fargate compute environments")
        return resolved

    # -- job definitions ---------------------------------------------------------------------------

    def register_definition(self, request: dict[str, Any]) -> JobDefinition:
        name = validation.check_resource_name(request.get("jobDefinitionName"), "Job definition")
        kind = request.get("type")
        if kind not in ("container", MULTINODE):
            raise ClientException("type must be container or multinode")
        if request.get("ecsProperties") or request.get("eksProperties"):
            raise ClientException(
                "ecsProperties and eksProperties aren't supported by the local Batch engine"
            )
        platforms = request.get("platformCapabilities") or ["EC2"]
        if len(platforms) != 1 or platforms[0] not in ("EC2", "FARGATE"):
            raise ClientException("platformCapabilities must be EC2 or FARGATE")
        fargate = platforms[0] == "FARGATE"
        if kind == MULTINODE:
            multinode.check_definition(request, platforms, functools.partial(_check_container, fargate=False))
        elif request.get("nodeProperties"):
            raise ClientException("nodeProperties can only be specified for a multinode job definition")
        else:
            container = request.get("containerProperties")
            if not container:
                raise ClientException("containerProperties must be specified for a container job definition")
            _check_container(container, fargate=fargate)
        parse_retry_strategy(request.get("retryStrategy"))
        validation.check_timeout(request.get("timeout"))
        check_scheduling_priority(request.get("schedulingPriority"), "schedulingPriority")
        parameters = request.get("parameters") or {}
        if not all(isinstance(value, str) for value in parameters.values()):
            raise ClientException("parameters must be a string to string map")
        revisions = self.definitions.setdefault(name, [])
        revision = revisions[-1].revision + 1 if revisions else 1
        stored = copy.deepcopy(request)
        definition = JobDefinition(
            name=name,
            revision=revision,
            arn=f"{self.arn_prefix}job-definition/{name}:{revision}",
            status=ACTIVE,
            request=stored,
            platform=platforms[0],
        )
        revisions.append(definition)
        return definition

    def definition(self, ref: str) -> JobDefinition:
        """`name`, `name:revision`, or an ARN with or without revision; no revision → latest ACTIVE.

        https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/batch/aws.sdk.kotlin.services.batch.model/-submit-job-request/job-definition.html
        """
        name, revision = _split_definition_ref(ref)
        candidates = [d for d in self.definitions.get(name, ()) if d.status == ACTIVE and self._here(ref)]
        if revision is not None:
            candidates = [d for d in candidates if d.revision == revision]
        if not candidates:
            # Observed AWS message.
            raise ClientException(f"JobDefinition name {ref} does not exist or is not in ACTIVE status")
        return candidates[-1]

    def find_definition(self, ref: str) -> JobDefinition | None:
        """Exact revision lookup in any status (for tags and deregistration)."""
        name, revision = _split_definition_ref(ref)
        revisions = self.definitions.get(name, [])
        if revision is None:
            active = [d for d in revisions if d.status == ACTIVE]
            return active[-1] if active else None
        return next((d for d in revisions if d.revision == revision), None)

    def deregister_definition(self, request: dict[str, Any]) -> None:
        ref = request.get("jobDefinition", "")
        definition = self.find_definition(ref)
        if definition is None:
            raise ClientException(f"JobDefinition {ref} does not exist")
        definition.status = INACTIVE

    def describe_definitions(self, request: dict[str, Any]) -> dict[str, Any]:
        items = [d for revisions in self.definitions.values() for d in revisions]
        if request.get("jobDefinitions"):
            refs = [_split_definition_ref(ref) for ref in request["jobDefinitions"]]
            items = [d for d in items if any(d.name == n and r in (None, d.revision) for n, r in refs)]
        if request.get("jobDefinitionName"):
            items = [d for d in items if d.name == request["jobDefinitionName"]]
        if request.get("status"):
            items = [d for d in items if d.status == request["status"]]
        page, token = paginate(
            items, request.get("maxResults"), request.get("nextToken"), default=100, limit=100
        )
        return _with_token({"jobDefinitions": [_definition_detail(d) for d in page]}, token)

    # -- scheduling policies (fairshare.py) --------------------------------------------------------

    def create_policy(self, request: dict[str, Any]) -> SchedulingPolicy:
        name = validation.check_resource_name(request.get("name"), "Scheduling policy")
        _refuse_quota_share(request)
        fairshare = check_fairshare_policy(request.get("fairsharePolicy"))
        if name in self.policies:
            raise ClientException("Object already exists")  # as for the other Batch resources (ND)
        policy = SchedulingPolicy(
            name=name,
            arn=f"{self.arn_prefix}scheduling-policy/{name}",
            fairshare=fairshare,
            tags=dict(request.get("tags") or {}),
        )
        self.policies[name] = policy
        return policy

    def scheduling_policy(self, ref: str) -> SchedulingPolicy:
        """By ARN (the API's only way to name one); a bare name is accepted too (ND)."""
        found = self.find_policy(ref)
        if found is None:
            raise ClientException(f"Scheduling policy {ref} does not exist")
        return found

    def find_policy(self, ref: str) -> SchedulingPolicy | None:
        if not isinstance(ref, str) or not self._here(ref):
            return None
        return self.policies.get(_name_from(ref, "scheduling-policy/"))

    def describe_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        """ARNs that name no policy are left out, not refused (ND)."""
        arns = request.get("arns")
        if not isinstance(arns, list) or not arns:
            raise ClientException("arns must be provided")
        if len(arns) > MAX_DESCRIBE_ARNS:
            raise ClientException(
                f"At most {MAX_DESCRIBE_ARNS} scheduling policy ARNs can be described at once"
            )
        found = [self.find_policy(arn) for arn in arns]
        return {"schedulingPolicies": [policy.detail() for policy in found if policy is not None]}

    def list_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        items = list(self.policies.values())
        page, token = paginate(
            items, request.get("maxResults"), request.get("nextToken"), default=1000, limit=1000
        )
        return _with_token({"schedulingPolicies": [{"arn": policy.arn} for policy in page]}, token)

    def update_policy(self, request: dict[str, Any]) -> SchedulingPolicy:
        """The fairsharePolicy given replaces the whole of the old one (API_UpdateSchedulingPolicy)."""
        policy = self.scheduling_policy(request.get("arn", ""))
        _refuse_quota_share(request)
        if "fairsharePolicy" in request:
            policy.fairshare = check_fairshare_policy(request["fairsharePolicy"])
        return policy

    def delete_policy(self, request: dict[str, Any]) -> SchedulingPolicy:
        """A policy "that's used in any job queues" can't be deleted:
        https://docs.aws.amazon.com/batch/latest/APIReference/API_DeleteSchedulingPolicy.html"""
        policy = self.scheduling_policy(request.get("arn", ""))
        users = sorted(q.name for q in self.queues.values() if q.scheduling_policy_arn == policy.arn)
        if users:
            raise ClientException(
                f"Scheduling policy {policy.name} is used by job queue(s) {', '.join(users)} and can't be deleted"
            )
        del self.policies[policy.name]
        return policy


def _refuse_quota_share(request: dict[str, Any]) -> None:
    # Quota-share policies are for SageMaker service environments, which run nothing locally.
    if request.get("quotaSharePolicy") is not None:
        raise ClientException("quotaSharePolicy isn't supported by the local Batch engine")


def _check_container(container: dict[str, Any], *, fargate: bool) -> None:
    """A definition's containerProperties, or a multinode definition's node-range container."""
    if not container.get("image"):
        raise ClientException("containerProperties.image must be specified")
    validation.resolve_resources(
        container.get("resourceRequirements") or [],
        container.get("vcpus"),
        container.get("memory"),
        fargate=fargate,
    )
    validation.check_environment(container.get("environment"))
    validation.check_command(container.get("command"))
    log_driver = (container.get("logConfiguration") or {}).get("logDriver")
    if log_driver is not None and log_driver not in LOG_DRIVERS:
        raise ClientException(f"logConfiguration.logDriver {log_driver!r} isn't supported")


def _check_compute_resources(resources: Any) -> dict[str, Any]:
    if not resources:
        raise ClientException("computeResources must be specified for a MANAGED compute environment")
    if resources.get("type") not in RESOURCE_TYPES:
        raise ClientException(f"computeResources.type must be one of {', '.join(RESOURCE_TYPES)}")
    max_vcpus = resources.get("maxvCpus")
    if not isinstance(max_vcpus, int) or max_vcpus < 0:
        raise ClientException("computeResources.maxvCpus must be a non-negative integer")
    min_vcpus = resources.get("minvCpus", 0) or 0
    if min_vcpus < 0 or min_vcpus > max_vcpus:
        raise ClientException("computeResources.minvCpus must be between 0 and maxvCpus")
    if resources["type"] in ("EC2", "SPOT"):
        # instanceRole is "required for Amazon EC2 instances types" (not for Fargate)
        # https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html
        if not resources.get("instanceRole"):
            raise ClientException("Error executing request, Exception : Instance role is required.")
        for instance_type in resources.get("instanceTypes") or []:
            if not _known_instance_type(instance_type):
                raise ClientException(f"Instance type {instance_type} does not exist")
    return cast(dict[str, Any], resources)


# Beyond EC2's types and families, `optimal`, `default_x86_64` and `default_arm64`
# (https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html, instanceTypes).
_BATCH_INSTANCE_TYPES = ("optimal", "default_x86_64", "default_arm64")


@functools.cache
def _ec2_instance_types() -> frozenset[str]:
    """EC2's instance types (the InstanceType enum of botocore's EC2 model) and their families."""
    types = botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum
    return frozenset(types) | {name.split(".", 1)[0] for name in types}


def _known_instance_type(name: Any) -> bool:
    return isinstance(name, str) and (name in _BATCH_INSTANCE_TYPES or name in _ec2_instance_types())


def _state(value: Any) -> str:
    if value not in (ENABLED, DISABLED):
        raise ClientException(f"state {value} must be one of ENABLED | DISABLED")
    return cast(str, value)


def _priority(value: Any) -> int:
    if not isinstance(value, int) or not 0 <= value <= 1000:
        raise ClientException("priority must be an integer between 0 and 1000")
    return value


def _name_from(ref: str, kind: str) -> str:
    """A resource name from its name or ARN (``arn:...:<kind><name>``)."""
    if ref.startswith("arn:") and kind in ref:
        return ref.split(kind, 1)[1]
    return ref


def _split_definition_ref(ref: str) -> tuple[str, int | None]:
    text = _name_from(ref, "job-definition/")
    name, sep, revision = text.partition(":")
    if not sep:
        return name, None
    if not revision.isdigit():
        raise ClientException(f"Invalid job definition revision in {ref}")
    return name, int(revision)


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        body["nextToken"] = token
    return body


def _environment_detail(ce: ComputeEnvironment) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "computeEnvironmentName": ce.name,
        "computeEnvironmentArn": ce.arn,
        "ecsClusterArn": ce.ecs_cluster_arn,
        "tags": dict(ce.tags),
        "type": ce.ce_type,
        "state": ce.state,
        "status": VALID,
        "statusReason": "ComputeEnvironment Healthy",
        "containerOrchestrationType": "ECS",
        "uuid": ce.uuid,
    }
    if ce.compute_resources is not None:
        detail["computeResources"] = copy.deepcopy(ce.compute_resources)
    if ce.unmanaged_vcpus is not None:
        detail["unmanagedvCpus"] = ce.unmanaged_vcpus
    if ce.service_role:
        detail["serviceRole"] = ce.service_role
    return detail


def _queue_detail(queue: JobQueue) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "jobQueueName": queue.name,
        "jobQueueArn": queue.arn,
        "state": queue.state,
        "status": VALID,
        "statusReason": "JobQueue Healthy",
        "priority": queue.priority,
        "computeEnvironmentOrder": [
            {"order": order, "computeEnvironment": ce.arn} for order, ce in queue.ce_order
        ],
        "tags": dict(queue.tags),
        "jobQueueType": "ECS_FARGATE" if queue.is_fargate else "ECS",
    }
    if queue.scheduling_policy_arn:
        detail["schedulingPolicyArn"] = queue.scheduling_policy_arn
    if queue.time_limit_actions:
        detail["jobStateTimeLimitActions"] = describe_actions(queue)
    return detail


def _definition_detail(definition: JobDefinition) -> dict[str, Any]:
    request = definition.request
    detail: dict[str, Any] = {
        "jobDefinitionName": definition.name,
        "jobDefinitionArn": definition.arn,
        "revision": definition.revision,
        "status": definition.status,
        "type": request["type"],
        "parameters": dict(request.get("parameters") or {}),
        "tags": dict(request.get("tags") or {}),
        "containerOrchestrationType": "ECS",
    }
    if request["type"] == MULTINODE:
        properties = copy.deepcopy(request["nodeProperties"])
        for item in properties["nodeRangeProperties"]:
            item["container"] = _container_detail(item["container"])
        detail["nodeProperties"] = properties
    else:
        detail["containerProperties"] = _container_detail(request["containerProperties"])
    # Echoed only when given: AWS invents no platformCapabilities (EC2 is the default, not a
    # stored value) and no propagateTags. **ND** at AWS; docs/aws-behaviour.md#batch-job-definitions.
    for key in ("platformCapabilities", "propagateTags", "timeout", "schedulingPriority"):
        if request.get(key) is not None:
            detail[key] = copy.deepcopy(request[key])
    if request.get("retryStrategy") is not None:
        detail["retryStrategy"] = _retry_detail(request["retryStrategy"])
    return detail


# Container members AWS returns as empty lists when a definition gives none: the AWS CLI
# reference's DescribeJobDefinitions example shows `environment`, `mountPoints`, `ulimits` and
# `volumes` as [] (https://docs.aws.amazon.com/cli/latest/reference/batch/describe-job-definitions.html);
# `command`, `resourceRequirements` and `secrets` likewise (docs/aws-behaviour.md#batch-job-definitions).
_EMPTY_LIST_MEMBERS = (
    "command",
    "environment",
    "mountPoints",
    "resourceRequirements",
    "secrets",
    "ulimits",
    "volumes",
)


def _container_detail(container: dict[str, Any]) -> dict[str, Any]:
    detail = copy.deepcopy(container)
    for member in _EMPTY_LIST_MEMBERS:
        if detail.get(member) is None:
            detail[member] = []
    return detail


def _retry_detail(strategy: dict[str, Any]) -> dict[str, Any]:
    """`evaluateOnExit[].action` comes back lower-case whatever case it was given in: the values
    "aren't case sensitive" (https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html)
    and AWS returns them lower-cased, which Terraform's provider normalises to
    (https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/batch/job_definition.go)."""
    detail = copy.deepcopy(strategy)
    for rule in detail.get("evaluateOnExit") or []:
        if isinstance(rule.get("action"), str):
            rule["action"] = rule["action"].lower()
    return detail


def _describe(
    request: dict[str, Any],
    resources: dict[str, Any],
    key: str,
    arn_marker: str,
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """DescribeComputeEnvironments / DescribeJobQueues: optional names or ARNs, then pages of 100."""
    items = list(resources.values())
    wanted = request.get(key)
    if wanted:
        names = {_name_from(ref, arn_marker) for ref in wanted}
        items = [item for item in items if item.name in names]
    page, token = paginate(items, request.get("maxResults"), request.get("nextToken"), default=100, limit=100)
    return _with_token({key: [render(item) for item in page]}, token)
