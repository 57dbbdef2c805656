"""`CloudFormationService`: stacks and change sets, built and torn down by Sluice's deployer.

Like CloudFormation, a request that starts work (CreateStack, UpdateStack, DeleteStack,
ExecuteChangeSet) answers at once and the work runs in the background; clients follow it with
DescribeStacks and DescribeStackEvents (the waiters of boto3, `sam deploy` and
`aws cloudformation deploy` do). Resources are created with the caller's credentials, so local
IAM authorizes each call as it would authorize the caller (CloudFormation without a service role:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html).

Differences from AWS, chosen for a local cloud (docs/aws-behaviour.md lists them):

* An update keeps every resource whose type and resolved properties did not change and replaces
  every one that did (AWS updates many properties in place): the old resource is deleted first,
  since names CloudFormation generates are stable locally (``<stack>-<logicalId>-<hash>``), then
  the new one is created; resources the template dropped are deleted at the end. A failed update
  deletes what it made and builds the previous template again (UPDATE_ROLLBACK_COMPLETE).
* Deleting a stack empties its buckets before deleting them (AWS fails on a non-empty bucket);
  ``DeletionPolicy: Retain`` resources are kept (DELETE_SKIPPED), as on AWS.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from sluice.local.cloudformation.errors import (
    CloudFormationError,
    already_exists,
    change_set_not_found,
    insufficient_capabilities,
    stack_not_found,
    validation_error,
)
from sluice.local.cloudformation.models import ChangeSet, Stack, StackResource, StackStore, now
from sluice.local.deploy.cfnyaml import loads_template
from sluice.local.deploy.creators.base import CreateContext
from sluice.local.deploy.deleters import delete_resource
from sluice.local.deploy.deployer import deploy_template, forget_stack
from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.model import Created, DeployedStack
from sluice.local.deploy.parameters import partition_for, pseudo_parameters, resolve_parameters
from sluice.local.deploy.sam import apply_transforms, transforms_of

log = logging.getLogger(__name__)

Credentials = tuple[str, str, str | None]

# IAM resource types that need CAPABILITY_IAM, and the property that, when set, names the
# resource and so needs CAPABILITY_NAMED_IAM instead.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html (Capabilities)
_IAM_TYPES: dict[str, str | None] = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}
NO_CHANGES = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)
NO_UPDATES = "No updates are to be performed."
_MAX_TEMPLATE_BODY = (
    51_200  # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
)
_RETAINED = {"Retain", "RetainExceptOnCreate", "Snapshot"}
_LIVE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


class CloudFormationService:
    """Every CloudFormation operation the local cloud answers (``api.py`` turns requests into calls)."""

    def __init__(self, *, endpoint_url: str, region: str, account_id: str, project_root: Path) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.account_id = account_id
        self.project_root = Path(project_root).resolve()
        self.store = StackStore(region, account_id)
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Wait for background stack operations; True if none is still running."""
        for thread in list(self._threads):
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]
        return not self._threads

    def _background(self, name: str, work: Callable[[], None]) -> None:
        thread = threading.Thread(target=work, name=f"sluice-cfn-{name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def record(self, deployed: DeployedStack, template: dict[str, Any]) -> Stack:
        """Register a stack the deployer made directly (`sluice local up`) as CREATE_COMPLETE."""
        with self.store.lock:
            if self.store.find(deployed.stack_name) is not None:
                raise already_exists(deployed.stack_name)
            stack = Stack(
                stack_id=str(
                    pseudo_parameters(self.region, self.account_id, deployed.stack_name)["AWS::StackId"]
                ),
                name=deployed.stack_name,
                status="CREATE_IN_PROGRESS",
                template_body=json.dumps(template),
                template=template,
                processed=deployed.template,
                parameters={k: _text(v) for k, v in deployed.parameters.items()},
                description=template.get("Description"),
            )
            self.store.add(stack)
        stack.set_status("CREATE_IN_PROGRESS", "User Initiated")
        for lid, physical in deployed.resources.items():
            rtype = deployed.resource_types[lid]
            stack.resources[lid] = StackResource(
                lid,
                rtype,
                physical,
                "CREATE_COMPLETE",
                properties=deployed.properties.get(lid, {}),
                attributes=dict(deployed.attributes.get(lid, {})),
            )
            stack.add_event(lid, rtype, "CREATE_COMPLETE", physical)
        stack.deployed = deployed
        self._set_outputs(stack, deployed)
        stack.set_status("CREATE_COMPLETE")
        return stack

    # -- templates ---------------------------------------------------------------------

    def _read_url(self, url: str, credentials: Credentials | None) -> str:
        parsed = urllib.parse.urlparse(url)
        host = parsed.hostname or ""
        path = urllib.parse.unquote(parsed.path.lstrip("/"))
        if ".s3" in host and host.endswith(".amazonaws.com") and not host.startswith("s3"):
            bucket, key = host.split(".s3", 1)[0], path  # virtual-hosted style
        else:
            bucket, _, key = path.partition("/")  # path style (what SAM CLI and the AWS CLI send)
        if not bucket or not key:
            raise validation_error("TemplateURL must be a supported URL.")
        version = urllib.parse.parse_qs(parsed.query).get("versionId", [None])[0]
        s3 = self._session(credentials).client("s3", endpoint_url=self.endpoint_url)
        try:
            extra = {"VersionId": version} if version else {}
            body = s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        except Exception as error:
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
            raise validation_error(
                f"S3 error: Unable to get object {key} from bucket {bucket}: {error}"
            ) from None
        return str(body.decode("utf-8"))

    def template_from(
        self, params: dict[str, Any], credentials: Credentials | None
    ) -> tuple[str, dict[str, Any]]:
        """(text, parsed) of the template a request gives as TemplateBody or TemplateURL."""
        body, url = params.get("TemplateBody"), params.get("TemplateURL")
        if body is not None and url is not None:
            raise validation_error("Specify exactly one of TemplateBody or TemplateUrl.")
        if body is None and url is None:
            raise validation_error("Either Template URL or Template Body must be specified.")
        if body is not None and len(str(body).encode()) > _MAX_TEMPLATE_BODY:
            raise validation_error(
                f"1 validation error detected: Value '{str(body)[:20]}...' at 'templateBody' failed to satisfy "
                f"constraint: Member must have length less than or equal to {_MAX_TEMPLATE_BODY}"
            )
        text = str(body) if body is not None else self._read_url(str(url), credentials)
        try:
            return text, loads_template(text)
        except DeployError as error:
            reason = error.reason
            if "Template format error" not in reason:
                reason = f"Template format error: {reason}"
            raise validation_error(reason) from None

    def _parameters(
        self, template: dict[str, Any], given: list[dict[str, Any]], previous: Stack | None
    ) -> dict[str, str]:
        declared = template.get("Parameters") or {}
        values: dict[str, str] = {}
        for item in given:
            key = str(item.get("ParameterKey", ""))
            if item.get("UsePreviousValue"):
                if previous is None or key not in previous.parameters:
                    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html
                    raise validation_error(
                        f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for non-existent parameter key {key}"
                    )
                values[key] = previous.parameters[key]
            elif "ParameterValue" in item:
                values[key] = str(item["ParameterValue"])
        try:
            # Checked now, as CloudFormation checks parameters before it accepts the request;
            # SSM-typed parameters are read when the stack is built.
            resolved = resolve_parameters(declared, values, lambda name: name)
        except DeployError as error:
            raise validation_error(error.reason) from None
        return {k: _text(v) for k, v in resolved.items() if k in values or k in declared}

    def _process(
        self, template: dict[str, Any], parameters: dict[str, str], stack_name: str
    ) -> dict[str, Any]:
        """The template after transforms (the SAM one), as CloudFormation processes it."""
        values: dict[str, Any] = {
            k: v
            for k, v in pseudo_parameters(self.region, self.account_id, stack_name).items()
            if isinstance(v, str)
        }
        values.update(parameters)
        try:
            return apply_transforms(
                template, base_dir=self.project_root, region=self.region, parameter_values=values
            )
        except DeployError as error:
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/transform-aws-serverless.html
            raise validation_error(
                f"Transform AWS::Serverless-2016-10-31 failed with: {error.reason}"
            ) from None

    @staticmethod
    def _missing_capabilities(
        template: dict[str, Any], processed: dict[str, Any], given: list[str], *, expand: bool
    ) -> list[str]:
        """Capabilities the template needs that the request did not acknowledge."""
        needed: list[str] = []
        if expand and transforms_of(template):
            needed.append("CAPABILITY_AUTO_EXPAND")
        named = unnamed = False
        for resource in (processed.get("Resources") or {}).values():
            rtype = resource.get("Type") if isinstance(resource, dict) else None
            if rtype in _IAM_TYPES:
                name_prop = _IAM_TYPES[rtype]
                if name_prop and name_prop in (resource.get("Properties") or {}):
                    named = True
                else:
                    unnamed = True
        if named and "CAPABILITY_NAMED_IAM" not in given:
            needed.append("CAPABILITY_NAMED_IAM")
        elif unnamed and not {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} & set(given):
            needed.append("CAPABILITY_IAM")
        return [c for c in needed if c not in given]

    # -- stacks ------------------------------------------------------------------------

    def _stack(self, name: str, *, deleted: bool = False) -> Stack:
        stack = self.store.find(name, deleted=deleted)
        if stack is None:
            raise stack_not_found(name)
        return stack

    def create_stack(self, params: dict[str, Any], credentials: Credentials | None) -> str:
        name = str(params["StackName"])
        text, template = self.template_from(params, credentials)
        parameters = self._parameters(template, params.get("Parameters") or [], None)
        capabilities = list(params.get("Capabilities") or [])
        processed = self._process(template, parameters, name)
        missing = self._missing_capabilities(template, processed, capabilities, expand=True)
        if missing:
            raise insufficient_capabilities(missing)
        with self.store.lock:
            if self.store.find(name) is not None:
                raise already_exists(name)
            stack = Stack(
                stack_id=self.store.new_stack_id(name),
                name=name,
                status="CREATE_IN_PROGRESS",
                template_body=text,
                template=template,
                processed=processed,
                parameters=parameters,
                capabilities=capabilities,
                tags=list(params.get("Tags") or []),
                disable_rollback=bool(params.get("DisableRollback"))
                or params.get("OnFailure") == "DO_NOTHING",
                description=template.get("Description"),
            )
            self.store.add(stack)
            stack.set_status("CREATE_IN_PROGRESS", "User Initiated")
        delete_on_failure = params.get("OnFailure") == "DELETE"
        self._background(name, lambda: self._create(stack, credentials, delete_on_failure=delete_on_failure))
        return stack.stack_id

    def update_stack(self, params: dict[str, Any], credentials: Credentials | None) -> str:
        stack = self._stack(str(params["StackName"]))
        self._check_updatable(stack)
        if params.get("UsePreviousTemplate"):
            text, template = stack.template_body, stack.template
        else:
            text, template = self.template_from(params, credentials)
        parameters = self._parameters(template, params.get("Parameters") or [], stack)
        capabilities = list(params.get("Capabilities") or [])
        processed = self._process(template, parameters, stack.name)
        missing = self._missing_capabilities(template, processed, capabilities, expand=True)
        if missing:
            raise insufficient_capabilities(missing)
        if not _changes(stack, processed, parameters) and _same_tags(stack, params):
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html
            raise validation_error(NO_UPDATES)
        self._start_update(stack, text, template, processed, parameters, capabilities, params, credentials)
        return stack.stack_id

    def _check_updatable(self, stack: Stack) -> None:
        if stack.in_progress or stack.status in (
            "ROLLBACK_COMPLETE",
            "ROLLBACK_FAILED",
            "CREATE_FAILED",
            "DELETE_FAILED",
        ):
            raise validation_error(
                f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated."
            )
        if stack.status == "REVIEW_IN_PROGRESS":
            raise validation_error(
                f"Stack:{stack.stack_id} is in REVIEW_IN_PROGRESS state and can not be updated."
            )

    def _start_update(
        self,
        stack: Stack,
        text: str,
        template: dict[str, Any],
        processed: dict[str, Any],
        parameters: dict[str, str],
        capabilities: list[str],
        params: dict[str, Any],
        credentials: Credentials | None,
    ) -> None:
        previous = (stack.template_body, stack.template, stack.processed, dict(stack.parameters))
        with self.store.lock:
            stack.template_body, stack.template, stack.processed = text, template, processed
            stack.parameters, stack.capabilities = parameters, capabilities
            if "Tags" in params:
                stack.tags = list(params.get("Tags") or [])
            stack.description = template.get("Description")
            stack.updated = now()
            stack.set_status("UPDATE_IN_PROGRESS", "User Initiated")
        self._background(stack.name, lambda: self._update(stack, previous, credentials))

    def delete_stack(self, params: dict[str, Any], credentials: Credentials | None) -> None:
        stack = self.store.find(str(params["StackName"]))
        if stack is None:
            return  # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html: no error
        retain = set(params.get("RetainResources") or [])
        with self.store.lock:
            if stack.status == "DELETE_IN_PROGRESS":
                return
            if stack.in_progress:
                # ND: AWS can cancel a create in progress; the local cloud finishes it first.
                raise validation_error(
                    f"Stack [{stack.name}] cannot be deleted while in status {stack.status}"
                )
            if stack.status == "REVIEW_IN_PROGRESS":
                stack.set_status("DELETE_COMPLETE")
                stack.deleted = now()
                return
            stack.set_status("DELETE_IN_PROGRESS", "User Initiated")
        self._background(stack.name, lambda: self._delete(stack, credentials, retain))

    # -- background work ---------------------------------------------------------------

    def _context(self, stack: Stack, credentials: Credentials | None) -> CreateContext:
        partition, url_suffix = partition_for(self.region)
        return CreateContext(
            endpoint_url=self.endpoint_url,
            region=self.region,
            account_id=self.account_id,
            stack_name=stack.name,
            partition=partition,
            url_suffix=url_suffix,
            base_dir=self.project_root,
            credentials=credentials,
        )

    def _build(
        self,
        stack: Stack,
        credentials: Credentials | None,
        verb: str,
        *,
        touched: set[str] | None = None,
        set_aside: dict[str, StackResource] | None = None,
    ) -> None:
        """Create the stack's template, keeping the unchanged resources it already has (an update);
        raises DeployError on the first failure. ``touched`` collects the logical ids created or
        replaced; ``set_aside`` the replaced resources kept by ``UpdateReplacePolicy: Retain``."""
        existing = {
            lid: (r.resource_type, r.properties, Created(r.physical_id, dict(r.attributes)))
            for lid, r in stack.resources.items()
            if r.status in _LIVE and r.physical_id
        }
        policies = _policies(stack.processed, "UpdateReplacePolicy")
        ctx = self._context(stack, credentials)

        def replace(lid: str) -> None:
            old = stack.resources[lid]
            stack.add_event(
                lid,
                old.resource_type,
                "UPDATE_IN_PROGRESS",
                old.physical_id,
                "Requested update requires the creation of a new physical resource; hence creating one.",
            )
            if policies.get(lid) in _RETAINED:
                if set_aside is not None:
                    set_aside[lid] = dataclasses.replace(old)
            else:
                delete_resource(ctx, old.resource_type, old.physical_id, old.properties)
            old.physical_id = ""

        def progress(
            lid: str, rtype: str, status: str, created: Created | None, props: dict[str, Any]
        ) -> None:
            with self.store.lock:
                resource = stack.resources.get(lid)
                replacing = lid in existing
                if resource is None or resource.status.startswith("DELETE"):
                    resource = StackResource(lid, rtype)
                    stack.resources.pop(lid, None)
                    stack.resources[lid] = resource  # keep creation order
                if replacing:
                    status = status.replace("CREATE", "UPDATE")
                if touched is not None:
                    touched.add(lid)
                resource.status, resource.updated, resource.properties = status, now(), props
                if created is not None:
                    resource.physical_id, resource.attributes = created.physical_id, dict(created.attributes)
                reason = "Resource creation Initiated" if created is None and not replacing else None
                stack.add_event(lid, rtype, status, resource.physical_id, reason)

        deployed = deploy_template(
            Path(f"{stack.name}.template"),
            endpoint_url=self.endpoint_url,
            region=self.region,
            account_id=self.account_id,
            stack_name=stack.name,
            parameter_overrides=dict(stack.parameters),
            project_root=self.project_root,
            source=stack.template,
            on_resource=progress,
            stack_id=stack.stack_id,
            credentials=credentials,
            existing=existing,
            replace=replace,
        )
        stack.deployed = deployed
        stack.processed = deployed.template
        self._set_outputs(stack, deployed)
        log.info("stack %s: %s", stack.name, verb)

    def _fail_resource(self, stack: Stack, error: Exception) -> str:
        where = error.where if isinstance(error, DeployError) else None
        reason = error.reason if isinstance(error, DeployError) else str(error)
        with self.store.lock:
            resource = stack.resources.get(where or "")
            if resource is not None and resource.status.endswith("_IN_PROGRESS"):
                failed = resource.status.replace("IN_PROGRESS", "FAILED")
                resource.status, resource.reason = failed, reason
                stack.add_event(
                    resource.logical_id, resource.resource_type, failed, resource.physical_id, reason
                )
                verb = "create" if failed == "CREATE_FAILED" else "update"
                return f"The following resource(s) failed to {verb}: [{resource.logical_id}]. "
        return f"{where + ': ' if where else ''}{reason}. "

    def _create(self, stack: Stack, credentials: Credentials | None, *, delete_on_failure: bool) -> None:
        try:
            self._build(stack, credentials, "created")
        except Exception as error:
            log.info("creating stack %s failed: %s", stack.name, error)
            reason = self._fail_resource(stack, error)
            if stack.disable_rollback:
                stack.set_status("CREATE_FAILED", reason.strip())
                return
            stack.set_status("ROLLBACK_IN_PROGRESS", reason + "Rollback requested by user.")
            failed = self._teardown(stack, credentials, set())
            stack.set_status("ROLLBACK_FAILED" if failed else "ROLLBACK_COMPLETE")
            if delete_on_failure and not failed:
                stack.set_status("DELETE_COMPLETE")
                stack.deleted = now()
            return
        stack.set_status("CREATE_COMPLETE")

    def _update(
        self,
        stack: Stack,
        previous: tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, str]],
        credentials: Credentials | None,
    ) -> None:
        """Keep what did not change, replace what did, then delete what the template dropped; on a
        failure, delete what the update made and build the previous template again."""
        before = list(stack.resources)
        old_processed = previous[2]
        touched: set[str] = set()
        set_aside: dict[str, StackResource] = {}
        try:
            self._build(stack, credentials, "updated", touched=touched, set_aside=set_aside)
        except Exception as error:
            log.info("updating stack %s failed: %s", stack.name, error)
            reason = self._fail_resource(stack, error)
            stack.set_status("UPDATE_ROLLBACK_IN_PROGRESS", reason.strip())
            self._teardown(stack, credentials, set(), only=touched)
            stack.template_body, stack.template, stack.processed, stack.parameters = previous
            for lid, resource in set_aside.items():
                stack.resources[lid] = resource
            try:
                self._build(stack, credentials, "rolled back")
            except Exception as rollback_error:
                stack.set_status("UPDATE_ROLLBACK_FAILED", str(rollback_error))
                return
            stack.set_status("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
            stack.set_status("UPDATE_ROLLBACK_COMPLETE")
            return
        stack.set_status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        kept = stack.deployed.resources if stack.deployed is not None else {}
        removed = {lid for lid in before if lid not in kept}
        self._teardown(stack, credentials, set(), only=removed, template=old_processed)
        stack.set_status("UPDATE_COMPLETE")

    def _delete(self, stack: Stack, credentials: Credentials | None, retain: set[str]) -> None:
        failed = self._teardown(stack, credentials, retain)
        if failed:
            stack.set_status("DELETE_FAILED", f"The following resource(s) failed to delete: {failed}. ")
            return
        forget_stack(stack.name)
        stack.deleted = now()
        stack.set_status("DELETE_COMPLETE")

    def _teardown(
        self,
        stack: Stack,
        credentials: Credentials | None,
        retain: set[str],
        *,
        only: set[str] | None = None,
        template: dict[str, Any] | None = None,
    ) -> list[str]:
        """Delete the stack's resources (or ``only`` those), newest first; the logical ids that
        failed to delete. ``DeletionPolicy`` comes from ``template`` (the stack's by default)."""
        ctx = self._context(stack, credentials)
        failed: list[str] = []
        policies = _policies(template if template is not None else stack.processed, "DeletionPolicy")
        for resource in reversed(list(stack.resources.values())):
            lid, rtype = resource.logical_id, resource.resource_type
            if only is not None and lid not in only:
                continue
            if resource.status in ("DELETE_COMPLETE", "DELETE_SKIPPED"):
                continue
            if not resource.physical_id or resource.status in ("CREATE_FAILED", "UPDATE_FAILED"):
                resource.status = "DELETE_COMPLETE"
                stack.add_event(lid, rtype, "DELETE_COMPLETE", resource.physical_id)
                continue
            if lid in retain or policies.get(lid) in _RETAINED:
                resource.status = "DELETE_SKIPPED"
                stack.add_event(lid, rtype, "DELETE_SKIPPED", resource.physical_id)
                continue
            stack.add_event(lid, rtype, "DELETE_IN_PROGRESS", resource.physical_id)
            try:
                deleted = delete_resource(ctx, rtype, resource.physical_id, resource.properties)
            except Exception as error:
                log.info("deleting %s (%s) failed: %s", lid, rtype, error)
                resource.status, resource.reason = "DELETE_FAILED", str(error)
                stack.add_event(lid, rtype, "DELETE_FAILED", resource.physical_id, str(error))
                failed.append(lid)
                continue
            resource.status = "DELETE_COMPLETE" if deleted else "DELETE_SKIPPED"
            reason = None if deleted else f"the local cloud has no way to delete {rtype}; left in place"
            stack.add_event(lid, rtype, resource.status, resource.physical_id, reason)
        with self.store.lock:
            for lid in [lid for lid, r in stack.resources.items() if r.status.startswith("DELETE_")]:
                if stack.resources[lid].status != "DELETE_FAILED":
                    del stack.resources[lid]
        return failed

    def _set_outputs(self, stack: Stack, deployed: DeployedStack) -> None:
        declared = (deployed.template.get("Outputs") or {}) if deployed.template else {}
        stack.outputs = dict(deployed.outputs)
        stack.output_descriptions = {
            k: str(v["Description"])
            for k, v in declared.items()
            if isinstance(v, dict) and "Description" in v
        }
        exports: dict[str, str] = {}
        for key, output in declared.items():
            export = output.get("Export") if isinstance(output, dict) else None
            if isinstance(export, dict) and isinstance(export.get("Name"), str):
                exports[key] = export["Name"]
        stack.output_exports = exports

    # -- change sets ---------------------------------------------------------------------

    def create_change_set(self, params: dict[str, Any], credentials: Credentials | None) -> tuple[str, str]:
        name = str(params["StackName"])
        change_set_name = str(params["ChangeSetName"])
        kind = str(params.get("ChangeSetType") or "UPDATE")
        text, template = self.template_from(
            {k: v for k, v in params.items() if k in ("TemplateBody", "TemplateURL")}
            if not params.get("UsePreviousTemplate")
            else {"TemplateBody": self._stack(name).template_body},
            credentials,
        )
        with self.store.lock:
            stack = self.store.find(name)
            if kind == "CREATE":
                if stack is not None and stack.status != "REVIEW_IN_PROGRESS":
                    raise already_exists(name)
                if stack is None:
                    stack = Stack(
                        stack_id=self.store.new_stack_id(name),
                        name=name,
                        status="REVIEW_IN_PROGRESS",
                        template_body=text,
                        template=template,
                    )
                    self.store.add(stack)
                    stack.set_status("REVIEW_IN_PROGRESS", "User Initiated")
            elif kind == "UPDATE":
                if stack is None or stack.status == "REVIEW_IN_PROGRESS":
                    raise validation_error(f"Stack [{name}] does not exist")
                self._check_updatable(stack)
            else:
                raise validation_error(f"ChangeSetType {kind} is not supported by the local cloud")
            if change_set_name in {c.name for c in stack.change_sets.values()}:
                raise CloudFormationError(
                    "AlreadyExistsException",
                    f"ChangeSet {change_set_name} cannot be created due to a name conflict.",
                )
            parameters = self._parameters(
                template, params.get("Parameters") or [], stack if kind == "UPDATE" else None
            )
            change_set = ChangeSet(
                change_set_id=self.store.new_change_set_id(change_set_name),
                name=change_set_name,
                stack_id=stack.stack_id,
                stack_name=stack.name,
                change_set_type=kind,
                template_body=text,
                template=template,
                parameters=parameters,
                capabilities=list(params.get("Capabilities") or []),
                tags=list(params.get("Tags") or stack.tags),
                description=params.get("Description"),
            )
            stack.change_sets[change_set.change_set_id] = change_set
        self._background(change_set_name, lambda: self._compute_changes(stack, change_set))
        return change_set.change_set_id, stack.stack_id

    def _compute_changes(self, stack: Stack, change_set: ChangeSet) -> None:
        change_set.status = "CREATE_IN_PROGRESS"
        try:
            processed = self._process(change_set.template, change_set.parameters, stack.name)
            # Change sets never need CAPABILITY_AUTO_EXPAND for the transform they show expanded.
            missing = self._missing_capabilities(
                change_set.template, processed, change_set.capabilities, expand=False
            )
            if missing:
                raise insufficient_capabilities(missing)
        except CloudFormationError as error:
            change_set.status, change_set.status_reason = "FAILED", error.message
            return
        if change_set.change_set_type == "CREATE":
            changes = [_change("Add", lid, r) for lid, r in (processed.get("Resources") or {}).items()]
        else:
            changes = _changes(stack, processed, change_set.parameters)
            if not changes and change_set.tags == stack.tags:
                change_set.status, change_set.status_reason = "FAILED", NO_CHANGES
                return
        change_set.changes = changes
        change_set.status, change_set.execution_status = "CREATE_COMPLETE", "AVAILABLE"

    def change_set(self, name: str, stack_name: str | None) -> tuple[Stack, ChangeSet]:
        with self.store.lock:
            if name.startswith("arn:"):
                for stack in reversed(self.store.stacks):
                    if name in stack.change_sets:
                        return stack, stack.change_sets[name]
                raise change_set_not_found(name)
            if not stack_name:
                raise validation_error(
                    "StackName must be specified if ChangeSetName is not specified as an ARN."
                )
            named = self.store.find(stack_name)
            if named is None:
                raise change_set_not_found(name)
            for change_set in named.change_sets.values():
                if change_set.name == name:
                    return named, change_set
        raise change_set_not_found(name)

    def execute_change_set(self, params: dict[str, Any], credentials: Credentials | None) -> None:
        stack, change_set = self.change_set(str(params["ChangeSetName"]), params.get("StackName"))
        if change_set.execution_status != "AVAILABLE":
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html
            raise CloudFormationError(
                "InvalidChangeSetStatus",
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current status of [{change_set.status}]",
            )
        processed = self._process(change_set.template, change_set.parameters, stack.name)
        with self.store.lock:
            change_set.execution_status = "EXECUTE_COMPLETE"
            # Executing a change set deletes the stack's other change sets.
            stack.change_sets = {change_set.change_set_id: change_set}
            if "DisableRollback" in params:
                stack.disable_rollback = bool(params["DisableRollback"])
        if change_set.change_set_type == "CREATE":
            with self.store.lock:
                stack.template_body, stack.template, stack.processed = (
                    change_set.template_body,
                    change_set.template,
                    processed,
                )
                stack.parameters, stack.capabilities = change_set.parameters, change_set.capabilities
                stack.tags, stack.description = change_set.tags, change_set.template.get("Description")
                stack.created = now()
                stack.set_status("CREATE_IN_PROGRESS", "User Initiated")
            self._background(stack.name, lambda: self._create(stack, credentials, delete_on_failure=False))
            return
        self._check_updatable(stack)
        self._start_update(
            stack,
            change_set.template_body,
            change_set.template,
            processed,
            change_set.parameters,
            change_set.capabilities,
            {"Tags": change_set.tags},
            credentials,
        )

    def delete_change_set(self, params: dict[str, Any]) -> None:
        stack, change_set = self.change_set(str(params["ChangeSetName"]), params.get("StackName"))
        with self.store.lock:
            if change_set.execution_status in ("EXECUTE_IN_PROGRESS",):
                raise CloudFormationError(
                    "InvalidChangeSetStatus",
                    f"ChangeSet [{change_set.change_set_id}] is in EXECUTE_IN_PROGRESS",
                )
            # A REVIEW_IN_PROGRESS stack stays when its last change set goes, as on AWS.
            stack.change_sets.pop(change_set.change_set_id, None)

    # -- reads ---------------------------------------------------------------------------

    def describe_stacks(self, name: str | None) -> list[Stack]:
        if name:
            return [self._stack(name, deleted=True)]
        with self.store.lock:
            return [s for s in reversed(self.store.stacks) if s.status != "DELETE_COMPLETE"]

    def list_stacks(self, filters: list[str]) -> list[Stack]:
        with self.store.lock:
            return [s for s in reversed(self.store.stacks) if not filters or s.status in filters]

    def stack(self, name: str) -> Stack:
        return self._stack(name, deleted=True)

    def template_summary(self, params: dict[str, Any], credentials: Credentials | None) -> dict[str, Any]:
        if params.get("StackName"):
            stack = self._stack(str(params["StackName"]))
            template = stack.template
        else:
            _, template = self.template_from(params, credentials)
        declared = template.get("Parameters") or {}
        resources = template.get("Resources") or {}
        summary: dict[str, Any] = {
            "Parameters": [
                {
                    "ParameterKey": key,
                    "ParameterType": str((spec or {}).get("Type", "String")),
                    "NoEcho": bool(str((spec or {}).get("NoEcho", "false")).lower() == "true"),
                    **({"DefaultValue": _text((spec or {})["Default"])} if "Default" in (spec or {}) else {}),
                    **({"Description": spec["Description"]} if "Description" in (spec or {}) else {}),
                }
                for key, spec in declared.items()
            ],
            "ResourceTypes": sorted({str(r.get("Type")) for r in resources.values() if isinstance(r, dict)}),
            "Version": str(template.get("AWSTemplateFormatVersion", "2010-09-09")),
            "DeclaredTransforms": transforms_of(template),
        }
        if "Description" in template:
            summary["Description"] = template["Description"]
        processed = self._process(template, {}, "summary") if not transforms_of(template) else None
        if processed is not None:
            missing = self._missing_capabilities(template, processed, [], expand=False)
            if missing:
                summary["Capabilities"] = missing
                summary["CapabilitiesReason"] = "The following resource(s) require capabilities: " + str(
                    sorted(
                        {
                            str(r.get("Type"))
                            for r in resources.values()
                            if isinstance(r, dict) and r.get("Type") in _IAM_TYPES
                        }
                    )
                )
        return summary

    def _session(self, credentials: Credentials | None) -> boto3.session.Session:
        if credentials is None:
            return boto3.session.Session(region_name=self.region)
        return boto3.session.Session(
            region_name=self.region,
            aws_access_key_id=credentials[0],
            aws_secret_access_key=credentials[1],
            aws_session_token=credentials[2],
        )


def _policies(template: dict[str, Any] | None, attribute: str) -> dict[str, str]:
    """Logical id -> DeletionPolicy or UpdateReplacePolicy, where the template sets one."""
    resources = (template or {}).get("Resources") or {}
    return {lid: str(r[attribute]) for lid, r in resources.items() if isinstance(r, dict) and attribute in r}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _change(action: str, lid: str, resource: Any, physical_id: str | None = None) -> dict[str, Any]:
    rtype = resource.get("Type") if isinstance(resource, dict) else ""
    change: dict[str, Any] = {"Action": action, "LogicalResourceId": lid, "ResourceType": str(rtype)}
    if physical_id:
        change["PhysicalResourceId"] = physical_id
    if action == "Modify":
        # Every local update replaces the resource (module docstring).
        change["Replacement"] = "True"
        change["Scope"] = ["Properties"]
    return {"Type": "Resource", "ResourceChange": change}


def _changes(stack: Stack, processed: dict[str, Any], parameters: dict[str, str]) -> list[dict[str, Any]]:
    """Resource changes between the stack as it is and the processed template with parameters."""
    old = (stack.processed or {}).get("Resources") or {}
    new = processed.get("Resources") or {}
    parameters_changed = parameters != stack.parameters
    outputs_changed = (stack.processed or {}).get("Outputs") != processed.get("Outputs")
    changes: list[dict[str, Any]] = []
    for lid, resource in new.items():
        physical = stack.resources[lid].physical_id if lid in stack.resources else None
        if lid not in old:
            changes.append(_change("Add", lid, resource))
        elif old[lid] != resource or parameters_changed:
            changes.append(_change("Modify", lid, resource, physical))
    for lid, resource in old.items():
        if lid not in new:
            physical = stack.resources[lid].physical_id if lid in stack.resources else None
            changes.append(_change("Remove", lid, resource, physical))
    if not changes and outputs_changed:
        # Only Outputs changed: still an update to run (AWS updates the outputs alone).
        changes = [_change("Modify", lid, r, None) for lid, r in list(new.items())[:1]]
    return changes


def _same_tags(stack: Stack, params: dict[str, Any]) -> bool:
    return "Tags" not in params or list(params.get("Tags") or []) == stack.tags
