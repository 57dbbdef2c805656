"""Corrections and additions to moto 5.2.5's Step Functions interpreter (execute_state_machine).

1. Service-integration casing (moto issue 10076). Step Functions' optimized integrations
   take and return PascalCase members (https://docs.aws.amazon.com/step-functions/latest/dg/connect-batch.html),
   and moto's port of LocalStack's interpreter calls `_normalise_parameters` /
   `_normalise_response` to convert through the botocore model, but left both empty. So
   boto3 receives `JobName` where Batch wants `jobName`, the `.sync` resolvers read `JobId` /
   `ExecutionArn` from camelCase responses, and aws-sdk:s3:getObject returns `Body` as a stream
   instead of text. Both directions are implemented here, for every integration, from the
   botocore service model: nested members are renamed by shape
   (ContainerOverrides.Environment[].Name -> name, ArrayProperties.Size -> size), map keys
   (Parameters, Tags) are left alone because they are user data, streaming bodies become
   strings and dates epoch milliseconds.
2. `.sync` completion. moto polls DescribeJobs every 0.5 s; here the resolver wakes as soon as
   a `Batch Job State Change` event for the job passes through the local EventBridge (see
   `notify_batch_event`), as Step Functions does through its managed
   `StepFunctionsGetEventsForBatchJobsRule` (batch-iam.html below). The fallback poll starts at
   `SYNC_FALLBACK_POLL_SECONDS` and backs off to `SYNC_MAX_POLL_SECONDS`: thousands of waiting
   executions polling four times a second each were most of an overloaded endpoint's load.
   A DescribeJobs call that fails transiently (connection reset or refused, HTTP 5xx,
   throttling) is moto's own bookkeeping call, not the task's: moto failed the task with
   States.Runtime (or Batch.<code>) and so ended the execution while its job ran on. On AWS a
   Run a Job (.sync) task ends only when the job does, or at the state's TimeoutSeconds or
   HeartbeatSeconds (https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-sync,
   https://docs.aws.amazon.com/step-functions/latest/dg/connect-batch.html); here such a
   poll is logged and retried, and the wait goes on.
3. When an execution ends (stopped, failed, timed out) while a `.sync` Batch job it started
   is still running, the job is terminated (batch:TerminateJob), as the IAM policy Step
   Functions requires for `.sync` Batch tasks implies
   (https://docs.aws.amazon.com/step-functions/latest/dg/batch-iam.html). A transient failure
   of TerminateJob is retried with backoff, as the AWS SDKs retry it
   (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). A stopped
   execution's waits are woken at once, not at their next poll.
4. `Step Functions Execution Status Change` events (source aws.states) for Standard workflows,
   emitted from moto's execution thread when an execution starts and when it ends
   (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html).
5. Where moto re-raises an error by name (a Parallel branch's or Map iteration's error, a
   Fail state's Error/ErrorPath) it builds a `CustomErrorName`, which refuses the `States.`
   prefix, so re-raising e.g. States.TaskFailed from a `.sync` job fails with States.Runtime
   instead. Here the original error name is kept
   (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
6. StopExecution's `error` and `cause`: moto's handler drops them (it stops the execution with
   empty strings) and never copies a stop's error and cause onto the execution, so
   DescribeExecution and the ABORTED status change event say nothing about why the run was
   stopped. AWS records them (API_StopExecution, API_ExecutionAbortedEventDetails) and
   DescribeExecution returns them; here both are kept.
7. An execution moto has registered but not yet started has no status, so a ListExecutions or
   DescribeExecution racing StartExecution answers HTTP 500; it reads as RUNNING, as on AWS.
8. StopExecution right after StartExecution reaches the worker before its thread has built the
   program environment and fails (HTTP 500); the stop now waits, briefly, for it to exist.
10. aws-sdk integration error names: Step Functions names an SDK exception `<Service>.<Name>Exception`
   with the service's name as AWS writes it (`S3.NoSuchKeyException`, which state machines catch
   to tell a missing object from a failure); moto knows only DynamoDb and Sfn and writes the
   rest in lower case (`s3.NoSuchKeyException`), which no Catch written for AWS matches.
   https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
11. Batch SubmitJob members: moto drops those outside a fixed list (ShareIdentifier,
   SchedulingPriorityOverride, PropagateTags, NodeOverrides, ...); all are passed on here.
12. One parse per definition: moto parses the state machine's ASL with ANTLR for every
   execution (~0.1 CPU s for this app's machine, in the one process that serves the whole
   cloud). The parsed program is kept, pickled, per definition, and each execution gets its
   own copy (~1 ms), so no two executions share a mutable component.

`install(emit, hold)` applies all of it to moto's classes (process-wide, like moto's
backends); `uninstall()` restores moto's own methods; `suspended()` is moto as shipped for a
while (tests check each gap still exists). `stop_running_executions()` aborts what still runs
when the local cloud stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib
import json
import logging
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.session
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, UnknownServiceError
from botocore.exceptions import ConnectionError as BotoConnectionError
from moto.core.responses import ActionResult
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service as service_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_batch as batch_module,
)
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for as _moto_boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse

from sluice.local.events.backend import iso_time

log = logging.getLogger(__name__)

StateTaskService = service_module.StateTaskService
StateTaskServiceBatch = batch_module.StateTaskServiceBatch
Execution = execution_module.Execution
SyncExecution = execution_module.SyncExecution
WorkerCommunication = execution_module.BaseExecutionWorkerCommunication

# (entry, region, account_id) -> None; an entry is a PutEvents request entry.
EventEmitter = Callable[[dict[str, Any], str, str], None]
# Context manager counting enclosed work as pending EventBridge delivery (EventDelivery.pending).
PendingHold = Callable[[], contextlib.AbstractContextManager[None]]

SYNC_FALLBACK_POLL_SECONDS = 0.25
SYNC_MAX_POLL_SECONDS = 20.0
# TerminateJob of a job an ended execution left running: attempts and the first backoff (doubling).
TERMINATE_ATTEMPTS = 6
TERMINATE_FIRST_BACKOFF_SECONDS = 0.5
# "If the combined escaped input and escaped output sent to EventBridge exceeds 248KB, then
# the input will be excluded. Similarly, if the escaped output exceeds 248KB, then the output
# will be excluded." https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html
_EVENT_PAYLOAD_LIMIT = 248 * 1024


# -- 1. casing through the botocore service model ---------------------------------------

_botocore = botocore.session.get_session()
_models_lock = threading.Lock()


@functools.cache
def _service_operations(service: str) -> tuple[Any, dict[str, str]] | None:
    """botocore ServiceModel of `service` and its operations by snake_case name."""
    with _models_lock:
        try:
            model = _botocore.get_service_model(service)
        except UnknownServiceError:
            return None
    return model, {xform_name(name): name for name in model.operation_names}


def _operation(task: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
    """botocore OperationModel of a task's integration (`submitJob`, `describe_jobs`, ...)."""
    found = _service_operations(task._get_boto_service_name(boto_service_name))
    if found is None:
        return None
    model, operations = found
    name = operations.get(xform_name(service_action_name or task.resource.api_action))
    return model.operation_model(name) if name else None


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    operation = _operation(self, boto_service_name, service_action_name)
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _epoch_ms_dates(value: Any) -> Any:
    """botocore's datetimes as epoch milliseconds, as Step Functions' integrations return dates
    (e.g. StartDate of states:startExecution.sync); raw datetimes break moto's DescribeExecution."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _epoch_ms_dates(item)
    elif isinstance(value, list):
        value[:] = [_epoch_ms_dates(item) for item in value]
    return value


def _normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    operation = _operation(self, boto_service_name, service_action_name)
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)
    _epoch_ms_dates(response)


# -- 2./3. .sync waiting and job bookkeeping ---------------------------------------------


class _BatchJobWatch:
    """Versions bumped by Batch job events; `.sync` resolvers wait on them.

    Also remembers which `.sync` jobs each execution is waiting on, so they can be
    terminated when the execution ends first.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._versions: dict[str, int] = {}
        self._running: dict[str, dict[str, str]] = {}  # execution ARN -> job id -> region

    def version(self, job_id: str) -> int:
        with self._changed:
            return self._versions.get(job_id, 0)

    def notify(self, job_id: str) -> None:
        with self._changed:
            self._versions[job_id] = self._versions.get(job_id, 0) + 1
            self._changed.notify_all()

    def wait(self, job_id: str, seen: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._versions.get(job_id, 0) != seen, timeout)

    def started(self, execution_arn: str, job_id: str, region: str) -> None:
        with self._changed:
            self._running.setdefault(execution_arn, {})[job_id] = region

    def finished(self, execution_arn: str, job_id: str) -> None:
        with self._changed:
            self._running.get(execution_arn, {}).pop(job_id, None)
            self._versions.pop(job_id, None)

    def take_running(self, execution_arn: str) -> dict[str, str]:
        with self._changed:
            return self._running.pop(execution_arn, {})

    def wake_execution(self, execution_arn: str) -> None:
        """Wake the execution's `.sync` waits now (it was stopped) instead of at their next poll."""
        with self._changed:
            for job_id in self._running.get(execution_arn, {}):
                self._versions[job_id] = self._versions.get(job_id, 0) + 1
            self._changed.notify_all()


