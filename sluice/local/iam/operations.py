"""Which AWS API operation a raw HTTP request calls, and with which parameters.

``identify()`` takes what the local cloud's loopback endpoint sees (the SigV4 signing name from the
credential scope, method, raw path and query, headers, body) and answers with the botocore operation
and its input parameters, keyed by the service model's member names (``Bucket``, ``Key``,
``FunctionName``, ``stateMachineArn``...), as a botocore client would have passed them.

Protocols, recognised from the request itself (a model may list several, CloudWatch's does):

* ``smithy-rpc-v2-cbor``: ``POST /service/<Service>/operation/<Operation>``, CBOR body.
* ``json``: ``X-Amz-Target: <targetPrefix>.<Operation>``, JSON body (SQS's JSON protocol included).
* ``query`` / ``ec2``: ``Action=`` in the query string or the form body (SQS's legacy query protocol
  too; a queue named only by the request path becomes ``QueueUrl``).
* ``rest-json`` / ``rest-xml``: method + ``requestUri`` template. A template matches when its literal
  segments and labels fit the path, the query keys its URI carries (S3's ``?uploads``, ``?tagging``,
  ``?list-type=2``...) are present, and every *required* query-string and header member is present
  (that is what separates S3's PutObject / UploadPart / CopyObject, GetObject / ListParts, DeleteObject
  / AbortMultipartUpload). Among matches the longest literal template wins, then the one with more
  query discriminators, more required and optional location members present, non-deprecated, name.
  S3 is matched path-style (``/bucket/key``); a virtual-hosted ``Host: bucket.localhost`` or
  ``bucket.s3.<region>.amazonaws.com`` is turned into the path-style form first.

Bodies are read only when the identified operation has body members, and blob payloads (S3
PutObject/UploadPart data, Lambda Invoke payloads) are never read: ``body`` may be a zero-argument
callable so the caller need not buffer an upload at all. Routing tables are built once per service
and cached; identification then costs one regex match per operation of that service and method.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.parsers import BaseCBORParser

__all__ = [
    "Body",
    "Operation",
    "UnknownOperationError",
    "identify",
    "operation_model",
    "service_model",
    "services_for_signing_name",
]

# The request body, or a zero-argument callable producing it (called only if the operation needs it).
Body = bytes | Callable[[], bytes]

# Bodies above this size are not parsed for string payloads (a policy document is far smaller).
_MAX_TEXT_PAYLOAD = 1024 * 1024
_CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
_LABEL = re.compile(r"\{([^}]+)\}")
_REST_PROTOCOLS = frozenset({"rest-json", "rest-xml"})
_QUERY_PROTOCOLS = frozenset({"query", "ec2"})


class UnknownOperationError(LookupError):
    """The request matches no operation of any botocore service with that signing name."""


@dataclass(frozen=True)
class Operation:
    """One API call: botocore service model name, operation name, input parameters."""

    service_model_name: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- models

_SESSION_LOCK = threading.Lock()
_SESSION: list[botocore.session.Session] = []


def _session() -> botocore.session.Session:
    with _SESSION_LOCK:
        if not _SESSION:
            _SESSION.append(botocore.session.get_session())
        return _SESSION[0]


@cache
def service_model(name: str) -> ServiceModel:
    """botocore's service model (cached)."""
    return _session().get_service_model(name)


def operation_model(service_name: str, operation: str) -> OperationModel:
    return service_model(service_name).operation_model(operation)


def _read_metadata(loader: Any, name: str) -> dict[str, Any]:
    """A service model's ``metadata`` without parsing the whole (often multi-MB) model file."""
    version = loader.determine_latest_version(name, "service-2")
    for base in loader.search_paths:
        for filename, opener in (("service-2.json.gz", gzip.open), ("service-2.json", open)):
            path = os.path.join(base, name, version, filename)
            if not os.path.isfile(path):
                continue
            with opener(path, "rb") as handle:
                head = handle.read(16384)
            text = head.decode("utf-8", errors="replace")
            start = text.find('"metadata"')
            brace = text.find("{", start) if start >= 0 else -1
            if brace >= 0:
                try:
                    metadata, _ = json.JSONDecoder().raw_decode(text, brace)
                except ValueError:
                    break
                if isinstance(metadata, dict):
                    return metadata
            break
    model: dict[str, Any] = loader.load_service_model(name, "service-2")
    return dict(model["metadata"])


