"""The Lambda API operations, as handlers of botocore-shaped request parameters: functions,
code, invocation, versions and aliases here; settings operations in settings.py."""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any, Protocol

from sluice.local.awslambda.errors import conflict, invalid, not_found
from sluice.local.awslambda.models import (
    LATEST,
    RESERVED_ENV_KEYS,
    FunctionState,
    FunctionStore,
    FunctionVersion,
    check_revision,
    extract_zip,
    parse_function_ref,
    timestamp_text,
)
from sluice.local.awslambda.settings import SettingsApi

_ROLE = re.compile(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")

# Configuration members UpdateFunctionConfiguration may change.
_UPDATABLE = (
    "Role",
    "Handler",
    "Description",
    "Timeout",
    "MemorySize",
    "VpcConfig",
    "Environment",
    "Runtime",
    "DeadLetterConfig",
    "KMSKeyArn",
    "TracingConfig",
    "Layers",
    "FileSystemConfigs",
    "EphemeralStorage",
    "LoggingConfig",
)
_VOLATILE = {"Version", "FunctionArn", "RevisionId", "LastModified"}


def _validate_config(params: dict[str, Any]) -> None:
    if "Role" in params and not _ROLE.match(str(params["Role"])):
        raise invalid(
            f"1 validation error detected: Value '{params['Role']}' at 'role' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
        )
    if "Timeout" in params and not 1 <= int(params["Timeout"]) <= 900:
        raise invalid(
            f"1 validation error detected: Value '{params['Timeout']}' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900"
        )
    if "MemorySize" in params and not 128 <= int(params["MemorySize"]) <= 10240:
        raise invalid(
            f"1 validation error detected: Value '{params['MemorySize']}' at 'memorySize' failed to satisfy constraint: Member must have value between 128 and 10240"
        )
    variables = (params.get("Environment") or {}).get("Variables") or {}
    reserved = sorted(k for k in variables if k in RESERVED_ENV_KEYS)
    if reserved:
        raise invalid(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )


class FunctionHost(Protocol):
    """What the function operations need from the execution side (the runtime in backend.py)."""

    code_dir: Path

    def client(self, service: str) -> Any: ...
    def invoke(
        self,
        function_name_or_arn: str,
        payload: bytes,
        invocation_type: str = ...,
        *,
        qualifier: str | None = ...,
        log_type: str | None = ...,
        client_context: Any = ...,
    ) -> dict[str, Any]: ...
    def retire_pools(self, name: str, version: str | None = None) -> None: ...


class LambdaApi:
    """Every Lambda operation the local runtime serves, by botocore operation name."""

    def __init__(self, store: FunctionStore, host: FunctionHost) -> None:
        self.store = store
        self.host = host
        self.settings = SettingsApi(store)

    def handlers(self) -> dict[str, Any]:
        return {
            "CreateFunction": self.create_function,
            "GetFunction": self.get_function,
            "GetFunctionConfiguration": self.get_function_configuration,
            "ListFunctions": self.list_functions,
            "DeleteFunction": self.delete_function,
            "UpdateFunctionConfiguration": self.update_function_configuration,
            "UpdateFunctionCode": self.update_function_code,
            "Invoke": self.invoke,
            "AddPermission": self.settings.add_permission,
            "RemovePermission": self.settings.remove_permission,
            "GetPolicy": self.settings.get_policy,
            "PutFunctionEventInvokeConfig": self.settings.put_event_invoke_config,
            "UpdateFunctionEventInvokeConfig": self.settings.update_event_invoke_config,
            "GetFunctionEventInvokeConfig": self.settings.get_event_invoke_config,
            "DeleteFunctionEventInvokeConfig": self.settings.delete_event_invoke_config,
            "ListFunctionEventInvokeConfigs": self.settings.list_event_invoke_configs,
            "PutFunctionConcurrency": self.settings.put_concurrency,
            "GetFunctionConcurrency": self.settings.get_concurrency,
            "DeleteFunctionConcurrency": self.settings.delete_concurrency,
            "TagResource": self.settings.tag_resource,
            "UntagResource": self.settings.untag_resource,
            "ListTags": self.settings.list_tags,
            "PublishVersion": self.publish_version,
            "ListVersionsByFunction": self.list_versions,
            "CreateAlias": self.create_alias,
            "GetAlias": self.get_alias,
            "UpdateAlias": self.update_alias,
            "DeleteAlias": self.delete_alias,
            "ListAliases": self.list_aliases,
            "GetAccountSettings": self.settings.get_account_settings,
        }

    # ------------------------------------------------------------------ helpers
    def _code(self, name: str, code: dict[str, Any]) -> tuple[Any, str, int]:
        zipped = code.get("ZipFile")
        if zipped is None and code.get("S3Bucket"):
            extra = {"VersionId": code["S3ObjectVersion"]} if code.get("S3ObjectVersion") else {}
            try:
                body = self.host.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"], **extra)[
                    "Body"
                ]
            except Exception as exc:
                raise invalid(f"Error occurred while GetObject. S3 Error Code: {exc}") from None
            zipped = body.read()
        if code.get("ImageUri"):
            raise invalid(
                "container image functions (PackageType Image) are not supported by the local Lambda runtime"
            )
        if not zipped:
            raise invalid("Please provide a source for function code.")
        return extract_zip(zipped, self.host.code_dir, name)

    def _new_version(self, config: dict[str, Any], code_dir: Any, generation: int) -> FunctionVersion:
        config["RevisionId"] = str(uuid.uuid4())
        config["LastModified"] = timestamp_text()
        return FunctionVersion(config, code_dir, generation)

    # ------------------------------------------------------------------ functions
    def create_function(self, p: dict[str, Any]) -> dict[str, Any]:
        name, _ = parse_function_ref(p["FunctionName"])
        if p.get("PackageType") == "Image":
            raise invalid(
                "container image functions (PackageType Image) are not supported by the local Lambda runtime"
            )
        for required in ("Role", "Runtime", "Handler"):
            if not p.get(required):
                raise invalid(
                    f"{required} is a required parameter for functions created with .zip deployment packages."
                )
        _validate_config(p)
        with self.store.lock:
            if name in self.store.functions:
                raise conflict(f"Function already exist: {name}")
        code_dir, sha, size = self._code(name, p.get("Code") or {})
        arn = self.store.function_arn(name)
        vpc = p.get("VpcConfig") or {}
        config: dict[str, Any] = {
            "FunctionName": name,
            "FunctionArn": arn,
            "Runtime": p["Runtime"],
            "Role": p["Role"],
            "Handler": p["Handler"],
            "CodeSize": size,
            "Description": p.get("Description", ""),
            "Timeout": int(p.get("Timeout", 3)),
            "MemorySize": int(p.get("MemorySize", 128)),
            "CodeSha256": sha,
            "Version": LATEST,
            "TracingConfig": p.get("TracingConfig") or {"Mode": "PassThrough"},
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": p.get("Architectures") or ["x86_64"],
            "EphemeralStorage": p.get("EphemeralStorage") or {"Size": 512},
            "LoggingConfig": {
                "LogFormat": "Text",
                "LogGroup": f"/aws/lambda/{name}",
                **(p.get("LoggingConfig") or {}),
            },
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        }
        if vpc:
            config["VpcConfig"] = {
                "SubnetIds": vpc.get("SubnetIds", []),
                "SecurityGroupIds": vpc.get("SecurityGroupIds", []),
                "VpcId": "",
            }
        for key in ("Environment", "DeadLetterConfig", "KMSKeyArn", "Layers", "FileSystemConfigs"):
            if p.get(key):
                config[key] = p[key]
        if config.get("Layers"):
            config["Layers"] = [{"Arn": arn_, "CodeSize": 0} for arn_ in p["Layers"]]
        state = FunctionState(name=name, arn=arn, latest=self._new_version(config, code_dir, 0))
        state.tags = dict(p.get("Tags") or {})
        with self.store.lock:
            if name in self.store.functions:
                raise conflict(f"Function already exist: {name}")
            self.store.functions[name] = state
        result = copy.deepcopy(state.latest.config)
        if p.get("Publish"):
            result = self._publish(state, p.get("Description"))
        return result

    def get_function_configuration(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        version, _ = self.store.resolve(state, qualifier)
        return copy.deepcopy(version.config)

    def get_function(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        version, _ = self.store.resolve(state, qualifier)
        result: dict[str, Any] = {
            "Configuration": copy.deepcopy(version.config),
            "Code": {
                "RepositoryType": "S3",
                "Location": (version.code_dir.parent / f"{version.code_dir.name}.zip").as_uri(),
            },
        }
        if state.tags:
            result["Tags"] = dict(state.tags)
        if state.reserved_concurrency is not None:
            result["Concurrency"] = {"ReservedConcurrentExecutions": state.reserved_concurrency}
        return result

    def list_functions(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            states = sorted(self.store.functions.values(), key=lambda s: s.name)
        configs: list[dict[str, Any]] = []
        for state in states:
            configs.append(copy.deepcopy(state.latest.config))
            if p.get("FunctionVersion") == "ALL":
                configs.extend(copy.deepcopy(v.config) for v in state.versions.values())
        start = int(p.get("Marker") or 0)
        size = int(p.get("MaxItems") or 50)
        page = configs[start : start + size]
        result: dict[str, Any] = {"Functions": page}
        if start + size < len(configs):
            result["NextMarker"] = str(start + size)
        return result

    def delete_function(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        if qualifier and qualifier != LATEST:
            with self.store.lock:
                if qualifier not in state.versions:
                    raise not_found(f"Function not found: {state.qualified_arn(qualifier)}")
                del state.versions[qualifier]
            self.host.retire_pools(state.name, qualifier)
        else:
            with self.store.lock:
                self.store.functions.pop(state.name, None)
            self.host.retire_pools(state.name)
        return {"StatusCode": 204}

    def update_function_configuration(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        _validate_config(p)
        with self.store.lock:
            check_revision(state.latest.config["RevisionId"], p)
            config = copy.deepcopy(state.latest.config)
            for key in _UPDATABLE:
                if key in p:
                    config[key] = p[key]
            if "Layers" in p:
                config["Layers"] = [{"Arn": a, "CodeSize": 0} for a in p["Layers"]]
            state.latest = self._new_version(config, state.latest.code_dir, state.latest.generation + 1)
        self.host.retire_pools(state.name, LATEST)
        return copy.deepcopy(state.latest.config)

    def update_function_code(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        code_dir, sha, size = self._code(state.name, p)
        if p.get("DryRun"):
            return {**copy.deepcopy(state.latest.config), "CodeSha256": sha, "CodeSize": size}
        with self.store.lock:
            check_revision(state.latest.config["RevisionId"], p)
            config = copy.deepcopy(state.latest.config)
            config.update(CodeSha256=sha, CodeSize=size)
            state.latest = self._new_version(config, code_dir, state.latest.generation + 1)
        self.host.retire_pools(state.name, LATEST)
        if p.get("Publish"):
            return self._publish(state, None)
        return copy.deepcopy(state.latest.config)

    def invoke(self, p: dict[str, Any]) -> dict[str, Any]:
        client_context = None
        if p.get("ClientContext"):
            try:
                client_context = json.loads(base64.b64decode(p["ClientContext"]))
            except ValueError:
                raise invalid("Client context must be a valid Base64-encoded JSON object.") from None
        return self.host.invoke(
            p["FunctionName"],
            p.get("Payload") or b"",
            p.get("InvocationType") or "RequestResponse",
            qualifier=p.get("Qualifier"),
            log_type=p.get("LogType"),
            client_context=client_context,
        )

    # ------------------------------------------------------------------ versions and aliases
    def _publish(self, state: FunctionState, description: str | None) -> dict[str, Any]:
        with self.store.lock:
            latest = state.latest.config
            comparable = {k: v for k, v in latest.items() if k not in _VOLATILE}
            if state.versions:
                last = state.versions[str(state.next_version - 1)]
                if {k: v for k, v in last.config.items() if k not in _VOLATILE | {"Description"}} == {
                    k: v for k, v in comparable.items() if k != "Description"
                }:
                    return copy.deepcopy(last.config)  # unchanged: Lambda returns the last version
            number = str(state.next_version)
            state.next_version += 1
            config = copy.deepcopy(latest)
            config.update(Version=number, FunctionArn=state.qualified_arn(number))
            if description is not None:
                config["Description"] = description
            state.versions[number] = FunctionVersion(config, state.latest.code_dir, 0)
            return copy.deepcopy(config)

    def publish_version(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        if p.get("CodeSha256") and p["CodeSha256"] != state.latest.config["CodeSha256"]:
            raise invalid("CodeSha256 does not match the function's current code")
        check_revision(state.latest.config["RevisionId"], p)
        return self._publish(state, p.get("Description"))

    def list_versions(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        with self.store.lock:
            configs = [copy.deepcopy(state.latest.config)] + [
                copy.deepcopy(v.config) for v in state.versions.values()
            ]
        return {"Versions": configs}

    def _alias_config(self, state: FunctionState, alias: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({**alias, "AliasArn": state.qualified_arn(alias["Name"])})

    def create_alias(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        name = p["Name"]
        with self.store.lock:
            if name in state.aliases:
                raise conflict(f"Alias already exists: {state.qualified_arn(name)}")
            if p["FunctionVersion"] != LATEST and p["FunctionVersion"] not in state.versions:
                raise not_found(f"Function not found: {state.qualified_arn(p['FunctionVersion'])}")
            alias = {
                "Name": name,
                "FunctionVersion": p["FunctionVersion"],
                "Description": p.get("Description", ""),
                "RevisionId": str(uuid.uuid4()),
            }
            if p.get("RoutingConfig"):
                alias["RoutingConfig"] = p["RoutingConfig"]
            state.aliases[name] = alias
            return self._alias_config(state, alias)

    def _alias(self, p: dict[str, Any]) -> tuple[FunctionState, dict[str, Any]]:
        state, _ = self.store.lookup(p["FunctionName"])
        alias = state.aliases.get(p["Name"])
        if alias is None:
            raise not_found(f"Cannot find alias arn: {state.qualified_arn(p['Name'])}")
        return state, alias

    def get_alias(self, p: dict[str, Any]) -> dict[str, Any]:
        state, alias = self._alias(p)
        return self._alias_config(state, alias)

    def update_alias(self, p: dict[str, Any]) -> dict[str, Any]:
        state, alias = self._alias(p)
        with self.store.lock:
            for key in ("FunctionVersion", "Description", "RoutingConfig"):
                if key in p:
                    alias[key] = p[key]
            alias["RevisionId"] = str(uuid.uuid4())
            return self._alias_config(state, alias)

    def delete_alias(self, p: dict[str, Any]) -> None:
        state, alias = self._alias(p)
        with self.store.lock:
            state.aliases.pop(alias["Name"], None)

    def list_aliases(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        aliases = [
            self._alias_config(state, a)
            for a in state.aliases.values()
            if not p.get("FunctionVersion") or a["FunctionVersion"] == p["FunctionVersion"]
        ]
        return {"Aliases": aliases}
