"""LambdaRuntime: the local Lambda service (API + execution).

The endpoint routes SigV4 service ``lambda`` requests to :meth:`LambdaRuntime.wsgi_app`;
other parts of the local cloud (EventBridge delivery) call :meth:`LambdaRuntime.invoke`.
Handlers run their real code in warm worker processes on the project's interpreter
(``sys.executable``), whatever Python version the function's ``Runtime`` names.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sluice.local.awslambda import errors
from sluice.local.awslambda.api import LambdaApi
from sluice.local.awslambda.asyncinvoke import AsyncEvent, AsyncInvoker, AsyncTarget
from sluice.local.awslambda.destinations import DestinationSender, invocation_record
from sluice.local.awslambda.errors import LambdaServiceError, throttled
from sluice.local.awslambda.logs import LogShipper
from sluice.local.awslambda.models import FunctionState, FunctionStore, FunctionVersion
from sluice.local.awslambda.pool import Outcome, WorkerPool, WorkerSpec
from sluice.local.wire.restjson import RestJsonService

log = logging.getLogger("sluice.local.awslambda")

# Invoke payload limits (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 256 * 1024
_TAIL_BYTES = 4096

# (role ARN, session name) -> the session's credential variables; raises if the role cannot be assumed.
RoleCredentials = Callable[[str, str], dict[str, str]]
LOCAL_ACCESS_KEY = "testing"
LOCAL_SECRET_KEY = "testing"
LOCAL_SESSION_TOKEN = "testing"


class LambdaRuntime:
    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        code_dir: Path | None = None,
        async_retry_delays: tuple[float, float] = (60.0, 120.0),
        max_concurrency_per_function: int | None = None,
        project_root: Path | None = None,
        role_credentials: RoleCredentials | None = None,
    ) -> None:
        """``code_dir`` is where uploaded zips are unpacked (a temporary directory, removed
        by :meth:`stop`, when not given). ``project_root`` is accepted for the endpoint's
        engine factory; function code always comes from the uploaded zip."""
        self.endpoint_url = endpoint_url
        # (role ARN, session name) -> AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN of the execution
        # role's session; None keeps the constant local credentials (an endpoint without IAM).
        self.role_credentials = role_credentials
        self.region = region
        self.account_id = account_id
        self.project_root = project_root
        self._own_code_dir = code_dir is None
        self.code_dir = (
            Path(code_dir) if code_dir is not None else Path(tempfile.mkdtemp(prefix="sluice-lambda-"))
        )
        self._async_retry_delays = tuple(async_retry_delays)
        # AWS scales to 1,000 concurrent environments; a laptop cannot. Beyond this many
        # busy workers per function, invocations wait for a free one instead.
        self.max_concurrency_per_function = max_concurrency_per_function or max(4, os.cpu_count() or 1)
        self.store = FunctionStore(region, account_id)
        # Pools and functions change together (retire_pools), so they share the store's lock.
        self.lock = self.store.lock
        self.functions = self.store.functions
        self._pools: dict[tuple[str, str, int], WorkerPool] = {}
        self._clients: dict[str, Any] = {}
        self._client_lock = threading.Lock()
        self._logs = LogShipper(lambda: self.client("logs"))
        self._destinations = DestinationSender(self.client_as, self._invoke_destination, endpoint_url)
        self._async: AsyncInvoker | None = None
        self._api = LambdaApi(self.store, self)
        self._service = RestJsonService(
            "lambda",
            self._api.handlers(),
            unknown_operation=errors.unknown_operation,
            unsupported=errors.unsupported,
            bad_body=errors.bad_body,
            internal=errors.internal,
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self._logs.start()
        if self._async is None:
            self._async = AsyncInvoker(
                lookup=self._async_target,
                attempt=self._async_attempt,
                on_success=self._async_success,
                on_failure=self._async_failure,
                retry_delays=self._async_retry_delays,
            )

    def stop(self) -> None:
        if self._async is not None:
            self._async.stop()
            self._async = None
        with self.lock:
            pools, self._pools = list(self._pools.values()), {}
        # Ask every environment to exit first, then wait for them together.
        exiting = [worker for pool in pools for worker in pool.begin_close()]
        deadline = time.monotonic() + 2.0
        for worker in exiting:
            worker.wait_exit(deadline)
        self._logs.stop()
        if self._own_code_dir:
            shutil.rmtree(self.code_dir, ignore_errors=True)

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._service(environ, start_response)

    @property
    def async_retry_delays(self) -> tuple[float, ...]:
        """Seconds before each retry of a failed asynchronous invocation (AWS: 60 s, then 120 s)."""
        return self._async_retry_delays

    @async_retry_delays.setter
    def async_retry_delays(self, delays: tuple[float, ...]) -> None:
        """Change the retry delays while running (tests shorten them); scheduled retries keep theirs."""
        self._async_retry_delays = tuple(delays)
        if self._async is not None:
            self._async.retry_delays = self._async_retry_delays

    def client(self, service: str) -> Any:
        with self._client_lock:
            if service not in self._clients:
                # The Lambda service's own calls (code from S3, logs, destinations) sign with the
                # process's credentials: the local cloud's administrator when IAM is on.
                session = (
                    boto3.session.Session(region_name=self.region)
                    if self.role_credentials is not None
                    else boto3.session.Session(
                        aws_access_key_id=LOCAL_ACCESS_KEY,
                        aws_secret_access_key=LOCAL_SECRET_KEY,
                        region_name=self.region,
                    )
                )
                self._clients[service] = session.client(
                    service, endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 2})
                )
            return self._clients[service]

    def client_as(self, service: str, role_arn: str | None) -> Any:
        """A client signing as a session of the function's execution role, as Lambda sends
        invocation records and dead letters (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html);
        the runtime's own client where no IAM runs."""
        if self.role_credentials is None or not role_arn:
            return self.client(service)
        env = self.role_credentials(role_arn, "lambda-destinations")
        key = f"{service}/{env['AWS_ACCESS_KEY_ID']}"
        with self._client_lock:
            if key not in self._clients:
                self._clients[key] = boto3.session.Session(
                    aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                    aws_session_token=env.get("AWS_SESSION_TOKEN"),
                    region_name=self.region,
                ).client(service, endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 2}))
            return self._clients[key]

    def wait_for_async(self, timeout: float) -> bool:
        """True once no asynchronous invocation is queued, waiting to retry, or running."""
        return self._async.wait_idle(timeout) if self._async is not None else True

    def flush_logs(self, timeout: float = 10.0) -> bool:
        return self._logs.flush(timeout)

    # ------------------------------------------------------------------ lookup
    def function_arn(self, name: str) -> str:
        return self.store.function_arn(name)

    def lookup(self, name_or_arn: str, qualifier: str | None = None) -> tuple[FunctionState, str | None]:
        return self.store.lookup(name_or_arn, qualifier)

    def resolve(self, state: FunctionState, qualifier: str | None) -> tuple[FunctionVersion, str]:
        return self.store.resolve(state, qualifier)

    # ------------------------------------------------------------------ pools
    def _pool(self, version: FunctionVersion) -> WorkerPool:
        key = (version.name, version.version, version.generation)
        with self.lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = WorkerPool(self._worker_spec(version), self._log_emitter(version))
                self._pools[key] = pool
            return pool

    def retire_pools(self, name: str, version: str | None = None) -> None:
        """Stop the environments of a function (or one version) after an update or delete."""
        with self.lock:
            keys = [k for k in self._pools if k[0] == name and (version is None or k[1] == version)]
            pools = [self._pools.pop(k) for k in keys]
        for pool in pools:
            pool.close()

    def worker_pids(self, name: str) -> list[int]:
        """Process ids of the idle warm workers of a function (diagnostics and tests)."""
        with self.lock:
            pools = [p for k, p in self._pools.items() if k[0] == name]
        return [pid for pool in pools for pid in pool.idle_pids()]

    def busy_workers(self, name: str) -> int:
        """How many invocations of a function are running right now."""
        with self.lock:
            pools = [p for k, p in self._pools.items() if k[0] == name]
        return sum(pool.busy for pool in pools)

    def _log_emitter(self, version: FunctionVersion) -> Any:
        group = self._log_group(version)

        def emit(stream: str, message: str) -> None:
            self._logs.emit(group, stream, message)

        return emit

    @staticmethod
    def _log_group(version: FunctionVersion) -> str:
        logging_config = version.config.get("LoggingConfig") or {}
        return str(logging_config.get("LogGroup") or f"/aws/lambda/{version.name}")

    def _worker_spec(self, version: FunctionVersion) -> WorkerSpec:
        config = version.config
        env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            # No developer profile leaks into the function: credentials and region come
            # from the variables below, as they do in Lambda.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update((config.get("Environment") or {}).get("Variables") or {})
        runtime = str(config.get("Runtime") or "")
        logging_config = config.get("LoggingConfig") or {}
        env.update(
            {
                "_HANDLER": str(config["Handler"]),
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": version.name,
                "AWS_LAMBDA_FUNCTION_VERSION": version.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": self._log_group(version),
                "LAMBDA_TASK_ROOT": str(version.code_dir),
                "LAMBDA_RUNTIME_DIR": str(Path(__file__).parent),
                "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
                "AWS_SESSION_TOKEN": LOCAL_SESSION_TOKEN,
                # Not set on AWS: points every SDK client in the handler at the local cloud.
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            }
        )
        if self.role_credentials is not None:
            try:
                env.update(self.role_credentials(str(config.get("Role", "")), version.name))
            except Exception as error:
                # https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html
                raise LambdaServiceError(
                    "InvalidParameterValueException",
                    f"The role defined for the function cannot be assumed by Lambda. ({error})",
                ) from None
        if logging_config.get("LogFormat") == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if logging_config.get("ApplicationLogLevel"):
            env["AWS_LAMBDA_LOG_LEVEL"] = str(logging_config["ApplicationLogLevel"])
        return WorkerSpec(
            function_name=version.name,
            version=version.version,
            handler=str(config["Handler"]),
            code_dir=version.code_dir,
            env=env,
            log_group=self._log_group(version),
            memory_size=int(config.get("MemorySize", 128)),
            runtime=runtime,
        )

    # ------------------------------------------------------------------ execution
    def _check_runtime(self, version: FunctionVersion) -> None:
        runtime = str(version.config.get("Runtime") or "")
        if not runtime.startswith("python"):
            raise LambdaServiceError(
                "InvalidRuntimeException",
                f"The runtime parameter of {runtime} is not supported by the local Lambda runtime (Python only)",
                502,
            )

    def _execute(
        self,
        state: FunctionState,
        version: FunctionVersion,
        invoked_arn: str,
        request_id: str,
        event: str,
        *,
        throttle: bool,
        client_context: Any = None,
    ) -> Outcome | None:
        """Run one invocation; None when throttled (reserved concurrency reached and
        ``throttle`` set)."""
        self._check_runtime(version)
        reserved = state.reserved_concurrency
        cap = self.max_concurrency_per_function
        if reserved == 0:
            return None
        pool = self._pool(version)
        if reserved is not None and reserved <= cap:
            worker = pool.acquire(reserved, block=not throttle)
            if worker is None:
                return None
        else:
            worker = pool.acquire(cap, block=True)
        assert worker is not None
        timeout = float(version.config.get("Timeout", 3))
        emit = self._log_emitter(version)
        emit(worker.log_stream, f"START RequestId: {request_id} Version: {version.version}")
        try:
            outcome = worker.invoke(
                request_id, event, timeout_s=timeout, invoked_arn=invoked_arn, client_context=client_context
            )
        finally:
            pool.release(worker)
        emit(worker.log_stream, f"END RequestId: {request_id}")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(outcome.duration_ms + (outcome.init_duration_ms or 0))} ms\t"
            f"Memory Size: {version.config.get('MemorySize', 128)} MB\tMax Memory Used: {outcome.max_memory_mb} MB"
        )
        if outcome.init_duration_ms is not None:
            report += f"\tInit Duration: {outcome.init_duration_ms:.2f} ms"
        if outcome.timed_out:
            report += "\tStatus: timeout"
        emit(worker.log_stream, report)
        outcome.log_lines = [
            f"START RequestId: {request_id} Version: {version.version}",
            *outcome.log_lines,
            f"END RequestId: {request_id}",
            report,
        ]
        return outcome

    @staticmethod
    def _event_text(payload: bytes) -> str:
        text = payload.decode("utf-8", "replace") if payload else "{}"
        if not text.strip():
            return "{}"
        try:
            json.loads(text)
        except ValueError as exc:
            raise LambdaServiceError(
                "InvalidRequestContentException", f"Could not parse request body into json: {exc}", 400
            ) from None
        return text

    def invoke(
        self,
        function_name_or_arn: str,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        *,
        qualifier: str | None = None,
        log_type: str | None = None,
        client_context: Any = None,
    ) -> dict[str, Any]:
        """Invoke a function as the Invoke API does; returns the Invoke response members
        (StatusCode, Payload, FunctionError, ExecutedVersion, LogResult). Raises
        :class:`LambdaServiceError` (ResourceNotFoundException, TooManyRequestsException, ...)."""
        state, qualifier = self.lookup(function_name_or_arn, qualifier)
        version, executed = self.resolve(state, qualifier)
        payload = payload or b""
        if invocation_type == "Event":
            if len(payload) > MAX_ASYNC_PAYLOAD:
                raise LambdaServiceError(
                    "RequestTooLargeException",
                    f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the Event invocation type",
                    413,
                )
            self._event_text(payload)
            self._check_runtime(version)
            request_id = str(uuid.uuid4())
            if self._async is None:
                raise LambdaServiceError("ServiceException", "the local Lambda runtime is not started", 500)
            self._async.submit(AsyncEvent(request_id, state.name, qualifier, payload))
            return {"StatusCode": 202, "Payload": b""}
        if invocation_type == "DryRun":
            self._event_text(payload)
            return {"StatusCode": 204, "Payload": b""}
        if invocation_type != "RequestResponse":
            raise LambdaServiceError(
                "InvalidParameterValueException", f"Unsupported InvocationType {invocation_type}"
            )
        if len(payload) > MAX_SYNC_PAYLOAD:
            raise LambdaServiceError(
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation",
                413,
            )
        event = self._event_text(payload)
        request_id = str(uuid.uuid4())
        outcome = self._execute(
            state,
            version,
            state.qualified_arn(qualifier) if qualifier else state.arn,
            request_id,
            event,
            throttle=True,
            client_context=client_context,
        )
        if outcome is None:
            raise throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": executed,
            "Payload": outcome.payload,
        }
        if outcome.failed:
            response["FunctionError"] = "Unhandled"
        if log_type == "Tail":
            tail = "\n".join(outcome.log_lines).encode()[-_TAIL_BYTES:]
            response["LogResult"] = base64.b64encode(tail).decode()
        return response

    # ------------------------------------------------------------------ async
    def _async_target(self, event: AsyncEvent) -> AsyncTarget | None:
        with self.lock:
            state = self.functions.get(event.function_name)
        if state is None:
            return None
        try:
            version, executed = state.resolve(event.qualifier)
        except KeyError:
            return None
        dlq = (version.config.get("DeadLetterConfig") or {}).get("TargetArn")
        return AsyncTarget(
            function_arn=state.qualified_arn(executed),
            executed_version=executed,
            event_invoke_config=state.event_invoke_config(event.qualifier),
            dead_letter_target=dlq,
            role=str(version.config.get("Role") or "") or None,
        )

    def _async_attempt(self, event: AsyncEvent) -> Outcome | None:
        with self.lock:
            state = self.functions.get(event.function_name)
        if state is None:
            raise LookupError(event.function_name)
        version, _ = state.resolve(event.qualifier)
        invoked = state.qualified_arn(event.qualifier) if event.qualifier else state.arn
        return self._execute(
            state, version, invoked, event.request_id, self._event_text(event.payload), throttle=True
        )

    def _record(self, event: AsyncEvent, target: AsyncTarget, condition: str) -> dict[str, Any]:
        last = event.last
        return invocation_record(
            request_id=event.request_id,
            function_arn=target.function_arn,
            condition=condition,
            invoke_count=event.attempts,
            request_payload=event.payload,
            executed_version=target.executed_version,
            response_payload=last.payload if last is not None else None,
            function_error="Unhandled" if last is not None and last.failed else None,
        )

    def _async_success(self, event: AsyncEvent, target: AsyncTarget, condition: str) -> None:
        destination = (
            (target.event_invoke_config.get("DestinationConfig") or {}).get("OnSuccess") or {}
        ).get("Destination")
        if destination:
            self._destinations.send_record(
                destination, self._record(event, target, condition), success=True, role_arn=target.role
            )

    def _async_failure(self, event: AsyncEvent, target: AsyncTarget, condition: str) -> None:
        log.info(
            "asynchronous invocation %s of %s failed (%s after %d attempts)",
            event.request_id,
            target.function_arn,
            condition,
            event.attempts,
        )
        destination = (
            (target.event_invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}
        ).get("Destination")
        if destination:
            self._destinations.send_record(
                destination, self._record(event, target, condition), success=False, role_arn=target.role
            )
        if target.dead_letter_target:
            error = (event.last.error or {}) if event.last is not None else {}
            message = str(error.get("errorMessage") or condition)
            self._destinations.send_dead_letter(
                target.dead_letter_target,
                event.payload,
                request_id=event.request_id,
                error_message=message,
                role_arn=target.role,
            )

    def _invoke_destination(self, function_arn: str, payload: bytes) -> None:
        self.invoke(function_arn, payload, "Event")

    def policy_document(self, function_arn: str) -> str | None:
        """The function's resource-based policy (its permissions) as JSON, or None."""
        try:
            state, _ = self.store.lookup(function_arn)
        except LambdaServiceError:
            return None
        with self.lock:
            if not state.policy_statements:
                return None
            return json.dumps({"Version": "2012-10-17", "Statement": state.policy_statements})
