"""SigV4 verification against requests signed by botocore itself.

Requests come from real boto3 clients (captured at ``before-send``, so nothing goes on the wire),
from botocore's signers used directly, and, in one test, over a real loopback HTTP server, so the
raw request target werkzeug hands over is the one urllib3 sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.compat
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from sluice.local.iam import sigv4
from sluice.local.iam.sigv4 import SignatureError, SignedRequest

AK = "AKIDSLUICETEST000001"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:4566"
T = datetime(2026, 3, 14, 12, 30, 0)  # naive UTC, as botocore's clock returns it
T_UTC = T.replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs every request in this module at T."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: T)


class _Captured(Exception):
    pass


def _client(service: str, *, session_token: str | None = None, region: str = "us-east-1") -> Any:
    # signature_version: boto3 presigns S3 URLs with SigV2 in us-east-1 unless told otherwise.
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=AK,
        aws_secret_access_key=SK,
        aws_session_token=session_token,
        config=Config(
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
            signature_version="s3v4" if service == "s3" else None,
        ),
    )


def _environ(method: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """The WSGI environ werkzeug's dev server builds for this request (latin-1 strings)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": target.encode("utf-8").decode("latin-1"),
        "RAW_URI": target.encode("utf-8").decode("latin-1"),
        "PATH_INFO": "/ignored",
        "QUERY_STRING": parts.query,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    environ.setdefault("HTTP_HOST", parts.netloc)
    return environ


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        position = body.tell() if hasattr(body, "tell") else None
        data = body.read()
        if position is not None:
            body.seek(position)
        return data if isinstance(data, bytes) else data.encode()
    return bytes(body)


def _from_prepared(prepared: Any) -> SignedRequest:
    headers = {
        name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in prepared.headers.items()
    }
    body = _body_bytes(prepared.body)
    return SignedRequest.from_wsgi(_environ(prepared.method, prepared.url, headers), body)


def capture(
    service: str, operation: str, *, session_token: str | None = None, **params: Any
) -> SignedRequest:
    """The request a boto3 client sends for ``operation``, as the server would see it."""
    client = _client(service, session_token=session_token)
    box: dict[str, Any] = {}

    def before_send(request: Any, **_: Any) -> None:
        box["request"] = request
        raise _Captured

    client.meta.events.register("before-send", before_send)
    with pytest.raises(_Captured):
        getattr(client, operation)(**params)
    return _from_prepared(box["request"])


def presigned(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> SignedRequest:
    return SignedRequest.from_wsgi(_environ(method, url, headers or {}), b"")


def check(req: SignedRequest, *, now: datetime = T_UTC, secret: str = SK, **kwargs: Any) -> sigv4.Credential:
    credential = sigv4.parse(req)
    assert credential is not None
    sigv4.verify(req, credential, secret, now, **kwargs)
    return credential


def rejected(req: SignedRequest, *, now: datetime = T_UTC, secret: str = SK) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        check(req, now=now, secret=secret)
    return caught.value


# -- requests boto3 sends are accepted ---------------------------------------------------------

S3_KEYS = [
    "plain.txt",
    "with space/and  two spaces.txt",
    "plus+sign+.csv",
    "percent%20literal%.txt",
    "unicodé/ß/日本語/🙂.parquet",
    "tilde~and-_.chars",
    "a//double//slash/",
    "/leading-slash",
    "dir/./dot/../dotdot",
    "quote'paren(star)*!$&,;=:@",
]


@pytest.mark.parametrize("key", S3_KEYS)
def test_s3_object_requests_with_awkward_keys_verify(key: str) -> None:
    put = capture("s3", "put_object", Bucket="in-bucket", Key=key, Body=b"a,b\n1,2\n")
    get = capture("s3", "get_object", Bucket="in-bucket", Key=key, Range="bytes=0-3")
    for req in (put, get):
        credential = check(req)
        assert (credential.access_key, credential.region, credential.service) == (AK, "us-east-1", "s3")
        assert credential.date == "20260314" and credential.request_time == T_UTC
        assert not credential.presigned and credential.session_token is None


def test_s3_list_with_query_parameters_verifies() -> None:
    req = capture(
        "s3", "list_objects_v2", Bucket="in-bucket", Prefix="dir with space/é+", Delimiter="/", MaxKeys=7
    )
    assert "prefix=" in req.raw_query
    check(req)


def test_s3_multipart_parameters_without_values_verify() -> None:
    check(capture("s3", "create_multipart_upload", Bucket="in-bucket", Key="big file.bin"))
    check(capture("s3", "list_buckets"))


def test_states_request_verifies() -> None:
    req = capture(
        "stepfunctions",
        "start_execution",
        stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:pipeline",
        input='{"key": "in/a b.csv"}',
    )
    credential = check(req)
    assert credential.service == "states"


def test_sns_query_form_body_verifies() -> None:
    req = capture(
        "sns",
        "publish",
        TopicArn="arn:aws:sns:us-east-1:123456789012:alerts",
        Message="Job failed: 100% & more",
    )
    assert (req.header("content-type") or "").startswith("application/x-www-form-urlencoded")
    assert check(req).service == "sns"


def test_lambda_path_with_arn_verifies() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-trigger"
    req = capture("lambda", "invoke", FunctionName=arn, Payload=b'{"a": 1}')
    assert "arn%3Aaws%3Alambda" in req.raw_path
    check(req)
    check(capture("lambda", "get_function", FunctionName=arn, Qualifier="$LATEST"))


def test_batch_path_with_arn_verifies() -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/sluice-queue"
    req = capture("batch", "tag_resource", resourceArn=arn, tags={"k": "v w"})
    assert "arn%3Aaws%3Abatch" in req.raw_path
    check(req)
    check(capture("batch", "list_jobs", jobQueue="sluice-queue", jobStatus="RUNNING"))


def test_json_11_and_query_compatible_services_verify() -> None:
    check(capture("logs", "describe_log_groups", logGroupNamePrefix="/aws/lambda/"))
    check(capture("events", "put_events", Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]))
    check(capture("sqs", "list_queues", QueueNamePrefix="q"))
    check(capture("sts", "get_caller_identity"))


