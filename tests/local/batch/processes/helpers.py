"""Helpers both Batch suites use: the engine served over HTTP, a boto3 client, resource shortcuts."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from werkzeug.serving import make_server

from sluice.local.batch import BatchEngine
from sluice.local.batch.testing import EventRecorder


class Harness:
    """A boto3 Batch client on an engine, with shortcuts for resources and waits."""

    def __init__(self, engine: BatchEngine, executor: Any, events: EventRecorder, client: Any) -> None:
        self.engine = engine
        self.executor = executor
        self.events = events
        self.client = client

    def environment(
        self, name: str = "ce", *, kind: str = "FARGATE", max_vcpus: int = 16, **extra: Any
    ) -> str:
        return self.client.create_compute_environment(
            computeEnvironmentName=name,
            type="MANAGED",
            computeResources={
                "type": kind,
                "maxvCpus": max_vcpus,
                "subnets": ["subnet-1"],
                "securityGroupIds": ["sg-1"],
                # required for EC2 and Spot resources (API_ComputeResource)
                **({"instanceRole": "ecsInstanceRole"} if kind in ("EC2", "SPOT") else {}),
            },
            **extra,
        )["computeEnvironmentArn"]

    def queue(
        self, name: str = "q", *, priority: int = 1, environments: tuple[str, ...] = ("ce",), **extra: Any
    ) -> str:
        order = [{"order": i + 1, "computeEnvironment": ce} for i, ce in enumerate(environments)]
        return self.client.create_job_queue(
            jobQueueName=name, priority=priority, computeEnvironmentOrder=order, **extra
        )["jobQueueArn"]

    def definition(
        self,
        name: str = "jd",
        *,
        vcpus: str = "1",
        memory: str = "2048",
        command: tuple[str, ...] = ("run",),
        platform: str = "FARGATE",
        **extra: Any,
    ) -> dict[str, Any]:
        container = {
            "image": f"sluice/{name}",
            "command": list(command),
            "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}],
            **extra.pop("container", {}),
        }
        return self.client.register_job_definition(
            jobDefinitionName=name,
            type="container",
            platformCapabilities=[platform],
            containerProperties=container,
            **extra,
        )

    def basic(
        self, *, max_vcpus: int = 16, vcpus: str = "1", memory: str = "2048", **definition: Any
    ) -> None:
        self.environment(max_vcpus=max_vcpus)
        self.queue()
        self.definition(vcpus=vcpus, memory=memory, **definition)

    def submit(self, name: str = "job", queue: str = "q", definition: str = "jd", **extra: Any) -> str:
        return self.client.submit_job(jobName=name, jobQueue=queue, jobDefinition=definition, **extra)[
            "jobId"
        ]

    def describe(self, job_id: str) -> dict[str, Any]:
        return self.client.describe_jobs(jobs=[job_id])["jobs"][0]

    def status_now(self, job_id: str) -> str:
        """The job's status once the scheduler is between passes (it holds the lock for a whole pass)."""
        with self.engine.lock:
            job = self.engine.scheduler.find_job(job_id)
            assert job is not None
            return job.status

    def wait(self, job_id: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.wait_status(job_id, status, timeout)

    def process(self, job_id: str, attempt: int = 1, timeout: float = 5.0) -> Any:
        """(FakeExecutor only) the fake process of a job's attempt, once launched."""
        return self.executor.process(job_id, attempt, timeout)


def serve(engine: BatchEngine) -> tuple[Any, threading.Thread]:
    server = make_server("127.0.0.1", 0, engine.wsgi_app, threaded=True)
    # A short poll interval only makes shutdown() return quickly at teardown.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="batch-api-test", daemon=True
    )
    thread.start()
    return server, thread


def batch_client(port: int) -> Any:
    return boto3.client(
        "batch",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def in_region(batch: Harness, region: str) -> Harness:
    """The same engine through a client signing for another region (Batch is regional)."""
    client = boto3.client(
        "batch",
        endpoint_url=batch.client.meta.endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return Harness(batch.engine, batch.executor, batch.events, client)
