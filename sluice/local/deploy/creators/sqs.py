"""AWS::SQS::Queue, AWS::SQS::QueuePolicy, AWS::SQS::QueueInlinePolicy."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from sluice.local.deploy.creators.base import CreateContext, Creator, as_json, attribute_text, is_true
from sluice.local.deploy.model import Created


def create_queue(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    fifo = is_true(props.get("FifoQueue"))
    name = props.get("QueueName") or ctx.name(logical_id, max_length=80, suffix_text=".fifo" if fifo else "")
    # Every other AWS::SQS::Queue property is an SQS queue attribute of the same name.
    attributes = {k: attribute_text(v) for k, v in props.items() if k not in ("QueueName", "Tags")}
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
    url = ctx.client("sqs").create_queue(**request)["QueueUrl"]
    arn = ctx.arn("sqs", name)
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def create_queue_policy(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    sqs = ctx.client("sqs")
    queues = props.get("Queues") or ([props["Queue"]] if "Queue" in props else [])
    for queue in queues:
        url = queue
        if not urlparse(queue).scheme:  # QueueInlinePolicy takes a URL too; tolerate a name
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": as_json(props["PolicyDocument"])})
    return Created(ctx.name(logical_id))


CREATORS: dict[str, Creator] = {
    "AWS::SQS::Queue": create_queue,
    "AWS::SQS::QueuePolicy": create_queue_policy,
    "AWS::SQS::QueueInlinePolicy": create_queue_policy,
}
