"""A Batch engine with a fake executor (no processes), served over HTTP to a boto3 client."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sluice.local.batch import BatchEngine
from sluice.local.batch.testing import EventRecorder, FakeExecutor
from tests.local.batch.processes.helpers import Harness, batch_client, serve


@pytest.fixture
def make_batch() -> Iterator[Callable[..., Harness]]:
    started: list[tuple[BatchEngine, Any, threading.Thread]] = []

    def make(*, executor: FakeExecutor | None = None, start: bool = True, **engine_kwargs: Any) -> Harness:
        executor = executor or FakeExecutor()
        events = EventRecorder()
        engine = BatchEngine(executor=executor, emit_event=events, **engine_kwargs)
        if start:
            engine.start()
        server, thread = serve(engine)
        started.append((engine, server, thread))
        return Harness(engine, executor, events, batch_client(server.server_port))

    yield make
    for engine, server, thread in started:
        server.shutdown()
        thread.join()
        engine.stop()


@pytest.fixture
def batch(make_batch: Callable[..., Harness]) -> Harness:
    """Compute environments, not this machine's cores, bound what runs (unless a test says otherwise)."""
    return make_batch(max_local_vcpus=64)
