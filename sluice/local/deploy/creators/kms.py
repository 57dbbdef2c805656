"""AWS::KMS::Key and AWS::KMS::Alias."""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator, is_true
from sluice.local.deploy.model import Created


def create_key(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.call(
        logical_id,
        "kms",
        "CreateKey",
        props,
        renames={"KeyPolicy": "Policy"},
        exclude={"EnableKeyRotation", "Enabled", "PendingWindowInDays", "RotationPeriodInDays"},
    )
    meta = response["KeyMetadata"]
    kms = ctx.client("kms")
    if is_true(props.get("EnableKeyRotation")):
        kwargs = {}
        if "RotationPeriodInDays" in props:
            kwargs["RotationPeriodInDays"] = int(props["RotationPeriodInDays"])
        kms.enable_key_rotation(KeyId=meta["KeyId"], **kwargs)
    if "Enabled" in props and not is_true(props["Enabled"]):
        kms.disable_key(KeyId=meta["KeyId"])
    return Created(meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]})


def create_alias(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return Created(props["AliasName"])


CREATORS: dict[str, Creator] = {"AWS::KMS::Key": create_key, "AWS::KMS::Alias": create_alias}
