"""AWS::StepFunctions::StateMachine and AWS::StepFunctions::Activity.

``DefinitionSubstitutions`` replace ``${Name}`` in the definition text, as CloudFormation
does (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import yaml

from sluice.local.deploy.creators.base import CreateContext, Creator, attribute_text
from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.model import Created

_DEFINITION_PROPS = {"Definition", "DefinitionString", "DefinitionS3Location", "DefinitionSubstitutions"}


def _definition_text(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> str:
    if "Definition" in props:
        return json.dumps(props["Definition"])
    if "DefinitionString" in props:
        return str(props["DefinitionString"])
    location = props.get("DefinitionS3Location")
    if isinstance(location, str):  # local path (see deploy.sam)
        path = Path(location) if Path(location).is_absolute() else ctx.base_dir / location
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DeployError(logical_id, f"cannot read state machine definition {path}: {exc}") from exc
    if isinstance(location, dict):
        extra = {"VersionId": location["Version"]} if "Version" in location else {}
        body = ctx.client("s3").get_object(Bucket=location["Bucket"], Key=location["Key"], **extra)["Body"]
        return cast(str, body.read().decode())
    raise DeployError(
        logical_id, "a state machine needs Definition, DefinitionString or DefinitionS3Location"
    )


def substitute(definition: str, substitutions: dict[str, Any]) -> str:
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", attribute_text(value))
    return definition


def create_state_machine(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("StateMachineName") or ctx.name(logical_id, max_length=80)
    definition = substitute(
        _definition_text(ctx, logical_id, props), props.get("DefinitionSubstitutions") or {}
    )
    try:
        json.loads(definition)
    except json.JSONDecodeError:
        # Definitions may be YAML files (SAM accepts them); the API takes JSON.
        definition = json.dumps(yaml.safe_load(definition))
    response = ctx.call(
        logical_id,
        "stepfunctions",
        "CreateStateMachine",
        props,
        renames={"StateMachineType": "type"},
        exclude={"StateMachineName", *_DEFINITION_PROPS},
        extra={"name": name, "definition": definition},
    )
    arn = response["stateMachineArn"]
    return Created(
        arn,
        {"Arn": arn, "Name": name, "StateMachineRevisionId": response.get("stateMachineVersionArn") or arn},
    )


def create_activity(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    response = ctx.call(logical_id, "stepfunctions", "CreateActivity", props)
    return Created(response["activityArn"], {"Name": props["Name"]})


CREATORS: dict[str, Creator] = {
    "AWS::StepFunctions::StateMachine": create_state_machine,
    "AWS::StepFunctions::Activity": create_activity,
}
