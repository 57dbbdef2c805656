"""AWS Signature Version 4 verification for the local cloud's one endpoint.

``parse(req)`` reads the SigV4 credential of a request (``Authorization`` header or presigned
``X-Amz-*`` query); the caller looks the access key up (``unknown_access_key`` when it is not
known) and calls ``verify(req, credential, secret, now)``, which rebuilds the canonical request the
client signed and raises ``SignatureError`` carrying the code, message and HTTP status the real
service family answers with. ``SignatureError.response(method)`` renders it (errors.py).

Signing follows https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and
reproduces botocore's SigV4Auth / S3SigV4Auth / SigV4QueryAuth / S3SigV4QueryAuth:

* canonical URI: S3 signs the path as sent (no normalisation, no second encoding); every other
  service removes dot segments and empty segments and URI-encodes the already-encoded path again
  (``/functions/arn%3Aaws...`` is signed as ``/functions/arn%253Aaws...``);
* canonical query: every name and value URI-encoded (unreserved ``A-Za-z0-9-_.~`` kept), sorted by
  name then value; presigned requests leave ``X-Amz-Signature`` out;
* canonical headers: the SignedHeaders, lower-case, values trimmed and inner runs of white space
  collapsed to one space;
* payload: S3 uses the ``x-amz-content-sha256`` header literally (a hex hash, ``UNSIGNED-PAYLOAD``
  or a ``STREAMING-...`` value; chunk signatures of streamed uploads are not checked here),
  presigned S3 ``UNSIGNED-PAYLOAD``; other services the SHA-256 of the body.

Time: header-signed requests and non-S3 presigned URLs must be dated within the service's skew
allowance of the server clock (15 minutes; 5 for the services in ``_SKEW_BY_SERVICE``); presigned
S3 URLs are good until X-Amz-Date + X-Amz-Expires (at most 7 days).

SigV2 is not supported: an ``Authorization: AWS ...`` header raises (S3: InvalidArgument
"Unsupported Authorization Type"), and SigV2 query auth (``?AWSAccessKeyId=&Signature=&Expires=``)
is not recognised: ``parse`` returns None, as for an unsigned request. Note that boto3 presigns S3
URLs with SigV2 in us-east-1 unless the client has ``Config(signature_version="s3v4")``.

Error codes per family (doc URLs where AWS documents them; "ND" marks behaviour the AWS docs do not
state, taken from public error reports cited at the code or, failing those, chosen as the most
plausible):

==========================  ======================  =====================  ============================  ==========================
case                        s3                      query (sns, sts, iam,  json (states, logs, events,   rest-json (lambda, batch)
                                                    cloudformation, sqs*)  kms, ecr, ssm, ...)
==========================  ======================  =====================  ============================  ==========================
unknown access key          InvalidAccessKeyId 403  InvalidClientTokenId   UnrecognizedClientException   UnrecognizedClientException
                                                    403                    400                           403
signature mismatch          SignatureDoesNotMatch   SignatureDoesNotMatch  InvalidSignatureException     InvalidSignatureException
                            403                     403                    400                           403
clock skew                  RequestTimeTooSkewed    SignatureDoesNotMatch  InvalidSignatureException     InvalidSignatureException
                            403                     403 (ND)               400 (ND)                      403 (ND)
no credentials at all       AccessDenied 403 (ND)   MissingAuthentication  MissingAuthentication         MissingAuthentication
                                                    Token 403              TokenException 400 (ND)       TokenException 403 (ND)
malformed Authorization     AuthorizationHeader     IncompleteSignature    IncompleteSignatureException  IncompleteSignatureException
                            Malformed 400           400                    400                           403
==========================  ======================  =====================  ============================  ==========================

(*) sqs and cloudwatch now speak JSON/CBOR but are ``awsQueryCompatible``: they keep the query
codes, sent with an ``x-amzn-query-error`` header. ec2 answers ``AuthFailure`` 401 for unknown keys
and bad signatures and ``RequestExpired`` 400 for skew (ND, observed).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

from sluice.local.iam import errors

# Where moto's request handler keeps the original names of headers holding an underscore
# (moto.core.request.PRESERVED_HEADER_NAMES_ENVIRON_KEY; named here so the verifier imports no moto).
PRESERVED_HEADER_NAMES = "moto.preserved_header_names"

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_SKEW",
    "MAX_PRESIGNED_EXPIRES",
    "Credential",
    "SignatureError",
    "SignedRequest",
    "auth_family",
    "canonical_request",
    "missing_authentication",
    "parse",
    "signing_key",
    "skew_limit",
    "unknown_access_key",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# "The request reached the service more than 15 minutes after the date stamp on the request ...
# or the date stamp on the request is more than 15 minutes in the future."
# https://docs.aws.amazon.com/emr/latest/APIReference/CommonErrors.html (RequestExpired)
DEFAULT_MAX_SKEW = timedelta(minutes=15)
# Some services allow only 5 minutes; their own error texts say so ("... (<now> - 5 min.)").
# ND in the docs; observed: lambda (github.com/pulumi/pulumi-aws/issues/55, serverless/serverless
# #27), ssm (aws/aws-sdk-net#1506), kinesis (remind101/logspout-kinesis#21), cloudformation and
# route53 (hashicorp/terraform#9571).
_SKEW_BY_SERVICE: dict[str, timedelta] = {
    name: timedelta(minutes=5) for name in ("lambda", "ssm", "kinesis", "cloudformation", "route53")
}

# Presigned URLs live at most 7 days: "X-Amz-Expires ... maximum is 604800 (seven days)".
# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
MAX_PRESIGNED_EXPIRES = 604800

_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_DATE_RE = re.compile(r"\d{8}\Z")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}\Z")
_CREDENTIAL_SERVICE_RE = re.compile(r"Credential=[^/,\s]*/[^/,\s]*/[^/,\s]*/([^/,\s]+)")
# The x-amz-content-sha256 values S3 accepts besides a hex digest.
# https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
_S3_PAYLOAD_LITERALS = frozenset(
    {
        UNSIGNED_PAYLOAD,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
    }
)
# Printable ASCII: left alone in S3 paths, which are signed as sent.
_ASCII_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))

_TOKEN_INVALID = "The security token included in the request is invalid."
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_S3_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)
_S3_CREDENTIAL_SHAPE = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'


class SignatureError(Exception):
    """An authentication failure, as the service family reports it.

    ``service`` is the signing name the error is rendered for (errors.error_response); ``extra``
    holds the additional elements S3 puts in its ``<Error>`` document.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        *,
        service: str = "",
        extra: Mapping[str, str] | None = None,
        canonical_request: str = "",
        string_to_sign: str = "",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.service = service
        self.extra: dict[str, str] = dict(extra or {})
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign

    def response(
        self, method: str, *, request_headers: Mapping[str, str] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``(status, headers, body)`` of this error in the wire shape of ``self.service``."""
        return errors.error_response(
            self.service,
            method,
            self.code,
            self.message,
            self.status,
            self.extra,
            request_headers=request_headers,
        )


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        result[key] = f"{result[key]},{value}" if key in result else value
    return result


def _wsgi_text(value: str) -> str:
    """A WSGI (latin-1 decoded) string back to the text the client sent (UTF-8)."""
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request SigV4 covers.

    ``raw_path`` and ``raw_query`` are as sent on the wire, percent-encoding intact. Header names
    are matched case-insensitively. ``payload_sha256`` is called only when the body's hash is
    needed (header-signed requests to services other than S3) and at most once per ``verify``.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]
    payload_sha256: Callable[[], str] = field(repr=False, default=lambda: EMPTY_SHA256)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _lower_headers(self.headers))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @classmethod
    def from_wsgi(cls, environ: Mapping[str, Any], body: bytes | None) -> SignedRequest:
        """From a WSGI environ; ``body`` None means an empty body.

        werkzeug's dev server puts the raw request target in ``REQUEST_URI`` (and ``RAW_URI``);
        other servers fall back to re-encoding ``PATH_INFO``.
        """
        target = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if target:
            target = _wsgi_text(str(target))
            if not target.startswith("/") and "://" in target:  # absolute-form: http://host/path?query
                after_scheme = target.split("://", 1)[1]
                slash = after_scheme.find("/")
                query_mark = after_scheme.find("?")
                if slash == -1 or (query_mark != -1 and query_mark < slash):
                    target = "/" + after_scheme[query_mark:] if query_mark != -1 else "/"
                else:
                    target = after_scheme[slash:]
            raw_path, _, raw_query = target.partition("?")
        else:
            path = _wsgi_text(str(environ.get("PATH_INFO", ""))) or "/"
            raw_path = quote(path, safe="/~!$&'()*+,;=:@", errors="surrogateescape")
            raw_query = _wsgi_text(str(environ.get("QUERY_STRING", "")))
        headers: dict[str, str] = {}
        # WSGI folds "x-amz-meta-a_b" and "x-amz-meta-a-b" into one key; the request handler
        # (moto's) records the original spelling of underscored names, which S3 accepts and
        # which the client signed as spelled.
        spelled: Mapping[str, str] = environ.get(PRESERVED_HEADER_NAMES, {})
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = spelled.get(key) or key[5:].replace("_", "-")
                headers[name.lower()] = str(value)
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
                headers[key.replace("_", "-").lower()] = str(value)
        data = body or b""

        @functools.cache
        def payload_sha256() -> str:
            return hashlib.sha256(data).hexdigest()

        return cls(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            payload_sha256=payload_sha256,
        )


@dataclass(frozen=True)
class Credential:
    """A request's SigV4 credential, as parsed; not yet verified."""

    access_key: str
    date: str  # YYYYMMDD from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    session_token: str | None
    request_time: datetime  # from X-Amz-Date (or the Date header), UTC
    timestamp: str  # request_time as signed: YYYYMMDD'T'HHMMSS'Z'
    expires: int | None  # X-Amz-Expires, presigned only
    presigned: bool
    raw_time: str = ""  # the date header/parameter as sent (S3 echoes it in RequestTimeTooSkewed)

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


# -- service families -------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def auth_family(signing_service: str) -> str:
    """'s3', 'query', 'ec2', 'json' or 'rest-json': which dialect of auth errors a service speaks."""
    info = errors.service_info(signing_service)
    if info.signing_name == "s3":
        return "s3"
    if info.protocol == "ec2":
        return "ec2"
    if info.protocol in ("query", "rest-xml") or info.query_compatible:
        return "query"
    if info.protocol == "rest-json":
        return "rest-json"
    return "json"


def skew_limit(signing_service: str) -> timedelta:
    """How far a request's date may be from the server's clock for this service."""
    return _SKEW_BY_SERVICE.get(signing_service.lower(), DEFAULT_MAX_SKEW)


def _json_status(family: str) -> int:
    # Auth errors of JSON (coral) services are 400s; of rest-json services 403s. Observed:
    # UnrecognizedClientException 400 from cognito-idp/kinesis/ecs (aws/aws-sdk-php#2444,
    # ekristen/aws-nuke#774), 403 from lambda (iann0036/iamlive#58); InvalidSignatureException 400
    # from dynamodb (aws/aws-sdk-js#254), 403 from lambda (serverless/serverless#27).
    # https://docs.aws.amazon.com/lambda/latest/api/CommonErrors.html lists 403 for Lambda.
    return 403 if family == "rest-json" else 400


def unknown_access_key(signing_service: str, access_key: str) -> SignatureError:
    """The error for an access key the caller does not know."""
    service = signing_service.lower()
    family = auth_family(service)
    if family == "s3":
        # https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
        return SignatureError(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            403,
            service=service,
            extra={"AWSAccessKeyId": access_key},
        )
    if family == "ec2":
        # ND: observed <Code>AuthFailure</Code> 401 (gist.github.com/archit/e9d4bf1fa7c9d50515d1).
        return SignatureError(
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
            401,
            service=service,
        )
    if family == "query":
        # InvalidClientTokenId 403: https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html;
        # the message text is what STS/IAM/SNS send (barnybug/cli53#278).
        return SignatureError("InvalidClientTokenId", _TOKEN_INVALID, 403, service=service)
    # https://docs.aws.amazon.com/lambda/latest/api/CommonErrors.html (UnrecognizedClientException)
    return SignatureError(
        "UnrecognizedClientException", _TOKEN_INVALID, _json_status(family), service=service
    )


def missing_authentication(signing_service: str) -> SignatureError:
    """The error for a request that carries no credentials where the service requires them."""
    service = signing_service.lower()
    family = auth_family(service)
    if family == "s3":
        # S3 serves unsigned requests as the anonymous principal; when that is denied, S3 answers
        # AccessDenied 403 "Access Denied". https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
        return SignatureError("AccessDenied", "Access Denied", 403, service=service)
    if family in ("query", "ec2"):
        # MissingAuthenticationToken 403: https://docs.aws.amazon.com/cloudsearch/latest/developerguide/CommonErrors.html
        # message as STS sends it (amzn/selling-partner-api-docs#3081).
        return SignatureError(
            "MissingAuthenticationToken", "Request is missing Authentication Token", 403, service=service
        )
    if family == "rest-json":
        # ND: Lambda's 403 with "Missing Authentication Token" (brefphp/bref#1250).
        return SignatureError(
            "MissingAuthenticationTokenException", "Missing Authentication Token", 403, service=service
        )
    # ND: coral JSON services answer 400 "Request is missing Authentication Token" (dynalite, which
    # mirrors DynamoDB, architect/dynalite#105).
    return SignatureError(
        "MissingAuthenticationTokenException", "Request is missing Authentication Token", 400, service=service
    )


def _incomplete(service: str, message: str, *, presigned: bool = False) -> SignatureError:
    """Malformed SigV4 (IncompleteSignature): 400 per the common errors; 403 for rest-json.

    https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html (IncompleteSignature 400),
    https://docs.aws.amazon.com/lambda/latest/api/CommonErrors.html (403).
    """
    family = auth_family(service)
    if family == "s3":
        if presigned:
            return SignatureError("AuthorizationQueryParametersError", message, 400, service=service)
        return SignatureError("AuthorizationHeaderMalformed", message, 400, service=service)
    if family in ("query", "ec2"):
        return SignatureError("IncompleteSignature", message, 400, service=service)
    return SignatureError("IncompleteSignatureException", message, _json_status(family), service=service)


def _signature_mismatch(
    service: str, credential: Credential, canonical: str, string_to_sign: str, message: str = ""
) -> SignatureError:
    family = auth_family(service)
    if family == "s3":
        # https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList; S3
        # adds the string to sign and canonical request it computed (observed, e.g.
        # gist.github.com/andretw/1078f6a33f754d3179c698b1b5be471f).
        extra = {
            "AWSAccessKeyId": credential.access_key,
            "StringToSign": string_to_sign,
            "SignatureProvided": credential.signature,
            "StringToSignBytes": " ".join(f"{b:02x}" for b in string_to_sign.encode()),
            "CanonicalRequest": canonical,
            "CanonicalRequestBytes": " ".join(f"{b:02x}" for b in canonical.encode()),
        }
        return SignatureError(
            "SignatureDoesNotMatch",
            message or _S3_SIGNATURE_MISMATCH,
            403,
            service=service,
            extra=extra,
            canonical_request=canonical,
            string_to_sign=string_to_sign,
        )
    if family == "ec2":
        code, status = "AuthFailure", 401  # ND, as for unknown keys
        message = message or "AWS was not able to validate the provided access credentials"
    elif family == "query":
        # SignatureDoesNotMatch 403 (aws/aws-cli#6676; aristidb/aws#1 for the message text).
        code, status = "SignatureDoesNotMatch", 403
    else:
        # InvalidSignatureException; message as in okigan/awscurl#27.
        code, status = "InvalidSignatureException", _json_status(family)
    return SignatureError(
        code,
        message or _SIGNATURE_MISMATCH,
        status,
        service=service,
        canonical_request=canonical,
        string_to_sign=string_to_sign,
    )


# -- parsing ----------------------------------------------------------------------------------


def _query_params(raw_query: str) -> dict[str, str]:
    """First value of each X-Amz-* parameter, percent-decoded ('+' stays '+')."""
    params: dict[str, str] = {}
    for piece in raw_query.split("&"):
        name, _, value = piece.partition("=")
        name = unquote(name)
        if name.startswith("X-Amz-") and name not in params:
            params[name] = unquote(value)
    return params


def _parse_amz_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _split_scope(value: str) -> list[str] | None:
    parts = value.split("/")
    if len(parts) != 5 or not parts[0] or not _DATE_RE.match(parts[1]) or not parts[2] or not parts[3]:
        return None
    return parts


def parse(req: SignedRequest, service_hint: str = "") -> Credential | None:
    """The request's SigV4 credential; None when it carries no SigV4 at all.

    Raises SignatureError for malformed SigV4. ``service_hint`` (a signing name) picks the error
    dialect when the credential scope is too broken to name the service.
    """
    authorization = req.header("authorization")
    params = _query_params(req.raw_query) if "X-Amz-" in req.raw_query else {}
    presigned = "X-Amz-Algorithm" in params or "X-Amz-Credential" in params
    if authorization is None and not presigned:
        return None
    if authorization is not None and presigned:
        service = _guess_service(authorization, params, service_hint)
        if auth_family(service) == "s3":
            # ND text (S3 rejects requests with both auth mechanisms).
            raise SignatureError(
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
                "query string parameter or the Authorization header should be specified",
                400,
                service=service,
                extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
            )
        presigned = False  # ND: other services go by the header
    if presigned:
        return _parse_presigned(req, params, service_hint)
    assert authorization is not None
    return _parse_header(req, authorization, service_hint)


def _guess_service(authorization: str | None, params: Mapping[str, str], hint: str) -> str:
    if authorization:
        match = _CREDENTIAL_SERVICE_RE.search(authorization)
        if match:
            return match.group(1).lower()
    credential = params.get("X-Amz-Credential", "")
    parts = credential.split("/")
    if len(parts) >= 4 and parts[3]:
        return parts[3].lower()
    return hint.lower()


def _parse_header(req: SignedRequest, authorization: str, hint: str) -> Credential:
    service = _guess_service(authorization, {}, hint)
    s3 = auth_family(service) == "s3"
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        if s3:
            # ND text; S3 answers SigV2 / unknown schemes it does not take this way.
            raise SignatureError(
                "InvalidArgument",
                "Unsupported Authorization Type",
                400,
                service=service,
                extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
            )
        raise _incomplete(service, f"Unsupported AWS 'algorithm': '{algorithm}'")  # ND text
    components: dict[str, str] = {}
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        if not eq:
            if s3:
                raise _incomplete(
                    service,
                    f'The authorization header is malformed; the authorization component "{piece}" is malformed.',
                )
            # Observed text (jenkinsci/aws-credentials-plugin#72).
            raise _incomplete(
                service,
                f"'{piece}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                f"'{authorization}'.",
            )
        components[name.strip()] = value.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not components.get(name)]
    if missing:
        if s3:
            raise _incomplete(
                service,
                "The authorization header is malformed; the authorization header requires three components: "
                "Credential, SignedHeaders, and Signature.",
            )
        raise _incomplete(
            service,
            "".join(f"Authorization header requires '{name}' parameter. " for name in missing)
            + f"Authorization={authorization}",
        )
    scope = _split_scope(components["Credential"])
    if scope is None or scope[4] != TERMINATOR:
        raise _credential_malformed(service, components["Credential"], presigned=False)

    amz_date = req.header("x-amz-date")
    raw_time = amz_date or req.header("date") or ""
    request_time: datetime | None
    if amz_date:
        request_time = _parse_amz_date(amz_date.strip())
    elif raw_time:
        try:
            request_time = parsedate_to_datetime(raw_time).astimezone(UTC)
        except (TypeError, ValueError):
            request_time = None
    else:
        request_time = None
    if request_time is None:
        if s3:
            # Observed (aws/aws-sdk-js#120, hubrick/vertx-s3-client#5).
            raise SignatureError(
                "AccessDenied",
                "AWS authentication requires a valid Date or x-amz-date header",
                403,
                service=service,
            )
        if raw_time:
            raise _incomplete(  # ND text
                service,
                f"Date must be in ISO-8601 'basic format'. Got '{raw_time}'. See http://en.wikipedia.org/wiki/ISO_8601",
            )
        # Observed text (badslug/Paw-AWSSignature4DynamicValue#5).
        raise _incomplete(
            service,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            f"Authorization={authorization}",
        )
    return Credential(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3].lower(),
        signed_headers=tuple(h.strip().lower() for h in components["SignedHeaders"].split(";") if h.strip()),
        signature=components["Signature"],
        session_token=req.header("x-amz-security-token"),
        request_time=request_time,
        timestamp=request_time.strftime(_TIMESTAMP),
        expires=None,
        presigned=False,
        raw_time=raw_time,
    )


