"""The endpoint as a security boundary: what a browser page, another local user or a rebound DNS
name can send is refused before it reaches any service (docs/aws-behaviour.md#the-endpoint-as-a-security-boundary)."""

from __future__ import annotations

import http.client
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice.local.cloud import LocalCloud
from tests.local.helpers import FakeBatch, FakeLambda, Local

pytestmark = pytest.mark.timeout(60)

JOB_DEFINITION = json.dumps(
    {
        "jobDefinitionName": "pwn",
        "type": "container",
        "containerProperties": {"image": "x", "command": ["id"]},
    }
)


def raw(
    local: Local, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", local.cloud.port, timeout=10)
    try:
        headers.setdefault("Host", f"127.0.0.1:{local.cloud.port}")
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def nothing_was_created(local: Local) -> None:
    assert local.batch.requests == [], "the Batch engine was reached"
    assert local.client("s3").list_buckets()["Buckets"] == []


def test_the_reported_cross_origin_text_plain_post_is_refused(local: Local) -> None:
    # The attack from the round-one report: a "simple" request a browser sends without preflight.
    status, headers, body = raw(
        local,
        "POST",
        "/v1/registerjobdefinition?X-Amz-Credential=x/20240101/us-east-1/batch/aws4_request",
        JOB_DEFINITION.encode(),
        **{"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    assert status == 403
    assert b"Origin: http://evil.example" in body
    assert not any(name.startswith("access-control-") for name in headers)
    nothing_was_created(local)


def test_an_unsigned_request_is_refused(local: Local) -> None:
    status, headers, body = raw(
        local,
        "POST",
        "/v1/registerjobdefinition",
        JOB_DEFINITION.encode(),
        **{"Content-Type": "application/json"},
    )
    assert status == 403
    assert headers["x-amzn-errortype"].startswith("MissingAuthenticationToken")
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    status, _, _ = raw(local, "PUT", "/evil-bucket")  # S3, unsigned
    assert status == 403
    nothing_was_created(local)


def test_a_presigned_looking_query_without_a_signature_is_refused(local: Local) -> None:
    status, _, _ = raw(
        local,
        "POST",
        "/v1/registerjobdefinition?X-Amz-Credential=x/20240101/us-east-1/batch/aws4_request",
        JOB_DEFINITION.encode(),
        **{"Content-Type": "text/plain"},
    )
    assert status in (400, 403)
    nothing_was_created(local)


def test_a_foreign_host_header_is_refused(local: Local) -> None:
    # DNS rebinding: a page on attacker.example whose name now resolves to 127.0.0.1.
    status, _, body = raw(local, "PUT", "/evil-bucket", **{"Host": f"attacker.example:{local.cloud.port}"})
    assert status == 403 and b"DNS rebinding" in body
    status, _, _ = raw(local, "PUT", "/evil-bucket", **{"Host": "127.0.0.1:1"})  # wrong port
    assert status == 403
    nothing_was_created(local)


def test_preflights_and_fetch_metadata_from_other_sites_are_refused(local: Local) -> None:
    status, headers, _ = raw(
        local, "OPTIONS", "/", **{"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"}
    )
    assert status == 403 and "access-control-allow-origin" not in headers
    status, _, _ = raw(local, "PUT", "/evil-bucket", **{"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    nothing_was_created(local)


def client_with(local: Local, service: str, access_key: str, secret: str, token: str | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=local.cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("s3", lambda c: c.create_bucket(Bucket="evil-bucket"), "SignatureDoesNotMatch"),
        (
            "batch",
            lambda c: c.register_job_definition(**json.loads(JOB_DEFINITION)),
            "InvalidSignatureException",
        ),
        ("stepfunctions", lambda c: c.list_state_machines(), "InvalidSignatureException"),
        ("sns", lambda c: c.create_topic(Name="evil"), "SignatureDoesNotMatch"),
    ],
)
def test_a_wrong_signature_gets_the_services_error(local: Local, service: str, call: Any, code: str) -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html
    client = client_with(local, service, local.cloud.admin.access_key, "not-the-secret")
    with pytest.raises(ClientError) as caught:
        call(client)
    assert caught.value.response["Error"]["Code"] == code
    nothing_was_created(local)


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("s3", lambda c: c.list_buckets(), "InvalidAccessKeyId"),
        ("batch", lambda c: c.describe_job_queues(), "UnrecognizedClientException"),
        ("sns", lambda c: c.list_topics(), "InvalidClientTokenId"),
    ],
)
def test_an_unknown_key_gets_the_services_error(local: Local, service: str, call: Any, code: str) -> None:
    client = client_with(local, service, "testing", "testing")
    with pytest.raises(ClientError) as caught:
        call(client)
    assert caught.value.response["Error"]["Code"] == code


def test_a_role_session_key_needs_its_session_token(local: Local) -> None:
    iam = local.client("iam")
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    env = local.cloud.iam.credentials_for_role(role, "fn", "lambda.amazonaws.com")
    without_token = client_with(local, "sts", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        without_token.get_caller_identity()
    with_token = client_with(
        local, "sts", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
    )
    assert with_token.get_caller_identity()["Arn"] == "arn:aws:sts::123456789012:assumed-role/fn/fn"


def test_a_role_whose_trust_policy_names_another_service_cannot_be_assumed(local: Local) -> None:
    from sluice.local.iam.backend import RoleAssumeError

    iam = local.client("iam")
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    role = iam.create_role(RoleName="job", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    with pytest.raises(RoleAssumeError, match="does not allow lambda.amazonaws.com"):
        local.cloud.iam.credentials_for_role(role, "fn", "lambda.amazonaws.com")


def test_a_denial_names_principal_action_and_resource(local: Local) -> None:
    iam = local.client("iam")
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    local.client("s3").create_bucket(Bucket="data")
    env = local.cloud.iam.credentials_for_role(role, "session-1", "lambda.amazonaws.com")
    s3 = client_with(
        local, "s3", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
    )
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="data", Key="k", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert caught.value.response["Error"]["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/reader/session-1 is not authorized to perform: "
        "s3:PutObject on resource: arn:aws:s3:::data/k because no identity-based policy allows the "
        "s3:PutObject action"
    )
    [record] = local.cloud.iam.audit.denials
    assert record["outcome"] == "denied" and record["role"] == role
    lines = (local.cloud.state_dir / "iam.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["action"] == "s3:PutObject"


def test_the_administrator_credentials_file_is_private(local: Local) -> None:
    path = local.cloud.credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert f"AWS_ACCESS_KEY_ID={local.cloud.admin.access_key}" in text
    assert local.cloud.admin.access_key != "testing"


@pytest.fixture
def cloud_with(tmp_path: Path) -> Iterator[Any]:
    clouds: list[LocalCloud] = []

    def start(**options: Any) -> LocalCloud:
        cloud = LocalCloud(
            project_root=tmp_path,
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


def _denied_put(cloud: LocalCloud) -> Any:
    iam = cloud.client("iam")
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    cloud.client("s3").create_bucket(Bucket="data")
    env = cloud.iam.credentials_for_role(role, "s", "lambda.amazonaws.com")
    s3 = boto3.client(
        "s3",
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    return s3.put_object(Bucket="data", Key="k", Body=b"x")


def test_audit_mode_allows_and_records_what_enforce_would_deny(cloud_with: Any) -> None:
    cloud = cloud_with(iam="audit")
    _denied_put(cloud)
    [record] = cloud.iam.audit.denials
    assert record["outcome"] == "would-deny" and record["action"] == "s3:PutObject"


def test_off_mode_authorizes_nothing_but_still_authenticates(cloud_with: Any) -> None:
    cloud = cloud_with(iam="off")
    _denied_put(cloud)
    assert cloud.iam.audit.denials == []
    status = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=10)
    try:
        status.request("PUT", "/evil-bucket", headers={"Host": f"127.0.0.1:{cloud.port}"})
        assert status.getresponse().status == 403
    finally:
        status.close()


def test_a_fixed_administrator_key_only_when_asked(cloud_with: Any) -> None:
    cloud = cloud_with(fixed_admin_key=("testing", "testing"))
    s3 = boto3.client(
        "s3",
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="works")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["works"]


def test_an_allowed_origin_is_served(cloud_with: Any) -> None:
    cloud = cloud_with(allowed_origins=["http://localhost:3000"])
    connection = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=10)
    try:
        connection.request(
            "GET", "/", headers={"Host": f"localhost:{cloud.port}", "Origin": "http://localhost:3000"}
        )
        response = connection.getresponse()
        response.read()
        # Served past the Origin check, and refused only because it is unsigned.
        assert response.status == 403 and b"Origin" not in response.read()
    finally:
        connection.close()


def test_a_signed_request_naming_no_known_operation_is_refused(local: Local) -> None:
    """What the gate cannot map to an IAM action it cannot authorize: refused, even for the
    administrator, and recorded."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{local.cloud.endpoint_url}/v1/launchmissiles"
    request = AWSRequest(method="POST", url=url, data=b"{}", headers={"Content-Type": "application/json"})
    admin = local.cloud.admin
    SigV4Auth(Credentials(admin.access_key, admin.secret_key), "batch", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    status, response_headers, body = raw(local, "POST", "/v1/launchmissiles", b"{}", **headers)
    assert status == 403 and response_headers["x-amzn-errortype"].startswith("AccessDeniedException")
    assert b"cannot map it to an IAM action" in body
    assert local.batch.requests == []
    assert local.cloud.iam.audit.denials[-1]["action"] == "unknown"
