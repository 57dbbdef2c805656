"""Asynchronous (``Event``) invocations: queue, retries, event age, then destinations.

AWS behaviour (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):
a function error (including a timeout) is retried twice by default, one minute and then
two minutes apart; ``MaximumRetryAttempts`` (0-2) and ``MaximumEventAgeInSeconds``
(60-21600) from the event-invoke config change that. Throttled events are requeued with
backoff (1 s doubling to 5 min) until the event is too old. After the last attempt the
record goes to the on-failure destination and the event to the dead-letter queue; a
success goes to the on-success destination.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sluice.local.awslambda.pool import Outcome

log = logging.getLogger("sluice.local.awslambda")

DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_EVENT_AGE = 21600


@dataclass
class AsyncEvent:
    request_id: str
    function_name: str
    qualifier: str | None
    payload: bytes
    received_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    throttle_delay: float = 0.0
    last: Outcome | None = None

    @property
    def age(self) -> float:
        return time.monotonic() - self.received_at


@dataclass
class AsyncTarget:
    """What one attempt needs to know about the function, looked up at attempt time."""

    function_arn: str  # qualified, for the record
    executed_version: str
    event_invoke_config: dict[str, Any]
    dead_letter_target: str | None
    role: str | None = None  # the execution role: Lambda sends records and dead letters as it


class AsyncInvoker:
    def __init__(
        self,
        *,
        lookup: Callable[[AsyncEvent], AsyncTarget | None],
        attempt: Callable[[AsyncEvent], Outcome | None],
        on_success: Callable[[AsyncEvent, AsyncTarget, str], None],
        on_failure: Callable[[AsyncEvent, AsyncTarget, str], None],
        retry_delays: tuple[float, ...],
        max_parallel: int = 16,
    ) -> None:
        self._lookup = lookup
        self._attempt_fn = attempt
        self._on_success = on_success
        self._on_failure = on_failure
        self._delays = tuple(retry_delays) or (60.0, 120.0)
        self._heap: list[tuple[float, int, AsyncEvent]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._running = 0
        self._stopped = False
        self._executor = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="lambda-async")
        self._thread = threading.Thread(
            target=self._schedule_loop, name="lambda-async-scheduler", daemon=True
        )
        self._thread.start()

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return self._delays

    @retry_delays.setter
    def retry_delays(self, delays: tuple[float, ...]) -> None:
        """Delays before the first, second, ... retry; retries already scheduled keep theirs."""
        with self._cond:
            self._delays = tuple(delays) or (60.0, 120.0)

    def submit(self, event: AsyncEvent, delay: float = 0.0) -> None:
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), event))
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued, waiting for a retry, or running."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            dropped = len(self._heap)
            self._heap.clear()
            self._cond.notify_all()
        if dropped:
            log.info("dropping %d queued asynchronous invocations at shutdown", dropped)
        self._thread.join(5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _schedule_loop(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                due = self._heap[0][0]
                now = time.monotonic()
                if due > now:
                    self._cond.wait(due - now)
                    continue
                _, _, event = heapq.heappop(self._heap)
                self._running += 1
                self._executor.submit(self._run, event)

    def _run(self, event: AsyncEvent) -> None:
        try:
            self._process(event)
        except Exception:
            log.exception("asynchronous invocation %s failed unexpectedly", event.request_id)
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def _process(self, event: AsyncEvent) -> None:
        target = self._lookup(event)
        if target is None:
            log.warning(
                "function %s no longer exists; event %s dropped", event.function_name, event.request_id
            )
            return
        config = target.event_invoke_config
        max_retries = int(config.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES))
        max_age = float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE))
        if event.age > max_age:
            self._on_failure(event, target, "EventAgeExceeded")
            return
        outcome = self._attempt_fn(event)
        if outcome is None:  # throttled: requeue with backoff, not an attempt
            event.throttle_delay = min(max(event.throttle_delay * 2, 1.0), 300.0)
            self._retry_or_expire(event, target, event.throttle_delay, max_age)
            return
        event.attempts += 1
        event.last = outcome
        if not outcome.failed:
            self._on_success(event, target, "Success")
        elif event.attempts <= max_retries:
            delay = self._delays[min(event.attempts - 1, len(self._delays) - 1)]
            self._retry_or_expire(event, target, delay, max_age)
        else:
            self._on_failure(event, target, "RetriesExhausted")

    def _retry_or_expire(self, event: AsyncEvent, target: AsyncTarget, delay: float, max_age: float) -> None:
        if event.age + delay > max_age:
            self._on_failure(event, target, "EventAgeExceeded")
        else:
            self.submit(event, delay)
