"""deploy_template: a SAM/CloudFormation template -> resources on the local endpoint.

Order of work, as CloudFormation does it: parameters, SAM transform, conditions, then
resources in dependency order (``Ref``/``Fn::GetAtt``/``Fn::Sub`` references and
``DependsOn``), each created through boto3 at the endpoint, then outputs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from sluice.local.deploy.cfnyaml import load_template
from sluice.local.deploy.creators import CREATORS, CreateContext
from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.intrinsics import NO_VALUE, Evaluator
from sluice.local.deploy.model import Created, DeployedStack
from sluice.local.deploy.parameters import partition_for, pseudo_parameters, resolve_parameters
from sluice.local.deploy.sam import apply_transforms

log = logging.getLogger("sluice.local.deploy")

# Stacks deployed by this process, so parts of the local cloud built before the deploy
# (the Batch engine's image resolver) can find the resources and their Metadata.
_deployed: list[DeployedStack] = []
_deployed_lock = threading.Lock()


def deployed_stacks() -> list[DeployedStack]:
    """Every stack :func:`deploy_template` has deployed in this process, oldest first."""
    with _deployed_lock:
        return list(_deployed)


# Synthetic ARNs for types with no local meaning, so Fn::GetAtt ...Arn still resolves.
_NOT_EMULATED_ARNS = {
    "AWS::CloudWatch::Alarm": "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::CloudWatch::CompositeAlarm": "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::CloudWatch::Dashboard": "arn:{partition}:cloudwatch::{account}:dashboard/{name}",
}


# Told about each resource as it is created: (logical id, type, status, created or None,
# evaluated properties); status is CREATE_IN_PROGRESS, then CREATE_COMPLETE.
ResourceProgress = Callable[[str, str, str, Created | None, dict[str, Any]], None]
# A resource a stack update may keep: logical id -> (type, evaluated properties, what was created).
ExistingResources = dict[str, tuple[str, dict[str, Any], Created]]


def forget_stack(stack_name: str) -> None:
    """Drop a deleted stack from :func:`deployed_stacks`."""
    with _deployed_lock:
        _deployed[:] = [s for s in _deployed if s.stack_name != stack_name]


def supported_types() -> list[str]:
    """CloudFormation types the local cloud creates; any other type is reported as not emulated."""
    return sorted(CREATORS)


def _depends_on(resource: dict[str, Any]) -> list[str]:
    value = resource.get("DependsOn") or []
    return [value] if isinstance(value, str) else list(value)


def _order(ids: list[str], edges: dict[str, set[str]]) -> list[str]:
    """Topological order; ties keep template order (deterministic, readable logs)."""
    position = {lid: i for i, lid in enumerate(ids)}
    remaining = {lid: set(edges[lid]) for lid in ids}
    ordered: list[str] = []
    while remaining:
        ready = sorted((lid for lid, deps in remaining.items() if not deps), key=position.__getitem__)
        if not ready:
            cycle = sorted(remaining)
            raise DeployError(cycle[0], f"Template error: circular dependency between resources {cycle}")
        for lid in ready:
            ordered.append(lid)
            del remaining[lid]
        for deps in remaining.values():
            deps.difference_update(ready)
    return ordered


def _output_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Deployment:
    def __init__(
        self,
        template_path: Path,
        *,
        endpoint_url: str,
        region: str,
        account_id: str,
        stack_name: str,
        parameter_overrides: dict[str, str] | None,
        base_dir: Path,
        source: dict[str, Any] | None = None,
        on_resource: ResourceProgress | None = None,
        stack_id: str | None = None,
        credentials: tuple[str, str, str | None] | None = None,
        existing: ExistingResources | None = None,
        replace: Callable[[str], None] | None = None,
    ) -> None:
        partition, url_suffix = partition_for(region)
        self.existing = dict(existing or {})
        self.replace = replace
        self.template_path = template_path
        self.source = source
        self.on_resource = on_resource
        self.overrides = dict(parameter_overrides or {})
        self.ctx = CreateContext(
            endpoint_url=endpoint_url,
            region=region,
            account_id=account_id,
            stack_name=stack_name,
            partition=partition,
            url_suffix=url_suffix,
            base_dir=base_dir,
            credentials=credentials,
        )
        self.pseudo = pseudo_parameters(region, account_id, stack_name)
        if stack_id is not None:
            self.pseudo["AWS::StackId"] = stack_id

    def _ssm_lookup(self, name: str) -> str:
        try:
            return cast(str, self.ctx.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as exc:
            raise DeployError("Parameters", f"SSM parameter {name} cannot be read: {exc}") from exc

    def _azs(self, region: str) -> list[str]:
        try:
            zones = self.ctx.client("ec2").describe_availability_zones()["AvailabilityZones"]
            names = sorted(z["ZoneName"] for z in zones if z.get("RegionName", region) == region)
        except (ClientError, BotoCoreError):
            names = []
        return names or [f"{region}{letter}" for letter in "abc"]

    def run(self) -> DeployedStack:
        source = self.source if self.source is not None else load_template(self.template_path)
        params = resolve_parameters(source.get("Parameters") or {}, self.overrides, self._ssm_lookup)
        sam_values = {**{k: v for k, v in self.pseudo.items() if isinstance(v, str)}}
        sam_values.update({k: ",".join(v) if isinstance(v, list) else v for k, v in params.items()})
        template = apply_transforms(
            source, base_dir=self.ctx.base_dir, region=self.ctx.region, parameter_values=sam_values
        )
        resources: dict[str, Any] = template.get("Resources") or {}
        for lid, resource in resources.items():
            if not isinstance(resource, dict) or "Type" not in resource:
                raise DeployError(lid, "Template format error: every resource needs a Type")

        evaluator = Evaluator(
            parameters=params,
            pseudo=self.pseudo,
            conditions=template.get("Conditions") or {},
            mappings=template.get("Mappings") or {},
            resources=resources,
            get_azs=self._azs,
        )
        evaluator.all_conditions()

        stack = DeployedStack(
            stack_name=self.ctx.stack_name,
            region=self.ctx.region,
            account_id=self.ctx.account_id,
            template=template,
            parameters=params,
            warnings=self.ctx.warnings,
            project_root=self.ctx.base_dir,
        )
        active = [lid for lid in resources if evaluator.resource_active(lid)]
        for lid in active:
            evaluator.validate(resources[lid].get("Properties") or {}, lid)
        for name, output in (template.get("Outputs") or {}).items():
            where = f"Outputs.{name}"
            if not isinstance(output, dict) or "Value" not in output:
                raise DeployError(where, "Template format error: every output needs a Value")
            if "Condition" not in output or evaluator.condition(output["Condition"], where):
                evaluator.validate(output["Value"], where)
        edges = {lid: self._dependencies(evaluator, resources, lid) for lid in active}
        for lid in _order(active, edges):
            self._create(evaluator, stack, lid, resources[lid])
        stack.outputs = self._outputs(evaluator, template.get("Outputs") or {})
        if stack.not_emulated:
            log.info("deployed %s; not emulated locally: %s", stack.stack_name, stack.not_emulated)
        return stack

    def _dependencies(self, evaluator: Evaluator, resources: dict[str, Any], lid: str) -> set[str]:
        resource = resources[lid]
        deps = evaluator.references(resource.get("Properties") or {}, lid)
        for dep in _depends_on(resource):
            if dep not in resources:
                raise DeployError(
                    lid, f"Template format error: DependsOn names {dep}, which is not a resource"
                )
            deps.add(dep)
        for dep in deps:
            if not evaluator.resource_active(dep):
                raise DeployError(lid, f"Template error: depends on {dep}, whose Condition is false")
        deps.discard(lid)
        return deps

    def _create(self, evaluator: Evaluator, stack: DeployedStack, lid: str, resource: dict[str, Any]) -> None:
        rtype = resource["Type"]
        props = evaluator.evaluate(resource.get("Properties") or {}, lid)
        if props is NO_VALUE:
            props = {}
        creator = CREATORS.get(rtype)
        kept = self.existing.get(lid)
        if kept is not None and kept[0] == rtype and kept[1] == props:
            # An update keeps a resource whose type and resolved properties did not change.
            created = kept[2]
            if creator is None:
                stack.not_emulated.append((lid, rtype))
            self._record(evaluator, stack, lid, resource, rtype, props, created)
            return
        if kept is not None and self.replace is not None:
            self.replace(lid)  # changed: the old one goes first (local names are stable)
        if self.on_resource is not None:
            self.on_resource(lid, rtype, "CREATE_IN_PROGRESS", None, props)
        if creator is None:
            created = self._not_emulated(stack, lid, rtype)
        else:
            try:
                created = creator(self.ctx, lid, props)
            except DeployError:
                raise
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise DeployError(
                    lid, f"creating {rtype} failed: {error.get('Code')}: {error.get('Message')}"
                ) from exc
            except KeyError as exc:
                raise DeployError(lid, f"{rtype} is missing required property {exc.args[0]}") from exc
            except (BotoCoreError, ValueError, TypeError) as exc:
                raise DeployError(lid, f"creating {rtype} failed: {exc}") from exc
            log.debug("created %s (%s): %s", lid, rtype, created.physical_id)
        self._record(evaluator, stack, lid, resource, rtype, props, created)
        if self.on_resource is not None:
            self.on_resource(lid, rtype, "CREATE_COMPLETE", created, props)

    def _record(
        self,
        evaluator: Evaluator,
        stack: DeployedStack,
        lid: str,
        resource: dict[str, Any],
        rtype: str,
        props: dict[str, Any],
        created: Created,
    ) -> None:
        evaluator.created[lid] = created
        stack.resources[lid] = created.physical_id
        stack.resource_types[lid] = rtype
        stack.attributes[lid] = dict(created.attributes)
        stack.metadata[lid] = dict(resource.get("Metadata") or {})
        stack.properties[lid] = props

    def _not_emulated(self, stack: DeployedStack, lid: str, rtype: str) -> Created:
        # Reported once per resource, never silently dropped: it exists on AWS, not here. The
        # caller shows stack.not_emulated (the CLI prints one line each); a WARNING here would
        # reach stderr a second time through logging's last-resort handler.
        stack.not_emulated.append((lid, rtype))
        log.info("%s (%s) has no local meaning; not emulated", lid, rtype)
        name = self.ctx.name(lid, max_length=255)
        attributes: dict[str, Any] = {}
        if rtype in _NOT_EMULATED_ARNS:
            attributes["Arn"] = _NOT_EMULATED_ARNS[rtype].format(
                partition=self.ctx.partition, region=self.ctx.region, account=self.ctx.account_id, name=name
            )
        return Created(name, attributes)

    def _outputs(self, evaluator: Evaluator, outputs: dict[str, Any]) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, output in outputs.items():
            where = f"Outputs.{name}"
            if not isinstance(output, dict) or "Value" not in output:
                raise DeployError(where, "Template format error: every output needs a Value")
            if "Condition" in output and not evaluator.condition(output["Condition"], where):
                continue
            value = evaluator.evaluate(output["Value"], where)
            if value is not NO_VALUE:
                result[name] = _output_text(value)
        return result


def deploy_template(
    template_path: Path,
    *,
    endpoint_url: str,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    stack_name: str = "sluice",
    parameter_overrides: dict[str, str] | None = None,
    project_root: Path | None = None,
    source: dict[str, Any] | None = None,
    on_resource: ResourceProgress | None = None,
    stack_id: str | None = None,
    credentials: tuple[str, str, str | None] | None = None,
    existing: ExistingResources | None = None,
    replace: Callable[[str], None] | None = None,
) -> DeployedStack:
    """Deploy a SAM or CloudFormation template to the local cloud at ``endpoint_url``.

    Relative paths in the template (``CodeUri``, ``DefinitionUri``) resolve against
    ``project_root``, which defaults to the template's directory (SAM's rule).
    ``source``, when given, is the parsed template (``template_path`` then only names it);
    ``on_resource`` is told about each resource as it is created; ``stack_id`` is what
    ``AWS::StackId`` yields (a stable id by default); ``credentials`` sign the calls (the
    process's credentials by default). ``existing`` are the resources of the stack being
    updated: one whose type and resolved properties are unchanged is kept as it is; for a changed
    one ``replace(logical_id)`` is called before its replacement is created.
    Raises :class:`DeployError` naming the resource (or section) at fault.
    """
    template_path = Path(template_path)
    base_dir = Path(project_root) if project_root is not None else template_path.parent
    stack = _Deployment(
        template_path,
        endpoint_url=endpoint_url,
        region=region,
        account_id=account_id,
        stack_name=stack_name,
        parameter_overrides=parameter_overrides,
        base_dir=base_dir.resolve(),
        source=source,
        on_resource=on_resource,
        stack_id=stack_id,
        credentials=credentials,
        existing=existing,
        replace=replace,
    ).run()
    with _deployed_lock:
        _deployed.append(stack)
    return stack
