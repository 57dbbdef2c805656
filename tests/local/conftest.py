"""Fixtures for the local cloud's own tests: a running LocalCloud with fake engines."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sluice.local.cloud import EngineContext, LocalCloud
from tests.local.fakes import FakeBatch, FakeLambda


@dataclass
class Local:
    cloud: LocalCloud
    batch: FakeBatch
    lam: FakeLambda

    def client(self, service: str) -> Any:
        return self.cloud.client(service)


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


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def queue_with_rule(local: Local, name: str, pattern: dict[str, Any], **target: Any) -> str:
    """An SQS queue receiving, through a rule on the default bus, the events matching `pattern`."""
    sqs, events = local.client("sqs"), local.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"{name}-rule", Targets=[{"Id": "q", "Arn": arn, **target}])
    return url


def drain_queue(local: Local, url: str) -> list[str]:
    """Every message body now in the queue, after EventBridge delivered what it had accepted."""
    assert local.cloud.events.wait_idle(10.0)
    sqs = local.client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
