"""LocalCloud as a whole: lifecycle, environment for child processes, delegation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from sluice.local.cloud import EngineContext, LocalCloud
from tests.local.helpers import FakeBatch, FakeLambda, Local, drain_queue, queue_with_rule, service_role


@pytest.mark.timeout(30)
def test_environment_points_children_at_the_endpoint(local: Local) -> None:
    cloud = local.cloud
    assert os.environ["AWS_ENDPOINT_URL"] == cloud.endpoint_url
    assert os.environ["MOTO_PORT"] == str(cloud.port)  # moto's Step Functions tasks call it
    local.client("s3").create_bucket(Bucket="from-parent")

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import boto3; print([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert child.stdout.strip() == "['from-parent']"


@pytest.mark.timeout(30)
def test_start_and_stop(tmp_path: Path) -> None:
    saved = os.environ.get("AWS_ENDPOINT_URL")
    threads_before = set(threading.enumerate())
    engines: dict[str, Any] = {}

    def batch(context: EngineContext) -> FakeBatch:
        engines["context"] = context
        engines["batch"] = FakeBatch(context)
        return engines["batch"]

    cloud = LocalCloud(project_root=tmp_path, batch_engine_factory=batch, lambda_runtime_factory=FakeLambda)
    with cloud:
        assert engines["batch"].started
        context = engines["context"]
        assert context.endpoint_url == cloud.endpoint_url and context.project_root == tmp_path
        state_dir = cloud.state_dir
        assert state_dir.is_dir()
        with pytest.raises(RuntimeError, match="already running in this process"):
            LocalCloud(project_root=tmp_path).start()
    assert engines["batch"].stopped
    assert os.environ.get("AWS_ENDPOINT_URL") == saved
    assert not state_dir.exists()  # a temporary state dir goes with the cloud
    assert [t for t in threading.enumerate() if t not in threads_before and t.is_alive()] == []
    cloud.stop()  # idempotent


@pytest.mark.timeout(30)
def test_stop_aborts_running_executions_and_terminates_their_jobs(tmp_path: Path) -> None:
    engines: dict[str, FakeBatch] = {}

    def batch(context: EngineContext) -> FakeBatch:
        engines["batch"] = FakeBatch(context)
        return engines["batch"]

    with LocalCloud(
        project_root=tmp_path, batch_engine_factory=batch, lambda_runtime_factory=FakeLambda
    ) as cloud:
        definition = {
            "StartAt": "Run",
            "States": {
                "Run": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::batch:submitJob.sync",
                    "Parameters": {"JobName": "j", "JobQueue": "q", "JobDefinition": "d"},
                    "End": True,
                }
            },
        }
        sfn = cloud.client("stepfunctions")
        role = service_role(cloud.client("iam"), "r", "states.amazonaws.com")
        machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)[
            "stateMachineArn"
        ]
        sfn.start_execution(stateMachineArn=machine, name="left-running")
        job = engines["batch"].wait_for_job()
        engines["batch"].wait_until_polled()
    assert job["status"] == "FAILED"
    assert [op for op, _ in engines["batch"].requests if op == "terminatejob"] == ["terminatejob"]


@pytest.mark.timeout(30)
def test_emit_event_reaches_rules(local: Local) -> None:
    queue = queue_with_rule(
        local, "batch-events", {"source": ["aws.batch"], "detail": {"status": ["FAILED"]}}
    )
    local.cloud.emit_event(
        {
            "Source": "aws.batch",
            "DetailType": "Batch Job State Change",
            "Detail": json.dumps({"jobId": "j-1", "status": "FAILED"}),
            "Resources": ["arn:aws:batch:us-east-1:123456789012:job/j-1"],
            "Time": "2024-05-01T10:00:00Z",
        }
    )
    [event] = [json.loads(body) for body in drain_queue(local, queue)]
    assert event["detail"] == {"jobId": "j-1", "status": "FAILED"}
    assert event["time"] == "2024-05-01T10:00:00Z"


@pytest.mark.timeout(30)
def test_lambda_requests_go_to_the_runtime(local: Local) -> None:
    local.client("lambda").list_functions()
    assert local.lam.http_requests == ["GET /2015-03-31/functions"]


def test_deploy_delegates_to_the_template_deployer(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    import sluice.local.deploy as deploy

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(
        deploy, "deploy_template", lambda path, **kwargs: calls.append((path, kwargs)) or "stack"
    )
    template = Path("template.yaml")
    assert local.cloud.deploy(template, {"AlertEmail": "a@b.c"}) == "stack"
    assert calls == [
        (
            template,
            {
                "endpoint_url": local.cloud.endpoint_url,
                "region": "us-east-1",
                "account_id": "123456789012",
                "stack_name": "sluice",
                "parameter_overrides": {"AlertEmail": "a@b.c"},
                "project_root": local.cloud.project_root,
            },
        )
    ]
