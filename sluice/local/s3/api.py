"""The S3 request hook in front of moto: a request id per request, shared with the event hook,
the payload hash a request states checked against the body it carries, and a missing object's
404 answered as AccessDenied to a caller without s3:ListBucket on the bucket."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from moto.s3.models import s3_backends

from sluice.local.endpoint import StartResponse, WSGIApp, WSGIEnviron
from sluice.local.iam import errors, sigv4
from sluice.local.iam.backend import PARTITION, IamService, Identity
from sluice.local.s3.backend import RequestInfo, current_request, streaming_responses

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_ERROR_CODE = re.compile(rb"<Code>([^<]*)</Code>")
# Query parameters of GetObject/HeadObject themselves; any other names a subresource (?acl,
# ?tagging, ?uploadId, ?attributes, ...), which is another operation.
_OBJECT_READ_PARAMETERS = frozenset({"versionid", "partnumber"})
_OBJECT_READ_PREFIXES = ("response-", "x-amz-")


def payload_mismatch(environ: WSGIEnviron) -> tuple[str, str] | None:
    """(stated, computed) when the request's hex `x-amz-content-sha256` is not its body's SHA-256.

    With SigV4 header authentication the header is part of what was signed; S3 also hashes the
    body it received and refuses a request whose body does not match with
    `XAmzContentSHA256Mismatch` (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html,
    https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html). The body
    is read once, hashed once (hashlib releases the GIL on large buffers) and handed on as
    the same `bytes` object: moto's reader sees it without another copy.
    """
    stated = environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").strip()
    if not _HEX_SHA256.fullmatch(stated):
        return None  # UNSIGNED-PAYLOAD, STREAMING-* or absent: nothing stated about the body
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    data = stream.read()
    environ["wsgi.input"] = io.BytesIO(data)
    computed = hashlib.sha256(data).hexdigest()
    if computed != stated.lower():
        return stated, computed
    return None


def object_read(environ: WSGIEnviron) -> tuple[str, str, str | None] | None:
    """(bucket, key, versionId) when the request is a GetObject or HeadObject (path-style, as the
    loopback endpoint is addressed), else None."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return None
    bucket, _, key = str(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
    if not bucket or not key:
        return None
    version_id: str | None = None
    for name, value in parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True):
        lowered = name.lower()
        if lowered == "versionid":
            version_id = value
        elif lowered not in _OBJECT_READ_PARAMETERS and not lowered.startswith(_OBJECT_READ_PREFIXES):
            return None
    return bucket, key, version_id


class S3RequestContext:
    """WSGI hook in front of moto for `s3`: gives each request the id its event will carry.

    moto handles a request synchronously in the serving thread, so the id is visible to the
    notification hook through a context variable. The same id is returned to the client as
    `x-amz-request-id`.

    `iam` (the local IAM the gate uses, looked up per request): when moto answers a GetObject or
    HeadObject with 404 for a key that does not exist, the caller must also be allowed
    s3:ListBucket on the bucket to learn that; otherwise S3 answers 403 AccessDenied
    (docs/aws-behaviour.md#s3-missing-objects). None: moto's 404 always stands.
    """

    def __init__(self, moto_app: WSGIApp, iam: Callable[[], IamService] | None = None) -> None:
        self.moto_app = moto_app
        self.iam = iam

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        info = RequestInfo(uuid.uuid4().hex[:16].upper(), environ.get("REMOTE_ADDR") or "127.0.0.1")
        mismatch = payload_mismatch(environ)
        if mismatch is not None:
            return _sha256_mismatch(start_response, info, *mismatch, environ.get("REQUEST_METHOD") == "HEAD")
        token = current_request.set(info)
        streaming = streaming_responses.set(True)
        iam = self.iam() if self.iam is not None else None
        identity = environ.get("sluice.identity")
        read = object_read(environ) if iam is not None and iam.mode != "off" else None
        held: list[tuple[str, list[tuple[str, str]]]] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-amz-request-id"]
            headers.append(("x-amz-request-id", info.request_id))
            if read is not None and status.startswith("404") and exc_info is None:
                held.append((status, headers))  # answered below, once the body says which 404
                return lambda data: None
            return start_response(status, headers, exc_info)

        try:
            answer = self.moto_app(environ, start)
            if not held or iam is None or read is None or not isinstance(identity, Identity):
                return answer
            return self._missing_object(environ, start_response, answer, held[0], iam, identity, read, info)
        finally:
            streaming_responses.reset(streaming)
            current_request.reset(token)

    @staticmethod
    def _missing_object(
        environ: WSGIEnviron,
        start_response: StartResponse,
        answer: Iterable[bytes],
        held: tuple[str, list[tuple[str, str]]],
        iam: IamService,
        identity: Identity,
        read: tuple[str, str, str | None],
        info: RequestInfo,
    ) -> list[bytes]:
        """moto's 404 to a GetObject/HeadObject, or AccessDenied when the key is missing and the
        caller may not list the bucket. NoSuchBucket and NoSuchVersion stand as they are."""
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        bucket, _, version_id = read
        method = str(environ.get("REQUEST_METHOD"))
        status, headers = held
        if method == "HEAD":
            # No body to read the code from: moto answers 404 to a HEAD of a missing key of an
            # existing bucket, which is NoSuchKey unless a version was asked for.
            missing_key = (
                version_id is None and bucket in s3_backends[iam.identities.account_id][PARTITION].buckets
            )
        else:
            found = _ERROR_CODE.search(body)
            missing_key = found is not None and found.group(1) == b"NoSuchKey"
        denial = None
        if missing_key:
            denial = iam.authorizer.check_missing_object(
                identity, bucket, region=_region(environ, iam), operation=f"s3:{method.title()}Object"
            )
        if denial is None:
            start_response(status, headers)
            return [body]
        # S3's AccessDenied, as the gate answers it; a HEAD's carries no body.
        code, denied_headers, denied_body = errors.error_response(
            "s3", method, "AccessDenied", denial.message, 403, request_id_value=info.request_id
        )
        start_response(f"{code} Forbidden", denied_headers)
        return [denied_body]


def _sha256_mismatch(
    start_response: StartResponse, info: RequestInfo, stated: str, computed: str, head: bool
) -> list[bytes]:
    """S3's 400 XAmzContentSHA256Mismatch, with the two hashes as S3 reports them."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>XAmzContentSHA256Mismatch</Code>"
        "<Message>The provided 'x-amz-content-sha256' header does not match what was computed.</Message>"
        f"<ClientComputedContentSHA256>{escape(stated)}</ClientComputedContentSHA256>"
        f"<S3ComputedContentSHA256>{computed}</S3ComputedContentSHA256>"
        f"<RequestId>{info.request_id}</RequestId></Error>"
    ).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/xml"),
            ("Content-Length", "0" if head else str(len(body))),
            ("x-amz-request-id", info.request_id),
        ],
    )
    return [] if head else [body]


def _region(environ: WSGIEnviron, iam: IamService) -> str:
    """The region the request was signed for (the gate verified it), else the cloud's."""
    try:
        credential = sigv4.parse(sigv4.SignedRequest.from_wsgi(environ, None))
    except sigv4.SignatureError:
        credential = None
    return credential.region if credential is not None else iam.identities.region