_watch = _BatchJobWatch()


def notify_batch_event(event: dict[str, Any]) -> None:
    """EventBridge listener: wake `.sync` resolvers waiting on the job of a Batch event."""
    if event.get("source") != "aws.batch":
        return
    job_id = str((event.get("detail") or {}).get("jobId") or "")
    if job_id:
        _watch.notify(job_id)
        if ":" in job_id:  # an array child; the parent's summary may have changed too
            _watch.notify(job_id.split(":", 1)[0])


def _build_sync_resolver(
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict[str, Any],
    state_credentials: Any,
) -> Callable[[], Any]:
    job_id = env.stack[-1]["JobId"]  # the SubmitJob result moto's resolver is about to pop
    execution_arn = env.states.context_object.context_object_data["Execution"]["Id"]
    describe = _MOTO[(StateTaskServiceBatch, "_build_sync_resolver")](
        self, env, resource_runtime_part, normalised_parameters, state_credentials
    )
    _watch.started(execution_arn, job_id, resource_runtime_part.region)

    def resolver() -> Any:
        # Runs until the job ends (moto calls it again only after sleeping 0.5 s).
        interval = SYNC_FALLBACK_POLL_SECONDS
        while True:
            seen = _watch.version(job_id)
            if not env.is_running():
                return None  # execution stopped or failed elsewhere; the end hook terminates
            try:
                result = describe()
            except FailureEventException:  # job FAILED: States.TaskFailed, cause = job JSON
                _watch.finished(execution_arn, job_id)
                raise
            except Exception as error:
                if not is_transient(error):
                    _watch.finished(execution_arn, job_id)
                    raise
                # Step Functions' own poll failed, not the job: keep waiting (see 2. above).
                log.warning("DescribeJobs of %s for %s failed, retrying: %s", job_id, execution_arn, error)
                result = None
            if result is not None:
                _watch.finished(execution_arn, job_id)
                return result
            if not env.is_running():
                return None  # execution stopped or failed elsewhere; the end hook terminates
            _watch.wait(job_id, seen, interval)
            interval = min(interval * 2, max(SYNC_MAX_POLL_SECONDS, SYNC_FALLBACK_POLL_SECONDS))

    return resolver