def _credential_malformed(service: str, value: str, *, presigned: bool) -> SignatureError:
    if auth_family(service) == "s3":
        # Observed header text (aws/aws-sdk-php#780); the query variant is ND.
        prefix = (
            "Error parsing the X-Amz-Credential parameter"
            if presigned
            else "The authorization header is malformed"
        )
        return _incomplete(
            service, f"{prefix}; the Credential is mal-formed; {_S3_CREDENTIAL_SHAPE}", presigned=presigned
        )
    terminator = value.rsplit("/", 1)[-1]
    if terminator != TERMINATOR:
        # ND text.
        return _incomplete(
            service,
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'.",
        )
    return _incomplete(
        service, f"Credential should be scoped to a valid date, region and service: '{value}'."
    )


def _parse_presigned(req: SignedRequest, params: Mapping[str, str], hint: str) -> Credential:
    service = _guess_service(None, params, hint)
    s3 = auth_family(service) == "s3"
    required = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders"]
    if s3:
        required.append("X-Amz-Expires")
    if any(not params.get(name) for name in required):
        if s3:
            # ND text (S3's AuthorizationQueryParametersError for incomplete query auth).
            raise _incomplete(
                service,
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
                presigned=True,
            )
        missing = ", ".join(f"'{name}'" for name in required if not params.get(name))
        raise _incomplete(  # ND text
            service,
            f"AWS query-string parameters must include {missing}. Re-examine the query-string parameters.",
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(service, f'X-Amz-Algorithm only supports "{ALGORITHM}"', presigned=True)  # ND text
    scope = _split_scope(params["X-Amz-Credential"])
    if scope is None or scope[4] != TERMINATOR:
        raise _credential_malformed(service, params["X-Amz-Credential"], presigned=True)
    request_time = _parse_amz_date(params["X-Amz-Date"])
    if request_time is None:
        raise _incomplete(  # ND text
            service, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"", presigned=True
        )
    expires: int | None = None
    if params.get("X-Amz-Expires"):
        raw = params["X-Amz-Expires"]
        if not raw.isdigit():
            raise _incomplete(service, "X-Amz-Expires should be a number", presigned=True)  # ND text
        expires = int(raw)
        if s3 and expires > MAX_PRESIGNED_EXPIRES:
            # Observed text (bryanjos/aws_auth#31, aws/aws-cli#5464).
            raise _incomplete(
                service,
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
                f"less than {MAX_PRESIGNED_EXPIRES} seconds",
                presigned=True,
            )
    return Credential(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3].lower(),
        signed_headers=tuple(
            h.strip().lower() for h in params["X-Amz-SignedHeaders"].split(";") if h.strip()
        ),
        signature=params["X-Amz-Signature"],
        session_token=params.get("X-Amz-Security-Token") or None,
        request_time=request_time,
        timestamp=params["X-Amz-Date"],
        expires=expires,
        presigned=True,
        raw_time=params["X-Amz-Date"],
    )


