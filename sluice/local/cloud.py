"""`LocalCloud`: the whole local AWS (one endpoint, Batch engine, Lambda runtime) in one process.

    with LocalCloud(project_root=Path(".")) as cloud:
        stack = cloud.deploy(Path("template.yaml"))
        cloud.client("s3").put_object(Bucket=..., Key=..., Body=...)
        ...                        # wait for the execution the upload starts
        cloud.notifications()      # settles in-flight events first

Everything is reached through `endpoint_url` exactly as on AWS; child processes (job
containers, Lambda workers) inherit AWS_ENDPOINT_URL and test credentials from the process
environment, which `start()` sets and `stop()` restores. moto's state is process-wide, so
one LocalCloud can run per process at a time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal.models import moto_api_backend

from sluice.local import moto_config
from sluice.local.cloudformation.api import CloudFormationApi
from sluice.local.cloudformation.backend import CloudFormationService
from sluice.local.endpoint import LocalEndpoint, ServiceRouter, StartResponse, WSGIEnviron, create_moto_app
from sluice.local.events.api import EventsFrontend
from sluice.local.events.backend import EventDelivery
from sluice.local.iam.api import Gate
from sluice.local.iam.backend import MODES, IamService, Identity, Mode
from sluice.local.s3.api import S3RequestContext
from sluice.local.sns.backend import Outbox
from sluice.local.stepfunctions import backend as stepfunctions

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.env"
_STOP_TIMEOUT_SECONDS = 10.0


class ServiceEngine(Protocol):
    """What the endpoint needs from the Batch engine and the Lambda runtime."""

    def wsgi_app(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class BatchEngineLike(ServiceEngine, Protocol):
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until published job events were handed on (and job output shipped)."""
        ...


class LambdaEngine(ServiceEngine, Protocol):
    def invoke(self, function_name_or_arn: str, payload: bytes, invocation_type: str) -> dict[str, Any]: ...

    def wait_for_async(self, timeout: float) -> bool:
        """Wait until queued asynchronous invocations have run."""
        ...


@dataclass(frozen=True)
class EngineContext:
    """Everything an engine factory may need to build its engine."""

    region: str
    account_id: str
    endpoint_url: str
    emit_event: Callable[[dict[str, Any]], None]
    project_root: Path
    state_dir: Path
    max_local_vcpus: int | None
    spot_reclaim_fraction: float
    add_cleanup: Callable[[Callable[[], None]], None]  # run at stop(), after the engines stopped
    # (role ARN, session name) -> credential variables of a session a service made; None: no IAM.
    batch_role_credentials: Callable[[str, str], dict[str, str]] | None = None
    lambda_role_credentials: Callable[[str, str], dict[str, str]] | None = None


EngineFactory = Callable[[EngineContext], BatchEngineLike]
LambdaFactory = Callable[[EngineContext], LambdaEngine]


def default_batch_engine(context: EngineContext) -> BatchEngineLike:
    from sluice.local.batch import BatchEngine
    from sluice.local.batch.images import ImageResolver

    images = ImageResolver(project_root=context.project_root)
    context.add_cleanup(images.close)
    engine = BatchEngine(
        region=context.region,
        account_id=context.account_id,
        endpoint_url=context.endpoint_url,
        emit_event=context.emit_event,
        image_resolver=images,
        max_local_vcpus=context.max_local_vcpus,
        role_credentials=context.batch_role_credentials,
    )
    if context.spot_reclaim_fraction:
        engine.set_reclaim_policy(context.spot_reclaim_fraction)
    return engine


def default_lambda_runtime(context: EngineContext) -> LambdaEngine:
    from sluice.local.awslambda import LambdaRuntime

    return LambdaRuntime(
        region=context.region,
        account_id=context.account_id,
        endpoint_url=context.endpoint_url,
        project_root=context.project_root,
        role_credentials=context.lambda_role_credentials,
    )


_active_lock = threading.Lock()
_active: LocalCloud | None = None


