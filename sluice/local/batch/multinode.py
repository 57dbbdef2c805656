"""Multi-node parallel (MNP) jobs: node ranges, node overrides, node jobs and gang placement.

As AWS documents them:
- https://docs.aws.amazon.com/batch/latest/userguide/multi-node-parallel-jobs.html: the job is
  submitted once; its nodes are addressed as ``<job id>#<node index>``; the main node is
  launched first, the child nodes once it runs; the job finishes when the main node exits,
  and the other nodes are then stopped; the job's SUCCEEDED/FAILED is the main node's; only a
  main-node failure makes a retry, and every retry is a new attempt of every node.
- https://docs.aws.amazon.com/batch/latest/userguide/job-lifecycle.html: the timeout
  (attemptDurationSeconds) applies to the whole job, not to the nodes; a node moves to
  SUCCEEDED or FAILED by its own exit code; a dead child node changes nothing else.
- https://docs.aws.amazon.com/batch/latest/userguide/mnp-env-vars.html: the AWS_BATCH_JOB_*
  node variables; the main node's private IPv4 address only in child nodes.
- https://docs.aws.amazon.com/batch/latest/APIReference/API_NodeRangeProperty.html,
  API_NodeOverrides.html, API_NodePropertyOverride.html: ranges and overrides.
- https://docs.aws.amazon.com/batch/latest/userguide/mnp-node-groups.html: at most five node
  groups, at most 1,000 nodes, one instance type for every group.
- https://docs.aws.amazon.com/batch/latest/userguide/mnp-ce.html: not on UNMANAGED compute
  environments, nor on Spot; https://docs.aws.amazon.com/batch/latest/userguide/create-multi-node-job-def.html:
  not on Fargate.

Locally every node is a process on this host, so the main node's private IPv4 address is
127.0.0.1 (docs/aws-behaviour.md#batch-multi-node-parallel-jobs). The whole job holds the
capacity of all its nodes from placement until its last node stopped (gang scheduling); the
scheduler places the job itself, and this module turns each job attempt into node attempts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.local.batch.errors import ClientException
from sluice.local.batch.models import (
    FAILED,
    RUNNING,
    STARTING,
    SUCCEEDED,
    Attempt,
    ComputeEnvironment,
    Job,
    now_ms,
)

if TYPE_CHECKING:
    from sluice.local.batch.models import JobSpec
    from sluice.local.batch.scheduler import Scheduler

MULTINODE = "multinode"
MAX_NODES = 1000  # "You can have up to 1,000 nodes in a single job" (mnp-node-groups.html)
MAX_NODE_GROUPS = 5  # "up to five distinct node groups for each job" (mnp-node-groups.html)
MAIN_NODE_ADDRESS = "127.0.0.1"  # every node runs on this host
# Why the engine stops the other nodes when the main node exits. ND: AWS documents only that
# they are stopped; worded like AWS's reasons.
MAIN_NODE_EXITED = "Main node exited"
_TERMINATE = "TERMINATE"  # scheduler.TERMINATE: the engine stops the attempt (scheduler imports this module)
# Observed AWS message (https://github.com/aws/aws-parallelcluster/pull/964).
NON_MATCHING_TARGETS = "NodeOverride targets should match job definition. Non matching targets - "
_RANGE = re.compile(r"(\d*):(\d*)")


@dataclass(frozen=True, slots=True)
class NodeRange:
    """A targetNodes range as written: ``a:b``, ``:b`` (from 0), ``a:`` (to the last node), ``:``."""

    start: int
    end: int | None  # None: open upper boundary
    text: str

    def last(self, num_nodes: int) -> int:
        return num_nodes - 1 if self.end is None else self.end

    def contains(self, index: int, num_nodes: int) -> bool:
        return self.start <= index <= self.last(num_nodes)


def parse_range(value: Any) -> NodeRange:
    match = _RANGE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ClientException(f"targetNodes {value!r} must be a node range such as 0:3, :3 or 3:")
    start = int(match.group(1)) if match.group(1) else 0
    end = int(match.group(2)) if match.group(2) else None
    if end is not None and end < start:
        raise ClientException(f"targetNodes {value} ends before it starts")
    return NodeRange(start, end, value)


def check_ranges(ranges: list[NodeRange], num_nodes: int) -> None:
    """Ranges lie within the job's nodes, cover every node, and overlap only by nesting.

    "Your accumulative node ranges must account for all nodes (0:n). You can nest node ranges
    (for example, 0:10 and 4:5). In this case, the 4:5 range properties override the 0:10
    properties" (API_NodeRangeProperty). Partly overlapping or identical ranges would leave a
    node's properties ambiguous, so they are refused (ND).
    """
    spans = []
    for node_range in ranges:
        first, last = node_range.start, node_range.last(num_nodes)
        if first >= num_nodes or last >= num_nodes:
            raise ClientException(
                f"targetNodes {node_range.text} is outside the job's nodes 0:{num_nodes - 1}"
            )
        spans.append((first, last, node_range.text))
    for position, (first, last, text) in enumerate(spans):
        for other_first, other_last, other_text in spans[position + 1 :]:
            if (first, last) == (other_first, other_last):
                raise ClientException(f"targetNodes {text} and {other_text} name the same nodes")
            overlap = first <= other_last and other_first <= last
            nested = (first <= other_first and other_last <= last) or (
                other_first <= first and last <= other_last
            )
            if overlap and not nested:
                raise ClientException(f"targetNodes {text} and {other_text} overlap without nesting")
    covered = bytearray(num_nodes)
    for first, last, _ in spans:
        covered[first : last + 1] = b"\x01" * (last - first + 1)
    if not all(covered):
        missing = covered.index(0)
        raise ClientException(
            f"Node ranges must account for all nodes (0:{num_nodes - 1}); node {missing} isn't"
        )


def group_of(ranges: list[NodeRange], index: int, num_nodes: int) -> int:
    """The range that gives a node its properties: the most specific one containing it."""
    containing = [position for position, item in enumerate(ranges) if item.contains(index, num_nodes)]
    return min(containing, key=lambda position: ranges[position].last(num_nodes) - ranges[position].start)


def _count(value: Any, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ClientException(f"{what} must be an integer between {low} and {high}, got {value!r}")
    return value


# -- RegisterJobDefinition ---------------------------------------------------------------------------


def check_definition(
    request: dict[str, Any], platforms: list[str], check_container: Callable[[dict[str, Any]], None]
) -> None:
    """A `multinode` definition as RegisterJobDefinition accepts it (API_NodeProperties)."""
    if "FARGATE" in platforms:
        # "If the job is run on Fargate resources, then multinode isn't supported" (RegisterJobDefinition.type).
        raise ClientException("Multi-node parallel jobs aren't supported on Fargate resources")
    if request.get("containerProperties"):
        # "When nodeProperties is used in the job definition, it can't be used in addition to
        # containerProperties, ecsProperties, or eksProperties" (API_JobDefinition).
        raise ClientException("containerProperties can't be specified for a multinode job definition")
    properties = request.get("nodeProperties")
    if not isinstance(properties, dict) or not properties:
        raise ClientException("nodeProperties must be specified for a multinode job definition")
    num_nodes = _count(properties.get("numNodes"), "nodeProperties.numNodes", 1, MAX_NODES)
    main_node = _count(properties.get("mainNode"), "nodeProperties.mainNode", 0, MAX_NODES)
    if main_node >= num_nodes:
        raise ClientException("nodeProperties.mainNode must be fewer than the number of nodes")
    items = properties.get("nodeRangeProperties")
    if not isinstance(items, list) or not items:
        raise ClientException("nodeProperties.nodeRangeProperties must contain at least one node range")
    if len(items) > MAX_NODE_GROUPS:
        raise ClientException(f"A multi-node parallel job can have at most {MAX_NODE_GROUPS} node ranges")
    instance_types: set[str] = set()
    ranges = []
    for item in items:
        ranges.append(parse_range(item.get("targetNodes")))
        if item.get("ecsProperties") or item.get("eksProperties"):
            raise ClientException(
                "ecsProperties and eksProperties aren't supported by the local Batch engine"
            )
        container = item.get("container")
        if not container:
            raise ClientException("nodeRangeProperties.container must be specified")
        check_container(container)
        listed = item.get("instanceTypes") or []
        if len(listed) > 1:
            # "this list object is currently limited to one element" (API_NodeRangeProperty).
            raise ClientException("nodeRangeProperties.instanceTypes can contain only one instance type")
        instance_types.update(listed)
        if container.get("instanceType"):
            instance_types.add(container["instanceType"])
    if len(instance_types) > 1:
        # "Currently all node groups in a multi-node parallel job must use the same instance type."
        raise ClientException("All node groups of a multi-node parallel job must use the same instance type")
    check_ranges(ranges, num_nodes)


# -- SubmitJob ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeGroup:
    target: NodeRange
    container: dict[str, Any]  # the definition's container for the range
    overrides: dict[str, Any]  # the range's containerOverrides ({} without any)
    instance_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodePlan:
    """A definition's nodes after SubmitJob's nodeOverrides."""

    num_nodes: int
    main_node: int
    groups: tuple[NodeGroup, ...]
    group_of_node: tuple[int, ...]  # node index -> position in groups


def plan_nodes(properties: dict[str, Any], node_overrides: dict[str, Any] | None) -> NodePlan:
    overrides = node_overrides or {}
    ranges = [parse_range(item["targetNodes"]) for item in properties["nodeRangeProperties"]]
    num_nodes = int(properties["numNodes"])
    main_node = int(properties["mainNode"])
    if overrides.get("numNodes") is not None:
        num_nodes = _count(overrides["numNodes"], "nodeOverrides.numNodes", 1, MAX_NODES)
        # The conditions of API_NodeOverrides.numNodes.
        if not any(item.end is None for item in ranges):
            raise ClientException(
                "nodeOverrides.numNodes needs a node range with an open upper boundary (: or n:) in the job definition"
            )
        if any(item.start >= num_nodes for item in ranges):
            raise ClientException(
                "The lower boundary of every node range must be fewer than nodeOverrides.numNodes"
            )
        if main_node >= num_nodes:
            raise ClientException("The main node index must be fewer than nodeOverrides.numNodes")
    check_ranges(ranges, num_nodes)
    by_range: dict[int, dict[str, Any]] = {}
    instance_overrides: dict[int, tuple[str, ...]] = {}
    for item in overrides.get("nodePropertyOverrides") or []:
        target = parse_range(item.get("targetNodes"))
        position = next(
            (i for i, known in enumerate(ranges) if (known.start, known.end) == (target.start, target.end)),
            None,
        )
        if position is None:
            raise ClientException(NON_MATCHING_TARGETS + target.text)
        if position in by_range:
            raise ClientException(f"targetNodes {target.text} is overridden more than once")
        if item.get("ecsPropertiesOverride") or item.get("eksPropertiesOverride"):
            raise ClientException(
                "ecsPropertiesOverride and eksPropertiesOverride aren't supported by the local Batch engine"
            )
        by_range[position] = dict(item.get("containerOverrides") or {})
        if item.get("instanceTypes"):
            instance_overrides[position] = tuple(item["instanceTypes"])
    groups = tuple(
        NodeGroup(
            target=ranges[position],
            container=item["container"],
            overrides=by_range.get(position, {}),
            instance_types=instance_overrides.get(position, tuple(item.get("instanceTypes") or ())),
        )
        for position, item in enumerate(properties["nodeRangeProperties"])
    )
    group_of_node = tuple(group_of(ranges, index, num_nodes) for index in range(num_nodes))
    return NodePlan(num_nodes, main_node, groups, group_of_node)


@dataclass(frozen=True, slots=True)
class MultiNodeSpec:
    """What SubmitJob fixed about an MNP job's nodes (on the job's JobSpec)."""

    num_nodes: int
    main_node: int
    node_specs: tuple[JobSpec, ...]  # one per node index (nodes of a group share theirs)
    properties: dict[str, Any]  # DescribeJobs nodeProperties (containers after overrides)


def can_host(ce: ComputeEnvironment) -> bool:
    """MNP jobs run neither on UNMANAGED nor on Spot compute environments (mnp-ce.html); a job
    queue never mixes Fargate in, and MNP definitions can't be Fargate."""
    return ce.ce_type == "MANAGED" and ce.resource_type == "EC2"


