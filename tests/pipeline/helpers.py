"""What the end-to-end tests share: the deployed pipeline and waiting on conditions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sluice.aws import Clients
from sluice.stack import StackOutputs

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Pipeline:
    cloud: Any
    outputs: StackOutputs
    clients: Clients

    def upload(self, key: str, body: bytes, options: dict[str, Any] | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if options is not None:
            extra["Metadata"] = {"sluice-options": json.dumps(options)}
        self.clients.s3.put_object(Bucket=self.outputs.input_bucket, Key=key, Body=body, **extra)
        return self.clients.s3.head_object(Bucket=self.outputs.input_bucket, Key=key)

    def executions_for(self, key: str) -> list[dict[str, Any]]:
        found = []
        for page in self.clients.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.outputs.state_machine_arn
        ):
            for execution in page["executions"]:
                described = self.clients.sfn.describe_execution(executionArn=execution["executionArn"])
                if json.loads(described["input"]).get("input", {}).get("key") == key:
                    found.append(described)
        return found

    def wait_execution_for(self, key: str, timeout: float = 30) -> dict[str, Any]:
        return wait_for(lambda: self.executions_for(key), timeout, f"an execution for {key}")[0]

    def wait_finished(self, execution_arn: str, timeout: float = 90) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            described = self.clients.sfn.describe_execution(executionArn=execution_arn)
            return described if described["status"] != "RUNNING" else None

        return wait_for(finished, timeout, f"{execution_arn} to finish", interval=0.2)

    def notifications_about(self, text: str) -> list[dict[str, Any]]:
        return [n for n in self.cloud.notifications() if text in (n.get("message") or "")]

    def alerts_for(self, attribute: str, value: str) -> list[dict[str, Any]]:
        """Notifications whose message attribute `attribute` (run_id, input_key, ...) is `value`."""
        return [
            n
            for n in self.cloud.notifications()
            if (n.get("attributes") or {}).get(attribute, {}).get("Value") == value
        ]

    def the_alert_for(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        """Wait for the run's alert, let deliveries settle, and check it is the only one."""
        wait_for(lambda: self.alerts_for("run_id", run_id), timeout, f"the alert for {run_id}")
        self.cloud.settle(10)
        alerts = self.alerts_for("run_id", run_id)
        assert len(alerts) == 1, [a["subject"] for a in alerts]
        print(f"--- alert as received\nSubject: {alerts[0]['subject']}\n{alerts[0]['message']}")
        return alerts[0]

    def output_keys(self, prefix: str) -> list[str]:
        listing = self.clients.s3.list_objects_v2(Bucket=self.outputs.output_bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))