# HTTP statuses and error codes the AWS SDKs retry as transient or throttling
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


def is_transient(error: BaseException) -> bool:
    """Whether a service call failed in a way the AWS SDKs retry: no connection, no complete
    response, HTTP 5xx or 429, or a throttling error code."""
    if isinstance(error, BotoConnectionError | HTTPClientError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in _THROTTLING_CODES or status in _TRANSIENT_STATUSES
    return False


def _execution_role(execution: Any) -> str | None:
    """The role of the execution's state machine (its service calls run as that role)."""
    try:
        parts = str(execution.state_machine_arn).split(":")
        machine = stepfunctions_parser_backends[parts[4]][parts[3]].describe_state_machine(
            execution.state_machine_arn
        )
        return str(machine.roleArn)
    except Exception:  # the state machine is gone: sign as moto does
        return None


def _terminate_jobs_of(execution: Any) -> None:
    for job_id, region in _watch.take_running(execution.exec_arn).items():
        reason = (
            f"Step Functions execution {execution.exec_arn} ended with status {execution.exec_status.value}"
        )
        backoff = TERMINATE_FIRST_BACKOFF_SECONDS
        for attempt in range(1, TERMINATE_ATTEMPTS + 1):
            try:
                role_client(region, "batch", _execution_role(execution)).terminate_job(
                    jobId=job_id, reason=reason[:1024]
                )
                break
            except Exception as error:
                if attempt < TERMINATE_ATTEMPTS and is_transient(error):
                    time.sleep(backoff)
                    backoff *= 2
                    continue
                log.exception(
                    "terminating Batch job %s of %s (%s) failed",
                    job_id,
                    execution.exec_arn,
                    execution.exec_status.value,
                )
                break


# -- 4. Execution Status Change events ----------------------------------------------------

_emit: EventEmitter | None = None
_hold: PendingHold = contextlib.nullcontext


def _epoch_ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def status_change_detail(execution: Any, status: str) -> dict[str, Any]:
    """`detail` of a Step Functions Execution Status Change event, as DescribeExecution has it."""
    input_text = to_json_str(execution.input_data, separators=(",", ":"))
    output_text = to_json_str(execution.output, separators=(",", ":")) if status == "SUCCEEDED" else None
    escaped_input = len(json.dumps(input_text))
    escaped_output = len(json.dumps(output_text)) if output_text is not None else 0
    output_included = escaped_output <= _EVENT_PAYLOAD_LIMIT
    input_included = escaped_input + (escaped_output if output_included else 0) <= _EVENT_PAYLOAD_LIMIT
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date) if status != "RUNNING" else None,
        "input": input_text if input_included else None,
        "inputDetails": {"included": input_included},
        "output": output_text if output_included else None,
        "outputDetails": {"included": output_included} if output_text is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }


