"""Ship function logs to CloudWatch Logs (``/aws/lambda/<name>``) through the endpoint, batched."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sluice.local.awslambda")

_MAX_BATCH = 1000  # well under PutLogEvents' 10,000 events / 1 MB
_MAX_EVENT_BYTES = 256 * 1024 - 26  # PutLogEvents: 256 KB per event including 26 bytes overhead


class LogShipper:
    """Queues log events and sends them in batches from one background thread."""

    def __init__(self, logs_client: Callable[[], Any], *, interval: float = 0.2) -> None:
        self._client = logs_client
        self._interval = interval
        self._queue: queue.Queue[tuple[str, str, int, str] | None] = queue.Queue()
        self._known_groups: set[str] = set()
        self._known_streams: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._cond = threading.Condition()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lambda-log-shipper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self.flush(timeout)
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def emit(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        encoded = message.encode("utf-8")
        if len(encoded) > _MAX_EVENT_BYTES:
            message = encoded[:_MAX_EVENT_BYTES].decode("utf-8", "ignore")
        with self._cond:
            self._pending += 1
        self._queue.put((group, stream, timestamp_ms or int(time.time() * 1000), message))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event emitted so far has been sent (or dropped on error)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[str, str, int, str]] = []
            try:
                item = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            deadline = time.monotonic() + self._interval
            while True:
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
            if batch:
                self._send(batch)
                with self._cond:
                    self._pending -= len(batch)
                    self._cond.notify_all()

    def _send(self, batch: list[tuple[str, str, int, str]]) -> None:
        by_stream: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for group, stream, timestamp, message in batch:
            by_stream.setdefault((group, stream), []).append({"timestamp": timestamp, "message": message})
        for (group, stream), events in by_stream.items():
            events.sort(key=lambda e: e["timestamp"])  # PutLogEvents needs chronological order
            try:
                self._ensure(group, stream)
                self._client().put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except Exception as exc:
                self._known_streams.discard((group, stream))
                log.warning("could not ship %d log events to %s/%s: %s", len(events), group, stream, exc)

    def _ensure(self, group: str, stream: str) -> None:
        client = self._client()
        if group not in self._known_groups:
            try:
                client.create_log_group(logGroupName=group)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
            self._known_groups.add(group)
        if (group, stream) not in self._known_streams:
            try:
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
            self._known_streams.add((group, stream))
