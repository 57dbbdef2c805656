"""The gate every request to the local endpoint passes: the endpoint's security boundary.

In order, as AWS's front doors do (docs/aws-behaviour.md#the-endpoint-as-a-security-boundary):

1. Host: only `127.0.0.1`, `localhost` or `[::1]` with the endpoint's own port (a DNS-rebound
   name is refused before anything else is read).
2. Browsers: a request carrying an `Origin` (or `Sec-Fetch-Site: cross-site/same-site`) is
   refused unless `--allow-origin` named that origin; preflights (OPTIONS) are refused; no
   response carries CORS headers.
3. Authentication: SigV4 (header or presigned query) with a key the local IAM issued; the
   error codes are AWS's for the service (sluice.local.iam.sigv4, sluice.local.iam.errors).
4. Authorization: the operation's IAM actions and resources (sluice.local.iam.actions),
   evaluated by sluice.local.iam.backend.Authorizer; denials answer AWS's AccessDenied shape.

moto's own API (`/moto-api/...`) is not AWS's and is refused, except `POST /moto-api/reset` when
the cloud was started with `allow_reset` (`sluice local up --allow-reset`), for test suites
written for moto's server: it must pass the checks above (loopback Host, no browser, SigV4) and
be signed with the administrator's key, since it deletes everything the cloud holds
(docs/aws-behaviour.md#the-endpoint-as-a-security-boundary).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sluice.local.iam import errors, sigv4
from sluice.local.iam.actions import required
from sluice.local.iam.backend import IamService, Identity
from sluice.local.iam.operations import Operation, UnknownOperationError, identify

log = logging.getLogger(__name__)

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# S3 requests whose XML body names what they act on (DeleteObjects' keys); bodies of other S3
# requests (object data) are never read here.
_S3_BODY_LIMIT = 1024 * 1024
# IAM operations that change who may do what; anything else of IAM's only reads.
_IAM_READ_PREFIXES = ("Get", "List", "Simulate", "Generate")
MOTO_API = "/moto-api/"
RESET_PATH = "/moto-api/reset"


class Gate:
    """WSGI middleware in front of the service router."""

    def __init__(
        self,
        app: WSGIApp,
        iam: IamService,
        *,
        port: Callable[[], int],
        allowed_origins: Iterable[str] = (),
        reset: Callable[[], None] | None = None,
    ) -> None:
        """`reset`: what `POST /moto-api/reset` runs (signed by the administrator); None refuses it."""
        self.app = app
        self.iam = iam
        self._port = port
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.reset = reset

    # -- refusals that need no AWS shape -----------------------------------------------------------

    @staticmethod
    def _refuse(start_response: StartResponse, status: str, message: str) -> list[bytes]:
        body = (message + "\n").encode()
        start_response(
            status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _host_allowed(self, host: str) -> bool:
        port = str(self._port())
        return host.lower() in {f"{name}:{port}" for name in LOOPBACK_NAMES}

    def _browser_refusal(self, environ: WSGIEnviron) -> str | None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            return (
                f"requests from web pages (Origin: {origin}) are not served: the local cloud runs code on "
                "this machine. Start it with `sluice local up --allow-origin ORIGIN` to allow one origin."
            )
        site = environ.get("HTTP_SEC_FETCH_SITE", "")
        if origin is None and site in ("cross-site", "same-site"):
            return "requests a browser sends on behalf of another site are not served by the local cloud"
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return "CORS preflight requests are not served by the local cloud"
        return None

    # -- the request -------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "")
        if not self._host_allowed(host):
            return self._refuse(
                start_response,
                "403 Forbidden",
                f"Host {host!r} is not served: use http://127.0.0.1:{self._port()} (DNS rebinding protection)",
            )
        refusal = self._browser_refusal(environ)
        if refusal is not None:
            return self._refuse(start_response, "403 Forbidden", refusal)
        moto_api = str(environ.get("PATH_INFO", "")).startswith(MOTO_API)
        if moto_api and (self.reset is None or environ.get("PATH_INFO") != RESET_PATH):
            return self._refuse(
                start_response,
                "403 Forbidden",
                "moto's API is not served by the local cloud, except POST /moto-api/reset signed with the "
                "administrator's key when it runs with `sluice local up --allow-reset`",
            )

        def no_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info)

        method = environ.get("REQUEST_METHOD", "GET")
        body_holder: dict[str, bytes] = {}

        def read_body() -> bytes:
            if "body" not in body_holder:
                data = environ["wsgi.input"].read()
                body_holder["body"] = data
                environ["wsgi.input"] = io.BytesIO(data)
            return body_holder["body"]

        probe = sigv4.SignedRequest.from_wsgi(environ, None)
        try:
            credential = sigv4.parse(probe)
        except sigv4.SignatureError as error:
            return self._error(start_response, method, environ, error)
        if credential is None:
            service = _service_from_path(environ)
            return self._error(start_response, method, environ, sigv4.missing_authentication(service))
        service = credential.service
        identity = self.iam.identities.lookup(credential.access_key)
        if identity is None:
            return self._error(
                start_response, method, environ, sigv4.unknown_access_key(service, credential.access_key)
            )
        if identity.session_token is not None and credential.session_token != identity.session_token:
            return self._error(
                start_response, method, environ, sigv4.unknown_access_key(service, credential.access_key)
            )
        is_s3 = service == "s3"
        if not is_s3 or probe.header("x-amz-content-sha256") is None:
            read_body()
        request = sigv4.SignedRequest.from_wsgi(environ, body_holder.get("body"))
        try:
            sigv4.verify(request, credential, identity.secret_key, datetime.now(UTC))
        except sigv4.SignatureError as error:
            return self._error(start_response, method, environ, error)

        if moto_api:
            return self._reset(environ, identity, start_response)
        if self.iam.mode != "off":
            denial = self._authorize(environ, identity, service, credential.region, read_body, is_s3)
            if denial is not None:
                status, headers, body = errors.access_denied(
                    service, method, denial, request_headers=_headers(environ)
                )
                start_response(_status_line(status), headers)
                return [body]
        environ["sluice.identity"] = identity
        return self.app(environ, no_cors)

    def _reset(self, environ: WSGIEnviron, identity: Identity, start_response: StartResponse) -> list[bytes]:
        admin = self.iam.identities.admin
        if environ.get("REQUEST_METHOD") != "POST":
            return self._refuse(start_response, "405 Method Not Allowed", "POST /moto-api/reset only")
        if admin is None or identity.access_key != admin.access_key or self.reset is None:
            return self._refuse(
                start_response, "403 Forbidden", "only the administrator's key may reset the local cloud"
            )
        log.info("resetting the local cloud for %s", identity.principal.arn)
        self.reset()
        body = b'{"status": "ok"}'
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _authorize(
        self,
        environ: WSGIEnviron,
        identity: Identity,
        service: str,
        region: str,
        read_body: Callable[[], bytes],
        is_s3: bool,
    ) -> str | None:
        raw_path, _, raw_query = (environ.get("REQUEST_URI") or environ.get("RAW_URI") or "/").partition("?")

        def body() -> bytes:
            if is_s3 and int(environ.get("CONTENT_LENGTH") or 0) > _S3_BODY_LIMIT:
                return b""
            return read_body()

        try:
            operation = identify(
                service, environ.get("REQUEST_METHOD", "GET"), raw_path, raw_query, _headers(environ), body
            )
        except UnknownOperationError as error:
            # Not an API call this gate can map to an IAM action: nothing can allow it, so it is
            # refused like any unauthorized call (the endpoint never serves what it cannot authorize).
            log.warning("IAM: refusing a request that names no known operation: %s", error)
            message = (
                f"User: {identity.principal.arn} is not authorized to perform this request: the local "
                f"cloud cannot map it to an IAM action ({error})"
            )
            return self.iam.authorizer.record_unmapped(identity, message)
        if operation.service_model_name == "iam" and not operation.name.startswith(_IAM_READ_PREFIXES):
            self.iam.authorizer.policies_changed()
        if _needs_no_authorization(operation):
            return None
        authorizations = required(
            operation,
            region=region,
            account=self.iam.identities.account_id,
            resolver=self.iam.authorizer.resolve,
        )
        found = self.iam.authorizer.check(
            identity,
            authorizations,
            region=region,
            operation=f"{operation.service_model_name}:{operation.name}",
        )
        return found.message if found is not None else None

    @staticmethod
    def _error(
        start_response: StartResponse, method: str, environ: WSGIEnviron, error: sigv4.SignatureError
    ) -> list[bytes]:
        status, headers, body = error.response(method, request_headers=_headers(environ))
        start_response(_status_line(status), headers)
        return [body]


def _needs_no_authorization(operation: Operation) -> bool:
    # GetCallerIdentity needs no permission (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    return operation.service_model_name == "sts" and operation.name == "GetCallerIdentity"


def _headers(environ: WSGIEnviron) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _service_from_path(environ: WSGIEnviron) -> str:
    """The service an unsigned request meant, only to shape its error like that service's."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        prefix = target.split(".", 1)[0].lower()
        return {"awsstepfunctions": "states", "awsevents": "events", "logs_20140328": "logs"}.get(
            prefix, prefix
        )
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/v1/"):
        return "batch"
    if path.startswith(("/2015-03-31/", "/2017-10-31/", "/2019-09-25/")):
        return "lambda"
    if "Action=" in str(environ.get("QUERY_STRING", "")):
        return "sns"
    return "s3"


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
}


def _status_line(status: int) -> str:
    return f"{status} {_REASONS.get(status, 'Error')}"
