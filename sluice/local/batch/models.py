"""The engine's state: compute environments, job queues, job definitions, jobs and attempts.

Array jobs can have 10,000 children, so per-job objects use ``__slots__`` and every child
shares its parent's immutable :class:`JobSpec` instead of copying it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from sluice.local.batch.executor import RunningProcess
    from sluice.local.batch.multinode import MultiNodeRun, MultiNodeSpec
    from sluice.local.batch.retry import RetryStrategy
    from sluice.local.batch.timers import TimerHandle

# Job states, in lifecycle order. https://docs.aws.amazon.com/batch/latest/userguide/job_states.html
SUBMITTED = "SUBMITTED"
PENDING = "PENDING"
RUNNABLE = "RUNNABLE"
STARTING = "STARTING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STATUSES = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED)
TERMINAL = frozenset((SUCCEEDED, FAILED))

ENABLED = "ENABLED"
DISABLED = "DISABLED"
VALID = "VALID"

FARGATE_TYPES = frozenset(("FARGATE", "FARGATE_SPOT"))

# One vCPU in the integer unit capacity is counted in, so 0.25 Fargate vCPUs add up exactly.
MILLI = 1000


def now_ms() -> int:
    """Epoch milliseconds, the unit of every Batch timestamp."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ComputeEnvironment:
    name: str
    arn: str
    ce_type: str  # MANAGED | UNMANAGED
    state: str
    compute_resources: dict[str, Any] | None
    service_role: str | None
    unmanaged_vcpus: int | None
    ecs_cluster_arn: str
    uuid: str
    tags: dict[str, str]
    used_milli: int = 0  # vCPUs held by STARTING and RUNNING attempts placed here

    @property
    def resource_type(self) -> str:
        """EC2, SPOT, FARGATE or FARGATE_SPOT; UNMANAGED environments count as EC2."""
        return cast(str, (self.compute_resources or {}).get("type", "EC2"))

    @property
    def is_fargate(self) -> bool:
        return self.resource_type in FARGATE_TYPES

    @property
    def max_milli(self) -> float:
        """What may run here at once: maxvCpus, or unmanagedvCpus, or unbounded (the host bounds it)."""
        if self.compute_resources is not None:
            return int(self.compute_resources["maxvCpus"]) * MILLI
        if self.unmanaged_vcpus:
            return self.unmanaged_vcpus * MILLI
        return float("inf")


@dataclass(slots=True)
class JobQueue:
    name: str
    arn: str
    state: str
    priority: int
    ce_order: list[tuple[int, ComputeEnvironment]]  # (order, environment), ascending order
    scheduling_policy_arn: str | None
    tags: dict[str, str]
    created_seq: int
    # Scheduler state: RUNNABLE jobs in FIFO order. Entries that left RUNNABLE (cancelled) are
    # skipped when they reach the head, which keeps cancellation O(1).
    runnable: deque[Job] = field(default_factory=deque)
    jobs: list[Job] = field(default_factory=list)  # every top-level job submitted here, in order
    # jobStateTimeLimitActions as CreateJobQueue/UpdateJobQueue gave them (timelimits.py).
    time_limit_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def environments(self) -> list[ComputeEnvironment]:
        return [ce for _, ce in self.ce_order]

    @property
    def is_fargate(self) -> bool:
        """Queues are all-Fargate or all-EC2 (registry enforces it)."""
        return any(ce.is_fargate for ce in self.environments)


@dataclass(slots=True)
class JobDefinition:
    name: str
    revision: int
    arn: str
    status: str  # ACTIVE | INACTIVE
    request: dict[str, Any]  # the RegisterJobDefinition request, echoed by DescribeJobDefinitions
    platform: str  # EC2 | FARGATE

    @property
    def container(self) -> dict[str, Any]:
        return self.request.get("containerProperties") or {}


