"""Deleting what the creators made: CloudFormation resource type -> function deleting one resource.

A stack is deleted in the reverse of its creation order, as CloudFormation deletes dependents
before what they depend on. Each deleter gets the physical id (what ``Ref`` yields) and the
resource's evaluated properties (some deletions need them: a Lambda permission's function,
an inline policy's roles). A resource that is already gone counts as deleted, as it does in
CloudFormation ("DELETE_COMPLETE" for a resource deleted outside the stack).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from sluice.local.deploy.creators.base import CreateContext

Deleter = Callable[[CreateContext, str, dict[str, Any]], None]

# Error codes meaning "it is already gone": nothing left to delete.
_GONE = {
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFound",
    "NotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "StateMachineDoesNotExist",
    "RepositoryNotFoundException",
    "ParameterNotFound",
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidAssociationID.NotFound",
    "Gateway.NotAttached",
}
_BATCH_WAIT_SECONDS = 60.0


def is_gone(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _GONE


def _delete_bucket(ctx: CreateContext, bucket: str, props: dict[str, Any]) -> None:
    # CloudFormation fails to delete a bucket that still holds objects; `sam delete` and
    # `aws cloudformation delete-stack` leave emptying it to the person. Locally the stack's
    # buckets are emptied first (versions included), so a deleted stack leaves nothing behind.
    # ND in AWS terms: AWS would report DELETE_FAILED ("The bucket you tried to delete is not empty").
    s3 = ctx.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in (page.get("Versions") or []) + (page.get("DeleteMarkers") or [])
        ]
        if entries:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": entries, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


def _delete_role(ctx: CreateContext, name: str, props: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for attached in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    for profile in iam.list_instance_profiles_for_role(RoleName=name).get("InstanceProfiles", []):
        iam.remove_role_from_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=name
        )
    iam.delete_role(RoleName=name)


def _delete_inline_policy(ctx: CreateContext, physical_id: str, props: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    name = props["PolicyName"]
    for role in props.get("Roles") or ([props["RoleName"]] if "RoleName" in props else []):
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for user in props.get("Users") or []:
        iam.delete_user_policy(UserName=user, PolicyName=name)
    for group in props.get("Groups") or []:
        iam.delete_group_policy(GroupName=group, PolicyName=name)


def _delete_managed_policy(ctx: CreateContext, arn: str, props: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    for role in props.get("Roles") or []:
        iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    for user in props.get("Users") or []:
        iam.detach_user_policy(UserName=user, PolicyArn=arn)
    for group in props.get("Groups") or []:
        iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)


def _delete_instance_profile(ctx: CreateContext, name: str, props: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    for role in props.get("Roles") or []:
        try:
            iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
        except ClientError as error:
            if not is_gone(error):
                raise
    iam.delete_instance_profile(InstanceProfileName=name)


def _delete_rule(ctx: CreateContext, physical_id: str, props: dict[str, Any]) -> None:
    events = ctx.client("events")
    bus, _, name = physical_id.rpartition("|")
    where = {"EventBusName": bus} if bus else {}
    ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name, **where).get("Targets", [])]
    if ids:
        events.remove_targets(Rule=name, Ids=ids, **where)
    events.delete_rule(Name=name, **where)


def _wait_batch(
    describe: Callable[[], list[dict[str, Any]]], done: Callable[[list[dict[str, Any]]], bool]
) -> None:
    deadline = time.monotonic() + _BATCH_WAIT_SECONDS
    while not done(describe()):
        if time.monotonic() > deadline:
            raise TimeoutError("the Batch resource did not settle in time")
        time.sleep(0.1)


def _settled(items: list[dict[str, Any]]) -> bool:
    return all(i.get("status") not in ("CREATING", "UPDATING", "DELETING") for i in items)


def _delete_job_queue(ctx: CreateContext, arn: str, props: dict[str, Any]) -> None:
    # Batch deletes only a DISABLED queue (https://docs.aws.amazon.com/batch/latest/APIReference/API_DeleteJobQueue.html).
    batch = ctx.client("batch")

    def describe() -> list[dict[str, Any]]:
        return list(batch.describe_job_queues(jobQueues=[arn]).get("jobQueues", []))

    if not describe():
        return
    _wait_batch(describe, _settled)
    batch.update_job_queue(jobQueue=arn, state="DISABLED")
    _wait_batch(describe, _settled)
    batch.delete_job_queue(jobQueue=arn)
    _wait_batch(describe, lambda items: all(i.get("status") == "DELETED" for i in items))


def _delete_compute_environment(ctx: CreateContext, arn: str, props: dict[str, Any]) -> None:
    batch = ctx.client("batch")

    def describe() -> list[dict[str, Any]]:
        return list(
            batch.describe_compute_environments(computeEnvironments=[arn]).get("computeEnvironments", [])
        )

    if not describe():
        return
    _wait_batch(describe, _settled)
    batch.update_compute_environment(computeEnvironment=arn, state="DISABLED")
    _wait_batch(describe, _settled)
    batch.delete_compute_environment(computeEnvironment=arn)
    _wait_batch(describe, lambda items: all(i.get("status") == "DELETED" for i in items))


def _delete_topic_policy(ctx: CreateContext, physical_id: str, props: dict[str, Any]) -> None:
    # Deleting an AWS::SNS::TopicPolicy restores the topic's default policy; the topic itself
    # is usually deleted right after, so only a topic that survives needs this.
    return None


def _delete_route(ctx: CreateContext, physical_id: str, props: dict[str, Any]) -> None:
    ctx.client("ec2").delete_route(
        RouteTableId=props["RouteTableId"],
        DestinationCidrBlock=props.get("DestinationCidrBlock", "0.0.0.0/0"),
    )


def _detach_gateway(ctx: CreateContext, physical_id: str, props: dict[str, Any]) -> None:
    if "InternetGatewayId" in props:
        ctx.client("ec2").detach_internet_gateway(
            InternetGatewayId=props["InternetGatewayId"], VpcId=props["VpcId"]
        )


def _remove_permission(ctx: CreateContext, statement_id: str, props: dict[str, Any]) -> None:
    ctx.client("lambda").remove_permission(FunctionName=props["FunctionName"], StatementId=statement_id)


DELETERS: dict[str, Deleter] = {
    "AWS::S3::Bucket": _delete_bucket,
    "AWS::S3::BucketPolicy": lambda ctx, bucket, props: ctx.client("s3").delete_bucket_policy(Bucket=bucket),
    "AWS::Lambda::Function": lambda ctx, name, props: ctx.client("lambda").delete_function(FunctionName=name),
    "AWS::Lambda::Permission": _remove_permission,
    "AWS::Lambda::EventInvokeConfig": lambda ctx, pid, props: ctx.client(
        "lambda"
    ).delete_function_event_invoke_config(
        FunctionName=props["FunctionName"],
        **({"Qualifier": props["Qualifier"]} if "Qualifier" in props else {}),
    ),
    "AWS::StepFunctions::StateMachine": lambda ctx, arn, props: ctx.client(
        "stepfunctions"
    ).delete_state_machine(stateMachineArn=arn),
    "AWS::SNS::Topic": lambda ctx, arn, props: ctx.client("sns").delete_topic(TopicArn=arn),
    "AWS::SNS::Subscription": lambda ctx, arn, props: ctx.client("sns").unsubscribe(SubscriptionArn=arn),
    "AWS::SNS::TopicPolicy": _delete_topic_policy,
    "AWS::SQS::Queue": lambda ctx, url, props: ctx.client("sqs").delete_queue(QueueUrl=url),
    "AWS::KMS::Key": lambda ctx, key, props: ctx.client("kms").schedule_key_deletion(
        KeyId=key, PendingWindowInDays=int(props.get("PendingWindowInDays", 30))
    ),
    "AWS::KMS::Alias": lambda ctx, alias, props: ctx.client("kms").delete_alias(AliasName=alias),
    "AWS::IAM::Role": _delete_role,
    "AWS::IAM::Policy": _delete_inline_policy,
    "AWS::IAM::RolePolicy": _delete_inline_policy,
    "AWS::IAM::ManagedPolicy": _delete_managed_policy,
    "AWS::IAM::InstanceProfile": _delete_instance_profile,
    "AWS::Logs::LogGroup": lambda ctx, name, props: ctx.client("logs").delete_log_group(logGroupName=name),
    "AWS::Events::Rule": _delete_rule,
    "AWS::Batch::JobQueue": _delete_job_queue,
    "AWS::Batch::ComputeEnvironment": _delete_compute_environment,
    "AWS::Batch::JobDefinition": lambda ctx, arn, props: ctx.client("batch").deregister_job_definition(
        jobDefinition=arn
    ),
    "AWS::ECR::Repository": lambda ctx, name, props: ctx.client("ecr").delete_repository(
        repositoryName=name, force=True
    ),
    "AWS::SSM::Parameter": lambda ctx, name, props: ctx.client("ssm").delete_parameter(Name=name),
    "AWS::EC2::VPC": lambda ctx, vpc, props: ctx.client("ec2").delete_vpc(VpcId=vpc),
    "AWS::EC2::Subnet": lambda ctx, subnet, props: ctx.client("ec2").delete_subnet(SubnetId=subnet),
    "AWS::EC2::SecurityGroup": lambda ctx, group, props: ctx.client("ec2").delete_security_group(
        GroupId=group
    ),
    "AWS::EC2::InternetGateway": lambda ctx, igw, props: ctx.client("ec2").delete_internet_gateway(
        InternetGatewayId=igw
    ),
    "AWS::EC2::VPCGatewayAttachment": _detach_gateway,
    "AWS::EC2::RouteTable": lambda ctx, table, props: ctx.client("ec2").delete_route_table(
        RouteTableId=table
    ),
    "AWS::EC2::Route": _delete_route,
    "AWS::EC2::SubnetRouteTableAssociation": lambda ctx, association, props: ctx.client(
        "ec2"
    ).disassociate_route_table(AssociationId=association),
}


def delete_resource(ctx: CreateContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> bool:
    """Delete one resource; False when the local cloud has no deleter for its type (left as is)."""
    deleter = DELETERS.get(resource_type)
    if deleter is None:
        return False
    try:
        deleter(ctx, physical_id, props)
    except ClientError as error:
        if not is_gone(error):
            raise
    return True
