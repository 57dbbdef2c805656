"""The Batch engine running real processes, with CloudWatch Logs served by moto."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sluice.local.batch import BatchEngine
from sluice.local.batch.testing import EventRecorder
from tests.local.batch.processes.helpers import Harness, batch_client, serve

# Local-only acceleration: a 60 s timeout (the API minimum) fires after 0.6 s and the 30 s
# SIGTERM→SIGKILL grace is 0.3 s. Everything else runs at AWS's pace.
TIMEOUT_SCALE = 0.01


@pytest.fixture(autouse=True)
def quiet_request_logs() -> Iterator[None]:
    """werkzeug logs every request at INFO; thousands of CreateLogStream lines would only slow the tests."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def logs(moto_endpoint: str) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def batch(moto_endpoint: str) -> Iterator[Harness]:
    events = EventRecorder()
    engine = BatchEngine(
        endpoint_url=moto_endpoint, emit_event=events, max_local_vcpus=4, timeout_scale=TIMEOUT_SCALE
    )
    engine.start()
    server, thread = serve(engine)
    try:
        yield Harness(engine, None, events, batch_client(server.server_port))
    finally:
        server.shutdown()
        thread.join()
        engine.stop()
