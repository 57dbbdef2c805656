"""Starting runs: by hand (StartExecution with the documented input) or by dropping a file."""

from __future__ import annotations

import hashlib
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


# -- rerun ---------------------------------------------------------------------------------
# A rerun is a new execution whose input is the run's own plus {"rerun": {"of": RUN_ID}}: the
# state machine then uses RUN_ID for every key, so what the run already wrote (the manifest,
# each partial) is found and reused, and only the missing shards are transformed. (RedriveExecution
# would re-enter the Fail state the Catch led to and fail again, and a redriven .sync array
# state would resubmit every child: see docs/rerun.md.)

# Options a rerun may change: they say how this execution behaves, not what the result is.
RERUN_OPTION_KEYS = frozenset({"fail_shards", "hang_shards"})
MAX_RERUNS = 999


class RerunError(Exception):
    """The run cannot be rerun now; the message says why and what to do."""


def rerun_name(run_id: str, number: int) -> str:
    """Execution name of a run's `number`th rerun: deterministic, <= 80 chars, [A-Za-z0-9_-]."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    return f"{run_id[:55]}-{digest}-r{number}"


def run_id_of(execution: dict[str, Any]) -> str:
    """The run an execution belongs to: its own name, or for a rerun the run it reran."""
    payload = json.loads(execution.get("input") or "{}")
    rerun = payload.get("rerun") if isinstance(payload, dict) else None
    of = rerun.get("of") if isinstance(rerun, dict) else None
    return of if isinstance(of, str) and of else str(execution["name"])


def execution_arn_for(outputs: StackOutputs, name: str) -> str:
    return outputs.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def run_executions(clients: Clients, outputs: StackOutputs, run_id: str) -> list[dict[str, Any]]:
    """The run's original execution and its reruns, oldest first."""
    found = [clients.sfn.describe_execution(executionArn=execution_arn_for(outputs, run_id))]
    for number in range(1, MAX_RERUNS + 1):
        try:
            found.append(
                clients.sfn.describe_execution(
                    executionArn=execution_arn_for(outputs, rerun_name(run_id, number))
                )
            )
        except clients.sfn.exceptions.ExecutionDoesNotExist:
            break
    return found


def is_complete(execution: dict[str, Any]) -> bool:
    """SUCCEEDED with every shard in the result (a run that tolerated failed shards is not)."""
    if execution["status"] != "SUCCEEDED":
        return False
    output = json.loads(execution.get("output") or "{}")
    gaps = output.get("gaps") if isinstance(output, dict) else None
    return not (isinstance(gaps, dict) and gaps.get("tolerated") is True)


def start_rerun(
    clients: Clients, outputs: StackOutputs, run_id: str, option_changes: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """Start the next rerun of `run_id`; (None, latest execution) when the run is already complete."""
    unknown = sorted(set(option_changes) - RERUN_OPTION_KEYS)
    if unknown:
        raise RerunError(
            f"a rerun keeps the run's options; only {', '.join(sorted(RERUN_OPTION_KEYS))} may change, "
            f"not {', '.join(unknown)} (a different spec is a new run: sluice run)"
        )
    executions = run_executions(clients, outputs, run_id)
    latest = executions[-1]
    if latest["status"] in ("RUNNING", "PENDING_REDRIVE"):
        raise RerunError(f"run {run_id} is still running ({latest['name']}); wait for it, or stop it first")
    if is_complete(latest):
        return None, latest
    if len(executions) > MAX_RERUNS:
        raise RerunError(f"run {run_id} has been rerun {MAX_RERUNS} times; start a new run instead")
    payload = json.loads(executions[0]["input"])
    payload["options"] = {**(payload.get("options") or {}), **option_changes}
    payload["rerun"] = {"of": run_id}
    response = clients.sfn.start_execution(
        stateMachineArn=outputs.state_machine_arn,
        name=rerun_name(run_id, len(executions)),
        input=json.dumps(payload),
    )
    return response["executionArn"], latest
