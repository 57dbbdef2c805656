"""A rest-json protocol server driven by the botocore service model.

Requests are routed by each operation's ``http.method`` and ``requestUri``; members are
read from their locations (uri, querystring, header, payload, JSON body) and responses
written back the same way, so every Lambda request boto3 can send is parsed exactly as
boto3 serialised it, without a hand-written field list.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from werkzeug.wrappers import Request, Response

from .errors import LambdaServiceError

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: OperationModel
    literal_length: int


def _compile(uri: str) -> tuple[re.Pattern[str], int]:
    path = uri.split("?", 1)[0].rstrip("/") or "/"
    regex = ""
    literal = 0
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
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

    def __init__(self, service_name: str, handlers: dict[str, Handler]) -> None:
        self.model = botocore.session.get_session().get_service_model(service_name)
        self.handlers = handlers
        self.routes: list[_Route] = []
        for name in self.model.operation_names:
            op = self.model.operation_model(name)
            pattern, literal = _compile(op.http["requestUri"])
            self.routes.append(_Route(op.http["method"], pattern, op, literal))
        # Most literal text first, so ".../functions/{Name}/configuration" wins over ".../functions/{Name}".
        self.routes.sort(key=lambda r: -r.literal_length)

    def match(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route.operation, found.groupdict()
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
                    raise LambdaServiceError(
                        "InvalidRequestContentException", f"Could not parse request body: {exc}"
                    ) from None
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
    def error_response(error: LambdaServiceError) -> Response:
        body = {"Type": "User", "message": error.message, **error.fields}
        return Response(
            json.dumps(body),
            status=error.status,
            headers={"x-amzn-ErrorType": error.code, "Content-Type": "application/json"},
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            found = self.match(request.method, request.path.rstrip("/") or "/")
            if found is None:
                raise LambdaServiceError(
                    "UnknownOperationException",
                    f"no Lambda operation for {request.method} {request.path}",
                    404,
                )
            op, uri_params = found
            handler = self.handlers.get(op.name)
            if handler is None:
                raise LambdaServiceError(
                    "UnsupportedOperationException",
                    f"{op.name} is not emulated by the local Lambda runtime",
                    501,
                )
            response = self.serialize(op, handler(self.parse(op, request, uri_params)))
        except LambdaServiceError as error:
            response = self.error_response(error)
        return response(environ, start_response)