# -- canonical request ------------------------------------------------------------------------


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 plus collapsing of empty segments, as botocore normalises non-S3 paths."""
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def _canonical_path(raw_path: str, s3: bool) -> str:
    if s3:
        path = raw_path or "/"
        return path if path.isascii() else quote(path, safe=_ASCII_VISIBLE, errors="surrogateescape")
    return quote(_remove_dot_segments(raw_path), safe="/~", errors="surrogateescape")


def _encode_query_part(value: str) -> str:
    return quote(unquote_to_bytes(value), safe="-_.~")


def _canonical_query(raw_query: str, presigned: bool) -> str:
    if not raw_query:
        return ""
    pairs: list[tuple[str, str]] = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        name = _encode_query_part(name)
        if presigned and name == "X-Amz-Signature":
            continue
        pairs.append((name, _encode_query_part(value)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _payload_hash(req: SignedRequest, credential: Credential, s3: bool) -> str:
    header = req.header("x-amz-content-sha256")
    if s3:
        if not credential.presigned:
            return (header or "").strip()
        if header is not None and "x-amz-content-sha256" in credential.signed_headers:
            return header.strip()
        query = _query_params(req.raw_query).get("X-Amz-Content-Sha256")
        return query if query else UNSIGNED_PAYLOAD
    if header:
        # botocore signs a present x-amz-content-sha256 literally, for every service.
        return header.strip()
    return req.payload_sha256()


def canonical_request(req: SignedRequest, credential: Credential, payload_hash: str | None = None) -> str:
    """The canonical request the client should have signed for ``credential``."""
    s3 = auth_family(credential.service) == "s3"
    headers = []
    for name in credential.signed_headers:
        value = req.header(name)
        headers.append(f"{name}:{' '.join(value.split()) if value else ''}\n")
    return "\n".join(
        (
            req.method.upper(),
            _canonical_path(req.raw_path, s3),
            _canonical_query(req.raw_query, credential.presigned),
            "".join(headers),
            ";".join(credential.signed_headers),
            payload_hash if payload_hash is not None else _payload_hash(req, credential, s3),
        )
    )


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").

    Cached (bounded LRU): the key changes once a day per (secret, region, service).
    """
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