def test_session_token_header_is_captured() -> None:
    req = capture("stepfunctions", "list_state_machines", session_token="FwoGZXIvYXdzEXAMPLETOKEN==")
    assert check(req).session_token == "FwoGZXIvYXdzEXAMPLETOKEN=="
    s3_req = capture("s3", "get_object", Bucket="b", Key="k", session_token="tok/with+chars")
    assert check(s3_req).session_token == "tok/with+chars"


# -- botocore's signers used directly -----------------------------------------------------------


def _sign(signer: Any, request: AWSRequest) -> SignedRequest:
    signer.add_auth(request)
    prepared = request.prepare()
    return _from_prepared(prepared)


def test_sigv4auth_trims_and_collapses_header_values() -> None:
    creds = Credentials(AK, SK)
    request = AWSRequest(
        method="POST",
        url=f"{ENDPOINT}/",
        data=b'{"x": 1}',
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
            "X-Custom": "  spaced   out\tvalue  ",
        },
    )
    req = _sign(botocore.auth.SigV4Auth(creds, "states", "eu-west-1"), request)
    credential = check(req)
    assert "x-custom" in credential.signed_headers and credential.region == "eu-west-1"


def test_sigv4auth_normalises_non_s3_paths_like_botocore() -> None:
    creds = Credentials(AK, SK)
    request = AWSRequest(
        method="GET", url=f"{ENDPOINT}/2015-03-31//functions/./a%3Ab/../fn%20x/configuration"
    )
    check(_sign(botocore.auth.SigV4Auth(creds, "lambda", "us-east-1"), request))


def test_s3sigv4auth_signs_path_unnormalised() -> None:
    creds = Credentials(AK, SK)
    url = f"{ENDPOINT}/bucket/a//b/./c/../d%20e%2Bf"
    req = _sign(botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1"), AWSRequest(method="GET", url=url))
    check(req)
    # The same path normalised would be a different resource: S3 must not accept it.
    normalised = dataclasses.replace(req, raw_path="/bucket/a/b/d%20e%2Bf")
    assert rejected(normalised).code == "SignatureDoesNotMatch"


def test_sigv4queryauth_and_s3sigv4queryauth_verify() -> None:
    creds = Credentials(AK, SK, "session/token")
    query_request = AWSRequest(method="GET", url=f"{ENDPOINT}/?Action=GetCallerIdentity&Version=2011-06-15")
    botocore.auth.SigV4QueryAuth(creds, "sts", "us-east-1", expires=900).add_auth(query_request)
    req = presigned(query_request.prepare().url)
    credential = check(req)
    assert credential.presigned and credential.expires == 900 and credential.session_token == "session/token"

    s3_request = AWSRequest(method="PUT", url=f"{ENDPOINT}/bucket/some%20key%2B1")
    botocore.auth.S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=120).add_auth(s3_request)
    credential = check(presigned(s3_request.prepare().url, method="PUT"))
    assert credential.presigned and credential.service == "s3"