def _emits_events(execution: Any) -> bool:
    # "Express Workflows do not emit events to EventBridge" (cw-events.html). moto keeps the
    # real type in `type`; its `sm_type` is always STANDARD.
    standard = getattr(execution.state_machine, "type", "STANDARD") == "STANDARD"
    return standard and not isinstance(execution, SyncExecution)


def _emit_status(execution: Any, status: str) -> None:
    if _emit is None or not _emits_events(execution):
        return
    moment = execution.stop_date if status != "RUNNING" and execution.stop_date else execution.start_date
    try:  # runs in moto's execution thread, which must go on whatever happens here
        entry = {
            "Source": "aws.states",
            "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(status_change_detail(execution, status)),
            "Resources": [execution.exec_arn],
            "Time": iso_time(moment),
        }
        _emit(entry, execution.region_name, execution.account_id)
    except Exception:
        log.exception("emitting status change of %s failed", execution.exec_arn)


def _execution_start(self: Any) -> None:
    _emit_status(self, "RUNNING")  # queued before the worker thread can end the execution
    _MOTO[(Execution, "start")](self)


def _execution_terminated(self: Any) -> None:
    # DescribeExecution shows the end as soon as moto records it; holding delivery pending
    # until the event is put means "ended, then wait_idle()" always sees the event.
    with _hold():
        _MOTO[(WorkerCommunication, "terminated")](self)  # moto records status, stop date, output, error
        execution = self.execution
        _keep_stop_reason(execution)
        _emit_status(execution, execution.exec_status.value)
        _terminate_jobs_of(execution)


# -- 6. StopExecution's error and cause ----------------------------------------------------


def _stop_execution(self: Any) -> Any:
    """StopExecution handler passing the caller's `error` and `cause` on (moto's passes "")."""
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    stop_date = dt.datetime.now(dt.UTC)
    execution.stop(stop_date=stop_date, error=self._get_param("error"), cause=self._get_param("cause"))
    return ActionResult({"stopDate": execution.stop_date or stop_date})


def _keep_stop_reason(execution: Any) -> None:
    """Copy a stop's error and cause onto the ABORTED execution (absent when none were given)."""
    worker = getattr(execution, "exec_worker", None)
    state = worker.env.program_state() if worker is not None and worker.env is not None else None
    if isinstance(state, ProgramStopped):
        execution.error = state.error or None
        execution.cause = state.cause or None


def stop_running_executions(timeout: float) -> int:
    """Abort every running execution and join moto's execution threads; returns how many
    threads are still alive after `timeout` seconds."""
    now = dt.datetime.now(dt.UTC)
    for account in list(stepfunctions_parser_backends.values()):
        for backend in list(account.values()):
            for machine in list(backend.state_machines):
                for execution in list(machine.executions):
                    worker = getattr(execution, "exec_worker", None)
                    if worker is not None and worker.env is not None and worker.env.is_running():
                        execution.stop(stop_date=now, error=None, cause=None)
    deadline = time.monotonic() + timeout
    for thread in list(TMP_THREADS):
        thread.join(max(0.0, deadline - time.monotonic()))
    # moto never prunes this list; drop finished threads so it does not grow forever.
    TMP_THREADS[:] = [thread for thread in TMP_THREADS if thread.is_alive()]
    return len(TMP_THREADS)