# -- verification -----------------------------------------------------------------------------


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _stamp(value: datetime) -> str:
    return value.strftime(_TIMESTAMP)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_scope_date(service: str, credential: Credential) -> None:
    if credential.date == credential.timestamp[:8]:
        return
    if auth_family(service) == "s3":
        # Observed (arqbackup/arq_restore#48; ml-archive/storage#68); the presigned variant is ND.
        prefix = "" if credential.presigned else "The authorization header is malformed; "
        raise _incomplete(
            service,
            f"{prefix}Invalid credential date. Date is not the same as X-Amz-Date.",
            presigned=credential.presigned,
        )
    # ND text (AWS's coral services word it this way).
    message = (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'{credential.date}' != '{credential.timestamp[:8]}', from '{credential.timestamp}'."
    )
    family = auth_family(service)
    if family in ("query", "ec2"):
        raise SignatureError("SignatureDoesNotMatch", message, 403, service=service)
    raise SignatureError("InvalidSignatureException", message, _json_status(family), service=service)


def _check_time(service: str, credential: Credential, now: datetime, max_skew: timedelta) -> None:
    family = auth_family(service)
    when = credential.request_time
    if family == "s3" and credential.presigned:
        expires_at = when + timedelta(seconds=credential.expires or 0)
        if now > expires_at:
            # Observed (aws/aws-sdk-php#1333, aws/aws-sdk-js#3493).
            raise SignatureError(
                "AccessDenied",
                "Request has expired",
                403,
                service=service,
                extra={
                    "X-Amz-Expires": str(credential.expires or 0),
                    "Expires": _iso(expires_at),
                    "ServerTime": _iso(now),
                },
            )
        if when - now > max_skew:
            # ND: a presigned URL dated in the future.
            raise SignatureError("AccessDenied", "Request is not yet valid", 403, service=service)
        return
    if abs(now - when) <= max_skew:
        return
    minutes = int(max_skew.total_seconds() // 60)
    if family == "s3":
        # https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
        # (RequestTimeTooSkewed, 403); extra elements as S3 sends them (pastebin.com/8HJpUdsv).
        raise SignatureError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
            service=service,
            extra={
                "RequestTime": credential.raw_time,
                "ServerTime": _iso(now),
                "MaxAllowedSkewMilliseconds": str(int(max_skew.total_seconds() * 1000)),
            },
        )
    if family == "ec2":
        # https://docs.aws.amazon.com/emr/latest/APIReference/CommonErrors.html (RequestExpired 400);
        # ND that EC2 uses it for skew.
        raise SignatureError("RequestExpired", "Request has expired.", 400, service=service)
    if when < now:
        # Observed texts: aws/aws-cli#6676 (sts), aws/aws-sdk-js#265 (sns), aws/aws-sdk-js#254 (dynamodb).
        message = (
            f"Signature expired: {_stamp(when)} is now earlier than {_stamp(now - max_skew)} "
            f"({_stamp(now)} - {minutes} min.)"
        )
    else:
        # Observed text: QT-DevOps/DevOpsIssues#989 (sts), serverless/enterprise#11.
        message = (
            f"Signature not yet current: {_stamp(when)} is still later than {_stamp(now + max_skew)} "
            f"({_stamp(now)} + {minutes} min.)"
        )
    if family == "query":
        raise SignatureError("SignatureDoesNotMatch", message, 403, service=service)
    raise SignatureError("InvalidSignatureException", message, _json_status(family), service=service)


