"""Batch Job State Change (and Batch Job Queue Blocked) events, delivered in order on their own thread.

The scheduler publishes a JobDetail snapshot while it holds its lock (so the order of events
is the order of transitions); this thread encodes and hands them to ``emit_event`` outside
every engine lock, so a slow or re-entrant receiver (EventBridge delivery, a test calling
DescribeJobs) never blocks scheduling.
https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html,
https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

SOURCE = "aws.batch"
DETAIL_TYPE = "Batch Job State Change"


def discard_event(entry: dict[str, Any]) -> None:
    """The default receiver: no events wanted (the engine then skips building them)."""


class EventDispatcher:
    def __init__(self, emit_event: Callable[[dict[str, Any]], None]) -> None:
        self._emit = emit_event
        self.enabled = emit_event is not discard_event
        self._queue: queue.SimpleQueue[tuple[str, list[str], dict[str, Any], datetime] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="batch-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def publish(
        self,
        job_arn: str,
        detail: dict[str, Any],
        detail_type: str = DETAIL_TYPE,
        resources: list[str] | None = None,
    ) -> None:
        """Queue one event; `resources` defaults to [job_arn] (a blocked queue adds the queue's ARN)."""
        with self._idle:
            self._pending += 1
        self._queue.put((detail_type, resources or [job_arn], detail, datetime.now(UTC)))

    def wait_idle(self, timeout: float) -> bool:
        """Block until every published event was handed to the receiver."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Deliver what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            detail_type, resources, detail, when = item
            entry = {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "Resources": resources,
                "Time": when,
            }
            try:
                self._emit(entry)
            except Exception:
                log.exception("%s receiver failed for %s", detail_type, resources[0])
            with self._idle:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()
