"""A job's output goes to CloudWatch Logs in the job's region, and the job runs in that region.

CloudWatch Logs is regional and the awslogs driver sends to the region of the task
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html, `awslogs-region`);
Batch jobs log to `/aws/batch/job` in their own region
(https://docs.aws.amazon.com/batch/latest/userguide/using_awslogs.html).
"""

from __future__ import annotations

import boto3
import pytest

from tests.local.batch.processes.helpers import in_region

pytestmark = pytest.mark.timeout(30)


def test_job_logs_go_to_the_job_region(batch, moto_endpoint):
    west = in_region(batch, "eu-west-1")
    west.basic(command=("sh", "-c", 'echo "region=$AWS_REGION default=$AWS_DEFAULT_REGION"'))
    job_id = west.submit()
    stream = west.wait(job_id, "SUCCEEDED")["container"]["logStreamName"]
    assert batch.engine.flush(timeout=10)

    def logs(region: str):
        return boto3.client(
            "logs",
            endpoint_url=moto_endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    events = logs("eu-west-1").get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
    assert [event["message"] for event in events] == ["region=eu-west-1 default=eu-west-1"]
    east = logs("us-east-1").describe_log_streams(logGroupName="/aws/batch/job")["logStreams"]
    assert stream not in [s["logStreamName"] for s in east]
