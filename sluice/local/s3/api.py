"""The S3 request hook in front of moto: a request id per request, shared with the event hook."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sluice.local.endpoint import StartResponse, WSGIApp, WSGIEnviron
from sluice.local.s3.backend import RequestInfo, current_request


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
        token = current_request.set(info)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-amz-request-id"]
            headers.append(("x-amz-request-id", info.request_id))
            return start_response(status, headers, exc_info)

        try:
            return self.moto_app(environ, start)
        finally:
            current_request.reset(token)
