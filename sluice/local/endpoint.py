"""The local cloud's single loopback endpoint.

One threaded HTTP/1.1 server on 127.0.0.1 serves every AWS API Sluice uses. A request goes
to the WSGI app registered for the service named in its SigV4 credential scope
(``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request``):
``batch`` to the Batch engine, ``lambda`` to the Lambda runtime, ``events`` and ``s3`` to thin
hooks in front of moto, everything else (and unsigned requests) straight to moto.

Why not werkzeug's ``make_server`` as moto's ``ThreadedMotoServer`` uses it: werkzeug 3 sends
``Connection: close`` on every response and then waits 10 ms for stray request bytes, so each
boto3 call pays a new TCP connection, a new thread and 10 ms. This handler keeps werkzeug's
environ building (and moto's header handling) but serves HTTP/1.1 keep-alive: request bodies
are length-bounded and drained, responses carry Content-Length or chunked encoding.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer

log = logging.getLogger(__name__)

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

# `Credential=AKID/20240101/us-east-1/batch/aws4_request` -> region, service.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")

# A keep-alive connection with no request for this long is closed, so handler threads of
# clients that went away (boto3 clients are created per Step Functions task) do not pile up.
_IDLE_CONNECTION_SECONDS = 60.0
# Unread request bodies up to this size are drained to keep the connection usable; larger
# ones close the connection instead of reading data nobody wants.
_MAX_DRAIN_BYTES = 64 * 1024 * 1024


def sigv4_scope(environ: Mapping[str, Any]) -> tuple[str, str] | None:
    """(region, service) from a SigV4 Authorization header or presigned query, else None."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    query = environ.get("QUERY_STRING", "")
    if match is None and "X-Amz-Credential=" in query:
        credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
        match = _CREDENTIAL_SCOPE.search(f"Credential={credential}")
    if match is None:
        return None
    return match.group(1), match.group(2).lower()


def create_moto_app() -> WSGIApp:
    """moto's own server-mode dispatcher (the app ThreadedMotoServer serves)."""
    return DomainDispatcherApplication(create_backend_app)


class ServiceRouter:
    """WSGI app choosing the app for a request by its SigV4 service name."""

    def __init__(self, default: WSGIApp, routes: Mapping[str, WSGIApp] | None = None) -> None:
        self.default = default
        self.routes: dict[str, WSGIApp] = dict(routes or {})

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        scope = sigv4_scope(environ)
        app = self.routes.get(scope[1], self.default) if scope else self.default
        return app(environ, start_response)


class _BodyReader:
    """wsgi.input bounded to the request's Content-Length, counting what is left to drain."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data: bytes = self._rfile.read(size)
        self.remaining -= len(data)
        if not data:
            self.remaining = 0
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data: bytes = self._rfile.readline(size)
        self.remaining -= len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> bool:
        """Discard the unread body; False if it was too large to be worth reading."""
        if self.remaining > _MAX_DRAIN_BYTES:
            return False
        while self.remaining > 0:
            if not self.read(min(self.remaining, 1 << 20)):
                return False
        return True


class _KeepAliveHandler(MotoRequestHandler):
    """moto's request handler (keeps S3 metadata headers with underscores) speaking HTTP/1.1."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK (~40 ms) on every kept-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        # Idle timeout only while waiting for the next request line; see parse_request.
        self.connection.settimeout(_IDLE_CONNECTION_SECONDS)
        super().handle_one_request()

    def parse_request(self) -> bool:
        self.connection.settimeout(None)
        return super().parse_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # werkzeug logs every request to stderr; the local cloud serves thousands.
        return None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def log_error(self, format: str, *args: Any) -> None:
        # The only socket timeout is the idle one (handle_one_request): a kept-alive connection
        # nobody used for a while is closed, which is routine, not an error worth printing.
        if format.startswith("Request timed out"):
            self.log_message(format, *args)
            return
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        # `Expect: 100-continue` was answered by BaseHTTPRequestHandler.parse_request already.
        environ = self.make_environ()
        if environ.get("wsgi.input_terminated"):  # werkzeug already dechunked a chunked body
            body: Any = environ["wsgi.input"]
        else:
            body = _BodyReader(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = body
            environ["wsgi.input_terminated"] = True
        is_head = environ["REQUEST_METHOD"] == "HEAD"

        state: dict[str, Any] = {"status": None, "headers": None, "sent": False, "chunked": False}

        def send_headers() -> None:
            status: str = state["status"]
            code_str, _, reason = status.partition(" ")
            code = int(code_str)
            self.send_response(code, reason)
            names = set()
            for name, value in state["headers"]:
                lname = name.lower()
                if lname in ("connection", "transfer-encoding", "keep-alive"):
                    continue  # hop-by-hop headers are this server's business
                names.add(lname)
                self.send_header(name, value)
            no_body = is_head or 100 <= code < 200 or code in (204, 304)
            if "content-length" not in names and not no_body:
                if self.request_version >= "HTTP/1.1":
                    state["chunked"] = True
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.close_connection = True
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            state["sent"] = True

        def write(data: bytes) -> None:
            if not state["sent"]:
                send_headers()
            if not data or is_head:
                return
            if state["chunked"]:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info and state["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        try:
            app_iter = self.server.app(environ, start_response)
            try:
                for data in app_iter:
                    write(data)
                if not state["sent"]:
                    send_headers()
                if state["chunked"]:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception:
            log.exception("error serving %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            self.close_connection = True
            if not state["sent"]:
                state["status"], state["headers"] = "500 Internal Server Error", [("Content-Length", "0")]
                send_headers()
            return
        # Keep the connection in step: whatever body the app did not read must go.
        if isinstance(body, _BodyReader):
            if not body.drain():
                self.close_connection = True
        else:
            while body.read(1 << 20):
                pass


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded WSGI server, tracking connections so stop() can close them."""

    daemon_threads = True
    block_on_close = False
    # werkzeug listens with a backlog of 128. Thousands of `.sync` waits, Lambda workers and job
    # processes connecting at once overflow it while the accept loop waits for the GIL; Linux
    # then drops the handshake's last ACK and the client, which believes it is connected, is
    # reset (ECONNRESET) a minute later. An AWS endpoint never resets a request for load: it
    # answers it, at worst with a retryable throttling error
    # (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). The kernel
    # caps this at net.core.somaxconn.
    request_queue_size = 4096

    def __init__(self, host: str, port: int, app: WSGIApp) -> None:
        super().__init__(host, port, app, handler=_KeepAliveHandler)
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, socket.socket] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"sluice-http-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.pop(threading.current_thread(), None)

    def close_connections(self, timeout: float) -> list[threading.Thread]:
        """Shut every open connection down and join its thread; returns threads still alive."""
        with self._lock:
            connections = dict(self._connections)
        for sock in connections.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in connections if t.is_alive()]


class LocalEndpoint:
    """The loopback HTTP endpoint; ``start()`` binds 127.0.0.1 (port 0 = a free port)."""

    def __init__(self, app: WSGIApp, port: int = 0) -> None:
        self.app = app
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> int:
        """Bind the listening socket now (so the port is known before serving starts)."""
        if self._server is None:
            self._server = _Server("127.0.0.1", self._requested_port, self.app)
        return self.port

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("endpoint not bound")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sluice-endpoint",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        stuck = server.close_connections(timeout)
        server.server_close()
        if stuck:
            log.warning("%d request threads still running after endpoint stop", len(stuck))
