"""Job output to CloudWatch Logs, the way the awslogs log driver ships it.

Lines are buffered per log stream and sent in PutLogEvents batches (never one call per line):
a batch goes out when the attempt ends, when it reaches the API's size limits, or when its
oldest line has waited ``flush_interval`` seconds. Streams are created as soon as an attempt
runs, as the awslogs driver does when a container starts, so a stream exists even for a job
that prints nothing. https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html

Closing a stream takes a callback, run once everything the attempt wrote was sent: the engine
moves the job to SUCCEEDED or FAILED only then, so a job DescribeJobs shows as terminal has all
its log events readable (a container's task stops after its log driver flushed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)
job_output_log = logging.getLogger("sluice.local.batch.job_output")

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26  # bytes PutLogEvents counts per event on top of the message


class LogSink(Protocol):
    def start(self) -> None: ...

    def open(self, group: str, stream: str) -> None: ...

    def write(self, group: str, stream: str, events: list[tuple[int, str]]) -> None: ...

    def close(self, group: str, stream: str, on_shipped: Callable[[], None] | None = None) -> None:
        """No more output for this stream; `on_shipped` runs once all of it was sent."""
        ...

    def ensure_group(self, group: str) -> None:
        """Create the log group now if it was not created yet (failures are logged, not raised)."""
        ...

    def create_group_later(self, group: str) -> None:
        """Create the log group on the sink's own thread, without waiting for it."""
        ...

    def flush(self, timeout: float) -> bool: ...

    def shutdown(self) -> None: ...


