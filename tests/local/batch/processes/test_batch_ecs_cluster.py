"""A compute environment's `ecsClusterArn` names a cluster ECS lists, in the CE's region.

"AWS Batch ... creates an Amazon ECS cluster" for a compute environment and reports it as
`ecsClusterArn` (https://docs.aws.amazon.com/batch/latest/userguide/compute_environments.html,
https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeEnvironmentDetail.html).
"""

from __future__ import annotations

import boto3
import pytest

from tests.local.batch.processes.helpers import in_region

pytestmark = pytest.mark.timeout(30)


def test_the_cluster_exists_while_the_compute_environment_does(batch, moto_endpoint):
    west = in_region(batch, "eu-west-1")
    west.environment("ce-ecs")
    [ce] = west.client.describe_compute_environments(computeEnvironments=["ce-ecs"])["computeEnvironments"]
    ecs = boto3.client(
        "ecs",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert ce["ecsClusterArn"].startswith("arn:aws:ecs:eu-west-1:")
    assert ce["ecsClusterArn"] in ecs.list_clusters()["clusterArns"]

    west.client.update_compute_environment(computeEnvironment="ce-ecs", state="DISABLED")
    west.client.delete_compute_environment(computeEnvironment="ce-ecs")
    # A deleted cluster is INACTIVE for a while before it goes
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html).
    [cluster] = ecs.describe_clusters(clusters=[ce["ecsClusterArn"]])["clusters"]
    assert cluster["status"] == "INACTIVE"
