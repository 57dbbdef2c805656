"""Template parameters and pseudo-parameters.

Validation follows the CloudFormation "Parameters" reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html):
defaults, ``AllowedValues``, ``AllowedPattern``, ``Min/MaxLength``, ``Min/MaxValue``,
list types, and ``AWS::SSM::Parameter::Value<...>`` resolved from the (local) SSM service.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sluice.local.deploy.errors import DeployError

WHERE = "Parameters"


def partition_for(region: str) -> tuple[str, str]:
    """(partition, URL suffix) of a region, as AWS::Partition and AWS::URLSuffix give them."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def pseudo_parameters(region: str, account_id: str, stack_name: str) -> dict[str, Any]:
    partition, url_suffix = partition_for(region)
    # A stable stack id: same shape as CloudFormation's, same value on every local deploy.
    stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"sluice:{region}:{account_id}:{stack_name}")
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/{stack_uuid}",
        "AWS::Partition": partition,
        "AWS::URLSuffix": url_suffix,
        "AWS::NotificationARNs": [],
        "AWS::NoValue": None,
    }


def _is_list_type(ptype: str) -> bool:
    inner = ptype
    ssm = re.fullmatch(r"AWS::SSM::Parameter::Value<(.+)>", ptype)
    if ssm:
        inner = ssm.group(1)
    return inner.startswith("List<") or inner == "CommaDelimitedList"


def _split_list(value: str) -> list[str]:
    # CloudFormation splits list parameters on commas; surrounding spaces are not part
    # of an id or a number, so they are stripped.
    return [item.strip() for item in value.split(",")]


def _check(name: str, spec: Mapping[str, Any], value: Any) -> None:
    ptype = str(spec.get("Type", "String"))
    items = value if isinstance(value, list) else [value]
    allowed = spec.get("AllowedValues")
    pattern = spec.get("AllowedPattern")
    description = spec.get("ConstraintDescription")
    for item in items:
        text = str(item)
        if allowed is not None and text not in [str(a) for a in allowed]:
            raise DeployError(
                WHERE,
                description
                or f"Parameter '{name}' must be one of AllowedValues {[str(a) for a in allowed]}, got {text!r}",
            )
        if pattern is not None and not re.fullmatch(str(pattern), text):
            raise DeployError(
                WHERE, description or f"Parameter '{name}' must match pattern {pattern}, got {text!r}"
            )
        if ptype in ("Number", "List<Number>"):
            try:
                number = float(text)
            except ValueError:
                raise DeployError(WHERE, f"Parameter '{name}' must be a number, got {text!r}") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise DeployError(WHERE, description or f"Parameter '{name}' must be >= {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise DeployError(WHERE, description or f"Parameter '{name}' must be <= {spec['MaxValue']}")
    if ptype == "String":
        if "MinLength" in spec and len(str(value)) < int(spec["MinLength"]):
            raise DeployError(
                WHERE, description or f"Parameter '{name}' must be at least {spec['MinLength']} long"
            )
        if "MaxLength" in spec and len(str(value)) > int(spec["MaxLength"]):
            raise DeployError(
                WHERE, description or f"Parameter '{name}' must be at most {spec['MaxLength']} long"
            )


def resolve_parameters(
    declared: Mapping[str, Any],
    overrides: Mapping[str, str] | None,
    ssm_lookup: Callable[[str], str],
) -> dict[str, Any]:
    """Value of every declared parameter: override, else default; validated.

    List types yield lists (what ``Ref`` returns for them); everything else a string.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DeployError(WHERE, f"Parameters: {unknown} do not exist in the template")
    missing = [n for n, spec in declared.items() if n not in overrides and "Default" not in (spec or {})]
    if missing:
        raise DeployError(WHERE, f"Parameters: {missing} must have values")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        raw = overrides[name] if name in overrides else spec["Default"]
        if isinstance(raw, list):
            raw = ",".join(str(v) for v in raw)
        elif isinstance(raw, bool):
            raw = "true" if raw else "false"
        text = str(raw)
        ptype = str(spec.get("Type", "String"))
        if ptype.startswith("AWS::SSM::Parameter::Value<"):
            # The parameter's value is an SSM parameter *name*; constraints apply to the name.
            _check(name, spec, text)
            text = ssm_lookup(text)
            values[name] = _split_list(text) if _is_list_type(ptype) else text
            continue
        value: Any = _split_list(text) if _is_list_type(ptype) else text
        _check(name, spec, value)
        values[name] = value
    return values
