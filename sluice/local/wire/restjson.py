"""The rest-json protocol, served from the botocore service model (Lambda and Batch use it).

Requests are routed by each operation's ``http.method`` and ``requestUri`` (matched against
the path as sent, so a label holding an ARN with ``/`` stays one label); members are read
from their locations (uri, querystring, header, payload, JSON body) and responses written
back the same way, so every request boto3 can send is parsed exactly as boto3 serialised
it, without a hand-written field list. Errors carry ``x-amzn-ErrorType``, which botocore's
rest-json parser reads first; every response carries ``x-amzn-RequestId``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from werkzeug.wrappers import Request, Response

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


class ServiceError(Exception):
    """An error a rest-json service returns (``code`` is what boto3 shows as Error.Code)."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields

    def body(self) -> dict[str, Any]:
        """The JSON error document; services whose errors look different override it."""
        return {"message": self.message, **self.fields}


def _unknown_operation(method: str, path: str) -> ServiceError:
    return ServiceError("UnknownOperationException", f"No operation at {method} {path}", 404)


def _unsupported(operation: str) -> ServiceError:
    return ServiceError(
        "UnsupportedOperationException", f"{operation} is not emulated by the local cloud", 501
    )


def _bad_body(detail: str) -> ServiceError:
    return ServiceError("SerializationException", f"Could not parse request body: {detail}")


def _internal(detail: str) -> ServiceError:
    return ServiceError("ServiceException", f"Internal error: {detail}", 500)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: OperationModel
    literal_length: int
    # The same route with a path-ending label taking the rest of the path: a client that did
    # not percent-encode the `/` of an ARN in the last label (`/v1/tags/arn:...:job/ID`).
    lenient: re.Pattern[str]


def _compile(uri: str, *, last_label_greedy: bool = False) -> tuple[re.Pattern[str], int]:
    path = uri.split("?", 1)[0].rstrip("/") or "/"
    regex = ""
    literal = 0
    parts = re.split(r"(\{[^}]+\})", path)
    for position, part in enumerate(parts):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+") or (
                last_label_greedy and position >= len(parts) - 2 and not parts[-1]
            )
            name = name.rstrip("+")
            regex += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
            literal += len(part)
    return re.compile(f"^{regex}/?$"), literal


def _decode(value: Any, shape: Shape) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {k: _decode(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_decode(v, shape.member) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: _decode(v, shape.value) for k, v in value.items()}
    if shape.type_name == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _encode(value: Any, shape: Shape) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {
            k: _encode(v, shape.members[k]) for k, v in value.items() if k in shape.members and v is not None
        }
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_encode(v, shape.member) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: _encode(v, shape.value) for k, v in value.items()}
    if shape.type_name == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if shape.type_name == "timestamp" and isinstance(value, datetime):
        return value.timestamp()
    return value


def _scalar(text: str, shape: Shape) -> Any:
    if shape.type_name in ("integer", "long"):
        return int(text)
    if shape.type_name == "boolean":
        return text.lower() == "true"
    return text


