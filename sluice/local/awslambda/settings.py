"""Lambda API operations on a function's settings: resource policy, event-invoke config,
reserved concurrency, tags, account settings."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from typing import Any

from sluice.local.awslambda.errors import conflict, invalid, not_found
from sluice.local.awslambda.models import LATEST, FunctionState, FunctionStore, check_revision

ACCOUNT_CONCURRENCY = 1000
MIN_UNRESERVED = 100  # https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html


def _statement(state: FunctionState, params: dict[str, Any], qualifier: str | None) -> dict[str, Any]:
    principal = str(params["Principal"])
    if principal == "*":
        principal_doc: Any = "*"
    elif principal.endswith(".amazonaws.com") or principal.endswith(".amazonaws.com.cn"):
        principal_doc = {"Service": principal}
    elif re.fullmatch(r"\d{12}", principal):
        principal_doc = {"AWS": f"arn:aws:iam::{principal}:root"}
    else:
        principal_doc = {"AWS": principal}
    statement: dict[str, Any] = {
        "Sid": params["StatementId"],
        "Effect": "Allow",
        "Principal": principal_doc,
        "Action": params["Action"],
        "Resource": state.qualified_arn(qualifier) if qualifier else state.arn,
    }
    condition: dict[str, dict[str, str]] = {}
    if params.get("SourceArn"):
        condition.setdefault("ArnLike", {})["AWS:SourceArn"] = params["SourceArn"]
    if params.get("SourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = params["SourceAccount"]
    if params.get("PrincipalOrgID"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = params["PrincipalOrgID"]
    if params.get("EventSourceToken"):
        condition.setdefault("StringEquals", {})["lambda:EventSourceToken"] = params["EventSourceToken"]
    if params.get("FunctionUrlAuthType"):
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = params["FunctionUrlAuthType"]
    if condition:
        statement["Condition"] = condition
    return statement


class SettingsApi:
    """Operations on a function's settings, over the shared function store."""

    def __init__(self, store: FunctionStore) -> None:
        self.store = store

    # ------------------------------------------------------------------ permissions
    def add_permission(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        if qualifier:
            self.store.resolve(state, qualifier)
        with self.store.lock:
            check_revision(state.policy_revision, p)
            if any(s["Sid"] == p["StatementId"] for s in state.policy_statements):
                raise conflict(
                    f"The statement id ({p['StatementId']}) provided already exists. Please provide a new statement "
                    "id, or remove the existing statement."
                )
            statement = _statement(state, p, qualifier)
            state.policy_statements.append(statement)
            state.policy_revision = str(uuid.uuid4())
        return {"Statement": json.dumps(statement)}

    def remove_permission(self, p: dict[str, Any]) -> None:
        state, _ = self.store.lookup_params(p)
        with self.store.lock:
            before = len(state.policy_statements)
            state.policy_statements = [s for s in state.policy_statements if s["Sid"] != p["StatementId"]]
            if len(state.policy_statements) == before:
                raise not_found(f"Statement {p['StatementId']} is not found in resource policy.")
            state.policy_revision = str(uuid.uuid4())

    def get_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup_params(p)
        with self.store.lock:
            if not state.policy_statements:
                raise not_found("The resource you requested does not exist.")
            policy = {
                "Version": "2012-10-17",
                "Id": "default",
                "Statement": copy.deepcopy(state.policy_statements),
            }
            return {"Policy": json.dumps(policy), "RevisionId": state.policy_revision}

    # ------------------------------------------------------------------ event invoke config
    def _validate_invoke_config(self, p: dict[str, Any]) -> None:
        # Ranges from https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html
        if "MaximumRetryAttempts" in p and not 0 <= int(p["MaximumRetryAttempts"]) <= 2:
            raise invalid("MaximumRetryAttempts must be between 0 and 2")
        if "MaximumEventAgeInSeconds" in p and not 60 <= int(p["MaximumEventAgeInSeconds"]) <= 21600:
            raise invalid("MaximumEventAgeInSeconds must be between 60 and 21600")
        for outcome, target in (p.get("DestinationConfig") or {}).items():
            destination = (target or {}).get("Destination")
            if destination is None:
                continue
            service = destination.split(":")[2] if destination.count(":") >= 5 else ""
            allowed = {"sqs", "sns", "lambda", "events"} | ({"s3"} if outcome == "OnFailure" else set())
            if service not in allowed:
                raise invalid(f"The destination ARN {destination} is invalid.")

    def _config_key(self, state: FunctionState, qualifier: str | None) -> str:
        if qualifier and qualifier != LATEST:
            self.store.resolve(state, qualifier)
        return qualifier or LATEST

    def _invoke_config_result(self, state: FunctionState, key: str) -> dict[str, Any]:
        config = copy.deepcopy(state.event_invoke_configs[key])
        config["FunctionArn"] = state.qualified_arn(key)
        return config

    def put_event_invoke_config(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        self._validate_invoke_config(p)
        key = self._config_key(state, qualifier)
        with self.store.lock:
            state.event_invoke_configs[key] = {
                "LastModified": time.time(),
                **{
                    k: p[k]
                    for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
                    if k in p
                },
            }
            return self._invoke_config_result(state, key)

    def update_event_invoke_config(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        self._validate_invoke_config(p)
        key = self._config_key(state, qualifier)
        with self.store.lock:
            config = state.event_invoke_configs.setdefault(key, {})
            for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
                if k in p:
                    config[k] = p[k]
            if "DestinationConfig" in p:
                merged = dict(config.get("DestinationConfig") or {})
                merged.update(p["DestinationConfig"])
                config["DestinationConfig"] = merged
            config["LastModified"] = time.time()
            return self._invoke_config_result(state, key)

    def get_event_invoke_config(self, p: dict[str, Any]) -> dict[str, Any]:
        state, qualifier = self.store.lookup_params(p)
        key = self._config_key(state, qualifier)
        with self.store.lock:
            if key not in state.event_invoke_configs:
                raise not_found(f"The function {state.qualified_arn(key)} doesn't have an EventInvokeConfig")
            return self._invoke_config_result(state, key)

    def delete_event_invoke_config(self, p: dict[str, Any]) -> None:
        state, qualifier = self.store.lookup_params(p)
        key = self._config_key(state, qualifier)
        with self.store.lock:
            if state.event_invoke_configs.pop(key, None) is None:
                raise not_found(f"The function {state.qualified_arn(key)} doesn't have an EventInvokeConfig")

    def list_event_invoke_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        with self.store.lock:
            return {
                "FunctionEventInvokeConfigs": [
                    self._invoke_config_result(state, k) for k in state.event_invoke_configs
                ]
            }

    # ------------------------------------------------------------------ concurrency and tags
    def put_concurrency(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        wanted = int(p["ReservedConcurrentExecutions"])
        with self.store.lock:
            others = sum(s.reserved_concurrency or 0 for s in self.store.functions.values() if s is not state)
            if others + wanted > ACCOUNT_CONCURRENCY - MIN_UNRESERVED:
                raise invalid(
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
                )
            state.reserved_concurrency = wanted
        return {"ReservedConcurrentExecutions": wanted}

    def get_concurrency(self, p: dict[str, Any]) -> dict[str, Any]:
        state, _ = self.store.lookup(p["FunctionName"])
        if state.reserved_concurrency is None:
            return {}
        return {"ReservedConcurrentExecutions": state.reserved_concurrency}

    def delete_concurrency(self, p: dict[str, Any]) -> None:
        state, _ = self.store.lookup(p["FunctionName"])
        with self.store.lock:
            state.reserved_concurrency = None

    def _tag_target(self, resource: str) -> FunctionState:
        state, _ = self.store.lookup(resource)
        return state

    def tag_resource(self, p: dict[str, Any]) -> None:
        state = self._tag_target(p["Resource"])
        with self.store.lock:
            state.tags.update(p.get("Tags") or {})

    def untag_resource(self, p: dict[str, Any]) -> None:
        state = self._tag_target(p["Resource"])
        with self.store.lock:
            for key in p.get("TagKeys") or []:
                state.tags.pop(key, None)

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        state = self._tag_target(p["Resource"])
        return {"Tags": dict(state.tags)}

    def get_account_settings(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            reserved = sum(s.reserved_concurrency or 0 for s in self.store.functions.values())
            count = len(self.store.functions)
            size = sum(int(s.latest.config.get("CodeSize", 0)) for s in self.store.functions.values())
        return {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": ACCOUNT_CONCURRENCY,
                "UnreservedConcurrentExecutions": ACCOUNT_CONCURRENCY - reserved,
            },
            "AccountUsage": {"TotalCodeSize": size, "FunctionCount": count},
        }