# -- 5. States.* errors re-raised by name -------------------------------------------------


def _propagated_error_name(error_name: str | None) -> ErrorName:
    """Stands in for CustomErrorName where moto re-raises an error by its name."""
    if error_name is not None and error_name.startswith("States."):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            pass  # not a States.* name moto knows; let CustomErrorName refuse it as before
    return CustomErrorName(error_name=error_name)


# -- 7. the status of an execution moto has registered but not yet started -----------------


def _execution_status(self: Any) -> str:
    """moto lists an execution before `start()` sets its status, so a concurrent ListExecutions
    or DescribeExecution fails with AttributeError (HTTP 500). On AWS an execution is RUNNING
    from the moment StartExecution answers."""
    return self.exec_status.value if self.exec_status is not None else "RUNNING"


# -- 8. StopExecution racing the worker's start -------------------------------------------

WORKER_START_TIMEOUT = 5.0


def _worker_stop(self: Any, stop_date: dt.datetime, error: str | None, cause: str | None) -> None:
    # The worker thread creates `env` as its first step; there is no event to wait on.
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while self.env is None and time.monotonic() < deadline:
        time.sleep(0.005)
    _MOTO[(ExecutionWorker, "stop")](self, stop_date, error, cause)
    try:  # a `.sync` wait may be between polls: end it now
        execution_arn = str(self.env.states.context_object.context_object_data["Execution"]["Id"])
    except (AttributeError, KeyError, TypeError):
        return  # no environment (yet), or not one of moto's
    _watch.wake_execution(execution_arn)


# -- 9. Service integrations sign as the state machine's role ------------------------------
# moto 5.2.5's interpreter signs every service-integration call with the constants "ak"/"sk".
# Step Functions makes them with the execution role's credentials (or the state's Credentials
# role), so here each call signs as a session of that role, which must trust
# states.amazonaws.com (https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html).

RoleCredentials = Callable[[str, str], dict[str, str]]
_role_credentials: RoleCredentials | None = None
_BOTO_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
)
_sfn_clients: dict[tuple[str, str, str], Any] = {}
_sfn_clients_lock = threading.Lock()


def role_client(region: str, service: str, role_arn: str | None) -> Any:
    """A client for a service integration, signing as a session of `role_arn`."""
    if _role_credentials is None or not role_arn:
        return _moto_boto_client_for(region=region, service=service)
    env = _role_credentials(role_arn, "StepFunctions")
    key = (region, service, env["AWS_ACCESS_KEY_ID"])
    with _sfn_clients_lock:
        client = _sfn_clients.get(key)
        if client is None:
            client = boto3.client(
                service,
                region_name=region,
                endpoint_url=f"http://localhost:{moto_server_port()}",
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=env.get("AWS_SESSION_TOKEN"),
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                ),
            )
            _sfn_clients[key] = client
        return client


def _boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    return role_client(region, service, getattr(state_credentials, "role_arn", None))


def _install_role_clients(role_credentials: RoleCredentials | None) -> None:
    global _role_credentials
    _role_credentials = role_credentials
    _sfn_clients.clear()
    for name in _BOTO_CLIENT_MODULES:
        # Each module bound moto's function by name at import; rebind it there.
        vars(importlib.import_module(name))["boto_client_for"] = (
            _boto_client_for if role_credentials else _moto_boto_client_for
        )


# -- 10. aws-sdk error names -------------------------------------------------------------

# Services this app's state machines call through aws-sdk integrations, named as AWS names them.
_SDK_ERROR_NAMES = {"s3": "S3"}


def _install_sdk_error_names(installed: bool) -> None:
    names: dict[str, str] = state_task_service_aws_sdk._SERVICE_ERROR_NAMES
    for service, name in _SDK_ERROR_NAMES.items():
        if installed:
            names[service] = name
        else:
            names.pop(service, None)


# -- 11. every SubmitJob parameter ------------------------------------------------------

# moto keeps a fixed list of SubmitJob members for the Batch integration and silently drops the
# rest, ShareIdentifier and SchedulingPriorityOverride among them, so a job never reaches a
# fair-share queue with its share. Step Functions passes SubmitJob's members through (its Batch
# page lists SubmitJob with PropagateTags among the example's arguments,
# https://docs.aws.amazon.com/step-functions/latest/dg/connect-batch.html, and fair-share
# pipelines submit with ShareIdentifier through submitJob.sync); here every member of the
# botocore model's SubmitJob input is passed on, in PascalCase as states write them.