def test_precomputed_signing_key_is_used() -> None:
    req = capture("s3", "get_object", Bucket="b", Key="k")
    credential = sigv4.parse(req)
    assert credential is not None
    key = sigv4.signing_key(SK, credential.date, credential.region, credential.service)
    sigv4.verify(req, credential, "ignored-when-key-given", T_UTC, key=key)
    wrong = sigv4.signing_key("other", credential.date, credential.region, credential.service)
    with pytest.raises(SignatureError) as caught:
        sigv4.verify(req, credential, SK, T_UTC, key=wrong)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_signing_key_matches_botocore_derivation() -> None:
    signer = botocore.auth.SigV4Auth(Credentials(AK, SK), "iam", "us-east-1")
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/")
    request.context["timestamp"] = "20150830T123600Z"
    expected = signer.signature("string to sign", request)
    ours = hmac.new(sigv4.signing_key(SK, "20150830", "us-east-1", "iam"), b"string to sign", hashlib.sha256)
    assert ours.hexdigest() == expected


# -- tampering ---------------------------------------------------------------------------------


def _s3_req() -> SignedRequest:
    return capture("s3", "get_object", Bucket="in-bucket", Key="dir/file name.csv", VersionId="v1")


def _states_req() -> SignedRequest:
    return capture(
        "stepfunctions", "list_executions", stateMachineArn="arn:aws:states:us-east-1:1:stateMachine:p"
    )


def _sns_req() -> SignedRequest:
    return capture("sns", "publish", TopicArn="arn:aws:sns:us-east-1:1:t", Message="hello")


def _lambda_req() -> SignedRequest:
    return capture("lambda", "invoke", FunctionName="arn:aws:lambda:us-east-1:1:function:f", Payload=b"{}")


def _batch_req() -> SignedRequest:
    return capture("batch", "submit_job", jobName="j", jobQueue="q", jobDefinition="d")


FAMILIES: dict[str, tuple[Callable[[], SignedRequest], str, int]] = {
    "s3": (_s3_req, "SignatureDoesNotMatch", 403),
    "states": (_states_req, "InvalidSignatureException", 400),
    "sns": (_sns_req, "SignatureDoesNotMatch", 403),
    "lambda": (_lambda_req, "InvalidSignatureException", 403),
    "batch": (_batch_req, "InvalidSignatureException", 403),
}


def _with_header(req: SignedRequest, name: str, value: str) -> SignedRequest:
    headers = dict(req.headers)
    headers[name] = value
    return dataclasses.replace(req, headers=headers)


def _tamper(req: SignedRequest, what: str) -> SignedRequest:
    if what == "method":
        return dataclasses.replace(req, method="DELETE")
    if what == "path":
        return dataclasses.replace(req, raw_path=req.raw_path + "x")
    if what == "query":
        return dataclasses.replace(req, raw_query=(req.raw_query + "&" if req.raw_query else "") + "extra=1")
    if what == "header":
        return _with_header(req, "host", "127.0.0.1:4567")
    if what == "region":
        return _with_header(
            req, "authorization", req.headers["authorization"].replace("/us-east-1/", "/eu-west-1/")
        )
    raise AssertionError(what)


