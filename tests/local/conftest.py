"""Fixtures for the local cloud's own tests: a running LocalCloud with fake engines."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.local.cloud import EngineContext, LocalCloud
from tests.local.helpers import FakeBatch, FakeLambda, Local


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    engines: dict[str, Any] = {}

    def batch_factory(context: EngineContext) -> FakeBatch:
        engines["batch"] = FakeBatch(context)
        return engines["batch"]

    def lambda_factory(context: EngineContext) -> FakeLambda:
        engines["lambda"] = FakeLambda(context)
        return engines["lambda"]

    threads_before = set(threading.enumerate())
    cloud = LocalCloud(
        project_root=tmp_path,
        state_dir=tmp_path / "state",
        batch_engine_factory=batch_factory,
        lambda_runtime_factory=lambda_factory,
    )
    with cloud:
        yield Local(cloud, engines["batch"], engines["lambda"])
    leaked = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
