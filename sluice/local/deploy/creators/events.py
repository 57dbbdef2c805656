"""AWS::Events::Rule (with its targets) and AWS::Events::EventBus.

Targets keep every delivery setting (``Input``, ``InputPath``, ``InputTransformer``,
``DeadLetterConfig``, ``RetryPolicy``, ``BatchParameters``...) so the local delivery can
read them back with ``ListTargetsByRule``.
"""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.botomodel import translate_value
from sluice.local.deploy.creators.base import CreateContext, Creator
from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.model import Created


def _bus_name(bus: str | None) -> str | None:
    # EventBusName accepts a name or an ARN (…:event-bus/<name>).
    if bus and bus.startswith("arn:"):
        return bus.rsplit("/", 1)[-1]
    return bus


def create_rule(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.name(logical_id, max_length=64)
    bus = props.get("EventBusName")
    response = ctx.call(
        logical_id, "events", "PutRule", props, exclude={"Name", "Targets"}, extra={"Name": name}
    )
    targets = props.get("Targets") or []
    if targets:
        api_targets = translate_value("events", "PutTargets", "Targets", targets, where=logical_id)
        request: dict[str, Any] = {"Rule": name, "Targets": api_targets}
        if bus:
            request["EventBusName"] = bus
        failed = ctx.client("events").put_targets(**request).get("FailedEntries") or []
        if failed:
            raise DeployError(logical_id, f"PutTargets failed: {failed}")
    bus_name = _bus_name(bus)
    # Ref of a rule on a custom bus is "<bus>|<rule>" (CloudFormation AWS::Events::Rule return values).
    physical = name if not bus_name or bus_name == "default" else f"{bus_name}|{name}"
    return Created(physical, {"Arn": response["RuleArn"]})


def create_event_bus(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.call(logical_id, "events", "CreateEventBus", props)
    return Created(props["Name"], {"Arn": response["EventBusArn"], "Name": props["Name"]})


CREATORS: dict[str, Creator] = {
    "AWS::Events::Rule": create_rule,
    "AWS::Events::EventBus": create_event_bus,
}