@pytest.mark.parametrize("what", ["method", "path", "query", "header", "region"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_tampered_request_is_refused_with_the_family_error(family: str, what: str) -> None:
    make, code, status = FAMILIES[family]
    req = make()
    check(req)
    error = rejected(_tamper(req, what))
    assert (error.code, error.status, error.service) == (code, status, family)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_wrong_secret_is_refused(family: str) -> None:
    make, code, status = FAMILIES[family]
    error = rejected(make(), secret=SK + "x")
    assert (error.code, error.status) == (code, status)


@pytest.mark.parametrize("family", ["states", "sns", "lambda", "batch"])
def test_tampered_body_is_refused_for_non_s3(family: str) -> None:
    make, code, status = FAMILIES[family]
    req = make()
    forged = dataclasses.replace(req, payload_sha256=lambda: hashlib.sha256(b"forged").hexdigest())
    error = rejected(forged)
    assert (error.code, error.status) == (code, status)


def test_s3_content_sha256_header_is_signed_and_used_literally() -> None:
    req = capture("s3", "put_object", Bucket="b", Key="k", Body=b"data")
    # The body is not read for S3: a different body hash function changes nothing.
    check(dataclasses.replace(req, payload_sha256=lambda: "0" * 64))
    error = rejected(_with_header(req, "x-amz-content-sha256", hashlib.sha256(b"other").hexdigest()))
    assert error.code == "SignatureDoesNotMatch"
    assert error.extra["AWSAccessKeyId"] == AK and "CanonicalRequest" in error.extra
    missing = dataclasses.replace(
        req, headers={k: v for k, v in req.headers.items() if k != "x-amz-content-sha256"}
    )
    error = rejected(missing)
    assert (error.code, error.status) == ("InvalidRequest", 400)


@pytest.mark.parametrize(
    ("family", "code", "status"),
    [
        ("s3", "AuthorizationHeaderMalformed", 400),
        ("states", "InvalidSignatureException", 400),
        ("sns", "SignatureDoesNotMatch", 403),
        ("lambda", "InvalidSignatureException", 403),
    ],
)
def test_scope_date_other_than_request_date_is_refused(family: str, code: str, status: int) -> None:
    req = FAMILIES[family][0]()
    forged = _with_header(
        req, "authorization", req.headers["authorization"].replace("/20260314/", "/20260313/")
    )
    error = rejected(forged)
    assert (error.code, error.status) == (code, status)
    if family == "s3":
        assert error.message.endswith("Invalid credential date. Date is not the same as X-Amz-Date.")
    else:
        assert error.message == (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            "'20260313' != '20260314', from '20260314T123000Z'."
        )


# -- clock skew and expiry ---------------------------------------------------------------------


@pytest.mark.parametrize("family", ["s3", "states", "sns", "batch"])
@pytest.mark.parametrize("minutes", [14, -14, 15, -15])
def test_fifteen_minutes_of_skew_are_accepted(family: str, minutes: int) -> None:
    check(FAMILIES[family][0](), now=T_UTC + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("family", "code", "status"),
    [
        ("s3", "RequestTimeTooSkewed", 403),
        ("states", "InvalidSignatureException", 400),
        ("sns", "SignatureDoesNotMatch", 403),
        ("batch", "InvalidSignatureException", 403),
    ],
)
@pytest.mark.parametrize("minutes", [16, -16])
def test_sixteen_minutes_of_skew_are_refused(family: str, code: str, status: int, minutes: int) -> None:
    error = rejected(FAMILIES[family][0](), now=T_UTC + timedelta(minutes=minutes))
    assert (error.code, error.status) == (code, status)
    if family == "s3":
        assert error.message == "The difference between the request time and the current time is too large."
        assert error.extra["RequestTime"] == "20260314T123000Z"
        assert error.extra["MaxAllowedSkewMilliseconds"] == "900000"
    elif minutes > 0:
        assert error.message == (
            "Signature expired: 20260314T123000Z is now earlier than 20260314T123100Z (20260314T124600Z - 15 min.)"
        )
    else:
        assert error.message == (
            "Signature not yet current: 20260314T123000Z is still later than 20260314T122900Z "
            "(20260314T121400Z + 15 min.)"
        )


def test_lambda_allows_five_minutes_of_skew() -> None:
    req = _lambda_req()
    check(req, now=T_UTC + timedelta(minutes=4, seconds=59))
    check(req, now=T_UTC - timedelta(minutes=5))
    error = rejected(req, now=T_UTC + timedelta(minutes=6))
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message.endswith("(20260314T123600Z - 5 min.)")
    credential = sigv4.parse(req)
    assert credential is not None
    sigv4.verify(req, credential, SK, T_UTC + timedelta(minutes=14), max_skew=timedelta(minutes=15))


def test_s3_presigned_url_verifies_until_it_expires() -> None:
    url = _client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": "out-bucket", "Key": "results/part 0001+x.parquet"}, ExpiresIn=300
    )
    req = presigned(url)
    credential = check(req)
    assert credential.presigned and credential.expires == 300
    check(req, now=T_UTC + timedelta(seconds=300))
    error = rejected(req, now=T_UTC + timedelta(seconds=301))
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert error.extra == {
        "X-Amz-Expires": "300",
        "Expires": "2026-03-14T12:35:00Z",
        "ServerTime": "2026-03-14T12:35:01Z",
    }


def test_s3_presigned_url_lives_up_to_seven_days() -> None:
    client = _client("s3")
    week = presigned(
        client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=604800)
    )
    check(week, now=T_UTC + timedelta(days=7))
    too_long = presigned(
        client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=604801)
    )
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(too_long)
    assert (caught.value.code, caught.value.status) == ("AuthorizationQueryParametersError", 400)


