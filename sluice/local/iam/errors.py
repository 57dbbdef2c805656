"""AWS-shaped error responses: one error rendered in the wire shape of the service it is for.

``error_response(signing_service, method, code, message, status)`` returns
``(status, headers, body)`` that boto3 parses into a ``ClientError`` with exactly that code,
message and HTTP status. The wire shape follows the protocol botocore uses for the service:

* S3 (rest-xml): ``<Error><Code/><Message/>...<RequestId/><HostId/></Error>``, headers
  ``x-amz-request-id`` / ``x-amz-id-2``; HEAD responses carry no body (botocore then reports the
  HTTP status as code, as it does for real S3).
  https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#RESTErrorResponses
* query (sns, sts, iam, cloudformation, ...) and other rest-xml (route53, cloudfront):
  ``<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>``.
* ec2: ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``.
* JSON 1.0/1.1 (states, logs, events, kms, ecr, ssm, ...): ``{"__type": code, "message": ...}`` plus
  ``x-amzn-ErrorType``; rest-json (lambda, batch): ``x-amzn-ErrorType`` plus ``{"message": ...}``
  (``"Message"`` where the service models that exception with a capitalised member, as Lambda
  does); Smithy RPCv2 CBOR: the same map, CBOR-encoded. Services that moved off the query protocol
  (``awsQueryCompatible``: sqs, cloudwatch) also get ``x-amzn-query-error: <code>;Sender`` so
  botocore reports the query-era code.

The protocol is looked up from botocore's service models by *signing* name (the service in the
SigV4 credential scope: ``states`` is botocore's ``stepfunctions``, ``monitoring`` its
``cloudwatch``), and cached.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import botocore.loaders
from botocore.model import ServiceModel

__all__ = [
    "ServiceInfo",
    "access_denied",
    "error_response",
    "request_id",
    "service_info",
    "signing_name_map",
]

Headers = list[tuple[str, str]]

# Signing names whose botocore service has another name. Only a hint for the fast path: every
# candidate is checked against the model's own signingName/endpointPrefix, and a name not found
# this way falls back to a one-off scan of every model (a few seconds, then cached).
_SIGNING_ALIASES: dict[str, tuple[str, ...]] = {
    "states": ("stepfunctions",),
    "monitoring": ("cloudwatch",),
    "elasticloadbalancing": ("elbv2", "elb"),
    "execute-api": ("apigatewaymanagementapi",),
    "cassandra": ("keyspaces",),
    "s3-outposts": ("s3outposts",),
    "aws-marketplace": ("marketplace-catalog",),
    "sms-voice": ("pinpoint-sms-voice-v2",),
}


@dataclass(frozen=True)
class ServiceInfo:
    """What errors.py and sigv4.py need to know about one signing name."""

    signing_name: str
    service_name: str | None  # botocore's name, None when botocore does not know the service
    protocol: (
        str  # the protocol botocore clients use: json, rest-json, rest-xml, query, ec2, smithy-rpc-v2-cbor
    )
    protocols: tuple[str, ...]  # every protocol the service accepts
    json_version: str
    xml_namespace: str
    query_compatible: bool


_loader_lock = threading.Lock()
_loader: botocore.loaders.Loader | None = None


def _get_loader() -> botocore.loaders.Loader:
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = botocore.loaders.create_loader()
        return _loader


@functools.cache
def _service_model(service_name: str) -> ServiceModel | None:
    loader = _get_loader()
    try:
        model = loader.load_service_model(service_name, "service-2")
    except Exception:  # botocore raises UnknownServiceError / DataNotFoundError
        return None
    return ServiceModel(model, service_name=service_name)


def _model_signing_name(model: ServiceModel) -> str:
    metadata = model.metadata
    return str(metadata.get("signingName") or metadata.get("endpointPrefix") or model.service_name)


_scan_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def signing_name_map() -> Mapping[str, tuple[str, ...]]:
    """Every botocore service by signing name (loads every model once: seconds; cached)."""
    with _scan_lock:
        loader = _get_loader()
        result: dict[str, list[str]] = {}
        for name in loader.list_available_services("service-2"):
            model = _service_model(name)
            if model is not None:
                result.setdefault(_model_signing_name(model), []).append(name)
        return {key: tuple(value) for key, value in result.items()}


def _botocore_service_for(signing_name: str) -> ServiceModel | None:
    available = set(_get_loader().list_available_services("service-2"))
    for candidate in (signing_name, *_SIGNING_ALIASES.get(signing_name, ())):
        if candidate in available:
            model = _service_model(candidate)
            if model is not None and _model_signing_name(model) == signing_name:
                return model
    names = signing_name_map().get(signing_name, ())
    # Several botocore services can share a signing name (lambda, lambda-core, ...): prefer the
    # one named like the signing name, then the first in botocore's (alphabetical) order.
    for name in sorted(names, key=lambda n: (n != signing_name, n)):
        model = _service_model(name)
        if model is not None:
            return model
    return None


def _resolved_protocol(model: ServiceModel) -> str:
    try:
        return str(model.resolved_protocol)
    except Exception:  # an unsupported protocol list: fall back to the legacy trait
        return str(model.metadata.get("protocol", "json"))


@functools.lru_cache(maxsize=512)
def service_info(signing_service: str) -> ServiceInfo:
    """Protocol facts for a signing name, from botocore's models (cached)."""
    name = signing_service.lower()
    model = _botocore_service_for(name) if name else None
    if model is None:
        # Not a botocore service: most AWS APIs added in the last decade are JSON. Choice (ND).
        return ServiceInfo(name, None, "json", ("json",), "1.1", "", False)
    metadata = model.metadata
    protocols = tuple(metadata.get("protocols") or (metadata.get("protocol", "json"),))
    return ServiceInfo(
        signing_name=name,
        service_name=model.service_name,
        protocol=_resolved_protocol(model),
        protocols=protocols,
        json_version=str(metadata.get("jsonVersion", "1.0")),
        xml_namespace=str(metadata.get("xmlNamespace", "")),
        query_compatible="awsQueryCompatible" in metadata,
    )