class RestJsonService:
    """Routes WSGI requests to per-operation handlers for one botocore service."""

    def __init__(
        self,
        service_name: str,
        handlers: Mapping[str, Handler],
        *,
        unknown_operation: Callable[[str, str], ServiceError] = _unknown_operation,
        unsupported: Callable[[str], ServiceError] = _unsupported,
        bad_body: Callable[[str], ServiceError] = _bad_body,
        internal: Callable[[str], ServiceError] = _internal,
    ) -> None:
        self.model = botocore.session.get_session().get_service_model(service_name)
        self.handlers = handlers
        self._unknown_operation = unknown_operation
        self._unsupported = unsupported
        self._bad_body = bad_body
        self._internal = internal
        self.routes: list[_Route] = []
        for name in self.model.operation_names:
            op = self.model.operation_model(name)
            pattern, literal = _compile(op.http["requestUri"])
            lenient, _ = _compile(op.http["requestUri"], last_label_greedy=True)
            self.routes.append(_Route(op.http["method"], pattern, op, literal, lenient))
        # Most literal text first, so ".../functions/{Name}/configuration" wins over ".../functions/{Name}".
        self.routes.sort(key=lambda r: -r.literal_length)

    def match(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]] | None:
        for attribute in ("pattern", "lenient"):
            for route in self.routes:
                if route.method != method:
                    continue
                found = getattr(route, attribute).match(path)
                if found:
                    return route.operation, {
                        name: unquote(value) for name, value in found.groupdict().items()
                    }
        return None

    def parse(self, op: OperationModel, request: Request, uri_params: dict[str, str]) -> dict[str, Any]:
        shape = op.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        payload_member = shape.serialization.get("payload")
        body_members: dict[str, Shape] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in uri_params:
                    params[name] = uri_params[wire]
            elif location == "querystring":
                if isinstance(member, ListShape):
                    values = request.args.getlist(wire)
                    if values:
                        params[name] = values
                elif wire in request.args:
                    params[name] = _scalar(request.args[wire], member)
            elif location == "header":
                if wire in request.headers:
                    params[name] = _scalar(request.headers[wire], member)
            elif name == payload_member:
                data = request.get_data()
                if member.type_name == "blob":
                    params[name] = data
                elif data:
                    params[name] = _decode(json.loads(data), member)
            elif location is None:
                body_members[name] = member
        if body_members and payload_member is None:
            data = request.get_data()
            if data:
                try:
                    body = json.loads(data)
                except ValueError as exc:
                    raise self._bad_body(str(exc)) from None
                if not isinstance(body, dict):
                    raise self._bad_body("the body is not a JSON object")
                for name, member in body_members.items():
                    if name in body:
                        params[name] = _decode(body[name], member)
        return params

    def serialize(self, op: OperationModel, result: dict[str, Any] | None) -> Response:
        status = int(op.http.get("responseCode", 200))
        shape = op.output_shape
        result = result or {}
        if shape is None:
            return Response(b"", status=status)
        headers: dict[str, str] = {}
        body_doc: dict[str, Any] = {}
        raw_body: bytes | None = None
        payload_member = shape.serialization.get("payload")
        for name, member in shape.members.items():
            if name not in result or result[name] is None:
                continue
            value = result[name]
            location = member.serialization.get("location")
            if location == "statusCode":
                status = int(value)
            elif location == "header":
                headers[member.serialization.get("name", name)] = str(value)
            elif name == payload_member:
                if member.type_name == "blob":
                    raw_body = value if isinstance(value, bytes) else str(value).encode()
                else:
                    raw_body = json.dumps(_encode(value, member)).encode()
            elif location is None:
                body_doc[name] = _encode(value, member)
        if raw_body is None:
            raw_body = json.dumps(body_doc).encode() if (body_doc or status != 204) else b""
            headers.setdefault("Content-Type", "application/json")
        return Response(raw_body, status=status, headers=headers)

    @staticmethod
    def error_response(error: ServiceError) -> Response:
        return Response(
            json.dumps(error.body()),
            status=error.status,
            headers={"x-amzn-ErrorType": error.code, "Content-Type": "application/json"},
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        # The path as sent (werkzeug's REQUEST_URI), so that %2F inside a label is not a separator.
        raw_path = (environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.path).split("?", 1)[0]
        try:
            found = self.match(request.method, raw_path.rstrip("/") or "/")
            if found is None:
                raise self._unknown_operation(request.method, request.path)
            op, uri_params = found
            handler = self.handlers.get(op.name)
            if handler is None:
                raise self._unsupported(op.name)
            response = self.serialize(op, handler(self.parse(op, request, uri_params)))
        except ServiceError as error:
            response = self.error_response(error)
        except Exception as error:
            log.exception("%s request failed", self.model.service_name)
            response = self.error_response(self._internal(str(error)))
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response(environ, start_response)
