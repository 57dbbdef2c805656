"""Job states, dependencies, array jobs and placement on compute-environment capacity.

Everything here runs under one condition variable (``Scheduler.cond``), held by the caller.
The engine's scheduler thread sleeps on it until something changes (a submission, a finished
attempt, a queue or environment update); there is no polling.

Lifecycle (https://docs.aws.amazon.com/batch/latest/userguide/job_states.html):
SUBMITTED → PENDING (unfinished dependencies) or RUNNABLE → STARTING (placed on a compute
environment) → RUNNING → SUCCEEDED | FAILED; a failed attempt with attempts left goes back to
RUNNABLE. Array parents are only ever SUBMITTED, PENDING, SUCCEEDED or FAILED
(https://docs.aws.amazon.com/batch/latest/userguide/array_jobs.html).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from sluice.local.batch.errors import ClientException
from sluice.local.batch.fairshare import FairShare
from sluice.local.batch.models import (
    ENABLED,
    FAILED,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    STATUSES,
    SUBMITTED,
    SUCCEEDED,
    TERMINAL,
    Attempt,
    ComputeEnvironment,
    Job,
    JobQueue,
    now_ms,
)
from sluice.local.batch.multinode import MultiNodeScheduling, can_host, find_node
from sluice.local.batch.registry import Registries
from sluice.local.batch.render import job_detail
from sluice.local.batch.statechange import EventDispatcher
from sluice.local.batch.submission import N_TO_N, OVERRIDES_TOO_LONG, SEQUENTIAL, Dependency, build_submission
from sluice.local.batch.timelimits import BLOCKED_DETAIL_TYPE, CallLater, TimeLimits

# Status reasons. The first three are AWS's own strings; the others are ND and chosen to read
# like AWS's (docs/aws-behaviour.md#batch-job-states).
ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
DEPENDENCY_FAILED = "Dependent Job failed"
TASK_FAILED_TO_START = "Task failed to start"
ARRAY_CHILD_FAILED = "Array Child Job failed"
MAX_CONTAINER_REASON = 255  # AttemptContainerDetail.reason

# Why the engine stops a running attempt.
TERMINATE = "TERMINATE"
TIMEOUT = "TIMEOUT"
RECLAIM = "RECLAIM"

CANCEL = "cancel"
TERMINATE_JOB = "terminate"

Work = deque[tuple[Job, str, str | None]]


class Scheduler:
    def __init__(
        self,
        registry: Registries,
        events: EventDispatcher,
        *,
        max_vcpu_milli: int,
        max_memory_mib: int,
        stop_attempt: Callable[[Attempt, str, str], None],
        call_later: CallLater,
    ) -> None:
        self.cond = threading.Condition()
        self.registry = registry
        self.events = events
        self.jobs: dict[str, Job] = {}  # top-level jobs; array children are found through their parent
        self.running: dict[Job, Attempt] = {}  # jobs in RUNNING, in the order they started
        self.dirty = False
        self._intake: list[tuple[Job, tuple[Dependency, ...]]] = []
        self._queue_order: list[JobQueue] | None = None
        self._max_vcpu_milli = max_vcpu_milli
        self._max_memory = max_memory_mib
        self._used_vcpu_milli = 0
        self._used_memory = 0
        self._stop_attempt = stop_attempt
        self.multinode = MultiNodeScheduling(self)  # multi-node parallel jobs' nodes (multinode.py)
        # Placement order and usage of fair-share queues (fairshare.py); FIFO queues use `runnable`.
        self.fair_share = FairShare(registry.policy_of)
        # Jobs stuck at the head of a queue, and the queues' jobStateTimeLimitActions.
        self.time_limits = TimeLimits(call_later, self._publish_blocked, self._time_limit_cancel, self.cond)

    # -- requests (caller holds cond) ---------------------------------------------------------------

    def submit(self, request: dict[str, Any]) -> Job:
        submission = build_submission(request, self.registry.current(), self.find_regional_job)
        self.fair_share.admit(submission.spec.queue, submission.spec.share_identifier)
        job = Job(str(uuid.uuid4()), submission.spec, now_ms())
        self.fair_share.submitted(job)
        self.jobs[job.job_id] = job
        submission.spec.queue.jobs.append(job)
        self._intake.append((job, submission.dependencies))
        self.kick()
        return job

    def find_job(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is not None:
            return job
        parent_id, sep, index = job_id.rpartition("#")
        if sep:  # a multi-node parallel job's node
            return find_node(self.jobs.get(parent_id), index)
        parent_id, sep, index = job_id.rpartition(":")
        parent = self.jobs.get(parent_id) if sep else None
        if parent is None or parent.children is None or not index.isdigit():
            return None
        position = int(index)
        return parent.children[position] if position < len(parent.children) else None

    def find_regional_job(self, job_id: str) -> Job | None:
        """A job of the region the request being served was signed for (jobs are regional)."""
        job = self.find_job(job_id)
        if job is None or not job.arn.startswith(self.registry.current().arn_prefix):
            return None
        return job

    def require_job(self, job_id: str) -> Job:
        job = self.find_regional_job(job_id)
        if job is None:
            raise ClientException(f"Job {job_id} not found")
        return job

    def cancel(self, job: Job, reason: str, kind: str = CANCEL) -> None:
        """CancelJob / TerminateJob semantics.

        CancelJob: SUBMITTED, PENDING and RUNNABLE jobs fail; "A PENDING job is canceled after all
        dependency jobs are completed"; STARTING and RUNNING jobs are left alone; an array parent
        cancels its children (https://docs.aws.amazon.com/batch/latest/APIReference/API_CancelJob.html).
        TerminateJob also stops STARTING and RUNNING jobs
        (https://docs.aws.amazon.com/batch/latest/APIReference/API_TerminateJob.html).
        """
        if job.parent is not None and job.node_index is not None:
            job = job.parent  # a node is cancelled with its job (ND: docs/aws-behaviour.md)
        if job.status in TERMINAL:
            return
        if job.is_array_parent:
            job.cancel_reason = job.cancel_reason or reason
            job.cancel_kind = job.cancel_kind or kind
            if job.children is None:  # not through intake yet
                self._finish(deque([(job, FAILED, self._cancelled(job))]))
            else:
                for child in job.children:
                    self.cancel(child, reason, kind)
            return
        if job.status in (STARTING, RUNNING):
            if kind == TERMINATE_JOB:
                job.cancel_reason, job.cancel_kind = reason, kind
                if job.spec.multinode is not None:
                    self.multinode.terminate(job, reason)
                    return
                attempt = job.current_attempt
                assert attempt is not None
                self._stop_attempt(attempt, TERMINATE, reason)
            return
        job.cancel_reason, job.cancel_kind = reason, kind
        if job.status == PENDING and job.waiting > 0:
            return  # takes effect when its dependencies complete (_ready / _dependency_failed)
        self._finish(deque([(job, FAILED, self._cancelled(job))]))

    def queue_deleted(self, queue: JobQueue) -> None:
        """DeleteJobQueue: "All jobs in the queue are eventually terminated" (API_DeleteJobQueue)."""
        for job in queue.jobs:
            self.cancel(job, "Job queue deleted", TERMINATE_JOB)
        self.fair_share.forget(queue)
        self.resources_changed()

    def resources_changed(self) -> None:
        """A queue or compute environment was created, updated or deleted."""
        self._queue_order = None
        self.kick()

    def _publish_blocked(self, job: Job) -> None:
        """One `Batch Job Queue Blocked` event: resources [job, queue], detail a JobDetail.
        https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html"""
        if self.events.enabled:
            self.events.publish(job.arn, job_detail(job), BLOCKED_DETAIL_TYPE, [job.arn, job.spec.queue.arn])

    def _time_limit_cancel(self, job: Job, reason: str) -> None:
        """A jobStateTimeLimitAction (CANCEL) fired; the queue behind the job may move on."""
        self.cancel(job, reason, CANCEL)
        self.kick()

    def kick(self) -> None:
        self.dirty = True
        self.cond.notify_all()

    # -- the scheduler thread (caller holds cond) ---------------------------------------------------

    def next_launches(self) -> list[tuple[Job, Attempt]]:
        """Take in new submissions, then place RUNNABLE jobs where they fit, in priority order.

        Queues are visited from the highest priority down; within a queue jobs start in FIFO
        order and a head job that doesn't fit holds back the jobs behind it in that queue (the
        queue is FIFO), but not lower-priority queues, which may still use capacity it can't
        (https://docs.aws.amazon.com/batch/latest/APIReference/API_JobQueueDetail.html#Batch-Type-JobQueueDetail-priority).
        """
        self.dirty = False
        intake, self._intake = self._intake, []
        for job, dependencies in intake:
            self._take_in(job, dependencies)
        if self._queue_order is None:
            self._queue_order = self.registry.queues_by_priority()
        launches = self.multinode.take_launches()  # child nodes of multi-node jobs whose main node runs
        for queue in self._queue_order:
            order = self.fair_share.order(queue)  # a fair-share queue picks by share (fairshare.py)
            runnable = queue.runnable if order is None else order
            while runnable:
                job = runnable[0]
                if job.status != RUNNABLE:  # cancelled while waiting
                    runnable.popleft()
                    self.time_limits.release(job)
                    continue
                ce = self._place(queue, job)
                if ce is None:
                    # Stuck for good (no environment of the queue can ever fit it)? timelimits.py
                    self.time_limits.head_waits(queue, job)
                    break
                runnable.popleft()
                self.time_limits.release(job)
                attempt = self._start(job, ce)
                launches.append(
                    self.multinode.main_launch(job, attempt) if job.spec.multinode else (job, attempt)
                )
        return launches

    def attempt_running(self, job: Job, attempt: Attempt, log_stream: str | None) -> None:
        """STARTING → RUNNING; the log stream name is known from here on (API_AttemptTaskContainerDetails)."""
        stamp = now_ms()
        attempt.running = True
        attempt.started_at = stamp
        attempt.log_stream = log_stream
        job.started_at = stamp
        self.running[job] = attempt
        self._set_status(job, RUNNING)
        if job.node_index is not None:
            self.multinode.node_running(job, attempt)

    def attempt_finished(
        self, job: Job, attempt: Attempt, exit_code: int | None, launch_error: str | None = None
    ) -> None:
        """Record how an attempt ended and decide: SUCCEEDED, retry (RUNNABLE) or FAILED.

        `launch_error` is the container reason of an attempt that never started, written the way
        ECS writes them ("CannotPullContainerError: ...", "CannotStartContainerError: ...").
        """
        attempt.stopped_at = now_ms()
        attempt.process = None
        if job.node_index is None:  # a multi-node job holds all its nodes' capacity (multinode.py)
            self._release(job, attempt)
        self.running.pop(job, None)
        stop_kind, stop_reason = attempt.stop or (None, None)
        if launch_error is not None:
            attempt.status_reason = TASK_FAILED_TO_START
            attempt.reason = launch_error[:MAX_CONTAINER_REASON]
        elif stop_kind == RECLAIM:
            # The host is gone, so there is no exit code to report (ND; EC2 Spot behaviour).
            attempt.status_reason = stop_reason
            attempt.reason = stop_reason
        else:
            attempt.exit_code = exit_code
            if stop_kind == TIMEOUT:
                attempt.status_reason = TIMEOUT_REASON
            elif stop_kind == TERMINATE:
                attempt.status_reason = stop_reason
            else:
                attempt.status_reason = ESSENTIAL_CONTAINER_EXITED
        self.kick()
        if job.node_index is not None:
            self.multinode.node_finished(job, attempt, launch_error)
            return
        if job.cancel_kind == TERMINATE_JOB:
            self._finish(deque([(job, FAILED, self._cancelled(job))]))  # terminated jobs aren't retried
            return
        if stop_kind is None and launch_error is None and exit_code == 0:
            self._finish(deque([(job, SUCCEEDED, ESSENTIAL_CONTAINER_EXITED)]))
            return
        # "If a job is terminated for exceeding the timeout duration, it isn't retried."
        # https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html
        retry = stop_kind != TIMEOUT and job.spec.retry.should_retry(
            attempts_made=len(job.attempts),
            status_reason=attempt.status_reason,
            reason=attempt.reason,
            exit_code=attempt.exit_code,
        )
        if retry:
            job.status_reason = attempt.status_reason
            self._make_runnable(job)
        else:
            self._finish(deque([(job, FAILED, attempt.status_reason)]))

    # -- transitions --------------------------------------------------------------------------------

    def _take_in(self, job: Job, dependencies: tuple[Dependency, ...]) -> None:
        if job.status != SUBMITTED:  # cancelled before the scheduler saw it
            return
        if job.spec.overrides_too_long:
            self._finish(deque([(job, FAILED, OVERRIDES_TOO_LONG)]))
            return
        failed = False
        for dependency in dependencies:
            if dependency.kind is None:
                failed |= self._link(dependency.job, job)
        if job.is_array_parent:
            self._take_in_array(job, dependencies, failed)
        elif failed:
            job.dependency_failed = True
            self._finish(deque([(job, FAILED, DEPENDENCY_FAILED)]))
        elif job.waiting:
            self._set_status(job, PENDING)
        else:
            self._make_runnable(job)

    def _take_in_array(self, parent: Job, dependencies: tuple[Dependency, ...], parent_failed: bool) -> None:
        size = parent.spec.array_size
        assert size is not None
        stamp = parent.created_at
        children = [
            Job(f"{parent.job_id}:{index}", parent.spec, stamp, parent, index) for index in range(size)
        ]
        parent.children = children
        parent.summary = dict.fromkeys(STATUSES, 0)
        parent.summary[SUBMITTED] = size
        parent.summary_updated_at = now_ms()
        gate = 1 if parent.waiting else 0  # children also wait for the parent's own dependencies
        n_to_n = [d.job for d in dependencies if d.kind == N_TO_N]
        sequential = any(d.kind == SEQUENTIAL for d in dependencies)
        failed_children = set()
        for child in children:
            assert child.index is not None  # array children are created with an index just above
            child.waiting = gate
            for array in n_to_n:
                assert array is not None
                peer = array.children[child.index] if array.children else array
                if self._link(peer, child):
                    failed_children.add(child)
            if sequential and child.index:
                self._link(children[child.index - 1], child)
        self._set_status(parent, PENDING)
        if parent_failed:
            parent.dependency_failed = True
        work: Work = deque()
        for child in children:
            if parent_failed or child in failed_children:
                work.append((child, FAILED, DEPENDENCY_FAILED))
        self._finish(work)
        for child in children:
            if child.status == SUBMITTED:
                if child.waiting:
                    self._set_status(child, PENDING)
                else:
                    self._make_runnable(child)

    def _link(self, dependency: Job | None, dependent: Job) -> bool:
        """Make `dependent` wait for `dependency`; True if the dependency already failed."""
        assert dependency is not None
        if dependency.status == SUCCEEDED:
            return False
        if dependency.status == FAILED:
            return True
        dependency.add_dependent(dependent)
        dependent.waiting += 1
        return False

    def _make_runnable(self, job: Job) -> None:
        self._set_status(job, RUNNABLE)
        if not self.fair_share.enqueue(job):
            job.spec.queue.runnable.append(job)
        self.kick()

    def _set_status(self, job: Job, status: str) -> None:
        previous, job.status = job.status, status
        parent = job.parent
        if parent is not None and parent.summary is not None:
            stamp = now_ms()
            parent.summary[previous] -= 1
            parent.summary[status] += 1
            parent.summary_updated_at = stamp
            if status == RUNNING and parent.started_at is None:
                parent.started_at = stamp
        if self.events.enabled:
            self.events.publish(job.arn, job_detail(job))

    def _finish(self, work: Work) -> None:
        """Move jobs to a terminal state and propagate to dependents and array parents.

        A worklist, not recursion: a failed SEQUENTIAL array fails 10,000 children in a chain.
        """
        while work:
            job, status, reason = work.popleft()
            if job.status in TERMINAL:
                continue
            job.status_reason = reason
            job.stopped_at = now_ms()
            self._set_status(job, status)
            self.fair_share.finished(job)
            parent = job.parent
            if parent is not None and parent.summary is not None:
                done = parent.summary[SUCCEEDED] + parent.summary[FAILED]
                if done == len(parent.children or ()):
                    work.append(self._array_outcome(parent))
            dependents, job.dependents = job.dependents, None
            for dependent in dependents or ():
                if status == SUCCEEDED:
                    self._dependency_met(dependent, work)
                else:
                    self._dependency_failed(dependent, work)

    def _array_outcome(self, parent: Job) -> tuple[Job, str, str | None]:
        """A parent succeeds when every child did, and fails when any child failed (ND: docs/aws-behaviour.md#batch-array-jobs)."""
        assert parent.summary is not None
        if parent.cancel_reason:
            return parent, FAILED, self._cancelled(parent)
        if parent.summary[FAILED]:
            return parent, FAILED, DEPENDENCY_FAILED if parent.dependency_failed else ARRAY_CHILD_FAILED
        return parent, SUCCEEDED, None

    def _dependency_met(self, job: Job, work: Work) -> None:
        job.waiting -= 1
        if job.waiting:
            return
        if job.is_array_parent:
            for child in job.children or ():  # open the gate the children wait behind
                if child.status not in TERMINAL:
                    child.waiting -= 1
                    if not child.waiting:
                        self._ready(child, work)
        else:
            self._ready(job, work)

    def _ready(self, job: Job, work: Work) -> None:
        if job.status in TERMINAL:
            return
        if job.cancel_reason:
            work.append((job, FAILED, self._cancelled(job)))
        else:
            self._make_runnable(job)

    def _dependency_failed(self, job: Job, work: Work) -> None:
        if job.status in TERMINAL:
            return
        job.dependency_failed = True
        if job.is_array_parent:
            for child in job.children or ():
                if child.status not in TERMINAL:
                    child.dependency_failed = True
                    work.append(
                        (child, FAILED, self._cancelled(child) if child.cancel_reason else DEPENDENCY_FAILED)
                    )
        else:
            work.append((job, FAILED, self._cancelled(job) if job.cancel_reason else DEPENDENCY_FAILED))

    def _cancelled(self, job: Job) -> str | None:
        if job.cancel_kind == TERMINATE_JOB:
            job.is_terminated = True
        else:
            job.is_cancelled = True
        return job.cancel_reason

    # -- capacity -------------------------------------------------------------------------------------

    def _demand(self, job: Job) -> tuple[int, int]:
        """What a job holds of this machine: its vCPUs and memory, capped at the machine's size so a
        job bigger than the laptop still runs (alone) instead of waiting forever."""
        resources = job.spec.resources
        return min(resources.vcpu_milli, self._max_vcpu_milli), min(resources.memory_mib, self._max_memory)

    def _place(self, queue: JobQueue, job: Job) -> ComputeEnvironment | None:
        """The first compute environment in the queue's order with room, if the machine has room.

        A DISABLED environment takes no new jobs ("the AWS Batch scheduler doesn't attempt to place
        jobs within the environment", API_ComputeEnvironmentDetail.state). A DISABLED queue still
        runs the jobs it has: "new jobs can't be added ... but jobs already in the queue can finish"
        (API_JobQueueDetail.state).
        """
        vcpus, memory = self._demand(job)
        if (
            self._used_vcpu_milli + vcpus > self._max_vcpu_milli
            or self._used_memory + memory > self._max_memory
        ):
            return None
        need = job.spec.resources.vcpu_milli
        for _, ce in queue.ce_order:
            if (
                ce.state == ENABLED
                and ce.used_milli + need <= ce.max_milli
                and (job.spec.multinode is None or can_host(ce))
            ):
                return ce
        return None

    def _start(self, job: Job, ce: ComputeEnvironment) -> Attempt:
        vcpus, memory = self._demand(job)
        self._used_vcpu_milli += vcpus
        self._used_memory += memory
        ce.used_milli += job.spec.resources.vcpu_milli
        self.fair_share.started(job, job.spec.resources.vcpu_milli)
        attempt = Attempt(len(job.attempts) + 1, ce, uuid.uuid4().hex, f"i-{uuid.uuid4().hex[:17]}")
        job.attempts.append(attempt)
        self._set_status(job, STARTING)
        return attempt

    def _release(self, job: Job, attempt: Attempt) -> None:
        vcpus, memory = self._demand(job)
        self._used_vcpu_milli -= vcpus
        self._used_memory -= memory
        attempt.ce.used_milli -= job.spec.resources.vcpu_milli
        self.fair_share.released(job)