_SIGNING_INDEX_LOCK = threading.Lock()


def _signing_index() -> dict[str, tuple[str, ...]]:
    # Built once, by whichever request comes first (the first requests arrive together: without
    # the lock each built it, reading ~450 model files, on a cloud that is still starting).
    with _SIGNING_INDEX_LOCK:
        return _build_signing_index()


@lru_cache(maxsize=1)
def _build_signing_index() -> dict[str, tuple[str, ...]]:
    loader = _session().get_component("data_loader")
    index: dict[str, list[str]] = {}
    for name in loader.list_available_services("service-2"):
        metadata = _read_metadata(loader, name)
        signing = str(metadata.get("signingName") or metadata.get("endpointPrefix") or name).lower()
        index.setdefault(signing, []).append(name)
    # The service named like its signing name first (lambda before lambda-core, s3 before s3control).
    return {key: tuple(sorted(names, key=lambda n: (n != key, n))) for key, names in index.items()}


def services_for_signing_name(signing_name: str) -> tuple[str, ...]:
    """botocore service names whose SigV4 signing name (``signingName`` or ``endpointPrefix``) is this."""
    return _signing_index().get(signing_name.lower(), ())


# ---------------------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class _Route:
    operation: str
    regex: re.Pattern[str]
    labels: tuple[tuple[str, bool], ...]  # (member name, greedy) per regex group, in order
    literal_length: int
    query_literals: tuple[tuple[str, str | None], ...]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    optional_query: tuple[str, ...]
    optional_headers: tuple[str, ...]
    deprecated: bool

    def score(self, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> tuple[int, ...] | None:
        for key, value in self.query_literals:
            if key not in query or (value is not None and value not in query[key]):
                return None
        if any(key not in query for key in self.required_query):
            return None
        if any(key not in headers for key in self.required_headers):
            return None
        optional = sum(key in query for key in self.optional_query)
        optional += sum(key in headers for key in self.optional_headers)
        return (
            self.literal_length,
            len(self.query_literals),
            len(self.required_query) + len(self.required_headers),
            optional,
            0 if self.deprecated else 1,
        )


def _build_route(op: OperationModel) -> _Route:
    uri = str(op.http.get("requestUri", "/"))
    path_template, _, query_template = uri.partition("?")
    shape = op.input_shape
    members: dict[str, Shape] = dict(shape.members) if isinstance(shape, StructureShape) else {}
    uri_members = {
        m.serialization.get("name", name): name
        for name, m in members.items()
        if m.serialization.get("location") == "uri"
    }
    pattern = ["^"]
    labels: list[tuple[str, bool]] = []
    literal_length = 0
    position = 0
    for found in _LABEL.finditer(path_template):
        literal = path_template[position : found.start()]
        pattern.append(re.escape(literal))
        literal_length += len(literal)
        label = found.group(1)
        greedy = label.endswith("+")
        wire = label.rstrip("+")
        labels.append((uri_members.get(wire, wire), greedy))
        pattern.append("(.+)" if greedy else "([^/]+)")
        position = found.end()
    tail = path_template[position:]
    pattern.append(re.escape(tail))
    literal_length += len(tail)
    if not path_template.endswith("/"):
        pattern.append("/?")
    pattern.append("$")
    query_literals: list[tuple[str, str | None]] = []
    for part in query_template.split("&") if query_template else []:
        key, eq, value = part.partition("=")
        query_literals.append((key, value if eq else None))
    required = set(shape.required_members) if isinstance(shape, StructureShape) else set()
    req_q: list[str] = []
    opt_q: list[str] = []
    req_h: list[str] = []
    opt_h: list[str] = []
    for name, member in members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "querystring" and not isinstance(member, MapShape):
            (req_q if name in required else opt_q).append(wire)
        elif location == "header":
            (req_h if name in required else opt_h).append(wire.lower())
    return _Route(
        operation=op.name,
        regex=re.compile("".join(pattern)),
        labels=tuple(labels),
        literal_length=literal_length,
        query_literals=tuple(query_literals),
        required_query=tuple(req_q),
        required_headers=tuple(req_h),
        optional_query=tuple(opt_q),
        optional_headers=tuple(opt_h),
        deprecated=bool(op.deprecated),
    )


class _Router:
    """Everything needed to identify one service's operations, built once."""

    def __init__(self, name: str) -> None:
        model = service_model(name)
        metadata = model.metadata
        self.name = name
        self.model = model
        self.target_prefix: str | None = metadata.get("targetPrefix")
        self.api_version: str | None = metadata.get("apiVersion")
        protocols = metadata.get("protocols") or [metadata.get("protocol")]
        self.protocols = frozenset(str(p) for p in protocols if p)
        self.operations = frozenset(model.operation_names)
        self.routes: dict[str, tuple[_Route, ...]] = {}
        # First literal path segments of all REST templates; None when some template starts with a label.
        self.first_segments: frozenset[str] | None = None
        if self.protocols & _REST_PROTOCOLS:
            by_method: dict[str, list[_Route]] = {}
            segments: set[str] | None = set()
            for op_name in model.operation_names:
                op = model.operation_model(op_name)
                route = _build_route(op)
                by_method.setdefault(str(op.http.get("method", "POST")).upper(), []).append(route)
                first = str(op.http.get("requestUri", "/")).split("?")[0].split("/")
                head = first[1] if len(first) > 1 else ""
                if segments is not None:
                    if head.startswith("{"):
                        segments = None
                    else:
                        segments.add(head)
            self.routes = {
                method: tuple(sorted(routes, key=lambda r: (-r.literal_length, r.operation)))
                for method, routes in by_method.items()
            }
            self.first_segments = frozenset(segments) if segments is not None else None

    def match_rest(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> tuple[tuple[int, ...], _Route, re.Match[str]] | None:
        if self.first_segments is not None:
            head = path.split("/", 2)[1] if path.count("/") >= 1 else ""
            if head not in self.first_segments:
                return None
        best: tuple[tuple[int, ...], _Route, re.Match[str]] | None = None
        for route in self.routes.get(method, ()):
            found = route.regex.match(path)
            if found is None:
                continue
            score = route.score(query, headers)
            if score is None:
                continue
            if best is None or score > best[0]:
                best = (score, route, found)
        return best


_ROUTERS: dict[str, _Router] = {}
_ROUTERS_LOCK = threading.Lock()


def _router(name: str) -> _Router:
    router = _ROUTERS.get(name)
    if router is None:
        built = _Router(name)
        with _ROUTERS_LOCK:
            router = _ROUTERS.setdefault(name, built)
    return router


# ---------------------------------------------------------------------------------------- identify


def identify(
    signing_service: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body: Body,
) -> Operation:
    """The operation a raw request calls, with its parameters; ``UnknownOperationError`` if none."""
    names = services_for_signing_name(signing_service)
    if not names:
        raise UnknownOperationError(f"no botocore service signs as {signing_service!r}")
    method = method.upper()
    if "?" in raw_path and not raw_query:
        raw_path, _, raw_query = raw_path.partition("?")
    path = raw_path or "/"
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    reader = _BodyReader(body, lower.get("content-encoding", ""))
    routers = [_router(name) for name in names]

    cbor = _CBOR_PATH.match(path)
    if cbor is not None and method == "POST":
        service_id, op_name = cbor.group(1), cbor.group(2)
        ordered = sorted(routers, key=lambda r: r.target_prefix != service_id)
        for router in ordered:
            if op_name in router.operations:
                return Operation(router.name, op_name, _parse_cbor(router, op_name, reader))
        raise UnknownOperationError(f"{signing_service}: no operation {op_name!r}")

    target = lower.get("x-amz-target")
    if target:
        prefix, _, op_name = target.rpartition(".")
        ordered = sorted(routers, key=lambda r: r.target_prefix != prefix)
        for router in ordered:
            if op_name in router.operations and (router.target_prefix in (prefix, None) or len(ordered) == 1):
                return Operation(router.name, op_name, _parse_json_body(router, op_name, reader))
        raise UnknownOperationError(f"{signing_service}: no operation for X-Amz-Target {target!r}")

    query_pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    form_pairs: list[tuple[str, str]] = []
    # Query-protocol candidates only: a REST service's body (an S3 upload) is never read here.
    rpc = [r for r in routers if not r.protocols & _REST_PROTOCOLS]
    if rpc and method == "POST" and "x-www-form-urlencoded" in lower.get("content-type", ""):
        form_pairs = urllib.parse.parse_qsl(reader.read().decode("utf-8", "replace"), keep_blank_values=True)
    action = next((v for k, v in [*form_pairs, *query_pairs] if k == "Action"), None)
    if action is not None and rpc:
        version = next((v for k, v in [*form_pairs, *query_pairs] if k == "Version"), None)
        matching = [r for r in rpc if action in r.operations]
        matching.sort(key=lambda r: version is not None and r.api_version != version)
        if matching:
            router = matching[0]
            pairs = [(k, v) for k, v in [*query_pairs, *form_pairs] if k not in ("Action", "Version")]
            params = _parse_query(router, action, pairs)
            if router.name == "sqs" and "QueueUrl" not in params and path.count("/") >= 2:
                params["QueueUrl"] = _absolute_url(lower.get("host", ""), path)
            return Operation(router.name, action, params)
        raise UnknownOperationError(f"{signing_service}: no operation {action!r}")

    query: dict[str, list[str]] = {}
    for key, value in query_pairs:
        query.setdefault(key, []).append(value)
    best: tuple[tuple[int, ...], int, _Router, _Route, re.Match[str]] | None = None
    for rank, router in enumerate(routers):
        if not router.routes:
            continue
        route_path = _virtual_host_path(lower.get("host", ""), path) if router.name == "s3" else path
        found = router.match_rest(method, route_path, query, lower)
        if found is None:
            continue
        score, route, match = found
        if best is None or (score, -rank) > (best[0], -best[1]):
            best = (score, rank, router, route, match)
    if best is None:
        raise UnknownOperationError(f"{signing_service}: no operation for {method} {path}")
    _, _, router, route, match = best
    params = _parse_rest(router, route, match, query, lower, reader)
    return Operation(router.name, route.operation, params)


def _absolute_url(host: str, path: str) -> str:
    return f"http://{host}{path}" if host else path


def _virtual_host_path(host: str, path: str) -> str:
    """``/key`` on ``bucket.localhost`` / ``bucket.s3.<region>.amazonaws.com`` -> ``/bucket/key``."""
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    bucket = ""
    if hostname.endswith(".localhost"):
        bucket = hostname[: -len(".localhost")]
    else:
        found = re.match(r"^(.+?)\.s3[.-](?:[a-z0-9-]+\.)*amazonaws\.com(?:\.cn)?$", hostname)
        if found is None:
            found = re.match(r"^(.+?)\.s3\.amazonaws\.com$", hostname)
        if found is not None:
            bucket = found.group(1)
    if not bucket:
        return path
    return f"/{urllib.parse.quote(bucket, safe='')}{path if path.startswith('/') else '/' + path}"


# ---------------------------------------------------------------------------------------- bodies


class _BodyReader:
    """Reads (and un-gzips) the body once, only when asked."""

    def __init__(self, body: Body, content_encoding: str) -> None:
        self._body = body
        self._encoding = content_encoding.lower()
        self._data: bytes | None = None

    def read(self) -> bytes:
        if self._data is None:
            data = self._body() if callable(self._body) else self._body
            if "gzip" in self._encoding and data:
                try:
                    data = gzip.decompress(data)
                except OSError:
                    pass
            self._data = data
        return self._data


def _input(router: _Router, op_name: str) -> StructureShape | None:
    shape = router.model.operation_model(op_name).input_shape
    return shape if isinstance(shape, StructureShape) else None


def _parse_json_body(router: _Router, op_name: str, reader: _BodyReader) -> dict[str, Any]:
    shape = _input(router, op_name)
    if shape is None:
        return {}
    data = reader.read()
    if not data.strip():
        return {}
    try:
        document = json.loads(data)
    except ValueError:
        return {}
    converted = _from_json(document, shape)
    return converted if isinstance(converted, dict) else {}


def _parse_cbor(router: _Router, op_name: str, reader: _BodyReader) -> dict[str, Any]:
    shape = _input(router, op_name)
    data = reader.read()
    if shape is None or not data:
        return {}
    try:
        document = BaseCBORParser().parse_data_item(io.BufferedReader(io.BytesIO(data)))
    except Exception:  # malformed CBOR: no parameters rather than a crash
        return {}
    converted = _from_json(document, shape)
    return converted if isinstance(converted, dict) else {}


def _from_json(value: Any, shape: Shape) -> Any:
    """A JSON (or CBOR) document -> parameters keyed by member names."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        if shape.is_document_type:
            return value
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in value:
                out[name] = _from_json(value[wire], member)
        return out
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_from_json(item, shape.member) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {key: _from_json(item, shape.value) for key, item in value.items()}
    return value


def _scalar(text: str, shape: Shape) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return text.strip().lower() == "true"
    return text


# ---------------------------------------------------------------------------------------- query


class _QueryNode:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _QueryNode] = {}


def _query_tree(pairs: Iterable[tuple[str, str]]) -> _QueryNode:
    root = _QueryNode()
    for key, value in pairs:
        node = root
        for part in key.split("."):
            node = node.children.setdefault(part, _QueryNode())
        node.value = value
    return root


def _numbered(node: _QueryNode) -> list[_QueryNode]:
    items = [(int(k), child) for k, child in node.children.items() if k.isdigit()]
    return [child for _, child in sorted(items, key=lambda item: item[0])]


def _query_name(name: str, member: Shape, ec2: bool) -> str:
    if ec2:
        if "queryName" in member.serialization:
            return str(member.serialization["queryName"])
        located = member.serialization.get("name")
        return str(located[0].upper() + located[1:]) if located else name
    if isinstance(member, ListShape) and member.serialization.get("flattened"):
        return str(member.member.serialization.get("name") or member.serialization.get("name", name))
    return str(member.serialization.get("name", name))


def _from_query(node: _QueryNode, shape: Shape, ec2: bool) -> Any:
    if isinstance(shape, StructureShape):
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            child = node.children.get(_query_name(name, member, ec2))
            if child is not None:
                out[name] = _from_query(child, member, ec2)
        return out
    if isinstance(shape, ListShape):
        if not (ec2 or shape.serialization.get("flattened")):
            node = node.children.get(str(shape.member.serialization.get("name", "member")), _QueryNode())
        return [_from_query(item, shape.member, ec2) for item in _numbered(node)]
    if isinstance(shape, MapShape):
        if not shape.serialization.get("flattened"):
            node = node.children.get("entry", _QueryNode())
        key_name = str(shape.key.serialization.get("name", "key"))
        value_name = str(shape.value.serialization.get("name", "value"))
        result: dict[str, Any] = {}
        for entry in _numbered(node):
            key = entry.children.get(key_name)
            value = entry.children.get(value_name)
            if key is not None and key.value is not None and value is not None:
                result[key.value] = _from_query(value, shape.value, ec2)
        return result
    return _scalar(node.value or "", shape)


def _parse_query(router: _Router, op_name: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    shape = _input(router, op_name)
    if shape is None:
        return {}
    ec2 = "ec2" in router.protocols and "query" not in router.protocols
    parsed = _from_query(_query_tree(pairs), shape, ec2)
    return parsed if isinstance(parsed, dict) else {}


# ---------------------------------------------------------------------------------------- rest


def _parse_rest(
    router: _Router,
    route: _Route,
    match: re.Match[str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    reader: _BodyReader,
) -> dict[str, Any]:
    shape = _input(router, route.operation)
    params: dict[str, Any] = {}
    for (name, _greedy), raw in zip(route.labels, match.groups(), strict=True):
        params[name] = urllib.parse.unquote(raw)
    if shape is None:
        return params
    claimed = {key for key, _ in route.query_literals}
    query_map: str | None = None
    body_members: dict[str, Shape] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = str(member.serialization.get("name", name))
        if location == "uri":
            continue
        if location == "querystring":
            if isinstance(member, MapShape):
                query_map = name
                continue
            claimed.add(wire)
            if wire in query:
                values = query[wire]
                if isinstance(member, ListShape):
                    params[name] = [_scalar(v, member.member) for v in values]
                else:
                    params[name] = _scalar(values[0], member)
        elif location == "header":
            value = headers.get(wire.lower())
            if value is None:
                continue
            if isinstance(member, ListShape):
                params[name] = [_scalar(v.strip(), member.member) for v in value.split(",")]
            else:
                params[name] = _scalar(value, member)
        elif location == "headers":
            prefix = wire.lower()
            found = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
            if found:
                params[name] = found
        elif location in (None, "body") and not member.serialization.get("eventpayload"):
            body_members[name] = member
    if query_map is not None:
        rest = {k: v[0] for k, v in query.items() if k not in claimed}
        if rest:
            params[query_map] = rest
    payload = shape.serialization.get("payload")
    xml = "rest-xml" in router.protocols and "rest-json" not in router.protocols
    if payload:
        member = shape.members.get(payload)
        if member is not None:
            value = _payload(member, reader, xml)
            if value is not None:
                params[payload] = value
    elif body_members:
        data = reader.read()
        if data.strip():
            document = _parse_xml_root(data) if xml else _json_object(data)
            if isinstance(document, ElementTree.Element):
                for name, member in body_members.items():
                    child = _xml_child(document, str(member.serialization.get("name", name)))
                    if child is not None:
                        params[name] = _from_xml(child, member)
            elif isinstance(document, dict):
                for name, member in body_members.items():
                    wire = member.serialization.get("name", name)
                    if wire in document:
                        params[name] = _from_json(document[wire], member)
    return params


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _payload(member: Shape, reader: _BodyReader, xml: bool) -> Any:
    """The payload member's value; blobs and streams (object data, invoke payloads) are never read."""
    if (
        member.type_name == "blob"
        or member.serialization.get("streaming")
        or member.serialization.get("eventstream")
    ):
        return None
    data = reader.read()
    if not data.strip():
        return None
    if member.type_name == "string":
        return data.decode("utf-8", "replace") if len(data) <= _MAX_TEXT_PAYLOAD else None
    if isinstance(member, StructureShape):
        if xml:
            root = _parse_xml_root(data)
            return _from_xml(root, member) if root is not None else None
        document = _json_object(data)
        return _from_json(document, member) if document is not None else None
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml_root(data: bytes) -> ElementTree.Element | None:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # no entity expansion from request bodies
        return None
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None


def _xml_child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _xml_children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _from_xml(element: ElementTree.Element, shape: Shape) -> Any:
    if isinstance(shape, StructureShape):
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = str(member.serialization.get("name", name))
            if member.serialization.get("xmlAttribute"):
                for attr, value in element.attrib.items():
                    if _local(attr) == wire.split(":")[-1]:
                        out[name] = value
                continue
            if isinstance(member, (ListShape, MapShape)) and member.serialization.get("flattened"):
                flat_name = wire
                if isinstance(member, ListShape):
                    flat_name = str(
                        member.serialization.get("name") or member.member.serialization.get("name") or name
                    )
                items = _xml_children(element, flat_name)
                if items:
                    out[name] = _from_xml_flat(items, member)
                continue
            child = _xml_child(element, wire)
            if child is not None:
                out[name] = _from_xml(child, member)
        return out
    if isinstance(shape, ListShape):
        item_name = str(shape.member.serialization.get("name", "member"))
        return [_from_xml(item, shape.member) for item in _xml_children(element, item_name)]
    if isinstance(shape, MapShape):
        return _from_xml_flat(_xml_children(element, "entry"), shape)
    text = element.text or ""
    if shape.type_name == "blob":
        try:
            return base64.b64decode(text)
        except ValueError:
            return text
    return _scalar(text, shape)


def _from_xml_flat(items: list[ElementTree.Element], shape: Shape) -> Any:
    if isinstance(shape, ListShape):
        return [_from_xml(item, shape.member) for item in items]
    if isinstance(shape, MapShape):
        key_name = str(shape.key.serialization.get("name", "key"))
        value_name = str(shape.value.serialization.get("name", "value"))
        result: dict[str, Any] = {}
        for entry in items:
            key = _xml_child(entry, key_name)
            value = _xml_child(entry, value_name)
            if key is not None and value is not None:
                result[key.text or ""] = _from_xml(value, shape.value)
        return result
    return None