def test_s3_presigned_url_tampering_is_refused() -> None:
    url = _client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "in/a.csv"}, ExpiresIn=60
    )
    req = presigned(url, method="PUT")
    check(req)
    assert rejected(dataclasses.replace(req, raw_path="/b/in/b.csv")).code == "SignatureDoesNotMatch"
    assert rejected(dataclasses.replace(req, method="GET")).code == "SignatureDoesNotMatch"
    longer = req.raw_query.replace("X-Amz-Expires=60", "X-Amz-Expires=3600")
    assert rejected(dataclasses.replace(req, raw_query=longer)).code == "SignatureDoesNotMatch"


def test_s3_presigned_url_with_session_token() -> None:
    url = _client("s3", session_token="IQoJb3JpZ2luX2VjE/+=").generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}
    )
    assert check(presigned(url)).session_token == "IQoJb3JpZ2luX2VjE/+="


def test_query_presigned_url_follows_the_clock_skew_rule() -> None:
    # botocore presigns query-protocol operations for the method it would send them with: POST.
    url = _client("sts").generate_presigned_url("get_caller_identity", ExpiresIn=60)
    req = presigned(url, method="POST")
    check(req, now=T_UTC + timedelta(minutes=10))
    error = rejected(req, now=T_UTC + timedelta(minutes=16))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.message.startswith("Signature expired: 20260314T123000Z is now earlier than")


# -- malformed and missing credentials ---------------------------------------------------------


def test_requests_without_sigv4_parse_to_none() -> None:
    assert sigv4.parse(SignedRequest("GET", "/bucket/key", "versionId=1", {"Host": "h"})) is None
    assert sigv4.parse(SignedRequest("GET", "/bucket/key", "X-Amz-Meta=1", {})) is None


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("s3", "AuthorizationHeaderMalformed", 400),
        ("sns", "IncompleteSignature", 400),
        ("states", "IncompleteSignatureException", 400),
        ("lambda", "IncompleteSignatureException", 403),
    ],
)
def test_malformed_authorization_header(service: str, code: str, status: int) -> None:
    scope = f"{AK}/20260314/us-east-1/{service}/aws4_request"
    headers = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host",
        "X-Amz-Date": "20260314T123000Z",
    }
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(SignedRequest("GET", "/", "", headers))
    assert (caught.value.code, caught.value.status, caught.value.service) == (code, status, service)
    bad_scope = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={AK}/2026/us-east-1/{service}/aws4, "
        "SignedHeaders=host, Signature=00",
        "X-Amz-Date": "20260314T123000Z",
    }
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(SignedRequest("GET", "/", "", bad_scope))
    assert (caught.value.code, caught.value.status) == (code, status)


def test_missing_equal_sign_message_matches_aws() -> None:
    auth = f"AWS4-HMAC-SHA256 {AK}/20260314/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(SignedRequest("POST", "/", "", {"Authorization": auth}), service_hint="sts")
    assert caught.value.code == "IncompleteSignature"
    assert caught.value.message == (
        f"'{AK}/20260314/us-east-1/sts/aws4_request' not a valid key=value pair (missing equal-sign) in "
        f"Authorization header: '{auth}'."
    )


def test_missing_date_header() -> None:
    auth = f"AWS4-HMAC-SHA256 Credential={AK}/20260314/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(SignedRequest("GET", "/b/k", "", {"Authorization": auth}))
    assert (caught.value.code, caught.value.status) == ("AccessDenied", 403)
    assert caught.value.message == "AWS authentication requires a valid Date or x-amz-date header"
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(SignedRequest("GET", "/", "", {"Authorization": auth.replace("/s3/", "/logs/")}))
    assert caught.value.code == "IncompleteSignatureException"


