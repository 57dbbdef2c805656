"""Translate CloudFormation properties into API request members through the botocore model.

CloudFormation property names are the API member names in PascalCase for almost every
service the local cloud emulates (Batch ``ComputeEnvironmentOrder[].ComputeEnvironment``
is ``computeEnvironmentOrder[].computeEnvironment``, Step Functions
``LoggingConfiguration.Destinations`` is ``loggingConfiguration.destinations``), so members
are matched case-insensitively and values coerced to the member's shape type. Where the
two differ, callers pass ``renames``. Tags are converted between CloudFormation's
``[{Key, Value}]`` list and the map or ``[{TagKey, TagValue}]`` list an API wants.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any, cast

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from sluice.local.deploy.errors import DeployError

log = logging.getLogger(__name__)


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def operation_model(service: str, operation: str) -> OperationModel:
    return _session().get_service_model(service).operation_model(operation)


def _member_for(shape: StructureShape, key: str) -> str | None:
    lowered = key.lower()
    for name in shape.members:
        if name.lower() == lowered:
            return cast(str, name)
    # CloudFormation's generic tag {Key, Value} against KMS's {TagKey, TagValue}.
    if lowered in ("key", "value"):
        for name in shape.members:
            if name.lower().endswith(lowered):
                return cast(str, name)
    return None


def _is_key_value_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and {"Key", "Value"} <= set(i) for i in value)


class Translation:
    """One translation run: collects properties that have no API member, so the caller
    can report them instead of dropping them silently."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.unmapped: list[str] = []

    def value(self, value: Any, shape: Shape, path: str) -> Any:
        if isinstance(shape, StructureShape):
            return self.structure(value, shape, path)
        if isinstance(shape, ListShape):
            return self._list(value, shape, path)
        if isinstance(shape, MapShape):
            return self._map(value, shape, path)
        return self._scalar(value, shape, path)

    def structure(
        self, value: Any, shape: StructureShape, path: str, renames: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise DeployError(self.where, f"property {path or shape.name} must be an object, got {value!r}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            member = (renames or {}).get(key) or _member_for(shape, key)
            if member is None:
                self.unmapped.append(f"{path}.{key}" if path else key)
                continue
            out[member] = self.value(item, shape.members[member], f"{path}.{key}" if path else key)
        return out

    def _list(self, value: Any, shape: ListShape, path: str) -> list[Any]:
        member = shape.member
        if isinstance(value, dict) and isinstance(member, StructureShape):
            # A tag map where the API wants a list of {Key, Value}-like structures.
            value = [{"Key": k, "Value": v} for k, v in value.items()]
        if not isinstance(value, list):
            value = [value]
        return [self.value(item, member, f"{path}[{i}]") for i, item in enumerate(value)]

    def _map(self, value: Any, shape: MapShape, path: str) -> dict[str, Any]:
        if _is_key_value_list(value):
            value = {item["Key"]: item["Value"] for item in value}
        if not isinstance(value, dict):
            raise DeployError(self.where, f"property {path} must be a map, got {value!r}")
        return {str(k): self.value(v, shape.value, f"{path}.{k}") for k, v in value.items()}

    def _scalar(self, value: Any, shape: Shape, path: str) -> Any:
        kind = shape.type_name
        try:
            if kind == "string":
                if isinstance(value, (dict, list)):
                    return json.dumps(value)  # e.g. EventPattern, policy documents
                if isinstance(value, bool):
                    return "true" if value else "false"
                return str(value)
            if kind in ("integer", "long"):
                return int(float(value)) if not isinstance(value, bool) else int(value)
            if kind in ("double", "float"):
                return float(value)
            if kind == "boolean":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    return value.lower() == "true"
                return bool(value)
            if kind == "blob":
                return value.encode() if isinstance(value, str) else value
        except (TypeError, ValueError):
            raise DeployError(self.where, f"property {path}: {value!r} is not a valid {kind}") from None
        return value


def request_for(
    service: str,
    operation: str,
    props: dict[str, Any],
    *,
    where: str,
    renames: dict[str, str] | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Build ``operation``'s request from CloudFormation ``props``.

    Returns (request, unmapped property paths). ``exclude`` names properties the caller
    handles itself; ``extra`` members are set verbatim (and win).
    """
    shape = operation_model(service, operation).input_shape
    assert shape is not None
    translation = Translation(where)
    request = translation.structure({k: v for k, v in props.items() if k not in exclude}, shape, "", renames)
    request.update(extra or {})
    return request, translation.unmapped


def translate_value(service: str, operation: str, member: str, value: Any, *, where: str) -> Any:
    """Translate one property into the shape of ``operation``'s input member ``member``."""
    shape = operation_model(service, operation).input_shape
    assert shape is not None
    return Translation(where).value(value, shape.members[member], member)