# -- nodes at run time ---------------------------------------------------------------------------------


class MultiNodeRun:
    """The nodes of an MNP job (its ``multinode`` slot) and how its current attempt is going."""

    __slots__ = ("nodes", "main_attempt", "main_launch_error")

    def __init__(self, num_nodes: int) -> None:
        self.nodes: list[Job | None] = [None] * num_nodes  # created when first launched, as on AWS
        self.main_attempt: Attempt | None = None  # the main node's attempt once it ended
        self.main_launch_error: str | None = None


def spec_of(job: Job) -> MultiNodeSpec:
    spec = job.spec.multinode
    assert spec is not None, f"{job.job_id} isn't a multi-node parallel job"
    return spec


def find_node(parent: Job | None, index: str) -> Job | None:
    """``<job id>#<node index>``: a node job, once it was created."""
    if parent is None or parent.multinode is None or not index.isdigit():
        return None
    nodes = parent.multinode.nodes
    position = int(index)
    return nodes[position] if position < len(nodes) else None


def nodes_of(parent: Job | None) -> list[Job]:
    """ListJobs multiNodeJobId: the job's nodes, in index order."""
    if parent is None or parent.multinode is None:
        return []
    return [node for node in parent.multinode.nodes if node is not None]


def is_main(node: Job) -> bool:
    assert node.parent is not None
    return node.node_index == spec_of(node.parent).main_node


