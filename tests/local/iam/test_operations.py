"""Request -> operation identification, fed with requests serialized by botocore itself."""

from __future__ import annotations

import gzip
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.serialize
import pytest
from botocore.awsrequest import AWSResponse

from sluice.local.iam import operations
from sluice.local.iam.operations import Operation, UnknownOperationError, identify

REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:1"


@dataclass
class RawRequest:
    """What the loopback endpoint sees of one request."""

    signing: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def identify(self) -> Operation:
        return identify(self.signing, self.method, self.path, self.query, self.headers, self.body)


class _Sent(Exception):
    """Raised from before-send to stop botocore after the request was prepared."""


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Any:
        return iter([self._body])


def _raw(prepared: Any) -> RawRequest:
    parts = urllib.parse.urlsplit(prepared.url)
    headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in prepared.headers.items()}
    headers.setdefault("Host", parts.netloc)
    body = prepared.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    credential = headers["Authorization"].split("Credential=", 1)[1]
    signing = credential.split("/")[3]
    return RawRequest(signing, prepared.method, parts.path or "/", parts.query, headers, bytes(body))


def make_client(service: str, responder: Callable[[Any], AWSResponse | None] | None = None) -> Any:
    """A boto3 client whose requests are recorded in ``client.sent`` instead of being sent."""
    client = boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    sent: list[RawRequest] = []

    def before_send(request: Any, **_kwargs: Any) -> AWSResponse | None:
        sent.append(_raw(request))
        if responder is None:
            raise _Sent
        return responder(request)

    client.meta.events.register("before-send", before_send)
    client.sent = sent
    return client


def capture(service: str, method: str, **kwargs: Any) -> RawRequest:
    """The raw request boto3 sends for ``client.<method>(**kwargs)``."""
    client = make_client(service)
    with pytest.raises(_Sent):
        getattr(client, method)(**kwargs)
    sent: list[RawRequest] = client.sent
    return sent[-1]


def fake_response(
    request: Any, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
) -> AWSResponse:
    return AWSResponse(request.url, status, headers or {}, _Raw(body))


def serialized(service: str, protocol: str, operation: str, params: dict[str, Any]) -> RawRequest:
    """A request in a protocol boto3 does not choose by default (CBOR, query) for the same operation."""
    model = operations.service_model(service).operation_model(operation)
    request = botocore.serialize.create_serializer(protocol).serialize_to_request(params, model)
    body = request["body"]
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body).encode()
    signing = (
        model.service_model.metadata.get("signingName") or model.service_model.metadata["endpointPrefix"]
    )
    headers = {k: str(v) for k, v in request["headers"].items()}
    headers.setdefault("Host", "127.0.0.1:1")
    return RawRequest(signing, request["method"], request["url_path"], "", headers, body or b"")


# ---------------------------------------------------------------------------------------- signing names


def test_signing_names_map_to_botocore_services() -> None:
    assert operations.services_for_signing_name("states") == ("stepfunctions",)
    assert operations.services_for_signing_name("monitoring") == ("cloudwatch",)
    assert operations.services_for_signing_name("lambda")[0] == "lambda"
    assert operations.services_for_signing_name("s3")[:2] == ("s3", "s3control")
    assert operations.services_for_signing_name("events")[0] == "events"
    assert "apigatewaymanagementapi" in operations.services_for_signing_name("execute-api")
    assert operations.services_for_signing_name("no-such-service") == ()


def test_unknown_signing_name_is_unknown_operation() -> None:
    with pytest.raises(UnknownOperationError):
        identify("no-such-service", "GET", "/", "", {}, b"")


# ---------------------------------------------------------------------------------------- S3


