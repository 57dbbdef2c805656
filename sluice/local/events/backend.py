"""EventBridge delivery for the local cloud.

moto stores buses, rules and targets and its matcher evaluates patterns, but its PutEvents
raises for SNS, Lambda and Step Functions targets. Here PutEvents (over HTTP, and the events
the local cloud emits itself for Batch, S3 and Step Functions) is answered at once and the
events are matched and delivered, in order, by one worker thread: for every enabled rule on
the event's bus whose pattern matches, to every target, honouring Input, InputPath and
InputTransformer.

Patterns are evaluated by moto's matcher with one correction: moto does not look inside
arrays of objects (`detail.attempts[].container.exitCode`), which EventBridge does
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html).

Not emulated (logged as failed deliveries): retries, dead-letter queues, target types other
than SNS, SQS, Lambda, Step Functions, CloudWatch Logs and event buses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import boto3
from botocore.config import Config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.events.models import EventPattern, EventPatternParser, events_backends
from moto.events.utils import EventMessageType

from sluice.local.events.target_input import RuleContext, target_input

log = logging.getLogger(__name__)

EventListener = Callable[[dict[str, Any]], None]
LambdaInvoke = Callable[[str, bytes, str], Any]
# (target, rule ARN) -> (access key, secret key, session token): whom a delivery signs as.
TargetCredentials = Callable[[dict[str, Any], str], tuple[str, str, str | None]]
# (rule ARN, function ARN) -> None, or raises: may EventBridge invoke the function for the rule?
LambdaAuthorizer = Callable[[str, str], None]


def _fixed_credentials(target: dict[str, Any], rule_arn: str) -> tuple[str, str, str | None]:
    return "testing", "testing", None


MAX_PUT_EVENTS_ENTRIES = 10  # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
_ENABLED_STATES = ("ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")


def _add_value(flat: dict[str, Any], key: str, value: Any) -> None:
    if key not in flat:
        flat[key] = value
        return
    merged = flat[key] if isinstance(flat[key], list) else [flat[key]]
    flat[key] = merged + (value if isinstance(value, list) else [value])


class TargetNotEmulatedError(Exception):
    """A rule targets a service the local cloud cannot deliver to (e.g. Batch, ECS, Kinesis);
    recorded as that target's failed delivery, as AWS records FailedInvocations."""


