"""AWS::Logs::LogGroup and AWS::Logs::LogStream."""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator
from sluice.local.deploy.model import Created


def create_log_group(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("LogGroupName") or ctx.name(logical_id, max_length=512)
    ctx.call(
        logical_id,
        "logs",
        "CreateLogGroup",
        props,
        exclude={"LogGroupName", "RetentionInDays"},
        extra={"logGroupName": name},
    )
    if "RetentionInDays" in props:
        ctx.client("logs").put_retention_policy(
            logGroupName=name, retentionInDays=int(props["RetentionInDays"])
        )
    return Created(name, {"Arn": ctx.arn("logs", f"log-group:{name}:*")})


def create_log_stream(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("LogStreamName") or ctx.name(logical_id, max_length=512)
    ctx.client("logs").create_log_stream(logGroupName=props["LogGroupName"], logStreamName=name)
    return Created(name)


CREATORS: dict[str, Creator] = {
    "AWS::Logs::LogGroup": create_log_group,
    "AWS::Logs::LogStream": create_log_stream,
}