@pytest.mark.parametrize(
    ("method", "kwargs", "operation"),
    [
        ("put_object", {"Bucket": "b", "Key": "k"}, "PutObject"),
        ("upload_part", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1}, "UploadPart"),
        ("copy_object", {"Bucket": "b", "Key": "k", "CopySource": "src/key"}, "CopyObject"),
        (
            "upload_part_copy",
            {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 2, "CopySource": "src/key"},
            "UploadPartCopy",
        ),
        ("create_multipart_upload", {"Bucket": "b", "Key": "k"}, "CreateMultipartUpload"),
        (
            "complete_multipart_upload",
            {
                "Bucket": "b",
                "Key": "k",
                "UploadId": "u",
                "MultipartUpload": {"Parts": [{"ETag": "e", "PartNumber": 1}]},
            },
            "CompleteMultipartUpload",
        ),
        ("abort_multipart_upload", {"Bucket": "b", "Key": "k", "UploadId": "u"}, "AbortMultipartUpload"),
        ("list_parts", {"Bucket": "b", "Key": "k", "UploadId": "u"}, "ListParts"),
        ("get_object", {"Bucket": "b", "Key": "k"}, "GetObject"),
        ("get_object", {"Bucket": "b", "Key": "k", "VersionId": "v", "Range": "bytes=0-9"}, "GetObject"),
        ("head_object", {"Bucket": "b", "Key": "k"}, "HeadObject"),
        ("head_bucket", {"Bucket": "b"}, "HeadBucket"),
        ("delete_object", {"Bucket": "b", "Key": "k"}, "DeleteObject"),
        ("delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}]}}, "DeleteObjects"),
        ("list_objects", {"Bucket": "b"}, "ListObjects"),
        ("list_objects_v2", {"Bucket": "b", "Prefix": "p/"}, "ListObjectsV2"),
        ("list_object_versions", {"Bucket": "b"}, "ListObjectVersions"),
        ("list_multipart_uploads", {"Bucket": "b"}, "ListMultipartUploads"),
        ("list_buckets", {}, "ListBuckets"),
        ("create_bucket", {"Bucket": "b"}, "CreateBucket"),
        ("delete_bucket", {"Bucket": "b"}, "DeleteBucket"),
        ("get_bucket_tagging", {"Bucket": "b"}, "GetBucketTagging"),
        (
            "put_bucket_tagging",
            {"Bucket": "b", "Tagging": {"TagSet": [{"Key": "a", "Value": "1"}]}},
            "PutBucketTagging",
        ),
        ("get_object_tagging", {"Bucket": "b", "Key": "k"}, "GetObjectTagging"),
        ("put_bucket_policy", {"Bucket": "b", "Policy": "{}"}, "PutBucketPolicy"),
        ("get_bucket_policy", {"Bucket": "b"}, "GetBucketPolicy"),
        (
            "put_bucket_notification_configuration",
            {"Bucket": "b", "NotificationConfiguration": {}},
            "PutBucketNotificationConfiguration",
        ),
        (
            "put_bucket_lifecycle_configuration",
            {"Bucket": "b", "LifecycleConfiguration": {"Rules": []}},
            "PutBucketLifecycleConfiguration",
        ),
        ("get_bucket_lifecycle_configuration", {"Bucket": "b"}, "GetBucketLifecycleConfiguration"),
        (
            "put_bucket_versioning",
            {"Bucket": "b", "VersioningConfiguration": {"Status": "Enabled"}},
            "PutBucketVersioning",
        ),
        ("get_bucket_location", {"Bucket": "b"}, "GetBucketLocation"),
    ],
)
def test_s3_operations_are_told_apart(method: str, kwargs: dict[str, Any], operation: str) -> None:
    op = capture("s3", method, **kwargs).identify()
    assert (op.service_model_name, op.name) == ("s3", operation)
    assert op.params.get("Bucket") == kwargs.get("Bucket")
    assert op.params.get("Key") == kwargs.get("Key")


@pytest.mark.parametrize("key", ["a b/c+d", "dir//file", "ünï/cödé.txt", "x?y=z&w", "%41", "/leading"])
def test_s3_keys_are_decoded(key: str) -> None:
    op = capture("s3", "get_object", Bucket="bkt", Key=key).identify()
    assert op.params["Key"] == key


def test_s3_query_and_header_members_are_parsed() -> None:
    op = capture("s3", "list_objects_v2", Bucket="b", Prefix="p/", Delimiter="/", MaxKeys=7).identify()
    assert op.params == {"Bucket": "b", "Prefix": "p/", "Delimiter": "/", "MaxKeys": 7, "EncodingType": "url"}
    op = capture("s3", "put_object", Bucket="b", Key="k", ACL="private", Metadata={"a": "1"}).identify()
    assert op.params["ACL"] == "private"
    assert op.params["Metadata"] == {"a": "1"}
    op = capture("s3", "get_object", Bucket="b", Key="k", VersionId="v1").identify()
    assert op.params["VersionId"] == "v1"


