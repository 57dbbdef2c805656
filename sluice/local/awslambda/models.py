"""Function records: configuration (as the API returns it), code, versions, aliases,
permissions, event-invoke configs, reserved concurrency and tags."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.local.awslambda.errors import LambdaServiceError, function_not_found, invalid

LATEST = "$LATEST"

# Keys Lambda reserves (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# name | account:function:name | arn:partition:lambda:region:account:function:name, each with optional :qualifier
_ARN = re.compile(
    r"^(?:arn:(?P<partition>[\w-]+):lambda:(?P<region>[\w-]+):)?(?:(?P<account>\d{12}):)?"
    r"(?:function:)?(?P<name>[a-zA-Z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)


def parse_function_ref(value: str) -> tuple[str, str | None]:
    """(function name, qualifier or None) from a name, partial ARN or ARN."""
    found = _ARN.match(value or "")
    if not found:
        raise invalid(
            f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern"
        )
    return found.group("name"), found.group("qualifier")


def timestamp_text() -> str:
    # LastModified as Lambda writes it: 2024-01-02T03:04:05.678+0000
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000"


def extract_zip(zipped: bytes, code_root: Path, function_name: str) -> tuple[Path, str, int]:
    """Unpack the code once per content hash; returns (directory, CodeSha256, size)."""
    digest = hashlib.sha256(zipped)
    sha_b64 = base64.b64encode(digest.digest()).decode()
    target = code_root / function_name / digest.hexdigest()[:20]
    if not target.exists():
        staging = target.with_name(target.name + f".tmp-{uuid.uuid4().hex[:8]}")
        try:
            with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
                archive.extractall(staging)
        except (zipfile.BadZipFile, ValueError):
            raise invalid(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from None
        try:
            staging.rename(target)
        except OSError:  # another request unpacked the same code first
            pass
        (target.parent / f"{target.name}.zip").write_bytes(zipped)
    return target, sha_b64, len(zipped)


@dataclass
class FunctionVersion:
    """One immutable snapshot: the configuration the API returns plus the unpacked code."""

    config: dict[str, Any]
    code_dir: Path
    generation: int = 0

    @property
    def name(self) -> str:
        return str(self.config["FunctionName"])

    @property
    def version(self) -> str:
        return str(self.config["Version"])

    @property
    def arn(self) -> str:
        return str(self.config["FunctionArn"])


@dataclass
class FunctionState:
    """Everything the runtime knows about one function."""

    name: str
    arn: str  # unqualified
    latest: FunctionVersion
    versions: dict[str, FunctionVersion] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy_statements: list[dict[str, Any]] = field(default_factory=list)
    policy_revision: str = field(default_factory=lambda: str(uuid.uuid4()))
    event_invoke_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # by qualifier
    reserved_concurrency: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    next_version: int = 1

    def resolve(self, qualifier: str | None) -> tuple[FunctionVersion, str]:
        """(version snapshot, executed version) for a qualifier (None/$LATEST, number, alias)."""
        if qualifier in (None, LATEST):
            return self.latest, LATEST
        if qualifier in self.versions:
            return self.versions[qualifier], qualifier
        alias = self.aliases.get(qualifier)
        if alias is not None:
            version = alias["FunctionVersion"]
            return (self.latest, LATEST) if version == LATEST else (self.versions[version], version)
        raise KeyError(qualifier)

    def event_invoke_config(self, qualifier: str | None) -> dict[str, Any]:
        return self.event_invoke_configs.get(qualifier or LATEST) or {}

    def qualified_arn(self, qualifier: str | None) -> str:
        return f"{self.arn}:{qualifier or LATEST}"


def check_revision(current: str, params: dict[str, Any]) -> None:
    """PreconditionFailed when the request names a RevisionId that is not the current one."""
    if params.get("RevisionId") and params["RevisionId"] != current:
        raise LambdaServiceError(
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API "
            "to retrieve the latest Revision Id",
            412,
        )


class FunctionStore:
    """Every function of the local Lambda service, and the lock that guards them.

    The API operations (api.py, settings.py) and the execution side (backend.py) share this
    store; neither reaches into the other.
    """

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.lock = threading.RLock()
        self.functions: dict[str, FunctionState] = {}

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def lookup(self, name_or_arn: str, qualifier: str | None = None) -> tuple[FunctionState, str | None]:
        name, arn_qualifier = parse_function_ref(name_or_arn)
        if qualifier and arn_qualifier and qualifier != arn_qualifier:
            raise LambdaServiceError(
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            )
        with self.lock:
            state = self.functions.get(name)
        if state is None:
            raise function_not_found(
                self.function_arn(name)
                + (f":{qualifier or arn_qualifier}" if (qualifier or arn_qualifier) else "")
            )
        return state, qualifier or arn_qualifier

    def lookup_params(self, params: dict[str, Any]) -> tuple[FunctionState, str | None]:
        """The function (and qualifier) a request's FunctionName/Qualifier name."""
        return self.lookup(params["FunctionName"], params.get("Qualifier"))

    @staticmethod
    def resolve(state: FunctionState, qualifier: str | None) -> tuple[FunctionVersion, str]:
        try:
            return state.resolve(qualifier)
        except KeyError:
            raise function_not_found(state.qualified_arn(qualifier)) from None
