"""Check raw JSON against botocore's Batch shapes (boto3 silently drops what doesn't fit)."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.model import Shape

MODEL = botocore.session.get_session().get_service_model("batch")


def output_shape(operation: str) -> Shape:
    shape = MODEL.operation_model(operation).output_shape
    assert shape is not None
    return shape


def assert_shape(value: Any, shape: Shape, path: str = "$") -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        members = shape.members
        unknown = set(value) - set(members)
        assert not unknown, f"{path}: keys not in {shape.name}: {sorted(unknown)}"
        for key, item in value.items():
            assert item is not None, f"{path}.{key} is null; AWS leaves it out"
            assert_shape(item, members[key], f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected a list"
        for index, item in enumerate(value):
            assert_shape(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: expected a map"
        for key, item in value.items():
            assert isinstance(key, str)
            assert_shape(item, shape.value, f"{path}.{key}")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        enum = shape.enum
        # RetryAction is case-insensitive and AWS returns it lower-cased
        # (https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html).
        if shape.name == "RetryAction":
            value = value.upper()
        assert not enum or value in enum, f"{path}: {value!r} not in {enum}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), (
            f"{path}: expected an integer, got {value!r}"
        )
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected a boolean"
    elif kind in ("float", "double"):
        assert isinstance(value, (int, float)), f"{path}: expected a number"
    else:
        raise AssertionError(f"{path}: unhandled shape type {kind}")