def test_s3_xml_payloads_are_parsed() -> None:
    op = capture(
        "s3", "delete_objects", Bucket="b", Delete={"Objects": [{"Key": "a"}, {"Key": "b", "VersionId": "v"}]}
    ).identify()
    assert op.params["Delete"]["Objects"] == [{"Key": "a"}, {"Key": "b", "VersionId": "v"}]
    op = capture(
        "s3", "create_bucket", Bucket="b", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    ).identify()
    assert op.params["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    op = capture("s3", "put_bucket_policy", Bucket="b", Policy='{"Version":"2012-10-17"}').identify()
    assert op.params["Policy"] == '{"Version":"2012-10-17"}'


def test_s3_object_bodies_are_never_read() -> None:
    def untouchable() -> bytes:
        raise AssertionError("the object body was read")

    for method, kwargs in (
        ("put_object", {"Bucket": "b", "Key": "k", "Body": b"x" * 1024}),
        ("upload_part", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1, "Body": b"x"}),
    ):
        raw = capture("s3", method, **kwargs)
        op = identify(raw.signing, raw.method, raw.path, raw.query, raw.headers, untouchable)
        assert "Body" not in op.params
        assert op.params["Key"] == "k"


def test_s3_virtual_hosted_requests() -> None:
    headers = {"Host": "my-bucket.localhost:4566"}
    op = identify("s3", "GET", "/some/key", "", headers, b"")
    assert (op.name, op.params["Bucket"], op.params["Key"]) == ("GetObject", "my-bucket", "some/key")
    op = identify("s3", "GET", "/", "list-type=2&prefix=a", {"Host": "b.s3.us-east-1.amazonaws.com"}, b"")
    assert (op.name, op.params["Bucket"], op.params["Prefix"]) == ("ListObjectsV2", "b", "a")
    op = identify("s3", "GET", "/", "", {"Host": "127.0.0.1:4566"}, b"")
    assert op.name == "ListBuckets"


def test_s3_deprecated_twins_lose() -> None:
    assert identify("s3", "PUT", "/b", "lifecycle", {}, b"").name == "PutBucketLifecycleConfiguration"
    assert identify("s3", "GET", "/b", "notification", {}, b"").name == "GetBucketNotificationConfiguration"
    assert identify("s3", "GET", "/b", "list-type=2", {}, b"").name == "ListObjectsV2"
    assert identify("s3", "GET", "/b", "", {}, b"").name == "ListObjects"
    assert identify("s3", "GET", "/b/", "", {}, b"").name == "ListObjects"


def test_s3control_requests_go_to_s3control() -> None:
    op = identify(
        "s3", "GET", "/v20180820/configuration/publicAccessBlock", "", {"x-amz-account-id": "1"}, b""
    )
    assert (op.service_model_name, op.name) == ("s3control", "GetPublicAccessBlock")


# ---------------------------------------------------------------------------------------- rest-json


def test_lambda_invoke_labels_query_headers_and_unread_payload() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    raw = capture(
        "lambda", "invoke", FunctionName=arn, Qualifier="live", InvocationType="Event", Payload=b"{}"
    )
    op = identify(
        raw.signing, raw.method, raw.path, raw.query, raw.headers, lambda: pytest.fail("payload read")
    )
    assert (op.service_model_name, op.name) == ("lambda", "Invoke")
    assert op.params == {"FunctionName": arn, "Qualifier": "live", "InvocationType": "Event"}


def test_lambda_longest_literal_template_wins() -> None:
    assert capture("lambda", "get_function", FunctionName="f").identify().name == "GetFunction"
    assert capture("lambda", "get_policy", FunctionName="f").identify().name == "GetPolicy"
    assert capture("lambda", "get_function_configuration", FunctionName="f").identify().name == (
        "GetFunctionConfiguration"
    )


def test_batch_json_body() -> None:
    op = capture(
        "batch",
        "submit_job",
        jobName="j",
        jobQueue="q",
        jobDefinition="d:1",
        containerOverrides={"environment": [{"name": "A", "value": "1"}]},
    ).identify()
    assert (op.service_model_name, op.name) == ("batch", "SubmitJob")
    assert op.params["containerOverrides"] == {"environment": [{"name": "A", "value": "1"}]}


def test_unmatched_rest_request_is_unknown() -> None:
    with pytest.raises(UnknownOperationError):
        identify("lambda", "GET", "/nowhere/at/all", "", {}, b"")


# ---------------------------------------------------------------------------------------- json / cbor


def test_json_target_protocol() -> None:
    op = capture("stepfunctions", "start_execution", stateMachineArn="arn:sm", input="{}").identify()
    assert (op.service_model_name, op.name, op.params) == (
        "stepfunctions",
        "StartExecution",
        {"stateMachineArn": "arn:sm", "input": "{}"},
    )
    op = capture("sqs", "send_message", QueueUrl="http://h/1/q", MessageBody="m").identify()
    assert (op.service_model_name, op.name, op.params["QueueUrl"]) == ("sqs", "SendMessage", "http://h/1/q")
    with pytest.raises(UnknownOperationError):
        identify("states", "POST", "/", "", {"X-Amz-Target": "AWSStepFunctions.NoSuchThing"}, b"{}")


