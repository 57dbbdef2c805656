"""Bootstrap of one warm Lambda worker process (the "execution environment").

Run by the local Lambda runtime as ``python -P bootstrap.py`` (standard library only, so the
handler's process holds nothing but the handler's own imports). It mirrors what the AWS
Python runtime interface client (awslambdaric) does: put ``LAMBDA_TASK_ROOT`` first on
``sys.path``, import the handler once (cold start), then serve invocations one at a time.

Protocol with the parent, newline-delimited JSON on two inherited pipes:
  parent -> worker: {"id", "event", "deadline_ms", "arn", "trace_id", "client_context"}
  worker -> parent: {"t": "ready"} | {"t": "init_error", "error"} | {"t": "log", "m"}
                    | {"t": "result", "payload"} | {"t": "error", "error"}
Handler output written through ``sys.stdout``/``sys.stderr``/``logging`` travels in-band as
"log" messages, so it is ordered exactly before the invocation's result.
"""

from __future__ import annotations

import decimal
import importlib
import io
import json
import logging
import math
import os
import sys
import threading
import time
import traceback
import types
from typing import Any


class _Channel:
    def __init__(self, request_fd: int, response_fd: int) -> None:
        self._requests = os.fdopen(request_fd, "rb")
        self._responses = os.fdopen(response_fd, "wb", buffering=0)
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            self._responses.write(data)

    def receive(self) -> dict[str, Any] | None:
        line = self._requests.readline()
        return json.loads(line) if line else None


class _LogStream(io.TextIOBase):
    """sys.stdout/sys.stderr replacement: each complete line becomes one log event."""

    def __init__(self, channel: _Channel, fd: int) -> None:
        self._channel = channel
        self._fd = fd
        self._buffer = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        # Writes through the raw descriptor still reach the logs (the parent drains it).
        return self._fd

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._channel.send({"t": "log", "m": line})
        return len(text)

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, ""
        if pending:
            self._channel.send({"t": "log", "m": pending})


_REQUEST_ID = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _REQUEST_ID
        return True


class _ChannelLogHandler(logging.Handler):
    """The root handler the AWS Python runtime installs: one log event per record."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._channel.send({"t": "log", "m": self.format(record)})
        except Exception:
            self.handleError(record)


def _setup_logging(channel: _Channel) -> None:
    logging.Formatter.converter = time.gmtime
    handler = _ChannelLogHandler(channel)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level and level.upper() in logging.getLevelNamesMapping():
        logging.getLogger().setLevel(level.upper())


class _Fault(Exception):
    """A runtime-level failure with the error type AWS reports for it."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def _load_handler(spec: str) -> Any:
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise _Fault(
                "Runtime.BuiltInModuleConflict",
                f"Cannot use built-in module {module_name} as a handler module",
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace
        ) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None


def _error(message: str, error_type: str, trace: list[str], request_id: str = "") -> dict[str, Any]:
    # The shape AWS returns as the Invoke payload of a failed invocation.
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}


def _exception_error(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    # Drop this bootstrap's own frames, as the AWS runtime drops bootstrap.py's.
    while frames and frames[0].filename == __file__:
        frames = traceback.StackSummary.from_list(list(frames)[1:])
    return _error(str(exc), type(exc).__name__, traceback.format_list(frames), request_id)


def _log_error(channel: _Channel, error: dict[str, Any]) -> None:
    header = "[ERROR]"
    if error.get("errorType"):
        header += f" {error['errorType']}:"
    header += f" {error.get('errorMessage', '')}"
    lines = [header.rstrip(":")]
    if error.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    channel.send({"t": "log", "m": "\n".join(lines)})


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        # Decimals (e.g. from DynamoDB) marshal as numbers, as the AWS runtime does.
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else float(o) if o != o.to_integral_value() else int(o)
        return super().default(o)


def _client_context(value: Any) -> Any:
    # An object with custom/env/client attributes, as the AWS runtime builds from the
    # X-Amz-Client-Context header; None when the caller sent none.
    if not isinstance(value, dict):
        return None
    client = value.get("client")
    return types.SimpleNamespace(
        custom=value.get("custom"),
        env=value.get("env"),
        client=types.SimpleNamespace(**client) if isinstance(client, dict) else None,
    )


class LambdaContext:
    """The ``context`` argument: the attributes and method of the AWS Python runtime's
    context (``memory_limit_in_mb`` is a string there too, read from the environment)."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_arn: str, client_context: Any) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_arn
        self.client_context = _client_context(client_context)
        self.identity = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"function_version={self.function_version},invoked_function_arn={self.invoked_function_arn}])"
        )


def _serve(channel: _Channel, handler: Any) -> None:
    global _REQUEST_ID
    while True:
        request = channel.receive()
        if request is None:
            return  # parent closed the pipe: shut down
        request_id = request["id"]
        _REQUEST_ID = request_id
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        try:
            event = json.loads(request["event"])
            context = LambdaContext(
                request_id, request["deadline_ms"], request["arn"], request.get("client_context")
            )
            response = handler(event, context)
            try:
                payload = json.dumps(response, cls=_Encoder, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
            message: dict[str, Any] = {"t": "result", "payload": payload}
        except _Fault as fault:
            message = {
                "t": "error",
                "error": _error(fault.message, fault.error_type, fault.trace, request_id),
            }
        except Exception as exc:
            message = {"t": "error", "error": _exception_error(exc, request_id)}
        sys.stdout.flush()
        sys.stderr.flush()
        if message["t"] == "error":
            _log_error(channel, message["error"])
        channel.send(message)


def main() -> None:
    request_fd = int(os.environ.pop("_SLUICE_LAMBDA_REQUEST_FD"))
    response_fd = int(os.environ.pop("_SLUICE_LAMBDA_RESPONSE_FD"))
    channel = _Channel(request_fd, response_fd)
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    os.chdir(task_root)
    sys.stdout = _LogStream(channel, 1)
    sys.stderr = _LogStream(channel, 2)
    _setup_logging(channel)
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _Fault as fault:
        error = _error(fault.message, fault.error_type, fault.trace)
        _log_error(channel, error)
        channel.send({"t": "init_error", "error": error})
        return
    except Exception as exc:
        error = _exception_error(exc)
        _log_error(channel, error)
        channel.send({"t": "init_error", "error": error})
        return
    sys.stdout.flush()
    sys.stderr.flush()
    channel.send({"t": "ready"})
    _serve(channel, handler)


if __name__ == "__main__":
    main()
