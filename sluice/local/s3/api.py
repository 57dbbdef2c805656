"""The S3 request hook in front of moto: a request id per request, shared with the event hook,
and the payload hash a request states checked against the body it carries."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

from sluice.local.endpoint import StartResponse, WSGIApp, WSGIEnviron
from sluice.local.s3.backend import RequestInfo, current_request, streaming_responses

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


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


class S3RequestContext:
    """WSGI hook in front of moto for `s3`: gives each request the id its event will carry.

    moto handles a request synchronously in the serving thread, so the id is visible to the
    notification hook through a context variable. The same id is returned to the client as
    `x-amz-request-id`.
    """

    def __init__(self, moto_app: WSGIApp) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        info = RequestInfo(uuid.uuid4().hex[:16].upper(), environ.get("REMOTE_ADDR") or "127.0.0.1")
        mismatch = payload_mismatch(environ)
        if mismatch is not None:
            return _sha256_mismatch(start_response, info, *mismatch, environ.get("REQUEST_METHOD") == "HEAD")
        token = current_request.set(info)
        streaming = streaming_responses.set(True)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-amz-request-id"]
            headers.append(("x-amz-request-id", info.request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.moto_app(environ, start)
        finally:
            streaming_responses.reset(streaming)
            current_request.reset(token)


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
