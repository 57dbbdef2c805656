"""AWS::Lambda::Function, Permission, EventInvokeConfig, Version, Alias.

The function's code goes to the local Lambda runtime exactly as ``sam deploy`` would
send it: the local ``CodeUri`` directory, zipped, in ``CreateFunction``'s ``Code.ZipFile``.
Dependencies are not installed into the zip (no ``sam build``): locally, handlers run on
the project's virtualenv, which has them.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any, cast

from sluice.local.deploy.creators.base import CreateContext, Creator
from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.model import Created

_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".aws-sam"}


def zip_directory(path: Path) -> bytes:
    """Zip a directory's contents (paths relative to it), deterministically."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for file in sorted(files):
                if file.endswith(".pyc"):
                    continue
                full = Path(root) / file
                info = zipfile.ZipInfo(str(full.relative_to(path)), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (full.stat().st_mode & 0o777) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, full.read_bytes())
    return buffer.getvalue()


def _zip_single(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, content)
    return buffer.getvalue()


def code_zip(ctx: CreateContext, logical_id: str, code: Any, runtime: str) -> bytes:
    if isinstance(code, str):  # a local path, as `aws cloudformation package` accepts
        path = Path(code)
        if not path.is_absolute():
            path = ctx.base_dir / path
        if path.is_dir():
            return zip_directory(path)
        if path.is_file():
            return path.read_bytes() if path.suffix == ".zip" else _zip_single(path.name, path.read_bytes())
        raise DeployError(logical_id, f"code path {path} does not exist")
    if isinstance(code, dict) and "ZipFile" in code:
        # Inline code: CloudFormation writes it to index.py (Python) or index.js (Node.js).
        filename = "index.py" if runtime.startswith("python") else "index.js"
        return _zip_single(filename, str(code["ZipFile"]).encode())
    if isinstance(code, dict) and "S3Bucket" in code:
        obj = ctx.client("s3").get_object(
            Bucket=code["S3Bucket"],
            Key=code["S3Key"],
            **({"VersionId": code["S3ObjectVersion"]} if "S3ObjectVersion" in code else {}),
        )
        return cast(bytes, obj["Body"].read())
    raise DeployError(logical_id, f"Code {code!r} is not supported locally (container images cannot run)")


def create_function(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("FunctionName") or ctx.name(logical_id, max_length=64)
    zipped = code_zip(ctx, logical_id, props.get("Code"), str(props.get("Runtime", "python")))
    response = ctx.call(
        logical_id,
        "lambda",
        "CreateFunction",
        props,
        exclude={"FunctionName", "Code", "ReservedConcurrentExecutions"},
        extra={"FunctionName": name, "Code": {"ZipFile": zipped}},
    )
    if "ReservedConcurrentExecutions" in props:
        ctx.client("lambda").put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
        )
    return Created(name, {"Arn": response["FunctionArn"]})


def create_permission(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    statement_id = ctx.name(logical_id, max_length=100)
    ctx.call(logical_id, "lambda", "AddPermission", props, extra={"StatementId": statement_id})
    return Created(statement_id)


def create_event_invoke_config(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    ctx.call(logical_id, "lambda", "PutFunctionEventInvokeConfig", props)
    return Created(ctx.name(logical_id))


def create_version(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.call(
        logical_id, "lambda", "PublishVersion", props, exclude={"ProvisionedConcurrencyConfig"}
    )
    return Created(
        response["FunctionArn"], {"Version": response["Version"], "FunctionArn": response["FunctionArn"]}
    )


def create_alias(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.call(logical_id, "lambda", "CreateAlias", props, exclude={"ProvisionedConcurrencyConfig"})
    return Created(response["AliasArn"], {"AliasArn": response["AliasArn"]})


CREATORS: dict[str, Creator] = {
    "AWS::Lambda::Function": create_function,
    "AWS::Lambda::Permission": create_permission,
    "AWS::Lambda::EventInvokeConfig": create_event_invoke_config,
    "AWS::Lambda::Version": create_version,
    "AWS::Lambda::Alias": create_alias,
}
