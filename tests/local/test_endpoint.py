"""The loopback endpoint: routing by SigV4 service and HTTP/1.1 keep-alive serving."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import pytest

from sluice.local.endpoint import LocalEndpoint, ServiceRouter, create_moto_app, sigv4_scope


class Recorder:
    """A WSGI app answering 200 with JSON and remembering what it was asked."""

    def __init__(self, name: str, *, read_body: bool = True, chunks: list[bytes] | None = None) -> None:
        self.name = name
        self.read_body = read_body
        self.chunks = chunks
        self.seen: list[tuple[str, str, bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read() if self.read_body else b""
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], body))
        if self.chunks is not None:  # no Content-Length: the server must chunk
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return iter(self.chunks)
        data = json.dumps({"app": self.name}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LocalEndpoint]]:
    endpoints: list[LocalEndpoint] = []

    def start(app: Any) -> LocalEndpoint:
        endpoint = LocalEndpoint(app)
        endpoint.start()
        endpoints.append(endpoint)
        return endpoint

    yield start
    for endpoint in endpoints:
        endpoint.stop()


def client(service: str, endpoint: LocalEndpoint) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_sigv4_scope_from_header_and_presigned_query() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=testing/20240101/eu-west-1/batch/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert sigv4_scope({"HTTP_AUTHORIZATION": header}) == ("eu-west-1", "batch")
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=testing%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"
    )
    assert sigv4_scope({"QUERY_STRING": query}) == ("us-east-1", "s3")
    assert sigv4_scope({}) is None


@pytest.mark.timeout(30)
def test_requests_reach_the_app_of_their_service(serve: Callable[[Any], LocalEndpoint]) -> None:
    batch, lam = Recorder("batch"), Recorder("lambda")
    endpoint = serve(ServiceRouter(create_moto_app(), {"batch": batch, "lambda": lam}))

    client("batch", endpoint).describe_jobs(jobs=["job-1"])
    client("lambda", endpoint).list_functions()
    queue = client("sqs", endpoint).create_queue(QueueName="routed")["QueueUrl"]  # moto

    assert [(method, path) for method, path, _ in batch.seen] == [("POST", "/v1/describejobs")]
    assert json.loads(batch.seen[0][2]) == {"jobs": ["job-1"]}
    assert [(method, path) for method, path, _ in lam.seen] == [("GET", "/2015-03-31/functions")]
    assert queue.endswith("/123456789012/routed")


@pytest.mark.timeout(30)
def test_binds_loopback_only(serve: Callable[[Any], LocalEndpoint]) -> None:
    endpoint = serve(Recorder("x"))
    assert endpoint.url == f"http://127.0.0.1:{endpoint.port}"
    assert endpoint._server is not None and endpoint._server.server_address[0] == "127.0.0.1"


@pytest.mark.timeout(30)
def test_connections_are_kept_alive_and_unread_bodies_drained(serve: Callable[[Any], LocalEndpoint]) -> None:
    lazy = Recorder("lazy", read_body=False)
    endpoint = serve(lazy)
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    try:
        connection.request("POST", "/first", body=b"x" * 200_000)
        first = connection.getresponse()
        assert json.loads(first.read()) == {"app": "lazy"}
        assert first.getheader("Connection") is None
        sock = connection.sock
        connection.request("GET", "/second")
        assert connection.getresponse().read() == b'{"app": "lazy"}'
        assert connection.sock is sock  # same TCP connection
    finally:
        connection.close()
    assert [path for _, path, _ in lazy.seen] == ["/first", "/second"]


@pytest.mark.timeout(30)
def test_chunked_request_and_response_bodies(serve: Callable[[Any], LocalEndpoint]) -> None:
    app = Recorder("chunky", chunks=[b"hello ", b"", b"world"])
    endpoint = serve(app)
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    try:
        connection.request("PUT", "/up", body=iter([b"abc", b"def"]), encode_chunked=True)
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == b"hello world"
        connection.request("HEAD", "/up")
        head = connection.getresponse()
        assert head.read() == b""
    finally:
        connection.close()
    assert app.seen[0] == ("PUT", "/up", b"abcdef")


@pytest.mark.timeout(30)
def test_app_errors_become_500(serve: Callable[[Any], LocalEndpoint]) -> None:
    def broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise RuntimeError("boom")

    endpoint = serve(broken)
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 500
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()


@pytest.mark.timeout(30)
def test_stop_closes_idle_connections_and_joins_their_threads() -> None:
    before = set(threading.enumerate())
    endpoint = LocalEndpoint(Recorder("idle"))
    endpoint.start()
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    connection.request("GET", "/")
    connection.getresponse().read()  # the connection stays open, its thread waits

    endpoint.stop()

    assert [t for t in threading.enumerate() if t not in before] == []
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/")
        connection.getresponse()
    connection.close()
