"""AWS::SNS::Topic, AWS::SNS::Subscription, AWS::SNS::TopicPolicy, AWS::SNS::TopicInlinePolicy."""

from __future__ import annotations

from typing import Any

from sluice.local.deploy.creators.base import CreateContext, Creator, as_json, attribute_text, is_true
from sluice.local.deploy.model import Created

# CloudFormation properties that are SNS topic attributes of the same name.
_TOPIC_ATTRIBUTES = (
    "DisplayName",
    "KmsMasterKeyId",
    "FifoTopic",
    "ContentBasedDeduplication",
    "TracingConfig",
    "SignatureVersion",
    "ArchivePolicy",
    "FifoThroughputScope",
)
_SUBSCRIPTION_ATTRIBUTES = (
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
)


def create_topic(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    fifo = is_true(props.get("FifoTopic"))
    name = props.get("TopicName") or ctx.name(logical_id, max_length=256, suffix_text=".fifo" if fifo else "")
    request: dict[str, Any] = {
        "Name": name,
        "Attributes": {k: attribute_text(props[k]) for k in _TOPIC_ATTRIBUTES if k in props},
    }
    if props.get("Tags"):
        request["Tags"] = props["Tags"]
    if "DataProtectionPolicy" in props:
        request["DataProtectionPolicy"] = as_json(props["DataProtectionPolicy"])
    sns = ctx.client("sns")
    arn = sns.create_topic(**request)["TopicArn"]
    for sub in props.get("Subscription") or []:
        sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
    handled = {"TopicName", "Tags", "DataProtectionPolicy", "Subscription", *_TOPIC_ATTRIBUTES}
    ignored = sorted(set(props) - handled)
    if ignored:
        ctx.warn(logical_id, f"properties not applied locally: {ignored}")
    return Created(arn, {"TopicArn": arn, "TopicName": name})


def create_subscription(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    attributes = {k: attribute_text(props[k]) for k in _SUBSCRIPTION_ATTRIBUTES if k in props}
    response = ctx.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props.get("Endpoint", ""),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    arn = response["SubscriptionArn"]
    return Created(arn, {"Arn": arn})


def create_topic_policy(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    sns = ctx.client("sns")
    topics = props.get("Topics") or ([props["TopicArn"]] if "TopicArn" in props else [])
    for topic in topics:
        sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=as_json(props["PolicyDocument"])
        )
    return Created(ctx.name(logical_id))


CREATORS: dict[str, Creator] = {
    "AWS::SNS::Topic": create_topic,
    "AWS::SNS::Subscription": create_subscription,
    "AWS::SNS::TopicPolicy": create_topic_policy,
    "AWS::SNS::TopicInlinePolicy": create_topic_policy,
}
