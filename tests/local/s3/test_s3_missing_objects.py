"""A missing object answers 404 only to a caller that may list the bucket, as on AWS.

https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html and API_HeadObject.html,
"Permissions": without s3:ListBucket on the bucket, S3 answers 403 AccessDenied instead
(docs/aws-behaviour.md#s3-missing-objects).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice.local.cloud import LocalCloud
from tests.local.helpers import FakeBatch, FakeLambda

pytestmark = pytest.mark.timeout(60)

BUCKET = "data-bucket"
GET_ONLY = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
LIST = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}
TRUST = {
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
}


@pytest.fixture
def cloud_with(tmp_path: Path) -> Iterator[Callable[..., LocalCloud]]:
    clouds: list[LocalCloud] = []

    def start(**options: Any) -> LocalCloud:
        cloud = LocalCloud(
            project_root=tmp_path,
            state_dir=tmp_path / "state",
            batch_engine_factory=FakeBatch,
            lambda_runtime_factory=FakeLambda,
            **options,
        )
        cloud.start()
        clouds.append(cloud)
        return cloud

    yield start
    for cloud in clouds:
        cloud.stop()


def role_client(cloud: LocalCloud, *statements: dict[str, Any]) -> Any:
    """An S3 client signing as a role allowed `statements`, with the bucket and one object made."""
    iam = cloud.client("iam")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="reader",
        PolicyName="read",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    admin = cloud.client("s3")
    admin.create_bucket(Bucket=BUCKET)
    admin.put_object(Bucket=BUCKET, Key="present.txt", Body=b"here")
    env = cloud.iam.credentials_for_role(role, "session-1", "lambda.amazonaws.com")
    return boto3.client(
        "s3",
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        config=Config(retries={"max_attempts": 1}),
    )


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    response: dict[str, Any] = caught.value.response
    return response


def test_without_list_bucket_a_missing_key_is_access_denied(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with()
    s3 = role_client(cloud, GET_ONLY)
    got = error_of(lambda: s3.get_object(Bucket=BUCKET, Key="missing.txt"))
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert got["Error"]["Code"] == "AccessDenied"
    assert got["Error"]["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/reader/session-1 is not authorized to perform: "
        f"s3:ListBucket on resource: arn:aws:s3:::{BUCKET} because no identity-based policy allows the "
        "s3:ListBucket action"
    )
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"] == got["ResponseMetadata"]["RequestId"]
    head = error_of(lambda: s3.head_object(Bucket=BUCKET, Key="missing.txt"))
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert head["Error"]["Code"] == "403"  # a HEAD's error has no body: botocore reports the status
    # The record says what was checked and why, not that GetObject itself was refused.
    record = cloud.iam.audit.denials[0]
    assert record["outcome"] == "denied"
    assert record["action"] == "s3:ListBucket" and record["resource"] == f"arn:aws:s3:::{BUCKET}"
    assert record["operation"] == "s3:GetObject"
    assert "key does not exist" in record["note"] and record["note"] in record["message"]
    assert [r["operation"] for r in cloud.iam.audit.denials] == ["s3:GetObject", "s3:HeadObject"]


def test_with_list_bucket_a_missing_key_is_no_such_key(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with()
    s3 = role_client(cloud, GET_ONLY, LIST)
    got = error_of(lambda: s3.get_object(Bucket=BUCKET, Key="missing.txt"))
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert got["Error"]["Code"] == "NoSuchKey"
    head = error_of(lambda: s3.head_object(Bucket=BUCKET, Key="missing.txt"))
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert head["Error"]["Code"] == "404"
    assert cloud.iam.audit.denials == []


def test_an_existing_object_is_read_without_list_bucket(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with()
    s3 = role_client(cloud, GET_ONLY)
    assert s3.get_object(Bucket=BUCKET, Key="present.txt")["Body"].read() == b"here"
    assert s3.head_object(Bucket=BUCKET, Key="present.txt")["ContentLength"] == 4
    assert cloud.iam.audit.denials == []


def test_the_administrator_sees_404(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with()
    role_client(cloud, GET_ONLY)
    s3 = cloud.client("s3")
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key="missing.txt"))["Error"]["Code"] == "NoSuchKey"
    assert error_of(lambda: s3.head_object(Bucket=BUCKET, Key="missing.txt"))["Error"]["Code"] == "404"
    assert cloud.iam.audit.denials == []


def test_a_missing_bucket_or_version_keeps_its_answer(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with()
    s3 = role_client(
        cloud,
        GET_ONLY,
        {"Effect": "Allow", "Action": "s3:GetObject*", "Resource": "arn:aws:s3:::*/*"},
    )
    cloud.client("s3").put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    got = error_of(lambda: s3.get_object(Bucket="no-such-bucket", Key="k"))
    assert got["Error"]["Code"] == "NoSuchBucket"
    version = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"
    got = error_of(lambda: s3.get_object(Bucket=BUCKET, Key="present.txt", VersionId=version))
    assert got["Error"]["Code"] == "NoSuchVersion"
    head = error_of(lambda: s3.head_object(Bucket=BUCKET, Key="present.txt", VersionId=version))
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert cloud.iam.audit.denials == []


def test_audit_mode_keeps_404_and_records_the_check(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with(iam="audit")
    s3 = role_client(cloud, GET_ONLY)
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key="missing.txt"))["Error"]["Code"] == "NoSuchKey"
    [record] = cloud.iam.audit.denials
    assert record["outcome"] == "would-deny" and record["action"] == "s3:ListBucket"
    assert record["operation"] == "s3:GetObject" and "note" in record


def test_iam_off_changes_nothing(cloud_with: Callable[..., LocalCloud]) -> None:
    cloud = cloud_with(iam="off")
    s3 = role_client(cloud, GET_ONLY)
    assert error_of(lambda: s3.get_object(Bucket=BUCKET, Key="missing.txt"))["Error"]["Code"] == "NoSuchKey"
    assert cloud.iam.audit.denials == []
