"""Spot reclaim injection: lose running attempts the way Spot capacity is lost.

On AWS a reclaimed host gets a two-minute notice, the container is stopped (SIGTERM, then
SIGKILL) and the attempt ends with ``Host EC2 (instance i-…) terminated.``; the job then follows
its retry strategy, typically ``{"onStatusReason": "Host EC2*", "action": "RETRY"}``.
https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html
Locally the notice is ``grace_seconds`` (default 2 s) instead of two minutes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sluice.local.batch.models import Attempt, Job

T = TypeVar("T")
DEFAULT_GRACE_SECONDS = 2.0


def host_terminated_reason(attempt: Attempt) -> str:
    return f"Host EC2 (instance {attempt.instance_id}) terminated."


@dataclass(frozen=True, slots=True)
class ReclaimCandidate:
    """What a policy's ``stage_filter`` sees about an attempt that just started running."""

    job_id: str
    job_name: str
    job_definition: str  # the definition's name: Sluice's stage (ingest, transform, aggregate)
    job_queue: str
    array_index: int | None
    attempt: int

    @classmethod
    def of(cls, job: Job, attempt: Attempt) -> ReclaimCandidate:
        spec = job.spec
        return cls(job.job_id, spec.name, spec.definition.name, spec.queue.name, job.index, attempt.number)


@dataclass(slots=True)
class ReclaimPolicy:
    """Reclaim each attempt that starts running with probability `fraction` (seeded, reproducible)."""

    fraction: float
    stage_filter: Callable[[ReclaimCandidate], bool] | None
    rng: random.Random

    def picks(self, job: Job, attempt: Attempt) -> bool:
        if self.stage_filter is not None and not self.stage_filter(ReclaimCandidate.of(job, attempt)):
            return False
        return self.rng.random() < self.fraction


def choose_share(items: Sequence[T], fraction: float, rng: random.Random) -> list[T]:
    """ceil(fraction × n) of `items`, chosen at random; at least one when fraction > 0."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    count = min(len(items), math.ceil(fraction * len(items)))
    return rng.sample(list(items), count)