class LocalCloud:
    def __init__(
        self,
        port: int = 0,
        *,
        project_root: Path,
        state_dir: Path | None = None,
        max_local_vcpus: int | None = None,
        spot_reclaim_fraction: float = 0.0,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        batch_engine_factory: EngineFactory = default_batch_engine,
        lambda_runtime_factory: LambdaFactory = default_lambda_runtime,
        iam: Mode = "enforce",
        allowed_origins: Iterable[str] = (),
        fixed_admin_key: tuple[str, str] | None = None,
        allow_reset: bool = False,
    ) -> None:
        """`iam`: enforce (deny what AWS would deny), audit (record it, allow) or off (signed
        requests only). `allowed_origins`: browser origins the endpoint serves (none by default).
        `fixed_admin_key`: (access key, secret) the administrator signs with instead of a new
        key, for test suites written for other emulators; never the default. `allow_reset`: serve
        `POST /moto-api/reset` (signed by the administrator) with `reset()`, for test suites written
        for moto's server; off by default."""
        if iam not in MODES:
            raise ValueError(f"iam must be one of {', '.join(MODES)}, not {iam!r}")
        self.project_root = Path(project_root)
        self.region = region
        self.account_id = account_id
        self.max_local_vcpus = max_local_vcpus
        self.spot_reclaim_fraction = spot_reclaim_fraction
        self._port = port
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._own_state_dir = False
        self._batch_factory = batch_engine_factory
        self._lambda_factory = lambda_runtime_factory
        self._endpoint: LocalEndpoint | None = None
        self._delivery: EventDelivery | None = None
        self._outbox: Outbox | None = None
        self._batch: BatchEngineLike | None = None
        self._lambda: LambdaEngine | None = None
        self._cloudformation: CloudFormationService | None = None
        self._moto_saved: moto_config.SavedSettings | None = None
        self._env_saved: dict[str, str | None] = {}
        self._cleanups: list[Callable[[], None]] = []
        self.iam_mode: Mode = iam
        self.allowed_origins = tuple(allowed_origins)
        self._fixed_admin_key = fixed_admin_key
        self.allow_reset = allow_reset
        self._iam: IamService | None = None
        self._gate: Gate | None = None
        self._router: ServiceRouter | None = None
        self._context: EngineContext | None = None
        self._reset_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError(
                    "a LocalCloud is already running in this process; stop it first (moto's state and "
                    "MOTO_PORT are process-wide, so two cannot run side by side)"
                )
            _active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="sluice-local-"))
            self._own_state_dir = True
        self._state_dir.mkdir(parents=True, exist_ok=True)
        self._outbox = Outbox(self._state_dir / "outbox.jsonl")

        moto = create_moto_app()
        router = ServiceRouter(moto)
        self._iam = iam = IamService.create(
            account_id=self.account_id,
            region=self.region,
            mode=self.iam_mode,
            state_dir=self._state_dir,
            lambda_policy=self._lambda_policy,
        )
        gate = Gate(
            router,
            iam,
            port=lambda: self.port,
            allowed_origins=self.allowed_origins,
            reset=self.reset if self.allow_reset else None,
        )
        self._gate, self._router = gate, router
        self._endpoint = LocalEndpoint(gate, self._port)
        self._endpoint.bind()
        endpoint_url = self._endpoint.url

        self._delivery = EventDelivery(
            endpoint_url=endpoint_url,
            region=self.region,
            account_id=self.account_id,
            lambda_invoke=self._invoke,
            credentials=self._target_credentials,
            authorize_lambda=self._authorize_event_invoke,
        )
        self._delivery.add_listener(stepfunctions.notify_batch_event)
        self._moto_saved = moto_config.configure(
            self._endpoint.port,
            emit=self._emit,
            hold=self._delivery.pending,
            outbox=self._outbox,
            role_credentials=partial(self._role_credentials, "states.amazonaws.com"),
        )
        admin = iam.identities.create_admin(self._fixed_admin_key)
        self._set_environment(self.environment)
        self._write_credentials_file()

        context = EngineContext(
            region=self.region,
            account_id=self.account_id,
            endpoint_url=endpoint_url,
            emit_event=self.emit_event,
            project_root=self.project_root,
            state_dir=self._state_dir,
            max_local_vcpus=self.max_local_vcpus,
            spot_reclaim_fraction=self.spot_reclaim_fraction,
            add_cleanup=self._cleanups.append,
            batch_role_credentials=partial(self._role_credentials, "ecs-tasks.amazonaws.com"),
            lambda_role_credentials=partial(self._role_credentials, "lambda.amazonaws.com"),
        )
        self._context = context
        self._batch = self._batch_factory(context)
        self._lambda = self._lambda_factory(context)
        self._cloudformation = CloudFormationService(
            endpoint_url=endpoint_url,
            region=self.region,
            account_id=self.account_id,
            project_root=self.project_root,
        )
        router.routes.update(
            {
                "cloudformation": CloudFormationApi(self._cloudformation),
                "batch": self._batch.wsgi_app,
                "lambda": self._lambda.wsgi_app,
                "events": EventsFrontend(self._delivery, moto),
                "s3": S3RequestContext(moto, iam=lambda: gate.iam),  # the gate's, also after reset()
            }
        )
        log.debug("local cloud administrator: %s", admin.principal.arn)
        self._delivery.start()
        self._endpoint.start()
        self._batch.start()
        self._lambda.start()
        log.info("local cloud listening on %s", endpoint_url)

    def reset(self) -> None:
        """Forget every resource, as `POST /moto-api/reset` does on moto's server, but whole.

        Running Step Functions executions are aborted, the Batch engine and the Lambda runtime
        are stopped (job processes and Lambda workers killed, their threads joined, so nothing
        writes to log groups after the reset deleted them) and replaced by new, empty ones; moto's backends are reset; local IAM starts over with the
        administrator's key unchanged, so the caller can go on. The endpoint keeps serving.
        """
        with self._reset_lock:
            if (
                self._context is None
                or self._router is None
                or self._gate is None
                or self._iam is None
                or self._delivery is None
            ):
                raise RuntimeError("LocalCloud is not running")
            stepfunctions.stop_running_executions(_STOP_TIMEOUT_SECONDS)
            for engine in (self._lambda, self._batch):
                if engine is not None:
                    engine.stop()
            from sluice.local.awslambda.pool import kill_all_workers

            kill_all_workers()
            self._delivery.wait_idle(2.0)
            admin = self.admin
            # moto resets every backend in place and then drops it; IAM's would reload AWS's
            # ~1,500 managed policies per partition only to be dropped, a second per reset. The
            # backends made afterwards load them again (moto_config.configure's setting).
            iam_config = default_user_config.get("iam")
            default_user_config["iam"] = {"load_aws_managed_policies": False}
            try:
                moto_api_backend.reset()
            finally:
                if iam_config is None:
                    default_user_config.pop("iam", None)
                else:
                    default_user_config["iam"] = iam_config
            iam = IamService.create(
                account_id=self.account_id,
                region=self.region,
                mode=self.iam_mode,
                state_dir=self._state_dir,
                lambda_policy=self._lambda_policy,
            )
            iam.identities.create_admin((admin.access_key, admin.secret_key))
            self._iam = self._gate.iam = iam
            self._batch = self._batch_factory(self._context)
            self._lambda = self._lambda_factory(self._context)
            self._cloudformation = CloudFormationService(
                endpoint_url=self.endpoint_url,
                region=self.region,
                account_id=self.account_id,
                project_root=self.project_root,
            )
            self._router.routes.update(
                {
                    "batch": self._batch.wsgi_app,
                    "lambda": self._lambda.wsgi_app,
                    "cloudformation": CloudFormationApi(self._cloudformation),
                }
            )
            self._batch.start()
            self._lambda.start()
            log.info("local cloud reset")

    def stop(self) -> None:
        """Stop everything started, join its threads, forget moto's state. Idempotent."""
        global _active
        with _active_lock:
            if _active is not self:
                return
        try:
            # Running executions would call an endpoint that is going away; abort them first
            # (their ends still terminate .sync jobs and emit events, while both can).
            if self._cloudformation is not None and not self._cloudformation.wait_idle(_STOP_TIMEOUT_SECONDS):
                log.warning("CloudFormation stack operations still running after stop")
            stuck = stepfunctions.stop_running_executions(_STOP_TIMEOUT_SECONDS)
            if stuck:
                log.warning("%d Step Functions threads still running after stop", stuck)
            for engine in (self._lambda, self._batch):
                if engine is not None:
                    try:
                        engine.stop()
                    except Exception:
                        log.exception("stopping %s failed", type(engine).__name__)
            self._lambda = self._batch = None
            while self._cleanups:
                try:
                    self._cleanups.pop()()
                except Exception:
                    log.exception("cleanup at stop failed")
            if self._delivery is not None:
                self._delivery.wait_idle(2.0)
                self._delivery.stop()
                self._delivery = None
            if self._endpoint is not None:
                self._endpoint.stop()
                self._endpoint = None
            # No request can start a Lambda worker any more; end any the runtime's stop missed.
            from sluice.local.awslambda.pool import kill_all_workers

            missed = kill_all_workers()
            if missed:
                log.warning("%d Lambda worker processes were still running after stop; killed", missed)
            if self._moto_saved is not None:
                moto_config.unconfigure(self._moto_saved)
                self._moto_saved = None
            self._restore_environment()
            if self._own_state_dir and self._state_dir is not None:
                shutil.rmtree(self._state_dir, ignore_errors=True)
                self._state_dir = None
                self._own_state_dir = False
        finally:
            with _active_lock:
                _active = None

    # -- environment -----------------------------------------------------------------

    @property
    def iam(self) -> IamService:
        if self._iam is None:
            raise RuntimeError("LocalCloud is not running")
        return self._iam

    @property
    def admin(self) -> Identity:
        """The person's identity: the administrator key this cloud issued (or the fixed one)."""
        admin = self.iam.identities.admin
        if admin is None:
            raise RuntimeError("LocalCloud is not running")
        return admin

    @property
    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (in this process and its children) at the endpoint, signing
        as the administrator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **self.admin.environment,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    @property
    def credentials_path(self) -> Path:
        """The 0600 file holding the `export ...` line of the administrator's credentials."""
        return self.state_dir / CREDENTIALS_FILE

    def _write_credentials_file(self) -> None:
        path = self.credentials_path
        lines = "".join(f"export {name}={value}\n" for name, value in self.environment.items())
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(lines)
        os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT

    def _role_credentials(self, service: str, role_arn: str, session_name: str) -> dict[str, str]:
        return self.iam.credentials_for_role(role_arn, session_name, service)

    def _target_credentials(self, target: dict[str, Any], rule_arn: str) -> tuple[str, str, str | None]:
        """Whom an EventBridge delivery signs as: the target's role, else EventBridge for the rule."""
        identities = self.iam.identities
        role_arn = target.get("RoleArn")
        identity = (
            identities.role_session(str(role_arn), "EventBridge", "events.amazonaws.com")
            if role_arn
            else identities.service("events.amazonaws.com", rule_arn)
        )
        return identity.access_key, identity.secret_key, identity.session_token

    def _authorize_event_invoke(self, rule_arn: str, function_arn: str) -> None:
        region = function_arn.split(":")[3] if function_arn.count(":") >= 3 else self.region
        denial = self.iam.authorize_service(
            "events.amazonaws.com", rule_arn, "lambda:InvokeFunction", function_arn, region
        )
        if denial is not None:
            raise PermissionError(denial.message)

    def _lambda_policy(self, function_arn: str) -> str | None:
        runtime = self._lambda
        lookup = getattr(runtime, "policy_document", None)
        return lookup(function_arn) if lookup is not None else None

    def _set_environment(self, values: Mapping[str, str]) -> None:
        # A session token from the user's shell would be sent along with the fake keys.
        for name in (*values, "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            self._env_saved.setdefault(name, os.environ.get(name))
            os.environ.pop(name, None)
        os.environ.update(values)

    def _restore_environment(self) -> None:
        for name, value in self._env_saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env_saved.clear()

    # -- API -------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("LocalCloud is not running")
        return self._endpoint.url

    @property
    def port(self) -> int:
        if self._endpoint is None:
            raise RuntimeError("LocalCloud is not running")
        return self._endpoint.port

    @property
    def state_dir(self) -> Path:
        if self._state_dir is None:
            raise RuntimeError("LocalCloud is not running")
        return self._state_dir

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.jsonl"

    @property
    def batch_engine(self) -> BatchEngineLike:
        """The Batch engine serving `batch` requests (e.g. for fault injection)."""
        if self._batch is None:
            raise RuntimeError("LocalCloud is not running")
        return self._batch

    @property
    def lambda_runtime(self) -> LambdaEngine:
        """The Lambda runtime serving `lambda` requests."""
        if self._lambda is None:
            raise RuntimeError("LocalCloud is not running")
        return self._lambda

    @property
    def events(self) -> EventDelivery:
        if self._delivery is None:
            raise RuntimeError("LocalCloud is not running")
        return self._delivery

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for `service` on this endpoint, signing as the administrator."""
        kwargs.setdefault("config", Config(retries={"max_attempts": 3, "mode": "standard"}))
        admin = self.admin
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=admin.access_key,
            aws_secret_access_key=admin.secret_key,
            aws_session_token=admin.session_token,
            **kwargs,
        )

    def deploy(
        self,
        template_path: Path,
        parameter_overrides: Mapping[str, str] | None = None,
        *,
        stack_name: str = "sluice",
    ) -> Any:
        """Deploy a SAM/CloudFormation template onto this cloud (sluice.local.deploy); the stack is
        then in the local CloudFormation (DescribeStacks, DeleteStack) as CREATE_COMPLETE."""
        from sluice.local.deploy import DeployedStack, deploy_template
        from sluice.local.deploy.cfnyaml import load_template

        stack = deploy_template(
            template_path,
            endpoint_url=self.endpoint_url,
            region=self.region,
            account_id=self.account_id,
            stack_name=stack_name,
            parameter_overrides=dict(parameter_overrides or {}),
            project_root=self.project_root,
        )
        if isinstance(stack, DeployedStack) and self._cloudformation is not None:
            self._cloudformation.record(stack, load_template(Path(template_path)))
        return stack

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until work in flight has had its effects; True if everything went quiet.

        Batch job events, then EventBridge deliveries, then asynchronous Lambda invocations
        (EventBridge's Lambda targets), then what those delivered. Call it after an
        execution ends and before reading notifications or logs.
        """
        if self._delivery is None or self._batch is None or self._lambda is None:
            raise RuntimeError("LocalCloud is not running")
        deadline = time.monotonic() + timeout
        steps: list[Callable[[float], bool]] = [
            self._batch.flush,
            self._delivery.wait_idle,
            self._lambda.wait_for_async,
            self._delivery.wait_idle,
        ]
        return all([step(max(0.0, deadline - time.monotonic())) for step in steps])

    def notifications(self, settle: float = 5.0) -> list[dict[str, Any]]:
        """Every SNS message published so far (the outbox), after `settle()` (0 to skip).

        Still readable after `stop()` when the state directory was given (a temporary one is
        removed).
        """
        if self._outbox is None:
            raise RuntimeError("LocalCloud was never started")
        if settle > 0 and self._delivery is not None:
            self.settle(settle)
        return self._outbox.read()

    def emit_event(self, entry: dict[str, Any]) -> None:
        """Send a PutEvents entry (Source, DetailType, Detail, Resources, Time) to EventBridge."""
        self._emit(entry, self.region, self.account_id)

    def _emit(self, entry: dict[str, Any], region: str, account_id: str) -> None:
        if self._delivery is None:
            return
        for result in self._delivery.put_events([entry], region=region, account_id=account_id):
            if "ErrorCode" in result:
                log.error("event %s rejected: %s", entry.get("DetailType"), result["ErrorMessage"])

    def _invoke(self, function_arn: str, payload: bytes, invocation_type: str) -> Any:
        if self._lambda is None:
            raise RuntimeError("no Lambda runtime")
        return self._lambda.invoke(function_arn, payload, invocation_type)