def test_cloudwatch_in_each_protocol() -> None:
    params = {"Namespace": "Sluice", "MetricData": [{"MetricName": "m", "Value": 1.5}]}
    op = capture("cloudwatch", "put_metric_data", **params).identify()
    assert (op.service_model_name, op.name, op.params) == ("cloudwatch", "PutMetricData", params)
    for protocol in ("smithy-rpc-v2-cbor", "query"):
        op = serialized("cloudwatch", protocol, "PutMetricData", params).identify()
        assert (op.service_model_name, op.name) == ("cloudwatch", "PutMetricData"), protocol
        assert op.params["Namespace"] == "Sluice"
        assert op.params["MetricData"][0]["MetricName"] == "m"


def test_gzip_bodies_are_decoded() -> None:
    raw = capture(
        "cloudwatch", "put_metric_data", Namespace="N", MetricData=[{"MetricName": "m", "Value": 1.0}]
    )
    headers = {**raw.headers, "Content-Encoding": "gzip"}
    op = identify(raw.signing, raw.method, raw.path, raw.query, headers, gzip.compress(raw.body))
    assert op.params["Namespace"] == "N"


# ---------------------------------------------------------------------------------------- query / ec2


def test_query_protocol_maps_lists_and_structures() -> None:
    op = capture(
        "sns",
        "publish",
        TopicArn="arn:aws:sns:us-east-1:1:t",
        Message="m",
        MessageAttributes={"a": {"DataType": "String", "StringValue": "v"}},
    ).identify()
    assert (op.service_model_name, op.name) == ("sns", "Publish")
    assert op.params["MessageAttributes"] == {"a": {"DataType": "String", "StringValue": "v"}}
    op = capture(
        "iam", "create_role", RoleName="r", AssumeRolePolicyDocument="{}", Tags=[{"Key": "k", "Value": "v"}]
    ).identify()
    assert op.params["Tags"] == [{"Key": "k", "Value": "v"}]


def test_ec2_protocol_lists() -> None:
    op = capture(
        "ec2",
        "describe_subnets",
        Filters=[{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}],
        SubnetIds=["s-1"],
    ).identify()
    assert (op.service_model_name, op.name) == ("ec2", "DescribeSubnets")
    assert op.params["Filters"] == [{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}]
    assert op.params["SubnetIds"] == ["s-1"]


def test_sqs_query_protocol_with_queue_in_path() -> None:
    body = urllib.parse.urlencode(
        {"Action": "SendMessage", "Version": "2012-11-05", "MessageBody": "m"}
    ).encode()
    headers = {"Host": "127.0.0.1:4566", "Content-Type": "application/x-www-form-urlencoded"}
    op = identify("sqs", "POST", "/123456789012/jobs", "", headers, body)
    assert (op.name, op.params["QueueUrl"], op.params["MessageBody"]) == (
        "SendMessage",
        "http://127.0.0.1:4566/123456789012/jobs",
        "m",
    )
    op = identify("sqs", "GET", "/", "Action=GetQueueUrl&QueueName=jobs", {}, b"")
    assert (op.name, op.params) == ("GetQueueUrl", {"QueueName": "jobs"})


def test_action_query_parameter_on_rest_service_is_not_query_protocol() -> None:
    op = identify("s3", "GET", "/b/k", "Action=Foo", {}, b"")
    assert (op.name, op.params["Key"]) == ("GetObject", "k")


def test_sqs_json_body_is_plain_json() -> None:
    body = json.dumps({"QueueUrl": "http://h/1/q", "MaxNumberOfMessages": 2}).encode()
    headers = {"X-Amz-Target": "AmazonSQS.ReceiveMessage", "Content-Type": "application/x-amz-json-1.0"}
    op = identify("sqs", "POST", "/", "", headers, body)
    assert op.params == {"QueueUrl": "http://h/1/q", "MaxNumberOfMessages": 2}


# ---------------------------------------------------------------------------------------- caching


def test_routing_tables_are_built_once_and_identification_is_fast() -> None:
    raw = capture("s3", "get_object", Bucket="b", Key="k")
    raw.identify()
    router = operations._router("s3")
    start = time.perf_counter()
    for _ in range(2000):
        raw.identify()
    elapsed = time.perf_counter() - start
    assert operations._router("s3") is router
    assert elapsed < 2.0, f"2000 S3 identifications took {elapsed:.2f}s"
