"""The EventBridge requests Sluice answers itself (PutEvents, TestEventPattern); moto answers the rest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sluice.local.endpoint import StartResponse, WSGIApp, WSGIEnviron, sigv4_scope
from sluice.local.events.backend import MAX_PUT_EVENTS_ENTRIES, EventDelivery, matches


class EventsFrontend:
    """WSGI hook in front of moto for the `events` service: PutEvents and TestEventPattern."""

    def __init__(self, delivery: EventDelivery, moto_app: WSGIApp) -> None:
        self.delivery = delivery
        self.moto_app = moto_app

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == "AWSEvents.PutEvents":
            return self._answer(environ, start_response, self._put_events)
        if target == "AWSEvents.TestEventPattern":
            return self._answer(environ, start_response, self._test_event_pattern)
        return self.moto_app(environ, start_response)

    @staticmethod
    def _answer(
        environ: WSGIEnviron,
        start_response: StartResponse,
        handler: Callable[[dict[str, Any], str], dict[str, Any]],
    ) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        scope = sigv4_scope(environ)
        try:
            status, body = "200 OK", handler(request, scope[0] if scope else "us-east-1")
        except ValueError as error:
            status, body = "400 Bad Request", {"__type": "ValidationException", "message": str(error)}
        data = json.dumps(body).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [data]

    def _put_events(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        entries = request.get("Entries") or []
        if not 1 <= len(entries) <= MAX_PUT_EVENTS_ENTRIES:
            raise ValueError(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                f"Member must have length between 1 and {MAX_PUT_EVENTS_ENTRIES}"
            )
        results = self.delivery.put_events(entries, region=region)
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedEntryCount": failed, "Entries": results}

    @staticmethod
    def _test_event_pattern(request: dict[str, Any], region: str) -> dict[str, Any]:
        try:
            return {"Result": matches(request["EventPattern"], json.loads(request["Event"]))}
        except Exception as error:
            raise ValueError(str(error)) from error
