"""AWS::IAM::Role, Policy, ManagedPolicy, InstanceProfile.

moto only knows AWS-managed policies when started with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true``;
without it, attaching one (SAM attaches ``AWSLambdaBasicExecutionRole`` to every function
role) fails with NoSuchEntity. IAM is not enforced locally, so that is reported as a
warning instead of failing the deploy.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from sluice.local.deploy.creators.base import CreateContext, Creator, as_json
from sluice.local.deploy.model import Created


def _policy_json(document: Any) -> str:
    """IAM accepts a document without ``Version`` (SAM's policy templates have none) and
    treats it as 2008-10-17; moto rejects it. IAM is not enforced locally, so the current
    version is filled in rather than failing the deploy."""
    if isinstance(document, dict) and "Version" not in document:
        document = {"Version": "2012-10-17", **document}
    return as_json(document)


def _is_aws_managed(arn: str) -> bool:
    return ":iam::aws:policy/" in arn


def _attach(ctx: CreateContext, logical_id: str, kind: str, name: str, policy_arn: str) -> None:
    iam = ctx.client("iam")
    try:
        getattr(iam, f"attach_{kind}_policy")(**{f"{kind.capitalize()}Name": name, "PolicyArn": policy_arn})
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity" and _is_aws_managed(policy_arn):
            ctx.warn(
                logical_id,
                f"AWS-managed policy {policy_arn} is not loaded in local IAM; not attached",
                expected=True,
            )
            return
        raise


def create_role(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("RoleName") or ctx.name(logical_id, max_length=64)
    response = ctx.call(
        logical_id,
        "iam",
        "CreateRole",
        props,
        exclude={"RoleName", "Policies", "ManagedPolicyArns"},
        extra={"RoleName": name},
    )
    for arn in props.get("ManagedPolicyArns") or []:
        _attach(ctx, logical_id, "role", name, arn)
    for policy in props.get("Policies") or []:
        ctx.client("iam").put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=_policy_json(policy["PolicyDocument"]),
        )
    role = response["Role"]
    return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def create_policy(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    iam = ctx.client("iam")
    document = _policy_json(props["PolicyDocument"])
    name = props["PolicyName"]
    for role in props.get("Roles") or []:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=document)
    for user in props.get("Users") or []:
        iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=document)
    for group in props.get("Groups") or []:
        iam.put_group_policy(GroupName=group, PolicyName=name, PolicyDocument=document)
    return Created(ctx.name(logical_id, max_length=64), {"Id": ctx.name(logical_id, max_length=64)})


def create_managed_policy(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("ManagedPolicyName") or ctx.name(logical_id, max_length=128)
    response = ctx.call(
        logical_id,
        "iam",
        "CreatePolicy",
        props,
        exclude={"ManagedPolicyName", "Roles", "Users", "Groups", "PolicyDocument"},
        extra={"PolicyName": name, "PolicyDocument": _policy_json(props["PolicyDocument"])},
    )
    policy = response["Policy"]
    for kind in ("role", "user", "group"):
        for principal in props.get(f"{kind.capitalize()}s") or []:
            _attach(ctx, logical_id, kind, principal, policy["Arn"])
    return Created(
        policy["Arn"], {"PolicyArn": policy["Arn"], "PolicyId": policy["PolicyId"], "DefaultVersionId": "v1"}
    )


def create_instance_profile(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("InstanceProfileName") or ctx.name(logical_id, max_length=128)
    iam = ctx.client("iam")
    kwargs = {"Path": props["Path"]} if "Path" in props else {}
    profile = iam.create_instance_profile(InstanceProfileName=name, **kwargs)["InstanceProfile"]
    for role in props.get("Roles") or []:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return Created(name, {"Arn": profile["Arn"]})


CREATORS: dict[str, Creator] = {
    "AWS::IAM::Role": create_role,
    "AWS::IAM::Policy": create_policy,
    "AWS::IAM::RolePolicy": lambda ctx, lid, props: create_policy(
        ctx, lid, {**props, "Roles": [props["RoleName"]]}
    ),
    "AWS::IAM::ManagedPolicy": create_managed_policy,
    "AWS::IAM::InstanceProfile": create_instance_profile,
}
