"""A multi-node parallel job as real processes whose nodes talk over TCP (multinode.py).

The main node listens on a port; each child node finds it at
AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS (127.0.0.1 locally: every node runs on this host)
and sends its node index; the main node writes the sum and exits, which ends the job
(https://docs.aws.amazon.com/batch/latest/userguide/multi-node-parallel-jobs.html).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

NODE_SCRIPT = r"""
import os, socket, sys, time

index = int(os.environ["AWS_BATCH_JOB_NODE_INDEX"])
nodes = int(os.environ["AWS_BATCH_JOB_NUM_NODES"])
port = int(os.environ["PORT"])
if index == int(os.environ["AWS_BATCH_JOB_MAIN_NODE_INDEX"]):
    assert "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" not in os.environ
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(20)
    total = 0
    for _ in range(nodes - 1):
        connection, _ = server.accept()
        with connection:
            total += int(connection.makefile().readline())
    with open(os.environ["OUT"], "w") as out:
        out.write(str(total))
    print(f"sum={total} job={os.environ['AWS_BATCH_JOB_ID']}", flush=True)
else:
    address = os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"]
    deadline = time.monotonic() + 20
    while True:  # the main node may not listen yet
        try:
            connection = socket.create_connection((address, port), timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    print(f"sending {index} to {address}", flush=True)  # before the main node can end the job
    with connection:
        connection.sendall(f"{index}\n".encode())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def register(batch, name: str, command: list[str], environment: dict[str, str], num_nodes: int = 3) -> None:
    container: dict[str, Any] = {
        "image": f"sluice/{name}",
        "command": command,
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}],
        "environment": [{"name": key, "value": value} for key, value in environment.items()],
    }
    batch.client.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        nodeProperties={
            "numNodes": num_nodes,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
        },
    )


def setup(batch) -> None:
    batch.environment(kind="EC2", max_vcpus=4)
    batch.queue()


def messages(batch, logs, job_id: str) -> list[str]:
    assert batch.engine.flush(timeout=10)
    stream = batch.describe(job_id)["container"]["logStreamName"]
    events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True)
    return [event["message"] for event in events["events"]]


def test_nodes_talk_to_the_main_node(batch, logs, tmp_path: Path):
    setup(batch)
    out = tmp_path / "sum.txt"
    register(batch, "mnp", [sys.executable, "-c", NODE_SCRIPT], {"PORT": str(free_port()), "OUT": str(out)})
    job = batch.submit(definition="mnp")
    detail = batch.wait(job, "SUCCEEDED", timeout=40)
    assert out.read_text() == "3"  # node 1 + node 2
    assert detail["attempts"][0]["container"]["exitCode"] == 0
    assert messages(batch, logs, f"{job}#0") == [f"sum=3 job={job}#0"]
    assert messages(batch, logs, f"{job}#2") == ["sending 2 to 127.0.0.1"]
    parent = batch.describe(job)
    main = batch.describe(f"{job}#0")
    assert parent["attempts"][0]["container"]["logStreamName"] == main["container"]["logStreamName"]
    nodes = batch.client.list_jobs(multiNodeJobId=job, filters=[{"name": "JOB_NAME", "values": ["job"]}])
    statuses = [summary["status"] for summary in nodes["jobSummaryList"]]
    # A child still exiting when the main node ends is stopped (and may fail): the job is done.
    assert statuses[0] == "SUCCEEDED" and set(statuses[1:]) <= {"SUCCEEDED", "FAILED"}


def test_a_failing_main_node_fails_the_job_and_stops_the_children(batch, tmp_path: Path):
    setup(batch)
    started = tmp_path / "started"
    started.mkdir()
    script = (
        'touch "$STARTED/$AWS_BATCH_JOB_NODE_INDEX"; '
        'if [ "$AWS_BATCH_JOB_NODE_INDEX" = "$AWS_BATCH_JOB_MAIN_NODE_INDEX" ]; then '
        # the main node fails once both children are up
        'while [ ! -e "$STARTED/1" ] || [ ! -e "$STARTED/2" ]; do sleep 0.05; done; exit 4; fi; '
        "exec sleep 30"
    )
    register(batch, "fails", ["sh", "-c", script], {"STARTED": str(started)})
    job = batch.submit(definition="fails")
    detail = batch.wait(job, "FAILED", timeout=40)
    assert detail["statusReason"] == "Essential container in task exited"
    assert detail["attempts"][0]["container"]["exitCode"] == 4
    children = batch.client.describe_jobs(jobs=[f"{job}#1", f"{job}#2"])["jobs"]
    assert [(c["status"], c["statusReason"], c["container"]["exitCode"]) for c in children] == [
        ("FAILED", "Main node exited", 143)
    ] * 2