@dataclass(frozen=True, slots=True)
class Resources:
    vcpu_milli: int
    memory_mib: int
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything SubmitJob fixed about a job; shared by an array parent and all its children."""

    name: str
    arn_prefix: str  # "arn:aws:batch:<region>:<account>:job/"
    queue: JobQueue
    definition: JobDefinition
    parameters: dict[str, str]  # definition defaults overridden by SubmitJob parameters
    command: tuple[str, ...] | None  # before Ref:: substitution; None: the image's CMD
    environment: tuple[tuple[str, str], ...]  # definition environment, then overrides
    resources: Resources
    container: dict[str, Any]  # DescribeJobs `container` before per-attempt fields
    retry: RetryStrategy
    retry_request: dict[str, Any] | None
    timeout_seconds: int | None
    depends_on: tuple[dict[str, str], ...]
    array_size: int | None
    tags: dict[str, str]
    propagate_tags: bool
    scheduling_priority: int | None
    share_identifier: str | None
    overrides_too_long: bool  # AWS fails such jobs after submission; see submission.py
    # Multi-node parallel jobs: their nodes (multinode.py); their `resources` are all nodes' together.
    multinode: MultiNodeSpec | None = None


class Attempt:
    """One run of a job on a (local) container instance."""

    __slots__ = (
        "number",
        "ce",
        "task_id",
        "instance_id",
        "log_group",
        "log_stream",
        "started_at",
        "stopped_at",
        "status_reason",
        "exit_code",
        "reason",
        "process",
        "stop",
        "timer",
        "early_exit",
        "running",
        "exited",
    )

    def __init__(self, number: int, ce: ComputeEnvironment, task_id: str, instance_id: str) -> None:
        self.number = number
        self.ce = ce
        self.task_id = task_id
        self.instance_id = instance_id
        self.log_group: str | None = None
        self.log_stream: str | None = None
        self.started_at: int | None = None
        self.stopped_at: int | None = None
        self.status_reason: str | None = None
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.process: RunningProcess | None = None
        # Why the engine is stopping this attempt: (kind, reason) with kind one of
        # TERMINATE, TIMEOUT, RECLAIM. The first reason wins.
        self.stop: tuple[str, str] | None = None
        self.timer: TimerHandle | None = None
        self.early_exit: int | None = None  # an exit reported before the attempt was marked RUNNING
        self.running = False
        self.exited = False  # the process ended; the job turns terminal once its output was sent


class Job:
    """A job, an array parent, an array child (``<parent id>:<index>``), or a multi-node parallel
    job's node (``<job id>#<node index>``)."""

    __slots__ = (
        "job_id",
        "spec",
        "parent",
        "index",
        "children",
        "status",
        "status_reason",
        "created_at",
        "started_at",
        "stopped_at",
        "attempts",
        "waiting",
        "dependents",
        "dependency_failed",
        "cancel_reason",
        "cancel_kind",
        "is_cancelled",
        "is_terminated",
        "summary",
        "summary_updated_at",
        "node_index",
        "multinode",
    )

    def __init__(
        self, job_id: str, spec: JobSpec, created_at: int, parent: Job | None = None, index: int | None = None
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.parent = parent
        self.index = index
        self.children: list[Job] | None = None
        self.status = SUBMITTED
        self.status_reason: str | None = None
        self.created_at = created_at
        self.started_at: int | None = None
        self.stopped_at: int | None = None
        self.attempts: list[Attempt] = []
        self.waiting = 0  # unfinished dependencies (an array child also counts its parent's gate)
        self.dependents: list[Job] | None = None  # jobs waiting for this one to finish
        self.dependency_failed = False
        # A cancel or terminate that waits for PENDING dependencies to finish (CancelJob docs).
        self.cancel_reason: str | None = None
        self.cancel_kind: str | None = None  # "cancel" | "terminate"
        self.is_cancelled = False
        self.is_terminated = False
        self.summary: dict[str, int] | None = None  # array parents: children per status
        self.summary_updated_at: int | None = None
        # Multi-node parallel jobs (multinode.py): a node job (``<job id>#<index>``, `parent` its job)
        # has its node index; the job itself has its nodes.
        self.node_index: int | None = None
        self.multinode: MultiNodeRun | None = None

    @property
    def arn(self) -> str:
        return self.spec.arn_prefix + self.job_id

    @property
    def is_array_parent(self) -> bool:
        return self.spec.array_size is not None and self.parent is None

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def add_dependent(self, job: Job) -> None:
        if self.dependents is None:
            self.dependents = [job]
        else:
            self.dependents.append(job)
