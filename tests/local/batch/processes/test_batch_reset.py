"""`POST /moto-api/reset`: refused unless the cloud opted in, then only for the administrator,
and then whole: Batch (jobs, queues, compute environments, definitions, running processes),
Lambda and moto's services all start empty (docs/aws-behaviour.md#the-endpoint-as-a-security-boundary).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sluice.local.cloud import LocalCloud
from tests.helpers import ROOT
from tests.local.helpers import wait_until

pytestmark = pytest.mark.timeout(60)


def reset(cloud: LocalCloud, key: tuple[str, str] | None) -> requests.Response:
    url = f"{cloud.endpoint_url}/moto-api/reset"
    request = AWSRequest(method="POST", url=url, data=b"")
    if key is not None:
        SigV4Auth(Credentials(*key), "moto", "us-east-1").add_auth(request)
    return requests.post(url, headers=dict(request.headers.items()), data=b"", timeout=30)


def admin_key(cloud: LocalCloud) -> tuple[str, str]:
    return cloud.admin.access_key, cloud.admin.secret_key


def test_reset_is_refused_unless_allowed(tmp_path: Path) -> None:
    with LocalCloud(project_root=tmp_path) as cloud:
        cloud.client("s3").create_bucket(Bucket="kept")
        for key in (None, admin_key(cloud)):
            response = reset(cloud, key)
            assert response.status_code == 403, response.text
        assert "--allow-reset" in response.text
        assert [b["Name"] for b in cloud.client("s3").list_buckets()["Buckets"]] == ["kept"]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_reset_clears_everything_and_stops_jobs(tmp_path: Path) -> None:
    pid_file = tmp_path / "job.pid"
    with LocalCloud(project_root=ROOT, allow_reset=True) as cloud:
        batch, s3, iam = cloud.client("batch"), cloud.client("s3"), cloud.client("iam")
        s3.create_bucket(Bucket="gone")
        batch.create_compute_environment(
            computeEnvironmentName="ce",
            type="MANAGED",
            computeResources={"type": "FARGATE", "maxvCpus": 2, "subnets": ["s"], "securityGroupIds": ["g"]},
        )
        batch.create_job_queue(
            jobQueueName="q", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}]
        )
        batch.register_job_definition(
            jobDefinitionName="jd",
            type="container",
            platformCapabilities=["FARGATE"],
            containerProperties={
                "image": "busybox",
                "command": ["sh", "-c", f"echo $$ > {pid_file}; echo started; exec sleep 300"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "0.25"},
                    {"type": "MEMORY", "value": "512"},
                ],
            },
        )
        job_id = batch.submit_job(jobName="j", jobQueue="q", jobDefinition="jd")["jobId"]
        wait_until(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING", timeout=20)
        pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10))
        role = iam.create_role(
            RoleName="fn",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "def handler(event, context):\n    return event\n")
        cloud.client("lambda").create_function(
            FunctionName="fn",
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
        )
        # Someone else's key, even one allowed everything, may not reset.
        iam.create_user(UserName="other")
        iam.put_user_policy(
            UserName="other",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        other = iam.create_access_key(UserName="other")["AccessKey"]
        assert reset(cloud, (other["AccessKeyId"], other["SecretAccessKey"])).status_code == 403
        assert reset(cloud, None).status_code == 403  # unsigned

        response = reset(cloud, admin_key(cloud))
        assert response.status_code == 200, response.text

        wait_until(lambda: not process_alive(pid), timeout=10)
        batch = cloud.client("batch")  # the administrator's key still works
        assert batch.describe_compute_environments()["computeEnvironments"] == []
        assert batch.describe_job_queues()["jobQueues"] == []
        assert batch.describe_job_definitions()["jobDefinitions"] == []
        assert batch.describe_jobs(jobs=[job_id])["jobs"] == []
        assert cloud.client("s3").list_buckets()["Buckets"] == []
        assert cloud.client("lambda").list_functions()["Functions"] == []
        assert [u["UserName"] for u in cloud.client("iam").list_users()["Users"]] == ["sluice-local-admin"]
        # Nothing the old engine held is written after the reset: the job's log stream is gone.
        assert cloud.batch_engine.flush(timeout=10)
        logs = cloud.client("logs")
        streams = [
            stream["logStreamName"]
            for group in logs.describe_log_groups()["logGroups"]
            for stream in logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]
        ]
        assert streams == []
