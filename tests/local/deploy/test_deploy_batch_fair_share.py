"""A template with AWS::Batch::SchedulingPolicy and a JobQueue using it deploys onto the local
Batch engine (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-batch-schedulingpolicy.html:
Ref and Fn::GetAtt Arn give the policy's ARN)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sluice.local.batch import BatchEngine
from sluice.local.batch.testing import EventRecorder, FakeExecutor
from sluice.local.deploy import deploy_template
from tests.local.batch.processes.helpers import batch_client, serve

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Reservation:
    Type: Number
    Default: 25
Resources:
  Compute:
    Type: AWS::Batch::ComputeEnvironment
    Properties:
      Type: MANAGED
      ComputeResources: {Type: FARGATE, MaxvCpus: 4, Subnets: [subnet-1], SecurityGroupIds: [sg-1]}
  Tenants:
    Type: AWS::Batch::SchedulingPolicy
    Properties:
      Name: tenants
      FairsharePolicy:
        ShareDecaySeconds: 300
        ComputeReservation: !Ref Reservation
        ShareDistribution:
          - {ShareIdentifier: gold, WeightFactor: 0.5}
          - {ShareIdentifier: tenant*}
      Tags: {team: data}
  Queue:
    Type: AWS::Batch::JobQueue
    Properties:
      Priority: 1
      SchedulingPolicyArn: !Ref Tenants
      ComputeEnvironmentOrder:
        - {Order: 1, ComputeEnvironment: !Ref Compute}
  Definition:
    Type: AWS::Batch::JobDefinition
    Properties:
      Type: container
      PlatformCapabilities: [FARGATE]
      SchedulingPriority: 7
      ContainerProperties:
        Image: sluice/job
        Command: [run]
        ResourceRequirements:
          - {Type: VCPU, Value: "1"}
          - {Type: MEMORY, Value: "2048"}
Outputs:
  PolicyArn:
    Value: !GetAtt Tenants.Arn
"""


@pytest.fixture
def engine_port() -> Iterator[tuple[EventRecorder, int]]:
    events = EventRecorder()
    engine = BatchEngine(
        executor=FakeExecutor(auto_exit=lambda spec: 0), emit_event=events, max_local_vcpus=8
    )
    engine.start()
    server, thread = serve(engine)
    try:
        yield events, server.server_port
    finally:
        server.shutdown()
        thread.join()
        engine.stop()


def test_scheduling_policy_and_fair_share_queue_deploy(
    tmp_path: Path, engine_port: tuple[EventRecorder, int]
) -> None:
    events, port = engine_port
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    stack = deploy_template(template, endpoint_url=f"http://127.0.0.1:{port}", stack_name="fair")
    policy_arn = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/tenants"
    assert stack.resources["Tenants"] == stack.outputs["PolicyArn"] == policy_arn

    client = batch_client(port)
    [policy] = client.describe_scheduling_policies(arns=[policy_arn])["schedulingPolicies"]
    assert policy["fairsharePolicy"] == {
        "shareDecaySeconds": 300,
        "computeReservation": 25,  # a Number parameter becomes an integer
        "shareDistribution": [
            {"shareIdentifier": "gold", "weightFactor": 0.5},
            {"shareIdentifier": "tenant*"},
        ],
    }
    assert policy["tags"] == {"team": "data"}
    [queue] = client.describe_job_queues(jobQueues=[stack.resources["Queue"]])["jobQueues"]
    assert queue["schedulingPolicyArn"] == policy_arn

    # The deployed queue is a fair-share queue: jobs need a share identifier, and run.
    definition = stack.resources["Definition"]
    with pytest.raises(ClientError, match="shareIdentifier"):
        client.submit_job(jobName="anon", jobQueue=queue["jobQueueArn"], jobDefinition=definition)
    job_id = client.submit_job(
        jobName="t1", jobQueue=queue["jobQueueArn"], jobDefinition=definition, shareIdentifier="tenant1"
    )["jobId"]
    job = events.wait_status(job_id, "SUCCEEDED", timeout=10)
    assert (job["shareIdentifier"], job["schedulingPriority"]) == ("tenant1", 7)