class ArrayAwareEventPattern(EventPattern):
    """moto's EventPattern, also matching fields inside arrays of objects.

    EventBridge flattens arrays: a field path under an array of objects holds the values of
    every element, and a filter matches if any of them does.
    """

    @staticmethod
    def _flatten_dict(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
        flat: dict[str, Any] = {} if result is None else result
        if not isinstance(node, dict):
            return flat
        for name, value in node.items():
            key = f"{prefix}.{name}" if prefix else name
            if isinstance(value, dict) and value:
                ArrayAwareEventPattern._flatten_dict(value, key, flat)
            elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
                for item in value:
                    if isinstance(item, dict):
                        for sub_key, sub_value in ArrayAwareEventPattern._flatten_dict(item, key).items():
                            _add_value(flat, sub_key, sub_value)
                    else:
                        _add_value(flat, key, item)
            else:
                _add_value(flat, key, value)
        return flat


def matches(pattern: dict[str, Any] | str, event: dict[str, Any]) -> bool:
    """Whether an EventBridge pattern matches an event: the matcher delivery uses.

    Raises moto's InvalidEventPatternException for patterns PutRule would refuse.
    """
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    return ArrayAwareEventPattern(raw, EventPatternParser(raw).parse()).matches_event(
        cast(EventMessageType, event)
    )


def iso_time(moment: dt.datetime) -> str:
    """EventBridge's `time` format, e.g. 2019-02-26T19:42:21Z (naive datetimes are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry_time(value: Any) -> dt.datetime:
    if value is None or value == "":
        return dt.datetime.now(dt.UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _bus_name(value: str | None) -> str:
    if not value:
        return "default"
    return value.split("event-bus/", 1)[1] if value.startswith("arn:") else value


@dataclass(frozen=True)
class _Accepted:
    account_id: str
    region: str
    bus_name: str
    event: dict[str, Any]
    ingestion_time: str  # ISO 8601, for <aws.events.event.ingestion-time>


@dataclass(frozen=True)
class FailedDelivery:
    event_id: str
    rule_arn: str
    target_arn: str
    reason: str


class EventDelivery:
    """Accepts PutEvents entries and delivers matching events to rule targets asynchronously."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        lambda_invoke: LambdaInvoke | None = None,
        credentials: TargetCredentials = _fixed_credentials,
        authorize_lambda: LambdaAuthorizer | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        # Lambda, SNS, SQS and Logs targets are reached as events.amazonaws.com for the rule
        # (their resource policies decide); Step Functions and event-bus targets as the
        # target's RoleArn (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html).
        self.credentials = credentials
        self.authorize_lambda = authorize_lambda
        self.region = region
        self.account_id = account_id
        self.lambda_invoke = lambda_invoke
        self.failures: deque[FailedDelivery] = deque(maxlen=1000)
        self._listeners: list[EventListener] = []
        self._queue: queue.Queue[_Accepted | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._clients: dict[str, Any] = {}

    # -- accepting events -------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None:
        """Call `listener(event)` synchronously for every accepted event (before delivery)."""
        self._listeners.append(listener)

    def put_events(
        self, entries: Iterable[dict[str, Any]], *, region: str | None = None, account_id: str | None = None
    ) -> list[dict[str, Any]]:
        """PutEvents semantics: one result per entry, {"EventId"} or {"ErrorCode", "ErrorMessage"}."""
        region = region or self.region
        account_id = account_id or self.account_id
        results = []
        for entry in entries:
            error = self._validate(entry)
            if error is not None:
                results.append({"ErrorCode": error[0], "ErrorMessage": error[1]})
                continue
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": account_id,
                "time": iso_time(_entry_time(entry.get("Time"))),
                "region": region,
                "resources": list(entry.get("Resources") or []),
                "detail": json.loads(entry["Detail"]),
            }
            ingestion_time = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed")
            if self._thread is None:
                log.warning("event delivery is not running; dropping %s", event["detail-type"])
            else:
                with self._idle:
                    self._pending += 1
                self._queue.put(
                    _Accepted(account_id, region, _bus_name(entry.get("EventBusName")), event, ingestion_time)
                )
            results.append({"EventId": event["id"]})
        return results

    @staticmethod
    def _validate(entry: dict[str, Any]) -> tuple[str, str] | None:
        for name in ("Source", "DetailType", "Detail"):
            if not entry.get(name):
                return (
                    "InvalidArgument",
                    f"Parameter {name} is not valid. Reason: {name} is a required argument.",
                )
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            return "MalformedDetail", "Detail is malformed."
        if not isinstance(detail, dict):
            return "MalformedDetail", "Detail is malformed."
        return None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sluice-eventbridge", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
        self._clients.clear()

    @contextlib.contextmanager
    def pending(self) -> Iterator[None]:
        """Count the enclosed work (which will put events) as pending for `wait_idle`.

        Lets a producer make a state visible (an execution's end) before its event is put,
        without `wait_idle` returning in between.
        """
        with self._idle:
            self._pending += 1
        try:
            yield
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every accepted event has been delivered (or timeout); True if idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # -- delivering ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(item)
            except Exception:
                log.exception("delivering event %s failed", item.event["id"])
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, accepted: _Accepted) -> None:
        event = accepted.event
        bus = events_backends[accepted.account_id][accepted.region].event_buses.get(accepted.bus_name)
        if bus is None:
            log.debug("event %s sent to missing bus %s", event["id"], accepted.bus_name)
            return
        for rule in list(bus.rules.values()):
            # A rule with only a ScheduleExpression has an empty pattern, which moto's matcher
            # would treat as match-all; EventBridge never matches events against it.
            if rule.state not in _ENABLED_STATES or not rule.event_pattern.get_pattern():
                continue
            if not matches(rule.event_pattern.get_pattern(), event):
                continue
            context = RuleContext(
                rule_name=rule.name, rule_arn=rule.arn, ingestion_time=accepted.ingestion_time
            )
            for target in list(rule.targets):
                try:
                    payload = target_input(target, event, context)
                    if payload is None:
                        raise LookupError(f"InputPath {target.get('InputPath')} selects nothing")
                    self._send(target, payload, event, accepted.region, rule.arn)
                except Exception as error:  # one target failing must not stop the others
                    log.warning(
                        "EventBridge target %s of rule %s failed: %s", target.get("Arn"), rule.name, error
                    )
                    self.failures.append(
                        FailedDelivery(event["id"], rule.arn, target.get("Arn", ""), str(error))
                    )

    def _client(self, service: str, region: str, target: dict[str, Any], rule_arn: str) -> Any:
        access_key, secret_key, token = self.credentials(target, rule_arn)
        key = f"{service}/{region}/{access_key}"
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=token,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )
        return self._clients[key]

    def _send(
        self, target: dict[str, Any], payload: str, event: dict[str, Any], region: str, rule_arn: str
    ) -> None:
        arn = target["Arn"]
        parts = arn.split(":", 5)
        service, target_region, account, resource = parts[2], parts[3] or region, parts[4], parts[5]
        if service == "sns":
            self._client("sns", target_region, target, rule_arn).publish(TopicArn=arn, Message=payload)
        elif service == "sqs":
            queue_url = self._queue_url(target_region, account, resource)
            kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": payload}
            group = (target.get("SqsParameters") or {}).get("MessageGroupId")
            if group:
                kwargs["MessageGroupId"] = group
            self._client("sqs", target_region, target, rule_arn).send_message(**kwargs)
        elif service == "lambda":
            if self.lambda_invoke is None:
                raise RuntimeError("no Lambda runtime to invoke")
            if self.authorize_lambda is not None:
                self.authorize_lambda(rule_arn, arn)  # the function's resource policy decides
            # EventBridge invokes Lambda asynchronously.
            self.lambda_invoke(arn, payload.encode(), "Event")
        elif service == "states":
            self._client("stepfunctions", target_region, target, rule_arn).start_execution(
                stateMachineArn=arn, name=str(uuid.uuid4()), input=payload
            )
        elif service == "logs":
            group = resource.split(":", 1)[1].removesuffix(":*")
            logs = self._client("logs", target_region, target, rule_arn)
            logs.create_log_stream(logGroupName=group, logStreamName=event["id"])
            timestamp = int(_entry_time(event["time"]).timestamp() * 1000)
            logs.put_log_events(
                logGroupName=group,
                logStreamName=event["id"],
                logEvents=[{"timestamp": timestamp, "message": payload}],
            )
        elif service == "events" and resource.startswith("event-bus/"):
            forwarded = json.loads(payload)
            self.put_events(
                [
                    {
                        "Source": forwarded["source"],
                        "DetailType": forwarded["detail-type"],
                        "Detail": json.dumps(forwarded["detail"]),
                        "Resources": forwarded.get("resources", []),
                        "Time": forwarded.get("time"),
                        "EventBusName": resource.split("/", 1)[1],
                    }
                ],
                region=target_region,
                account_id=account,
            )
        else:
            raise TargetNotEmulatedError(f"EventBridge target type {service} is not emulated locally")

    def _queue_url(self, region: str, account: str, name: str) -> str:
        # EventBridge sends to the queue ARN itself, with no GetQueueUrl call of its own (that
        # would need permissions the target's queue policy does not grant); the endpoint's
        # queue URLs are <endpoint>/<account>/<name>.
        return f"{self.endpoint_url}/{account}/{name}"