def verify(
    req: SignedRequest,
    credential: Credential,
    secret_key: str,
    now: datetime,
    *,
    key: bytes | None = None,
    max_skew: timedelta | None = None,
) -> None:
    """Raise SignatureError unless ``credential`` is a valid SigV4 signature of ``req``.

    ``key`` is ``signing_key(secret_key, credential.date, credential.region, credential.service)``
    when the caller has it; ``max_skew`` overrides the service's clock-skew allowance.
    """
    service = credential.service
    family = auth_family(service)
    s3 = family == "s3"
    now = _utc(now).replace(microsecond=0)

    _check_scope_date(service, credential)
    _check_time(service, credential, now, max_skew if max_skew is not None else skew_limit(service))

    header_hash = req.header("x-amz-content-sha256")
    if s3 and not credential.presigned:
        value = (header_hash or "").strip()
        if not value:
            # ND text; S3 requires the header with SigV4 header auth.
            # https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
            raise SignatureError(
                "InvalidRequest",
                "Missing required header for this request: x-amz-content-sha256",
                400,
                service=service,
            )
        if value not in _S3_PAYLOAD_LITERALS and not _HEX64_RE.match(value):
            raise SignatureError(  # ND text
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
                "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER "
                "or a valid sha256 value.",
                400,
                service=service,
                extra={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": value},
            )

    payload = _payload_hash(req, credential, s3)
    canonical = canonical_request(req, credential, payload)
    string_to_sign = "\n".join(
        (ALGORITHM, credential.timestamp, credential.scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    if key is None:
        key = signing_key(secret_key, credential.date, credential.region, service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), credential.signature.encode("utf-8", "replace")):
        raise _signature_mismatch(service, credential, canonical, string_to_sign)
    if not s3 and header_hash and _HEX64_RE.match(header_hash.strip()):
        # A non-S3 request that states its body hash is signed over that statement; the body must
        # match it too (AWS hashes the body it received). ND which error: a signature mismatch.
        if header_hash.strip().lower() != req.payload_sha256().lower():
            raise _signature_mismatch(service, credential, canonical, string_to_sign)