def node_environment(node: Job) -> dict[str, str]:
    """The MNP variables of a node's container (mnp-env-vars.html); AWS_BATCH_JOB_ID is the node's
    own ``<job id>#<node index>``, as AWS sets it (aws-parallelcluster strips the node number from it:
    https://github.com/aws/aws-parallelcluster/pull/716)."""
    assert node.parent is not None and node.node_index is not None
    spec = spec_of(node.parent)
    env = {
        "AWS_BATCH_JOB_NODE_INDEX": str(node.node_index),
        "AWS_BATCH_JOB_NUM_NODES": str(spec.num_nodes),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(spec.main_node),
    }
    if node.node_index != spec.main_node:  # "This variable isn't present on the main node."
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = MAIN_NODE_ADDRESS
    return env


class MultiNodeScheduling:
    """Turns MNP job attempts into node attempts (every method: the caller holds the scheduler's lock).

    The scheduler places the job itself, holding the capacity of all its nodes, and starts a job
    attempt; the main node's attempt is launched in its place. When the main node runs, the job
    runs and the child nodes are launched (on the scheduler's next pass). When the main node has
    ended and every other node has stopped, the job attempt ends the way the main node's did, so
    the scheduler's own rules decide SUCCEEDED, a retry, or FAILED.
    """

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._launches: list[tuple[Job, Attempt]] = []

    def take_launches(self) -> list[tuple[Job, Attempt]]:
        """Child-node attempts started since the scheduler's last pass, for the engine to launch."""
        launches, self._launches = self._launches, []
        return launches

    def main_launch(self, job: Job, attempt: Attempt) -> tuple[Job, Attempt]:
        """A new attempt of an MNP job: its main node's attempt is what the engine launches.

        The main node's attempt is the job attempt's task (same task ID), so the job's attempts
        show the main node's task and log stream, as AWS shows them.
        """
        spec = spec_of(job)
        if job.multinode is None:
            job.multinode = MultiNodeRun(spec.num_nodes)
        job.multinode.main_attempt = None
        job.multinode.main_launch_error = None
        main = self._node(job, spec.main_node)
        return main, self._begin(main, attempt, attempt.task_id)

    def node_running(self, node: Job, attempt: Attempt) -> None:
        """A node reached RUNNING; the main node's RUNNING makes the job RUNNING and starts the children."""
        parent = node.parent
        if parent is None or not is_main(node):
            return
        stopping = attempt.stop is not None  # terminated while STARTING: no children to start
        job_attempt = parent.current_attempt
        assert job_attempt is not None
        job_attempt.running = True
        job_attempt.started_at = attempt.started_at
        job_attempt.log_stream = attempt.log_stream
        parent.started_at = attempt.started_at
        self._scheduler._set_status(parent, RUNNING)
        spec = spec_of(parent)
        for index in range(spec.num_nodes):
            if index != spec.main_node and not stopping:
                child = self._node(parent, index)
                self._launches.append((child, self._begin(child, job_attempt, uuid.uuid4().hex)))
        self._scheduler.kick()

    def node_finished(self, node: Job, attempt: Attempt, launch_error: str | None) -> None:
        """A node's attempt ended (recorded by the scheduler): the node's own outcome, then the job's."""
        parent = node.parent
        assert parent is not None and parent.multinode is not None
        node.status_reason = attempt.status_reason
        node.stopped_at = attempt.stopped_at
        # "the nodes move to SUCCEEDED or FAILED, depending on their exit code" (job-lifecycle.html).
        self._scheduler._set_status(node, SUCCEEDED if attempt.exit_code == 0 else FAILED)
        run = parent.multinode
        if is_main(node):
            run.main_attempt = attempt
            run.main_launch_error = launch_error
            # "If the main node exits, the job is considered finished, and all of the child nodes are stopped."
            for other in run.nodes:
                other_attempt = other.current_attempt if other is not None else None
                if other is not node and other_attempt is not None and other_attempt.stopped_at is None:
                    self._scheduler._stop_attempt(other_attempt, _TERMINATE, MAIN_NODE_EXITED)
        self._end_if_done(parent)

    def terminate(self, job: Job, reason: str) -> None:
        """TerminateJob of a STARTING or RUNNING MNP job: every node is stopped."""
        if job.multinode is None:
            return
        for node in job.multinode.nodes:
            attempt = node.current_attempt if node is not None else None
            if attempt is not None and attempt.stopped_at is None:
                self._scheduler._stop_attempt(attempt, _TERMINATE, reason)

    def _node(self, parent: Job, index: int) -> Job:
        run = parent.multinode
        assert run is not None
        node = run.nodes[index]
        if node is None:
            node = Job(f"{parent.job_id}#{index}", spec_of(parent).node_specs[index], now_ms(), parent)
            node.node_index = index
            run.nodes[index] = node
        return node

    def _begin(self, node: Job, job_attempt: Attempt, task_id: str) -> Attempt:
        """The node's part of a job attempt ("each new attempt ... updates its child nodes' attempts")."""
        attempt = Attempt(job_attempt.number, job_attempt.ce, task_id, f"i-{uuid.uuid4().hex[:17]}")
        node.attempts.append(attempt)
        node.status_reason = None
        node.started_at = None
        node.stopped_at = None
        self._scheduler._set_status(node, STARTING)
        return attempt

    def _end_if_done(self, parent: Job) -> None:
        run = parent.multinode
        job_attempt = parent.current_attempt
        assert run is not None and job_attempt is not None
        main_attempt = run.main_attempt
        if main_attempt is None:
            return
        for node in run.nodes:
            attempt = node.current_attempt if node is not None else None
            if attempt is not None and attempt.number == job_attempt.number and attempt.stopped_at is None:
                return  # still stopping; the job holds its nodes' capacity until then
        job_attempt.stop = main_attempt.stop
        self._scheduler.attempt_finished(
            parent, job_attempt, main_attempt.exit_code, launch_error=run.main_launch_error
        )
        # The job's times are its main node's (multi-node-parallel-jobs.html).
        job_attempt.stopped_at = main_attempt.stopped_at
        if parent.stopped_at is not None:
            parent.stopped_at = main_attempt.stopped_at