class LoggingSink:
    """Used when the engine has no endpoint: job output goes to Python logging (DEBUG)."""

    def start(self) -> None:
        pass

    def open(self, group: str, stream: str) -> None:
        pass

    def write(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if job_output_log.isEnabledFor(logging.DEBUG):
            for _, message in events:
                job_output_log.debug("%s %s", stream, message)

    def close(self, group: str, stream: str, on_shipped: Callable[[], None] | None = None) -> None:
        if on_shipped is not None:
            on_shipped()

    def ensure_group(self, group: str) -> None:
        pass

    def create_group_later(self, group: str) -> None:
        pass

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class _Stream:
    __slots__ = ("group", "name", "created", "events", "size", "first_at", "closed", "on_shipped")

    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name
        self.created = False
        self.events: list[dict[str, Any]] = []
        self.size = 0
        self.first_at = 0.0
        self.closed = False
        self.on_shipped: list[Callable[[], None]] = []

    def due_at(self, interval: float) -> float:
        """Monotonic time this stream needs the shipper; inf when it has nothing to do."""
        if not self.created or self.closed:
            return 0.0  # create it now / send what is left and forget it
        if self.size >= MAX_BATCH_BYTES or len(self.events) >= MAX_BATCH_EVENTS:
            return 0.0
        return self.first_at + interval if self.events else float("inf")


class CloudWatchLogSink:
    def __init__(
        self, *, endpoint_url: str, region: str, flush_interval: float = 0.2, client: Any = None
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._interval = flush_interval
        self._cond = threading.Condition()
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._groups: set[str] = set()  # created (or found existing)
        self._group_lock = threading.Lock()  # one CreateLogGroup per group, whoever asks first
        self._pending_groups: list[str] = []  # to create on the shipper thread
        self._busy = False
        self._flushing = 0  # while > 0, buffered lines are sent at once
        self._closing = False
        self._client: Any = client  # a boto3 'logs' client; made on first use when not given
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="batch-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def open(self, group: str, stream: str) -> None:
        with self._cond:
            self._buffer(group, stream)
            self._cond.notify()

    def write(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        with self._cond:
            buffer = self._buffer(group, stream)  # output can arrive before the attempt is RUNNING
            if not buffer.events:
                buffer.first_at = time.monotonic()
            for timestamp, message in events:
                buffer.events.append({"timestamp": timestamp, "message": message})
                buffer.size += len(message.encode()) + EVENT_OVERHEAD
            if buffer.size >= MAX_BATCH_BYTES or len(buffer.events) >= MAX_BATCH_EVENTS:
                self._cond.notify()

    def close(self, group: str, stream: str, on_shipped: Callable[[], None] | None = None) -> None:
        with self._cond:
            buffer = self._streams.get((group, stream))
            if buffer is not None:
                buffer.closed = True
                if on_shipped is not None:
                    buffer.on_shipped.append(on_shipped)
                self._cond.notify()
                return
        if on_shipped is not None:  # never opened, or already sent and forgotten
            on_shipped()

    def ensure_group(self, group: str) -> None:
        with self._group_lock:
            if group in self._groups:
                return
            try:
                _ignore_exists(self._logs().create_log_group, logGroupName=group)
            except Exception as error:
                self._failed(group, "-", error)
                return
            self._groups.add(group)

    def create_group_later(self, group: str) -> None:
        """Create the group on the shipper thread, without waiting (at engine start)."""
        with self._cond:
            self._pending_groups.append(group)
            self._cond.notify()

    @property
    def tracked_streams(self) -> int:
        """Streams with work pending or an attempt still writing (finished ones are forgotten)."""
        with self._cond:
            return len(self._streams)

    def _buffer(self, group: str, stream: str) -> _Stream:
        buffer = self._streams.get((group, stream))
        if buffer is None:
            buffer = self._streams[(group, stream)] = _Stream(group, stream)
        return buffer

    def flush(self, timeout: float) -> bool:
        """Wait until every line written so far was sent (tests and benchmarks use it)."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(
                    lambda: (
                        not self._busy and all(b.created and not b.events for b in self._streams.values())
                    ),
                    timeout,
                )
            finally:
                self._flushing -= 1

    def shutdown(self) -> None:
        if not self._thread.is_alive():
            return
        self.flush(timeout=10.0)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closing:
                        return
                    now = time.monotonic()
                    interval = 0.0 if self._flushing else self._interval
                    next_due = min((b.due_at(interval) for b in self._streams.values()), default=float("inf"))
                    if next_due <= now or self._pending_groups:
                        break
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait(None if next_due == float("inf") else next_due - now)
                self._busy = True
                groups, self._pending_groups = self._pending_groups, []
                work = []
                for key, buffer in list(self._streams.items()):
                    if buffer.due_at(interval) > now:
                        continue
                    work.append((buffer, not buffer.created, buffer.events, buffer.closed))
                    buffer.created = True
                    buffer.events, buffer.size = [], 0
                    if buffer.closed:
                        del self._streams[key]
            for group in groups:
                self.ensure_group(group)
            for buffer, create, events, last in work:
                self._ship(buffer.group, buffer.name, create, events)
                if last:  # closed before this batch was taken: it held the stream's last lines
                    with self._cond:
                        done, buffer.on_shipped = buffer.on_shipped, []
                    for callback in done:
                        try:
                            callback()
                        except Exception:
                            log.exception("job log shipped callback failed")

    def _ship(self, group: str, stream: str, create: bool, events: list[dict[str, Any]]) -> None:
        try:
            client = self._logs()
            if create:
                self.ensure_group(group)
                _ignore_exists(client.create_log_stream, logGroupName=group, logStreamName=stream)
            for batch in _batches(events):
                client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        except Exception as error:  # an unreachable endpoint must not take the engine down
            self._failed(group, stream, error)

    def _failed(self, group: str, stream: str, error: Exception) -> None:
        self._failures += 1
        level = logging.WARNING if self._failures == 1 else logging.DEBUG  # one warning, not one per job
        log.log(level, "Could not ship job output to %s %s: %s", group, stream, error)

    def _logs(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "logs",
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
            )
        return self._client


def _ignore_exists(call: Any, **kwargs: str) -> None:
    try:
        call(**kwargs)
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode()) + EVENT_OVERHEAD
        if current and (len(current) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(event)
        size += event_size
    if current:
        batches.append(current)
    return batches
