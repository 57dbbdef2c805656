"""Error responses are parsed by botocore into the ClientError code, message and status intended.

Each rendered response is handed to a real boto3 client (``before-send`` returns it instead of
going to the network), so the assertions are on what a caller of boto3 would see; the protocol
parsers are also exercised directly for the shapes boto3 clients do not pick by default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from sluice.local.iam import errors, sigv4

ENDPOINT = "http://127.0.0.1:4566"

# signing name -> (boto3 client name, operation, params)
CALLS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "s3": ("s3", "get_object", {"Bucket": "b", "Key": "k"}),
    "sns": ("sns", "list_topics", {}),
    "sts": ("sts", "get_caller_identity", {}),
    "iam": ("iam", "list_users", {}),
    "cloudformation": ("cloudformation", "list_stacks", {}),
    "ec2": ("ec2", "describe_instances", {}),
    "states": ("stepfunctions", "list_state_machines", {}),
    "logs": ("logs", "describe_log_groups", {}),
    "events": ("events", "list_rules", {}),
    "kms": ("kms", "list_keys", {}),
    "ecr": ("ecr", "describe_repositories", {}),
    "ssm": ("ssm", "describe_parameters", {}),
    "sqs": ("sqs", "list_queues", {}),
    "monitoring": ("cloudwatch", "list_metrics", {}),
    "lambda": ("lambda", "list_functions", {}),
    "batch": ("batch", "describe_job_queues", {}),
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def call_with(signing_service: str, render: Any, *, operation: str | None = None) -> ClientError:
    """Make the boto3 call for ``signing_service``; the server's answer is ``render(request)``."""
    name, default_operation, params = CALLS[signing_service]
    if operation == "head_object":
        params = {"Bucket": "b", "Key": "k"}
    client = boto3.client(
        name,
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
    )

    def before_send(request: Any, **_: Any) -> AWSResponse:
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        status, response_headers, body = render(request.method, headers)
        return AWSResponse(request.url, status, HeadersDict(response_headers), _Raw(body))

    client.meta.events.register("before-send", before_send)
    with pytest.raises(ClientError) as caught:
        getattr(client, operation or default_operation)(**params)
    return caught.value


def _seen(error: ClientError) -> tuple[str, str, int]:
    response: Any = error.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


