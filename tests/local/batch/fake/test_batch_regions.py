"""Batch resources and jobs are regional: each belongs to the region its request was signed for.

AWS Batch is a regional service with one endpoint per region
(https://docs.aws.amazon.com/general/latest/gr/batch.html); its ARNs name the region
(`arn:aws:batch:<region>:<account>:job-queue/<name>`,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbatch.html#awsbatch-resources-for-iam-policies).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.local.batch.processes.helpers import Harness, in_region

pytestmark = pytest.mark.timeout(30)


def test_resources_and_arns_belong_to_the_request_region(batch: Harness) -> None:
    west = in_region(batch, "eu-west-1")
    ce_arn = west.environment("ce")
    queue_arn = west.queue("q")
    definition_arn = west.definition("jd")["jobDefinitionArn"]
    assert ce_arn == "arn:aws:batch:eu-west-1:123456789012:compute-environment/ce"
    assert queue_arn == "arn:aws:batch:eu-west-1:123456789012:job-queue/q"
    assert definition_arn == "arn:aws:batch:eu-west-1:123456789012:job-definition/jd:1"
    [ce] = west.client.describe_compute_environments()["computeEnvironments"]
    assert ce["ecsClusterArn"].startswith("arn:aws:ecs:eu-west-1:123456789012:cluster/")

    # us-east-1 sees none of them, and may reuse the names.
    assert batch.client.describe_compute_environments()["computeEnvironments"] == []
    assert batch.client.describe_job_queues()["jobQueues"] == []
    assert batch.client.describe_job_definitions()["jobDefinitions"] == []
    assert batch.environment("ce") == "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"


def test_jobs_belong_to_the_request_region(batch: Harness) -> None:
    west = in_region(batch, "eu-west-1")
    west.basic()
    job_id = west.submit()
    detail = west.wait(job_id, "RUNNING")
    assert detail["jobArn"] == f"arn:aws:batch:eu-west-1:123456789012:job/{job_id}"
    assert detail["jobQueue"] == "arn:aws:batch:eu-west-1:123456789012:job-queue/q"

    assert batch.client.describe_jobs(jobs=[job_id])["jobs"] == []  # unknown IDs are left out
    with pytest.raises(ClientError, match="not found"):
        batch.client.terminate_job(jobId=job_id, reason="wrong region")
    batch.basic()  # the same names in us-east-1 do not make eu-west-1's ARNs resolve here
    with pytest.raises(ClientError, match="not found"):
        batch.submit(queue="arn:aws:batch:eu-west-1:123456789012:job-queue/q")
    assert west.describe(job_id)["status"] == "RUNNING"
