"""Fair-share scheduling: scheduling policies, their validation, and the order a fair-share
queue starts its RUNNABLE jobs in.

AWS's rules (https://docs.aws.amazon.com/batch/latest/userguide/fair-share-scheduling.html,
https://docs.aws.amazon.com/batch/latest/userguide/share-identifiers.html,
https://docs.aws.amazon.com/batch/latest/APIReference/API_FairsharePolicy.html,
https://docs.aws.amazon.com/batch/latest/APIReference/API_ShareAttributes.html):

- the scheduler tracks each share identifier's usage as ``T * weightFactor`` (T: vCPU usage over
  time) and picks the next job from the share with the lowest usage, so a *lower* weightFactor
  gets *more* capacity (0.125 gets 8 times what 1.0 gets); unlisted identifiers weigh 1.0;
- within a share, a higher schedulingPriority starts first;
- ``computeReservation`` holds back ``(computeReservation/100)^ActiveFairShares`` of the maximum
  vCPUs for share identifiers that aren't active yet; a share is active while it has SUBMITTED,
  PENDING, RUNNABLE, STARTING or RUNNING jobs, and until its decay period has passed after that;
- ``shareDecaySeconds`` is the window usage is measured over (0: the default minimum, 600 s).

What AWS leaves open (ND, docs/aws-behaviour.md#batch-fair-share-scheduling) and the local
choice: usage is the share's running vCPUs plus its finished attempts' vCPU-seconds decayed
exponentially with the window as time constant and divided by it (a recent average); ties go
to the share whose next job was submitted first; equal priorities start in submission order;
a job without a priority has priority 0; a queue running nothing may always start one job,
however much is reserved, so a reservation never starves a queue.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sluice.local.batch.errors import ClientException
from sluice.local.batch.models import ENABLED, RUNNABLE, Job, JobQueue

MAX_DECAY_SECONDS = 604_800
DEFAULT_DECAY_WINDOW = 600  # shareDecaySeconds 0 (API_FairsharePolicy)
MAX_COMPUTE_RESERVATION = 99
MIN_WEIGHT = 0.0001
MAX_WEIGHT = 999.9999
DEFAULT_WEIGHT = 1.0
MAX_ACTIVE_SHARES = 500  # per queue (API_SubmitJob shareIdentifier, API_CreateJobQueue)
# ND: AWS caps active identifiers at 500 but documents no cap on shareDistribution; the same.
MAX_SHARE_DISTRIBUTION = 500
MAX_PRIORITY = 9999
MAX_DESCRIBE_ARNS = 100  # DescribeSchedulingPolicies arns
# "limited to 255 alphanumeric characters, and can be followed by an asterisk" (API_ShareAttributes)
_POLICY_SHARE = re.compile(r"[A-Za-z0-9]{1,255}\*?")
_JOB_SHARE = re.compile(r"[A-Za-z0-9]{1,255}")


@dataclass(slots=True)
class SchedulingPolicy:
    name: str
    arn: str
    fairshare: dict[str, Any]  # the FairsharePolicy as DescribeSchedulingPolicies shows it
    tags: dict[str, str]

    @property
    def decay_window(self) -> float:
        return float(self.fairshare["shareDecaySeconds"] or DEFAULT_DECAY_WINDOW)

    @property
    def compute_reservation(self) -> int:
        return int(self.fairshare["computeReservation"])

    def weight_of(self, share: str) -> float:
        """An exact entry, else the prefix entry it starts with (entries can't overlap), else 1.0."""
        for entry in self.fairshare["shareDistribution"]:
            identifier = entry["shareIdentifier"]
            if identifier == share or (identifier.endswith("*") and share.startswith(identifier[:-1])):
                return float(entry.get("weightFactor", DEFAULT_WEIGHT))
        return DEFAULT_WEIGHT

    def detail(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "fairsharePolicy": {
                "shareDecaySeconds": self.fairshare["shareDecaySeconds"],
                "computeReservation": self.fairshare["computeReservation"],
                "shareDistribution": [dict(entry) for entry in self.fairshare["shareDistribution"]],
            },
            "tags": dict(self.tags),
        }


def check_fairshare_policy(value: Any) -> dict[str, Any]:
    """A FairsharePolicy, with AWS's limits; absent members take their defaults (0, 0, [])."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ClientException("fairsharePolicy must be an object")
    decay = value.get("shareDecaySeconds", 0)
    if not _is_int(decay) or not 0 <= decay <= MAX_DECAY_SECONDS:
        raise ClientException(f"shareDecaySeconds must be between 0 and {MAX_DECAY_SECONDS}")
    reservation = value.get("computeReservation", 0)
    if not _is_int(reservation) or not 0 <= reservation <= MAX_COMPUTE_RESERVATION:
        raise ClientException(f"computeReservation must be between 0 and {MAX_COMPUTE_RESERVATION}")
    distribution = value.get("shareDistribution") or []
    if not isinstance(distribution, list):
        raise ClientException("shareDistribution must be a list")
    if len(distribution) > MAX_SHARE_DISTRIBUTION:
        raise ClientException(f"shareDistribution can have at most {MAX_SHARE_DISTRIBUTION} entries")
    entries: list[dict[str, Any]] = []
    for item in distribution:
        identifier = item.get("shareIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not _POLICY_SHARE.fullmatch(identifier):
            raise ClientException(
                f"shareIdentifier {identifier!r} must be 1-255 alphanumeric characters, optionally followed by *"
            )
        entry: dict[str, Any] = {"shareIdentifier": identifier}
        if item.get("weightFactor") is not None:
            weight = item["weightFactor"]
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ClientException("weightFactor must be a number")
            if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
                raise ClientException(f"weightFactor must be between {MIN_WEIGHT} and {MAX_WEIGHT}")
            entry["weightFactor"] = weight
        entries.append(entry)
    _check_no_overlap([entry["shareIdentifier"] for entry in entries])
    return {"shareDecaySeconds": decay, "computeReservation": reservation, "shareDistribution": entries}


def _check_no_overlap(identifiers: list[str]) -> None:
    """Entries "can't overlap" (API_ShareAttributes): no duplicates, and no identifier (or longer
    prefix) that a prefix entry also covers (UserA* with UserA1)."""
    for index, first in enumerate(identifiers):
        for second in identifiers[index + 1 :]:
            if first == second or _covers(first, second) or _covers(second, first):
                raise ClientException(f"shareIdentifier {first} overlaps shareIdentifier {second}")


def _covers(prefix_entry: str, other: str) -> bool:
    return prefix_entry.endswith("*") and other.rstrip("*").startswith(prefix_entry[:-1])


def check_scheduling_priority(value: Any, what: str) -> int | None:
    """schedulingPriority (job definition) and schedulingPriorityOverride (SubmitJob): 0-9999."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_PRIORITY:
        raise ClientException(f"{what} must be between 0 and {MAX_PRIORITY}")
    return int(value)


def check_job_share(share: Any, queue: JobQueue) -> str | None:
    """SubmitJob `shareIdentifier`: required on a fair-share queue, refused on a FIFO queue
    (https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html)."""
    if queue.scheduling_policy_arn is None:
        if share is not None:
            raise ClientException(
                f"shareIdentifier can't be specified for job queue {queue.name}: it has no scheduling policy"
            )
        return None
    if share is None or share == "":
        raise ClientException(f"shareIdentifier must be specified for job queue {queue.name} (fair share)")
    if not isinstance(share, str) or not _JOB_SHARE.fullmatch(share):
        raise ClientException(f"shareIdentifier {share!r} must be 1-255 alphanumeric characters")
    return share


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- placement ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Share:
    """One share identifier of one queue: its RUNNABLE jobs and its usage."""

    identifier: str
    waiting: list[tuple[int, int, Job]] = field(default_factory=list)  # heap: (-priority, seq, job)
    running_milli: int = 0  # vCPUs of its STARTING and RUNNING attempts
    history: float = 0.0  # finished attempts' vCPU-seconds, decayed to `history_at`
    history_at: float = 0.0
    open_jobs: int = 0  # top-level jobs not yet SUCCEEDED or FAILED
    last_finished: float = -math.inf

    def decayed_history(self, now: float, window: float) -> float:
        return self.history * math.exp(-(now - self.history_at) / window) if self.history else 0.0

    def usage(self, now: float, window: float) -> float:
        """Recent average vCPUs: what runs now plus what ran lately (ND, module docstring)."""
        return self.running_milli / 1000 + self.decayed_history(now, window) / window

    def active(self, now: float, window: float) -> bool:
        return self.open_jobs > 0 or now - self.last_finished < window


class _QueueShares:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.shares: dict[str, _Share] = {}
        self.started: dict[Job, tuple[str, int, float]] = {}  # job -> (share, vCPU milli, start)

    def share(self, identifier: str) -> _Share:
        found = self.shares.get(identifier)
        if found is None:
            found = self.shares[identifier] = _Share(identifier)
        return found


class FairShareOrder:
    """A fair-share queue's RUNNABLE jobs as the scheduler's placement loop reads them: truthy while
    a job may be tried, ``[0]`` the job to try next, ``popleft()`` once it started or left RUNNABLE."""

    def __init__(self, shares: _QueueShares, policy: SchedulingPolicy, clock: Callable[[], float]) -> None:
        self._shares = shares
        self._policy = policy
        self._clock = clock
        self._next: _Share | None = None

    def _choose(self) -> _Share | None:
        now = self._clock()
        window = self._policy.decay_window
        candidates = [share for share in self._shares.shares.values() if share.waiting]
        if not candidates:
            return None
        chosen = min(
            candidates,
            key=lambda share: (
                share.usage(now, window) * self._policy.weight_of(share.identifier),
                share.waiting[0][2].created_at,
                share.waiting[0][1],
            ),
        )
        head = chosen.waiting[0][2]
        if head.status == RUNNABLE and not self._within_reservation(head, now, window):
            return None
        return chosen

    def _within_reservation(self, job: Job, now: float, window: float) -> bool:
        """Active shares together keep off (computeReservation/100)^ActiveFairShares of the
        queue's maximum vCPUs (its ENABLED environments' maxvCpus; ND which maximum AWS means)."""
        reservation = self._policy.compute_reservation
        shares = self._shares.shares.values()
        used = sum(share.running_milli for share in shares)
        if not reservation or not used:
            return True
        maximum = sum(ce.max_milli for _, ce in self._shares.queue.ce_order if ce.state == ENABLED)
        if math.isinf(maximum):
            return True
        active = sum(1 for share in shares if share.active(now, window))
        reserved = maximum * (reservation / 100) ** max(active, 1)
        return used + job.spec.resources.vcpu_milli <= maximum - reserved

    def __bool__(self) -> bool:
        self._next = self._choose()
        return self._next is not None

    def __getitem__(self, index: int) -> Job:
        if index != 0:
            raise IndexError(index)
        if self._next is None:
            self._next = self._choose()
        if self._next is None:
            raise IndexError(index)
        return self._next.waiting[0][2]

    def popleft(self) -> Job:
        share = self._next or self._choose()
        if share is None:
            raise IndexError("no runnable job")
        self._next = None
        return heapq.heappop(share.waiting)[2]


class FairShare:
    """Per fair-share queue: share identifiers, their RUNNABLE jobs and usage. The scheduler calls
    it under its lock; `policy_of(queue)` resolves a queue's scheduling policy (None: FIFO)."""

    def __init__(
        self,
        policy_of: Callable[[JobQueue], SchedulingPolicy | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy_of = policy_of
        self._clock = clock
        self._queues: dict[str, _QueueShares] = {}
        self._seq = itertools.count()

    def _shares_of(self, queue: JobQueue) -> _QueueShares:
        shares = self._queues.get(queue.arn)
        if shares is None or shares.queue is not queue:  # a queue deleted and made again
            shares = self._queues[queue.arn] = _QueueShares(queue)
        return shares

    def _share_of(self, job: Job) -> _Share | None:
        identifier = job.spec.share_identifier
        if identifier is None or job.spec.queue.scheduling_policy_arn is None:
            return None
        return self._shares_of(job.spec.queue).share(identifier)

    def order(self, queue: JobQueue) -> FairShareOrder | None:
        """The placement order of a fair-share queue; None for a FIFO queue."""
        policy = self._policy_of(queue) if queue.scheduling_policy_arn else None
        if policy is None:
            return None
        return FairShareOrder(self._shares_of(queue), policy, self._clock)

    def admit(self, queue: JobQueue, identifier: str | None) -> None:
        """SubmitJob: "Jobs queues with a fair-share scheduling policy can have a maximum of 500
        active share identifiers ... submissions of any jobs that add a new share identifier fail"
        (https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateJobQueue.html)."""
        policy = self._policy_of(queue) if queue.scheduling_policy_arn else None
        if identifier is None or policy is None:
            return
        shares = self._shares_of(queue)
        now, window = self._clock(), policy.decay_window
        existing = shares.shares.get(identifier)
        if existing is not None and existing.active(now, window):
            return
        active = sum(1 for share in shares.shares.values() if share.active(now, window))
        if active >= MAX_ACTIVE_SHARES:
            raise ClientException(
                f"Job queue {queue.name} already has {MAX_ACTIVE_SHARES} active share identifiers"
            )

    def submitted(self, job: Job) -> None:
        share = self._share_of(job)
        if share is not None:
            share.open_jobs += 1

    def finished(self, job: Job) -> None:
        """A top-level job turned SUCCEEDED or FAILED."""
        share = self._share_of(job)
        if share is not None and job.parent is None:
            share.open_jobs -= 1
            share.last_finished = self._clock()

    def enqueue(self, job: Job) -> bool:
        """A job turned RUNNABLE: True if a fair-share queue took it (else it goes FIFO)."""
        share = self._share_of(job)
        if share is None:
            return False
        priority = job.spec.scheduling_priority or 0
        heapq.heappush(share.waiting, (-priority, next(self._seq), job))
        return True

    def started(self, job: Job, vcpu_milli: int) -> None:
        share = self._share_of(job)
        if share is None:
            return
        share.running_milli += vcpu_milli
        self._shares_of(job.spec.queue).started[job] = (share.identifier, vcpu_milli, self._clock())

    def released(self, job: Job) -> None:
        """An attempt ended: its vCPU-seconds join the share's decaying history."""
        if job.spec.share_identifier is None:
            return
        shares = self._shares_of(job.spec.queue)
        record = shares.started.pop(job, None)
        if record is None:
            return
        identifier, vcpu_milli, started = record
        share = shares.share(identifier)
        share.running_milli -= vcpu_milli
        now = self._clock()
        policy = self._policy_of(job.spec.queue)
        window = policy.decay_window if policy is not None else float(DEFAULT_DECAY_WINDOW)
        share.history = share.decayed_history(now, window) + vcpu_milli / 1000 * (now - started)
        share.history_at = now

    def forget(self, queue: JobQueue) -> None:
        """DeleteJobQueue: the queue's shares go with it."""
        if queue.arn in self._queues and self._queues[queue.arn].queue is queue:
            del self._queues[queue.arn]
