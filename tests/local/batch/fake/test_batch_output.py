"""Job output plumbing: splitting process output into log events, batching PutLogEvents calls."""

from __future__ import annotations

from sluice.local.batch.executor import MAX_LINE_BYTES, LineSplitter, exit_code_of
from sluice.local.batch.logsink import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    CloudWatchLogSink,
    _batches,
)


def messages(events):
    return [message for _, message in events]


def test_lines_are_split_across_chunks():
    splitter = LineSplitter()
    assert messages(splitter.feed(b"one\ntw")) == ["one"]
    assert messages(splitter.feed(b"o\nthree")) == ["two"]
    assert messages(splitter.finish()) == ["three"]
    assert splitter.finish() == []


def test_invalid_utf8_and_empty_lines_survive():
    splitter = LineSplitter()
    assert messages(splitter.feed(b"\n\xff\xfe ok\n")) == ["", "\ufffd\ufffd ok"]


def test_overlong_lines_are_split_to_fit_a_log_event():
    splitter = LineSplitter()
    events = splitter.feed(b"x" * (MAX_LINE_BYTES * 2 + 10)) + splitter.finish()
    assert [len(message) for message in messages(events)] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 10]


def test_exit_codes_of_signalled_processes_are_docker_style():
    assert (exit_code_of(0), exit_code_of(3), exit_code_of(-15), exit_code_of(-9)) == (0, 3, 143, 137)


def event(message: str) -> dict:
    return {"timestamp": 1, "message": message}


def test_batches_respect_the_event_count_limit():
    batches = _batches([event("x")] * (MAX_BATCH_EVENTS * 2 + 1))
    assert [len(batch) for batch in batches] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 1]


def test_batches_respect_the_byte_limit():
    message = "y" * (200_000 - EVENT_OVERHEAD)
    batches = _batches([event(message)] * 11)
    assert all(sum(len(e["message"]) + EVENT_OVERHEAD for e in batch) <= MAX_BATCH_BYTES for batch in batches)
    assert [len(batch) for batch in batches] == [5, 5, 1]
    assert _batches([]) == []


class RecordingLogs:
    """Stands in for a boto3 'logs' client."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def create_log_group(self, **kwargs) -> None:
        self.calls.append(("create_log_group", kwargs))

    def create_log_stream(self, **kwargs) -> None:
        self.calls.append(("create_log_stream", kwargs))

    def put_log_events(self, **kwargs) -> None:
        self.calls.append(("put_log_events", kwargs))


def test_sink_creates_streams_batches_lines_and_forgets_finished_streams():
    client = RecordingLogs()
    sink = CloudWatchLogSink(
        endpoint_url="http://unused", region="us-east-1", flush_interval=60, client=client
    )
    sink.start()
    try:
        sink.open("/aws/batch/job", "jd/default/a")
        sink.open("/aws/batch/job", "jd/default/b")  # an attempt that prints nothing
        for n in range(500):
            sink.write("/aws/batch/job", "jd/default/a", [(n, f"line {n}")])
        sink.close("/aws/batch/job", "jd/default/a")
        sink.close("/aws/batch/job", "jd/default/b")
        assert sink.flush(timeout=5)
        assert sink.tracked_streams == 0
    finally:
        sink.shutdown()
    names = [name for name, _ in client.calls]
    assert names.count("create_log_group") == 1
    assert names.count("create_log_stream") == 2
    puts = [kwargs for name, kwargs in client.calls if name == "put_log_events"]
    assert len(puts) == 1  # 500 lines, one call
    assert [e["message"] for e in puts[0]["logEvents"]] == [f"line {n}" for n in range(500)]