def _batch_supported_parameters(self: Any) -> set[str] | None:
    if self.resource.api_action.lower() != "submitjob":
        return None
    found = _service_operations("batch")
    assert found is not None  # botocore always models Batch
    model, _ = found
    members = model.operation_model("SubmitJob").input_shape.members
    return {name[:1].upper() + name[1:] for name in members}


# -- 12. one parse per definition -------------------------------------------------------

_PARSED_PROGRAMS_KEPT = 32  # definitions (state machine versions) whose parsed program is kept
_parsed_programs: OrderedDict[str, bytes] = OrderedDict()
_parsed_programs_lock = threading.Lock()


def _evaluation_entrypoint(self: Any) -> Any:
    """The execution's program: a fresh copy of the definition's parsed program.

    The copy comes from pickled bytes this process made itself from moto's own parse, so it is
    what a new parse would give, without ANTLR's cost.
    """
    definition: str = self._evaluation_details.state_machine_details.definition
    with _parsed_programs_lock:
        pickled = _parsed_programs.get(definition)
        if pickled is not None:
            _parsed_programs.move_to_end(definition)
    if pickled is not None:
        return pickle.loads(pickled)  # bytes made by pickle.dumps below, never from outside
    program = _MOTO[(ExecutionWorker, "_get_evaluation_entrypoint")](self)
    try:
        pickled = pickle.dumps(program)
    except (pickle.PicklingError, TypeError, AttributeError):
        return program  # a component that cannot be pickled: parse every time, as moto does
    with _parsed_programs_lock:
        _parsed_programs[definition] = pickled
        while len(_parsed_programs) > _PARSED_PROGRAMS_KEPT:
            _parsed_programs.popitem(last=False)
    return program


# -- install / uninstall ------------------------------------------------------------------

# (class or module, attribute, replacement); modules call `CustomErrorName(...)` by name.
_PATCHES: list[tuple[Any, str, Callable[..., Any] | property]] = [
    (StateTaskService, "_normalise_parameters", _normalise_parameters),
    (StateTaskService, "_normalise_response", _normalise_response),
    (StateTaskServiceBatch, "_build_sync_resolver", _build_sync_resolver),
    (StateTaskServiceBatch, "_get_supported_parameters", _batch_supported_parameters),
    (Execution, "start", _execution_start),
    (Execution, "status", property(_execution_status)),
    (WorkerCommunication, "terminated", _execution_terminated),
    (branches_decl, "CustomErrorName", _propagated_error_name),
    (iteration_worker, "CustomErrorName", _propagated_error_name),
    (state_fail, "CustomErrorName", _propagated_error_name),
    (StepFunctionResponse, "stop_execution", _stop_execution),
    (ExecutionWorker, "stop", _worker_stop),
    (ExecutionWorker, "_get_evaluation_entrypoint", _evaluation_entrypoint),
]
_MOTO: dict[tuple[Any, str], Any] = {(target, name): getattr(target, name) for target, name, _ in _PATCHES}


def install(
    emit: EventEmitter | None,
    hold: PendingHold = contextlib.nullcontext,
    role_credentials: RoleCredentials | None = None,
) -> None:
    """Apply the corrections to moto (idempotent) and route status events to `emit`."""
    global _emit, _hold
    _emit, _hold = emit, hold
    for target, name, replacement in _PATCHES:
        setattr(target, name, replacement)
    _install_sdk_error_names(True)
    _install_role_clients(role_credentials)


def uninstall() -> None:
    """Restore moto's own implementations."""
    global _emit, _hold
    _emit, _hold = None, contextlib.nullcontext
    for (target, name), original in _MOTO.items():
        setattr(target, name, original)
    _install_sdk_error_names(False)
    _install_role_clients(None)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """moto as shipped, for the duration (tests use it to check the gap still exists)."""
    emit, hold, credentials = _emit, _hold, _role_credentials
    installed = StateTaskService._normalise_parameters is _normalise_parameters
    uninstall()
    # Signing as the state machine's role is what the endpoint requires, not a correction under
    # test: it stays.
    _install_role_clients(credentials)
    try:
        yield
    finally:
        if installed:
            install(emit, hold, credentials)
