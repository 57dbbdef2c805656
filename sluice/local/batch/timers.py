"""One thread that runs callbacks at deadlines (attempt timeouts, SIGKILL after a grace period).

It sleeps exactly until the next deadline on a condition variable, so nothing polls.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class TimerHandle:
    __slots__ = ("cancelled", "callback")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.cancelled = False
        self.callback = callback

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled_in_heap = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="batch-timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(callback)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), handle))
            self._cond.notify()
        return handle

    def cancel(self, handle: TimerHandle | None) -> None:
        """Cancel and let the heap shed cancelled entries, so finished attempts don't pile up."""
        if handle is None or handle.cancelled:
            return
        handle.cancel()
        with self._cond:
            self._cancelled_in_heap += 1
            if self._cancelled_in_heap > 64 and self._cancelled_in_heap * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled_in_heap = 0

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing:
                    if self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                        self._cancelled_in_heap = max(0, self._cancelled_in_heap - 1)
                        continue
                    delay = self._heap[0][0] - time.monotonic() if self._heap else None
                    if delay is not None and delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._closing:
                    return
                _, _, handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            try:
                handle.callback()
            except Exception:
                log.exception("Batch timer callback failed")
