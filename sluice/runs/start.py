"""Starting runs: by hand (StartExecution with the documented input) or by dropping a file."""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.aws import Clients
from sluice.stack import StackOutputs


class RunNotStartedError(Exception):
    """A dropped file did not start an execution in time (rejected by the trigger, or no trigger)."""


def manual_run_name(key: str) -> str:
    """A fresh, valid execution name (<= 80 chars, [A-Za-z0-9_-]): re-running by hand is a new run."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", key.rsplit("/", 1)[-1]).strip("-_")[:40] or "run"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{base}-manual-{stamp}-{secrets.token_hex(3)}"


def execution_input(bucket: str, key: str, head: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = {"bucket": bucket, "key": key, "size": int(head["ContentLength"])}
    if head.get("VersionId") and head["VersionId"] != "null":
        source["versionId"] = head["VersionId"]
    if head.get("ETag"):
        source["etag"] = head["ETag"].strip('"')
    return {"input": source, "options": options}


def start_run(clients: Clients, outputs: StackOutputs, bucket: str, key: str, options: dict[str, Any]) -> str:
    head = clients.s3.head_object(Bucket=bucket, Key=key)
    payload = execution_input(bucket, key, head, options)
    response = clients.sfn.start_execution(
        stateMachineArn=outputs.state_machine_arn, name=manual_run_name(key), input=json.dumps(payload)
    )
    return response["executionArn"]


def drop_file(
    clients: Clients,
    outputs: StackOutputs,
    path: Path,
    key: str | None,
    options: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Upload like any producer would; returns the key and the PutObject/HeadObject identity."""
    key = key or f"{outputs.input_prefix}{path.name}"
    extra: dict[str, Any] = {}
    if options:
        extra["Metadata"] = {"sluice-options": json.dumps(options)}
    clients.s3.upload_file(str(path), outputs.input_bucket, key, ExtraArgs=extra or None)
    head = clients.s3.head_object(Bucket=outputs.input_bucket, Key=key)
    return key, head


def find_execution_for(
    clients: Clients, outputs: StackOutputs, key: str, head: dict[str, Any], timeout_s: float = 30.0
) -> str:
    """The execution the trigger started for this object version, waiting for it to appear."""
    version = head.get("VersionId")
    etag = head.get("ETag", "").strip('"')
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        paginator = clients.sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=outputs.state_machine_arn):
            for execution in page["executions"]:
                arn = execution["executionArn"]
                if arn in seen:
                    continue
                described = json.loads(clients.sfn.describe_execution(executionArn=arn).get("input") or "{}")
                source = described.get("input", {})
                if source.get("key") == key and (
                    (version and source.get("versionId") == version)
                    or (not version and source.get("etag") == etag)
                ):
                    return arn
                seen.add(arn)
        time.sleep(0.2)
    raise RunNotStartedError(
        f"no execution started for s3://{outputs.input_bucket}/{key} within {timeout_s:.0f} s; "
        "the trigger may have rejected it: see `sluice notifications`"
    )
