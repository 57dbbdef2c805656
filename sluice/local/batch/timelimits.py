"""Jobs stuck in RUNNABLE: the blocked reason, the `Batch Job Queue Blocked` event, and the
queue's `jobStateTimeLimitActions` that cancel such a job.

AWS Batch (https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html,
https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html):
- a job at the head of a queue that cannot run gets a `statusReason` that says why, e.g.
  ``MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue
  cannot meet the CPU requirement of the job.``, and Batch emits a `Batch Job Queue Blocked`
  event (https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html);
- a queue's `JobStateTimeLimitAction` (action CANCEL, state RUNNABLE, maxTimeSeconds 600–86,400,
  a reason) cancels a job that "has remained at the head of the queue in the specified state for
  longer than the specified time" with the statusReason
  ``Canceled by JobStateTimeLimit action due to reason: <reason>``
  (https://docs.aws.amazon.com/batch/latest/APIReference/API_JobStateTimeLimitAction.html).

What the local engine can tell: only that a job needs more vCPUs than every compute environment
of its queue may ever hold (``maxvCpus``, or ``unmanagedvCpus``), and that a multi-node parallel
job's queue has no compute environment that can run one (multinode.py). It does not model instance
types, so memory never blocks a job (a job's memory is only bounded by this machine, and capped
at its size), and capacity shortages (``CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY``) never occur;
see docs/aws-behaviour.md#batch-jobs-stuck-in-runnable.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from sluice.local.batch.errors import ClientException
from sluice.local.batch.models import RUNNABLE, Job, JobQueue
from sluice.local.batch.multinode import can_host
from sluice.local.batch.timers import TimerHandle

CANCEL_ACTION = "CANCEL"
RUNNABLE_STATE = "RUNNABLE"
MIN_MAX_TIME_SECONDS = 600
MAX_MAX_TIME_SECONDS = 86_400

CE_MAX_RESOURCE = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
# AWS's wording (job_stuck_in_runnable.html).
CPU_BLOCKED_REASON = (
    f"{CE_MAX_RESOURCE} - CE(s) associated with the job queue cannot meet the CPU requirement of the job."
)
# A multi-node parallel job in a queue with no compute environment that can run one: the reason
# AWS lists for jobs no compute environment's instances can meet (API_JobDetail.statusReason).
JOB_RESOURCE_BLOCKED_REASON = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - All compute environments have no connected instances"
    " that meet the job requirements."
)
CANCELED_PREFIX = "Canceled by JobStateTimeLimit action due to reason: "

BLOCKED_DETAIL_TYPE = "Batch Job Queue Blocked"

CallLater = Callable[[float, Callable[[], None]], TimerHandle]


def check_actions(actions: Any) -> list[dict[str, Any]]:
    """Validate jobStateTimeLimitActions as CreateJobQueue/UpdateJobQueue take them.

    Messages are ND (AWS documents only the constraints) and worded like AWS's.
    """
    if actions is None:
        return []
    if not isinstance(actions, list):
        raise ClientException("jobStateTimeLimitActions must be a list")
    checked = []
    for action in actions:
        if not isinstance(action, dict):
            raise ClientException("jobStateTimeLimitActions entries must be objects")
        reason = action.get("reason")
        if not isinstance(reason, str) or not reason:
            raise ClientException("jobStateTimeLimitActions.reason must be specified")
        if action.get("state") != RUNNABLE_STATE:
            raise ClientException("jobStateTimeLimitActions.state must be RUNNABLE")
        if action.get("action") != CANCEL_ACTION:
            raise ClientException("jobStateTimeLimitActions.action must be CANCEL")
        seconds = action.get("maxTimeSeconds")
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not MIN_MAX_TIME_SECONDS <= seconds <= MAX_MAX_TIME_SECONDS
        ):
            raise ClientException(
                f"jobStateTimeLimitActions.maxTimeSeconds must be between {MIN_MAX_TIME_SECONDS}"
                f" and {MAX_MAX_TIME_SECONDS}"
            )
        checked.append(
            {"reason": reason, "state": RUNNABLE_STATE, "maxTimeSeconds": seconds, "action": CANCEL_ACTION}
        )
    return checked


def blocked_reason(queue: JobQueue, job: Job) -> str | None:
    """Why no compute environment of the queue can ever run the job, or None if one could.

    Every environment of the queue counts, ENABLED or not: a DISABLED one can be enabled again,
    while a job bigger than every environment's maxvCpus can only run once someone raises it.
    """
    need = job.spec.resources.vcpu_milli
    environments = queue.environments
    if job.spec.multinode is not None:
        environments = [ce for ce in environments if can_host(ce)]
        if not environments:  # only Spot or UNMANAGED environments (multinode.py)
            return JOB_RESOURCE_BLOCKED_REASON
    if environments and all(need > ce.max_milli for ce in environments):
        return CPU_BLOCKED_REASON
    return None


def action_for(queue: JobQueue, reason: str) -> dict[str, Any] | None:
    """The queue's time-limit action whose reason is the job's (the code before " - ").

    The action's own `reason` is what the cancellation's statusReason quotes; the template names
    each action after the reason code it handles, as AWS's examples do.

    ND: which action applies when several name the same reason; the local engine takes the first.
    """
    code = reason.split(" - ", 1)[0]
    return next((action for action in queue.time_limit_actions if action["reason"] == code), None)


class _Blocked:
    __slots__ = ("reason", "since", "action", "timer")

    def __init__(self, reason: str, since: float) -> None:
        self.reason = reason
        self.since = since  # time.monotonic() when the job was first seen blocked at the head
        self.action: dict[str, Any] | None = None
        self.timer: TimerHandle | None = None


class TimeLimits:
    """Tracks blocked head-of-queue jobs (caller holds the scheduler's lock for every method).

    ``scale`` multiplies maxTimeSeconds: 1.0 is AWS's clock; tests lower it so the 600 s minimum
    passes in seconds (the engine's ``time_limit_scale``). It applies to jobs blocked afterwards.
    """

    def __init__(
        self,
        call_later: CallLater,
        publish: Callable[[Job], None],
        cancel: Callable[[Job, str], None],
        lock: Any,
    ) -> None:
        self.scale = 1.0
        self._call_later = call_later
        self._publish = publish
        self._cancel = cancel
        self._lock = lock
        self._blocked: dict[Job, _Blocked] = {}

    def is_blocked(self, job: Job) -> bool:
        return job in self._blocked

    def head_waits(self, queue: JobQueue, job: Job) -> None:
        """The queue's head job could not be placed in this pass: is it blocked for good?

        A job newly blocked gets the reason as its statusReason and one `Batch Job Queue Blocked`
        event; the queue's matching action (if any) is armed from that moment, and re-armed
        (keeping that moment) when UpdateJobQueue changes the actions.
        """
        reason = blocked_reason(queue, job)
        current = self._blocked.get(job)
        if current is None or current.reason != reason:
            self.release(job)
            if reason is None:
                return
            current = self._blocked[job] = _Blocked(reason, time.monotonic())
            job.status_reason = reason
            self._publish(job)
        action = action_for(queue, current.reason)
        if action == current.action:
            return
        if current.timer is not None:
            current.timer.cancel()
            current.timer = None
        current.action = action
        if action is not None:
            elapsed = time.monotonic() - current.since
            delay = max(0.0, action["maxTimeSeconds"] * self.scale - elapsed)
            blocked = current
            current.timer = self._call_later(delay, lambda: self._expired(job, blocked))

    def release(self, job: Job) -> None:
        """The job was placed, left RUNNABLE, or is no longer blocked."""
        current = self._blocked.pop(job, None)
        if current is None:
            return
        if current.timer is not None:
            current.timer.cancel()
        if job.status == RUNNABLE and job.status_reason == current.reason:
            job.status_reason = None

    def _expired(self, job: Job, blocked: _Blocked) -> None:
        with self._lock:
            if self._blocked.get(job) is not blocked:
                return  # released, or blocked again for another reason (with its own timer)
            del self._blocked[job]
            if job.status == RUNNABLE and blocked.action is not None:
                self._cancel(job, CANCELED_PREFIX + blocked.action["reason"])


def describe_actions(queue: JobQueue) -> list[dict[str, Any]]:
    return copy.deepcopy(queue.time_limit_actions)
