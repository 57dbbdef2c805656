"""A local endpoint for tests: moto for every service, Sluice's Lambda runtime for Lambda
(the same routing the real endpoint does, by SigV4 service name)."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from sluice.local.awslambda import LambdaRuntime

HANDLERS = Path(__file__).parent / "fixtures" / "handlers"
ROLE = "arn:aws:iam::123456789012:role/lambda-role"
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class Dispatcher:
    """Routes SigV4 service `lambda` to the runtime and everything else to moto."""

    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.lambda_app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        found = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if found and found.group(1) == "lambda" and self.lambda_app is not None:
            return self.lambda_app(environ, start_response)
        return self.moto(environ, start_response)


class LocalEndpoint:
    def __init__(self, tmp: Path, retry_delays: tuple[float, float]) -> None:
        self.dispatcher = Dispatcher()
        self.server = make_server(
            "127.0.0.1", 0, self.dispatcher, threaded=True, request_handler=MotoRequestHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.runtime = LambdaRuntime(
            endpoint_url=self.url, code_dir=tmp / "code", async_retry_delays=retry_delays
        )
        self.dispatcher.lambda_app = self.runtime.wsgi_app

    def start(self) -> None:
        self.thread.start()
        self.runtime.start()

    def stop(self) -> None:
        self.runtime.stop()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        # moto's backends are process-wide: leave nothing behind for the next test module.
        moto_api_backend.reset()

    def client(self, service: str) -> Any:
        # No client-side retries: a throttle or error is what the test wants to see, at once.
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )


def handler_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(HANDLERS.glob("*.py")):
            archive.write(path, path.name)
    return buffer.getvalue()