def _lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k).lower(): str(v) for k, v in items}


def _request_protocol(info: ServiceInfo, request_headers: Mapping[str, str] | None) -> str:
    """The protocol the client actually spoke, when the request shows it and the service has it.

    Services that accept several protocols (cloudwatch: CBOR, JSON, query) answer in the one the
    request used; without request headers, the one botocore picks.
    """
    headers = _lower_headers(request_headers)
    if headers and len(info.protocols) > 1:
        content_type = headers.get("content-type", "").lower()
        if headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor":
            seen = "smithy-rpc-v2-cbor"
        elif content_type.startswith("application/x-amz-json-"):
            seen = "json"
        elif content_type.startswith("application/x-www-form-urlencoded"):
            seen = "query"
        else:
            seen = ""
        if seen in info.protocols:
            return seen
    return info.protocol


def request_id(signing_service: str = "") -> str:
    """A fresh request id in the service's style: S3 uses 16 upper-case hex digits, others a UUID."""
    if signing_service.lower() == "s3":
        return os.urandom(8).hex().upper()
    return str(uuid.uuid4())


def _host_id() -> str:
    # S3's x-amz-id-2 is an opaque base64 token; any base64 text parses the same.
    return base64.b64encode(os.urandom(48)).decode("ascii")


def _xml_text(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([(major << 5) | length])
    if length < 0x100:
        return bytes([(major << 5) | 24, length])
    if length < 0x10000:
        return bytes([(major << 5) | 25]) + length.to_bytes(2, "big")
    if length < 0x100000000:
        return bytes([(major << 5) | 26]) + length.to_bytes(4, "big")
    return bytes([(major << 5) | 27]) + length.to_bytes(8, "big")


def _cbor_text_map(values: Mapping[str, str]) -> bytes:
    """CBOR (RFC 8949) encoding of a map of text to text: all an RPCv2 error body holds."""
    out = bytearray(_cbor_head(5, len(values)))
    for key, value in values.items():
        for text in (key, value):
            raw = text.encode("utf-8")
            out += _cbor_head(3, len(raw))
            out += raw
    return bytes(out)


def _message_key(info: ServiceInfo, code: str) -> tuple[str, bool]:
    """("message" or "Message", whether the exception carries Lambda's "Type" member)."""
    if info.service_name is None:
        return "message", False
    model = _service_model(info.service_name)
    if model is None:
        return "message", False
    try:
        shape = model.shape_for(code)
    except Exception:  # not a modeled shape: the front end's own auth errors use "message"
        return "message", False
    members = getattr(shape, "members", {})
    if "message" not in members and "Message" in members:
        return "Message", "Type" in members
    return "message", False


def error_response(
    signing_service: str,
    method: str,
    code: str,
    message: str,
    status: int,
    extra: Mapping[str, str] | None = None,
    *,
    request_headers: Mapping[str, str] | None = None,
    request_id_value: str | None = None,
) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` of an AWS error response for the service of ``signing_service``.

    ``extra`` adds elements to S3's ``<Error>`` (RequestTime, ServerTime, AWSAccessKeyId, ...) as
    S3 does; other protocols have no place for them and leave them out.
    """
    info = service_info(signing_service)
    protocol = _request_protocol(info, request_headers)
    rid = request_id_value or request_id(info.signing_name)
    head = method.upper() == "HEAD"
    fault = "Receiver" if status >= 500 else "Sender"
    headers: Headers = []
    body: bytes

    if protocol == "rest-xml" and info.signing_name.startswith("s3"):
        host_id = _host_id()
        parts = [f"<Code>{_xml_text(code)}</Code>", f"<Message>{_xml_text(message)}</Message>"]
        for key, value in (extra or {}).items():
            # Element names come from code (S3 extras such as X-Amz-Expires), never from requests.
            parts.append(f"<{key}>{_xml_text(value)}</{key}>")
        parts.append(f"<RequestId>{rid}</RequestId><HostId>{host_id}</HostId>")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()
        headers += [("x-amz-request-id", rid), ("x-amz-id-2", host_id), ("Content-Type", "application/xml")]
    elif protocol in ("query", "rest-xml"):
        xmlns = f' xmlns="{_xml_text(info.xml_namespace)}"' if info.xml_namespace else ""
        body = (
            f"<ErrorResponse{xmlns}><Error><Type>{fault}</Type><Code>{_xml_text(code)}</Code>"
            f"<Message>{_xml_text(message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        headers += [("x-amzn-RequestId", rid), ("Content-Type", "text/xml")]
    elif protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{_xml_text(code)}</Code><Message>{_xml_text(message)}"
            f"</Message></Error></Errors><RequestID>{rid}</RequestID></Response>"
        ).encode()
        headers += [("x-amzn-RequestId", rid), ("Content-Type", "text/xml;charset=UTF-8")]
    else:
        key, typed = _message_key(info, code)
        document: dict[str, str] = {}
        if protocol in ("json", "smithy-rpc-v2-cbor"):
            document["__type"] = code
        if typed:
            document["Type"] = "User" if status < 500 else "Service"
        document[key] = message
        headers += [("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)]
        if info.query_compatible:
            headers.append(("x-amzn-query-error", f"{code};{fault}"))
        if protocol == "smithy-rpc-v2-cbor":
            body = _cbor_text_map(document)
            headers += [("smithy-protocol", "rpc-v2-cbor"), ("Content-Type", "application/cbor")]
        elif protocol == "json":
            body = json.dumps(document).encode()
            headers.append(("Content-Type", f"application/x-amz-json-{info.json_version}"))
        else:
            body = json.dumps(document).encode()
            headers.append(("Content-Type", "application/json"))

    if head:
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


def _modeled_status(info: ServiceInfo, shape_name: str) -> int | None:
    if info.service_name is None:
        return None
    model = _service_model(info.service_name)
    if model is None:
        return None
    try:
        shape: Any = model.shape_for(shape_name)
    except Exception:
        return None
    status = (shape.metadata.get("error") or {}).get("httpStatusCode")
    return int(status) if status else None


def access_denied(
    signing_service: str,
    method: str,
    message: str,
    *,
    request_headers: Mapping[str, str] | None = None,
) -> tuple[int, Headers, bytes]:
    """The service's "not authorized" error, as its IAM policy check returns it.

    * S3: ``AccessDenied`` 403 (S3 error code list; the S3 model also says 403).
      https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
    * SNS: ``AuthorizationError`` 403: the SNS model's AuthorizationErrorException has wire code
      AuthorizationError and httpStatusCode 403.
      https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html
    * ec2: ``UnauthorizedOperation`` 403, "You are not authorized to perform this operation." is
      what EC2 returns for IAM denials (observed in public reports; ND in the API reference).
    * other query services (sts, iam, cloudformation, ...) and the awsQueryCompatible ones
      (sqs, cloudwatch): ``AccessDenied`` 403 (ND: the query-era code these services return).
    * JSON services (states, logs, events, kms, ssm, ...): ``AccessDeniedException`` 400. The older
      "Common Errors" pages list AccessDeniedException as 400 and Step Functions answers 400
      (observed, e.g. github.com/FormidableLabs/aws-lambda-serverless-reference/issues/31).
      https://docs.aws.amazon.com/emr/latest/APIReference/CommonErrors.html
    * rest-json services (lambda, batch): ``AccessDeniedException`` 403.
      https://docs.aws.amazon.com/lambda/latest/api/CommonErrors.html (403); Batch's SubmitJob
      denial is a 403 too (observed, github.com/JuliaCloud/AWS.jl/issues/617).
    A status modeled in the service's own botocore model takes precedence.
    """
    info = service_info(signing_service)
    protocol = _request_protocol(info, request_headers)
    if protocol == "rest-xml" and info.signing_name.startswith("s3"):
        return error_response(
            signing_service, method, "AccessDenied", message, 403, request_headers=request_headers
        )
    if info.signing_name == "sns":
        return error_response(signing_service, method, "AuthorizationError", message, 403)
    if protocol == "ec2":
        return error_response(signing_service, method, "UnauthorizedOperation", message, 403)
    if protocol in ("query", "rest-xml") or info.query_compatible:
        return error_response(
            signing_service, method, "AccessDenied", message, 403, request_headers=request_headers
        )
    default = 403 if protocol == "rest-json" else 400
    status = _modeled_status(info, "AccessDeniedException") or default
    return error_response(
        signing_service, method, "AccessDeniedException", message, status, request_headers=request_headers
    )