def test_date_header_can_stand_in_for_x_amz_date() -> None:
    creds = Credentials(AK, SK)
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/", headers={"Date": "whatever"})
    req = _sign(botocore.auth.SigV4Auth(creds, "sts", "us-east-1"), request)
    assert req.header("x-amz-date") is None
    credential = check(req)
    assert credential.timestamp == "20260314T123000Z"


def test_s3_refuses_two_auth_mechanisms_and_other_algorithms() -> None:
    url = _client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    both = presigned(
        url, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x/20260314/us-east-1/s3/aws4_request"}
    )
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(both)
    assert (caught.value.code, caught.value.status) == ("InvalidArgument", 400)
    with pytest.raises(SignatureError) as caught:
        sigv4.parse(
            SignedRequest("GET", "/b/k", "", {"Authorization": "AWS AKID:c2lnbmF0dXJl"}), service_hint="s3"
        )
    assert (caught.value.code, caught.value.status) == ("InvalidArgument", 400)


@pytest.mark.parametrize(
    ("service", "code", "status", "message"),
    [
        (
            "s3",
            "InvalidAccessKeyId",
            403,
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        ("sns", "InvalidClientTokenId", 403, "The security token included in the request is invalid."),
        ("sts", "InvalidClientTokenId", 403, "The security token included in the request is invalid."),
        ("sqs", "InvalidClientTokenId", 403, "The security token included in the request is invalid."),
        (
            "states",
            "UnrecognizedClientException",
            400,
            "The security token included in the request is invalid.",
        ),
        (
            "logs",
            "UnrecognizedClientException",
            400,
            "The security token included in the request is invalid.",
        ),
        (
            "lambda",
            "UnrecognizedClientException",
            403,
            "The security token included in the request is invalid.",
        ),
        (
            "batch",
            "UnrecognizedClientException",
            403,
            "The security token included in the request is invalid.",
        ),
        ("ec2", "AuthFailure", 401, "AWS was not able to validate the provided access credentials"),
    ],
)
def test_unknown_access_key_errors(service: str, code: str, status: int, message: str) -> None:
    error = sigv4.unknown_access_key(service, "AKIDUNKNOWN")
    assert (error.code, error.status, error.message, error.service) == (code, status, message, service)


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("s3", "AccessDenied", 403),
        ("sns", "MissingAuthenticationToken", 403),
        ("states", "MissingAuthenticationTokenException", 400),
        ("lambda", "MissingAuthenticationTokenException", 403),
    ],
)
def test_missing_authentication_errors(service: str, code: str, status: int) -> None:
    error = sigv4.missing_authentication(service)
    assert (error.code, error.status) == (code, status)


# -- over a real loopback server ---------------------------------------------------------------


@pytest.fixture
def verifying_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """A werkzeug dev server that verifies every request; returns an error in the service's shape."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", botocore.compat.get_current_datetime)
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        req = SignedRequest.from_wsgi(environ, body)
        try:
            credential = sigv4.parse(req)
            assert credential is not None
            if credential.access_key != AK:
                raise sigv4.unknown_access_key(credential.service, credential.access_key)
            sigv4.verify(req, credential, SK, datetime.now(UTC))
        except SignatureError as error:
            status, headers, payload = error.response(environ["REQUEST_METHOD"], request_headers=req.headers)
            seen.append(error.code)
            start_response(f"{status} Error", headers)
            return [payload]
        seen.append("ok")
        if credential.service == "s3":
            start_response("200 OK", [("Content-Length", "0"), ("ETag", '"0"')])
            return [b""]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_boto3_over_http_verifies_and_gets_aws_shaped_errors(verifying_server: tuple[str, list[str]]) -> None:
    endpoint, seen = verifying_server

    def client(service: str, secret: str = SK, key: str = AK) -> Any:
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    s3 = client("s3")
    for key in S3_KEYS:
        s3.put_object(Bucket="in-bucket", Key=key, Body=b"x")
    s3.list_objects_v2(Bucket="in-bucket", Prefix="dir with space/é+")
    client("lambda").get_function(FunctionName="arn:aws:lambda:us-east-1:1:function:f", Qualifier="1")
    assert seen == ["ok"] * (len(S3_KEYS) + 2)

    with pytest.raises(ClientError) as caught:
        client("s3", secret="wrong").put_object(Bucket="in-bucket", Key="a b", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as caught:
        client("lambda", key="AKIDNOBODY").get_function(FunctionName="f")
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert (
        caught.value.response["Error"]["Message"] == "The security token included in the request is invalid."
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
