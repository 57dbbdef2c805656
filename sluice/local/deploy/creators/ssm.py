"""AWS::SSM::Parameter."""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator
from sluice.local.deploy.model import Created


def create_parameter(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.name(logical_id, max_length=1011)
    ctx.call(logical_id, "ssm", "PutParameter", props, exclude={"Name"}, extra={"Name": name})
    return Created(name, {"Type": props.get("Type", "String"), "Value": props.get("Value")})


CREATORS: dict[str, Creator] = {"AWS::SSM::Parameter": create_parameter}
