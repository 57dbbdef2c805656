"""The CloudFormation query-protocol API: form-encoded ``Action=...`` requests, XML responses.

Requests are parsed with botocore's CloudFormation model (``iam.operations.identify``, the same
parser the gate uses to authorize them); responses are written from the operation's output shape,
so every element has the name and nesting botocore (and so boto3, SAM CLI and the AWS CLI)
expects: ``<XResponse><XResult>...</XResult><ResponseMetadata>...`` with lists as ``<member>``
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/Welcome.html).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import ListShape, MapShape, Shape, StructureShape

from sluice.local.cloudformation.backend import CloudFormationService, Credentials
from sluice.local.cloudformation.errors import CloudFormationError, validation_error
from sluice.local.cloudformation.models import ChangeSet, Stack, StackEvent, StackResource
from sluice.local.endpoint import StartResponse, WSGIEnviron
from sluice.local.iam import errors
from sluice.local.iam.operations import UnknownOperationError, identify, service_model

log = logging.getLogger(__name__)

SERVICE = "cloudformation"
XMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _xml(value: Any, shape: Shape) -> str:
    """``value`` rendered as the children of an element of ``shape`` (query protocol XML)."""
    if isinstance(shape, StructureShape):
        parts = []
        for name, member in shape.members.items():
            if name not in value or value[name] is None:
                continue
            tag = member.serialization.get("name", name)
            parts.append(f"<{tag}>{_xml(value[name], member)}</{tag}>")
        return "".join(parts)
    if isinstance(shape, ListShape):
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml(item, shape.member)}</{tag}>" for item in value)
    if isinstance(shape, MapShape):
        return "".join(
            f"<entry><key>{escape(str(k))}</key><value>{_xml(v, shape.value)}</value></entry>"
            for k, v in value.items()
        )
    if shape.type_name == "timestamp":
        return _iso(value) if isinstance(value, datetime) else escape(str(value))
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return escape(str(value))


def _stack_shape(stack: Stack) -> dict[str, Any]:
    declared = stack.template.get("Parameters") or {}
    shape: dict[str, Any] = {
        "StackId": stack.stack_id,
        "StackName": stack.name,
        "Description": stack.description,
        "Parameters": [
            {
                "ParameterKey": key,
                # NoEcho values are masked, as DescribeStacks masks them.
                "ParameterValue": "****"
                if str((declared.get(key) or {}).get("NoEcho", "false")).lower() == "true"
                else value,
            }
            for key, value in stack.parameters.items()
        ],
        "CreationTime": stack.created,
        "DeletionTime": stack.deleted,
        "LastUpdatedTime": stack.updated,
        "StackStatus": stack.status,
        "StackStatusReason": stack.status_reason,
        "DisableRollback": stack.disable_rollback,
        "NotificationARNs": [],
        "Capabilities": stack.capabilities,
        "Tags": stack.tags,
        "EnableTerminationProtection": False,
        "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
        "RollbackConfiguration": {},
    }
    if stack.status not in ("REVIEW_IN_PROGRESS",) and stack.outputs:
        shape["Outputs"] = [
            {
                "OutputKey": key,
                "OutputValue": value,
                **(
                    {"Description": stack.output_descriptions[key]}
                    if key in stack.output_descriptions
                    else {}
                ),
                **({"ExportName": stack.output_exports[key]} if key in stack.output_exports else {}),
            }
            for key, value in stack.outputs.items()
        ]
    return shape


def _event_shape(event: StackEvent) -> dict[str, Any]:
    return {
        "StackId": event.stack_id,
        "EventId": event.event_id,
        "StackName": event.stack_name,
        "LogicalResourceId": event.logical_id,
        "PhysicalResourceId": event.physical_id,
        "ResourceType": event.resource_type,
        "Timestamp": event.timestamp,
        "ResourceStatus": event.status,
        "ResourceStatusReason": event.reason,
    }


def _resource_shape(stack: Stack, resource: StackResource, *, detail: bool = False) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "LogicalResourceId": resource.logical_id,
        "PhysicalResourceId": resource.physical_id,
        "ResourceType": resource.resource_type,
        "ResourceStatus": resource.status,
        "ResourceStatusReason": resource.reason,
        "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"},
    }
    shape.update({"StackName": stack.name, "StackId": stack.stack_id})
    if detail:
        shape["LastUpdatedTimestamp"] = resource.updated
    else:
        shape["Timestamp"] = resource.updated
    return shape


def _summary_shape(resource: StackResource) -> dict[str, Any]:
    return {
        "LogicalResourceId": resource.logical_id,
        "PhysicalResourceId": resource.physical_id,
        "ResourceType": resource.resource_type,
        "LastUpdatedTimestamp": resource.updated,
        "ResourceStatus": resource.status,
        "ResourceStatusReason": resource.reason,
        "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"},
    }


def _change_set_shape(stack: Stack, change_set: ChangeSet) -> dict[str, Any]:
    return {
        "ChangeSetName": change_set.name,
        "ChangeSetId": change_set.change_set_id,
        "StackId": stack.stack_id,
        "StackName": stack.name,
        "Description": change_set.description,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in change_set.parameters.items()],
        "CreationTime": change_set.created,
        "ExecutionStatus": change_set.execution_status,
        "Status": change_set.status,
        "StatusReason": change_set.status_reason,
        "NotificationARNs": [],
        "RollbackConfiguration": {},
        "Capabilities": change_set.capabilities,
        "Tags": change_set.tags,
        "Changes": change_set.changes,
        "IncludeNestedStacks": False,
    }


class CloudFormationApi:
    """WSGI app answering the CloudFormation operations ``sam deploy`` and the AWS CLI use."""

    def __init__(self, service: CloudFormationService) -> None:
        self.service = service
        self._operations: dict[str, Callable[[dict[str, Any], Credentials | None], dict[str, Any]]] = {
            "CreateStack": self._create_stack,
            "UpdateStack": self._update_stack,
            "DeleteStack": self._delete_stack,
            "DescribeStacks": self._describe_stacks,
            "ListStacks": self._list_stacks,
            "DescribeStackEvents": self._describe_stack_events,
            "DescribeStackResource": self._describe_stack_resource,
            "DescribeStackResources": self._describe_stack_resources,
            "ListStackResources": self._list_stack_resources,
            "GetTemplate": self._get_template,
            "GetTemplateSummary": lambda p, c: self.service.template_summary(p, c),
            "ValidateTemplate": self._validate_template,
            "CreateChangeSet": self._create_change_set,
            "DescribeChangeSet": self._describe_change_set,
            "ExecuteChangeSet": self._execute_change_set,
            "DeleteChangeSet": self._delete_change_set,
            "ListChangeSets": self._list_change_sets,
        }

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        body = environ["wsgi.input"].read()
        rid = errors.request_id(SERVICE)
        try:
            try:
                operation = identify(
                    SERVICE,
                    method,
                    str(environ.get("PATH_INFO", "/")),
                    str(environ.get("QUERY_STRING", "")),
                    headers,
                    body,
                )
            except UnknownOperationError:
                raise CloudFormationError(
                    "InvalidAction", "The action or operation requested is invalid."
                ) from None
            handler = self._operations.get(operation.name)
            if handler is None:
                raise CloudFormationError(
                    "InvalidAction", f"{operation.name} is not supported by the local cloud's CloudFormation."
                )
            identity = environ.get("sluice.identity")
            credentials: Credentials | None = (
                (identity.access_key, identity.secret_key, identity.session_token)
                if identity is not None
                else None
            )
            result = handler(operation.params, credentials)
        except CloudFormationError as error:
            status, error_headers, error_body = errors.error_response(
                SERVICE,
                method,
                error.code,
                error.message,
                error.status,
                request_headers=headers,
                request_id_value=rid,
            )
            start_response(f"{status} Error", error_headers)
            return [error_body]
        output = service_model(SERVICE).operation_model(operation.name).output_shape
        inner = _xml(result, output) if output is not None else ""
        name = operation.name
        xml = (
            f'<{name}Response xmlns="{XMLNS}"><{name}Result>{inner}</{name}Result>'
            f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{name}Response>"
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid), ("Content-Length", str(len(xml)))],
        )
        return [xml]

    # -- operations --------------------------------------------------------------------

    def _create_stack(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        return {"StackId": self.service.create_stack(params, credentials)}

    def _update_stack(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        return {"StackId": self.service.update_stack(params, credentials)}

    def _delete_stack(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        self.service.delete_stack(params, credentials)
        return {}

    def _describe_stacks(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        return {"Stacks": [_stack_shape(s) for s in self.service.describe_stacks(params.get("StackName"))]}

    def _list_stacks(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        stacks = self.service.list_stacks(list(params.get("StackStatusFilter") or []))
        return {
            "StackSummaries": [
                {
                    "StackId": s.stack_id,
                    "StackName": s.name,
                    "TemplateDescription": s.description,
                    "CreationTime": s.created,
                    "LastUpdatedTime": s.updated,
                    "DeletionTime": s.deleted,
                    "StackStatus": s.status,
                    "StackStatusReason": s.status_reason,
                    "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
                }
                for s in stacks
            ]
        }

    def _describe_stack_events(
        self, params: dict[str, Any], credentials: Credentials | None
    ) -> dict[str, Any]:
        stack = self.service.stack(str(params.get("StackName") or ""))
        return {"StackEvents": [_event_shape(e) for e in reversed(list(stack.events))]}

    def _describe_stack_resource(
        self, params: dict[str, Any], credentials: Credentials | None
    ) -> dict[str, Any]:
        stack = self.service.stack(str(params["StackName"]))
        lid = str(params["LogicalResourceId"])
        resource = stack.resources.get(lid)
        if resource is None:
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResource.html
            raise validation_error(f"Resource {lid} does not exist for stack {stack.name}")
        detail = _resource_shape(stack, resource, detail=True)
        detail["Metadata"] = _metadata(stack, lid)
        return {"StackResourceDetail": detail}

    def _describe_stack_resources(
        self, params: dict[str, Any], credentials: Credentials | None
    ) -> dict[str, Any]:
        name = params.get("StackName")
        physical = params.get("PhysicalResourceId")
        stack: Stack | None = None
        if name:
            stack = self.service.stack(str(name))
        elif physical:
            stack = next(
                (
                    s
                    for s in self.service.describe_stacks(None)
                    if any(r.physical_id == physical for r in s.resources.values())
                ),
                None,
            )
            if stack is None:
                raise validation_error(f"Stack for {physical} does not exist")
        else:
            raise validation_error("Either StackName or PhysicalResourceId must be specified.")
        lid = params.get("LogicalResourceId")
        resources = [r for r in stack.resources.values() if not lid or r.logical_id == lid]
        if physical:
            resources = [r for r in resources if r.physical_id == physical]
        return {"StackResources": [_resource_shape(stack, r) for r in resources]}

    def _list_stack_resources(
        self, params: dict[str, Any], credentials: Credentials | None
    ) -> dict[str, Any]:
        stack = self.service.stack(str(params["StackName"]))
        return {"StackResourceSummaries": [_summary_shape(r) for r in stack.resources.values()]}

    def _get_template(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        stage = params.get("TemplateStage") or "Original"
        if params.get("ChangeSetName"):
            stack, change_set = self.service.change_set(str(params["ChangeSetName"]), params.get("StackName"))
            body = change_set.template_body
        else:
            stack = self.service.stack(str(params.get("StackName") or ""))
            body = stack.template_body
        stages = ["Original"]
        if stage == "Processed" and stack.processed is not None:
            body = json.dumps(stack.processed)
            stages.append("Processed")
        elif stack.processed is not None:
            stages.append("Processed")
        return {"TemplateBody": body, "StagesAvailable": stages}

    def _validate_template(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        _, template = self.service.template_from(params, credentials)
        declared = template.get("Parameters") or {}
        summary = self.service.template_summary(params, credentials)
        result: dict[str, Any] = {
            "Parameters": [
                {
                    "ParameterKey": key,
                    "NoEcho": str((spec or {}).get("NoEcho", "false")).lower() == "true",
                    **({"DefaultValue": str((spec or {})["Default"])} if "Default" in (spec or {}) else {}),
                    **({"Description": spec["Description"]} if "Description" in (spec or {}) else {}),
                }
                for key, spec in declared.items()
            ],
            "DeclaredTransforms": summary.get("DeclaredTransforms", []),
        }
        if "Description" in template:
            result["Description"] = template["Description"]
        if "Capabilities" in summary:
            result["Capabilities"] = summary["Capabilities"]
            result["CapabilitiesReason"] = summary["CapabilitiesReason"]
        return result

    def _create_change_set(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        change_set_id, stack_id = self.service.create_change_set(params, credentials)
        return {"Id": change_set_id, "StackId": stack_id}

    def _describe_change_set(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        stack, change_set = self.service.change_set(str(params["ChangeSetName"]), params.get("StackName"))
        return _change_set_shape(stack, change_set)

    def _execute_change_set(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        self.service.execute_change_set(params, credentials)
        return {}

    def _delete_change_set(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        self.service.delete_change_set(params)
        return {}

    def _list_change_sets(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        stack = self.service.stack(str(params["StackName"]))
        return {
            "Summaries": [
                {
                    "StackId": stack.stack_id,
                    "StackName": stack.name,
                    "ChangeSetId": c.change_set_id,
                    "ChangeSetName": c.name,
                    "ExecutionStatus": c.execution_status,
                    "Status": c.status,
                    "StatusReason": c.status_reason,
                    "CreationTime": c.created,
                    "Description": c.description,
                    "IncludeNestedStacks": False,
                }
                for c in stack.change_sets.values()
            ]
        }


def _metadata(stack: Stack, logical_id: str) -> str | None:
    resource = ((stack.processed or stack.template).get("Resources") or {}).get(logical_id)
    if isinstance(resource, dict) and "Metadata" in resource:
        return json.dumps(resource["Metadata"])
    return None