@pytest.mark.parametrize("service", list(CALLS))
@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("SignatureDoesNotMatch", "The request signature we calculated does not match: <&> \"'", 403),
        ("ThrottlingException", "Rate exceeded", 400),
        ("InternalFailure", "Something broke", 500),
    ],
)
def test_every_protocol_round_trips_code_message_status(
    service: str, code: str, message: str, status: int
) -> None:
    def render(method: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return errors.error_response(service, method, code, message, status, request_headers=headers)

    error = call_with(service, render)
    assert _seen(error) == (code, message, status)
    assert error.response["ResponseMetadata"]["RequestId"]


def test_s3_error_document_and_extras() -> None:
    def render(method: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return errors.error_response(
            "s3", method, "RequestTimeTooSkewed", "The difference...", 403,
            {"RequestTime": "20260314T123000Z", "MaxAllowedSkewMilliseconds": "900000"},
        )  # fmt: skip

    status, headers, body = render("GET", {})
    assert body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>RequestTimeTooSkewed</Code>'
    )
    names = [name for name, _ in headers]
    assert "x-amz-request-id" in names and "x-amz-id-2" in names
    request_id = dict(headers)["x-amz-request-id"]
    assert re.fullmatch(r"[0-9A-F]{16}", request_id)
    error = call_with("s3", render)
    assert error.response["Error"]["RequestTime"] == "20260314T123000Z"
    assert error.response["Error"]["MaxAllowedSkewMilliseconds"] == "900000"
    assert error.response["ResponseMetadata"]["HostId"]


def test_s3_head_has_no_body_and_boto3_reports_the_status() -> None:
    def render(method: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return errors.error_response("s3", method, "AccessDenied", "Access Denied", 403)

    status, headers, body = render("HEAD", {})
    assert body == b"" and dict(headers)["Content-Length"] == "0"
    error = call_with("s3", render, operation="head_object")
    assert _seen(error) == ("403", "Forbidden", 403)


def test_query_error_document_shape() -> None:
    status, headers, body = errors.error_response("sns", "POST", "InvalidClientTokenId", "bad", 403)
    assert body.decode() == (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
        "<Code>InvalidClientTokenId</Code><Message>bad</Message></Error>"
        f"<RequestId>{dict(headers)['x-amzn-RequestId']}</RequestId></ErrorResponse>"
    )
    assert dict(headers)["Content-Type"] == "text/xml"


def test_json_error_document_shape() -> None:
    status, headers, body = errors.error_response("states", "POST", "UnrecognizedClientException", "bad", 400)
    assert json.loads(body) == {"__type": "UnrecognizedClientException", "message": "bad"}
    assert dict(headers)["x-amzn-ErrorType"] == "UnrecognizedClientException"
    assert dict(headers)["Content-Type"] == "application/x-amz-json-1.0"
    assert (
        dict(errors.error_response("logs", "POST", "X", "y", 400)[1])["Content-Type"]
        == "application/x-amz-json-1.1"
    )


def test_rest_json_error_document_shape() -> None:
    status, headers, body = errors.error_response("lambda", "GET", "UnrecognizedClientException", "bad", 403)
    assert json.loads(body) == {"message": "bad"}
    assert dict(headers)["x-amzn-ErrorType"] == "UnrecognizedClientException"
    # Lambda's own modeled exceptions carry "Type" and a capitalised "Message".
    _, _, body = errors.error_response(
        "lambda", "GET", "ResourceNotFoundException", "Function not found", 404
    )
    assert json.loads(body) == {"Type": "User", "Message": "Function not found"}


def test_query_compatible_json_services_report_the_query_code() -> None:
    _, headers, _ = errors.error_response("sqs", "POST", "AccessDenied", "no", 403)
    assert dict(headers)["x-amzn-query-error"] == "AccessDenied;Sender"


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("s3", "AccessDenied", 403),
        ("sns", "AuthorizationError", 403),
        ("sts", "AccessDenied", 403),
        ("iam", "AccessDenied", 403),
        ("cloudformation", "AccessDenied", 403),
        ("ec2", "UnauthorizedOperation", 403),
        ("sqs", "AccessDenied", 403),
        ("monitoring", "AccessDenied", 403),
        ("states", "AccessDeniedException", 400),
        ("logs", "AccessDeniedException", 400),
        ("events", "AccessDeniedException", 400),
        ("kms", "AccessDeniedException", 400),
        ("ssm", "AccessDeniedException", 400),
        ("lambda", "AccessDeniedException", 403),
        ("batch", "AccessDeniedException", 403),
    ],
)
def test_access_denied_per_service(service: str, code: str, status: int) -> None:
    message = f"User: arn:aws:iam::123456789012:user/dev is not authorized to perform: {service}:Action"

    def render(method: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return errors.access_denied(service, method, message, request_headers=headers)

    assert _seen(call_with(service, render)) == (code, message, status)


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ("s3", sigv4.unknown_access_key("s3", "AKIDNOBODY")),
        ("sns", sigv4.unknown_access_key("sns", "AKIDNOBODY")),
        ("states", sigv4.unknown_access_key("states", "AKIDNOBODY")),
        ("lambda", sigv4.unknown_access_key("lambda", "AKIDNOBODY")),
        ("sqs", sigv4.unknown_access_key("sqs", "AKIDNOBODY")),
        ("ec2", sigv4.unknown_access_key("ec2", "AKIDNOBODY")),
        ("sts", sigv4.missing_authentication("sts")),
        ("logs", sigv4.missing_authentication("logs")),
        ("batch", sigv4.missing_authentication("batch")),
    ],
)
def test_signature_errors_render_as_boto3_reports_them(service: str, error: sigv4.SignatureError) -> None:
    def render(method: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        return error.response(method, request_headers=headers)

    seen = call_with(service, render)
    assert _seen(seen) == (error.code, error.message, error.status)
    if service == "s3":
        assert seen.response["Error"]["AWSAccessKeyId"] == "AKIDNOBODY"


@pytest.mark.parametrize(
    ("protocol", "service"),
    [
        ("rest-xml", "s3"),
        ("query", "sns"),
        ("ec2", "ec2"),
        ("json", "states"),
        ("rest-json", "batch"),
        ("smithy-rpc-v2-cbor", "monitoring"),
        ("query", "monitoring"),
    ],
)
def test_protocol_parsers_directly(protocol: str, service: str) -> None:
    request_headers = {
        "smithy-rpc-v2-cbor": {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
        "query": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    }.get(protocol)
    status, headers, body = errors.error_response(
        service,
        "POST",
        "InvalidClientTokenId",
        "The security token ü is invalid." * 10,
        403,
        request_headers=request_headers,
    )
    parsed = create_parser(protocol).parse(
        {"status_code": status, "headers": HeadersDict(headers), "body": body}, None
    )
    assert parsed["Error"]["Code"] == "InvalidClientTokenId"
    assert parsed["Error"]["Message"] == "The security token ü is invalid." * 10
    assert parsed["ResponseMetadata"]["RequestId"]


def test_service_info_maps_signing_names_to_botocore_services() -> None:
    assert errors.service_info("states").service_name == "stepfunctions"
    assert errors.service_info("monitoring").service_name == "cloudwatch"
    assert errors.service_info("events").service_name == "events"
    assert errors.service_info("lambda").protocol == "rest-json"
    assert errors.service_info("sns").protocol == "query"
    assert errors.service_info("sqs").query_compatible


def test_request_ids() -> None:
    assert re.fullmatch(r"[0-9A-F]{16}", errors.request_id("s3"))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", errors.request_id())
    assert errors.request_id() != errors.request_id()
