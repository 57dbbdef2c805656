"""AWS::S3::Bucket and AWS::S3::BucketPolicy.

S3's CloudFormation properties differ from its API (``ExpirationInDays`` vs
``Expiration.Days``, ``S3Key.Rules`` vs ``Key.FilterRules``), so the bucket's sub-resources
are translated here by hand, following the AWS::S3::Bucket reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-s3-bucket.html).
"""

from __future__ import annotations

from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError

from sluice.local.deploy.botomodel import translate_value
from sluice.local.deploy.creators.base import CreateContext, Creator, as_json, is_true
from sluice.local.deploy.model import Created

_HANDLED = {
    "BucketName",
    "ObjectLockEnabled",
    "BucketEncryption",
    "PublicAccessBlockConfiguration",
    "VersioningConfiguration",
    "LifecycleConfiguration",
    "NotificationConfiguration",
    "OwnershipControls",
    "Tags",
    "CorsConfiguration",
    "LoggingConfiguration",
}


def _encryption(props: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in props.get("ServerSideEncryptionConfiguration", []):
        rule = dict(rule)
        if "ServerSideEncryptionByDefault" in rule:
            rule["ApplyServerSideEncryptionByDefault"] = rule.pop("ServerSideEncryptionByDefault")
        rules.append(rule)
    return {"Rules": rules}


def _lifecycle_filter(rule: dict[str, Any]) -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    if "Prefix" in rule:
        conditions["Prefix"] = rule["Prefix"]
    tags = rule.get("TagFilters") or []
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in rule:
            conditions[key] = rule[key]
    if not tags and len(conditions) <= 1:
        return conditions or {"Prefix": ""}
    if len(tags) == 1 and not conditions:
        return {"Tag": tags[0]}
    return {"And": {**conditions, **({"Tags": tags} if tags else {})}}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled"), "Filter": _lifecycle_filter(rule)}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    expiration = {
        api: rule[cfn]
        for cfn, api in (
            ("ExpirationInDays", "Days"),
            ("ExpirationDate", "Date"),
            ("ExpiredObjectDeleteMarker", "ExpiredObjectDeleteMarker"),
        )
        if cfn in rule
    }
    if expiration:
        out["Expiration"] = expiration
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    transitions = list(rule.get("Transitions") or []) + ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        out["Transitions"] = [
            {
                "StorageClass": t["StorageClass"],
                **({"Days": t["TransitionInDays"]} if "TransitionInDays" in t else {}),
                **({"Date": t["TransitionDate"]} if "TransitionDate" in t else {}),
            }
            for t in transitions
        ]
    nc_transitions = list(rule.get("NoncurrentVersionTransitions") or [])
    if "NoncurrentVersionTransition" in rule:
        nc_transitions.append(rule["NoncurrentVersionTransition"])
    if nc_transitions:
        out["NoncurrentVersionTransitions"] = [
            {
                "StorageClass": t["StorageClass"],
                "NoncurrentDays": t.get("TransitionInDays", t.get("NoncurrentDays")),
                **(
                    {"NewerNoncurrentVersions": t["NewerNoncurrentVersions"]}
                    if "NewerNoncurrentVersions" in t
                    else {}
                ),
            }
            for t in nc_transitions
        ]
    return out


def _notification_filter(cfn_filter: dict[str, Any] | None) -> dict[str, Any]:
    if not cfn_filter:
        return {}
    rules = (cfn_filter.get("S3Key") or {}).get("Rules") or []
    return {"Filter": {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}}


def _notifications(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    eventbridge = props.get("EventBridgeConfiguration")
    if eventbridge is not None and is_true(eventbridge.get("EventBridgeEnabled", True)):
        out["EventBridgeConfiguration"] = {}
    for cfn_key, api_key, target_key, api_target in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        if props.get(cfn_key):
            out[api_key] = [
                {api_target: c[target_key], "Events": [c["Event"]], **_notification_filter(c.get("Filter"))}
                for c in props[cfn_key]
            ]
    return out


def _cors(props: dict[str, Any]) -> dict[str, Any]:
    renames = {"Id": "ID", "MaxAge": "MaxAgeSeconds"}
    return {
        "CORSRules": [{renames.get(k, k): v for k, v in rule.items()} for rule in props.get("CorsRules", [])]
    }


def create_bucket(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("BucketName") or ctx.name(logical_id, max_length=63, lowercase=True)
    s3 = ctx.client("s3")
    request: dict[str, Any] = {"Bucket": name}
    if ctx.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
    if is_true(props.get("ObjectLockEnabled")):
        request["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**request)

    def put(operation: str, member: str, value: Any) -> None:
        api_value = translate_value("s3", operation, member, value, where=logical_id)
        getattr(s3, xform_name(operation))(Bucket=name, **{member: api_value})

    if "BucketEncryption" in props:
        put(
            "PutBucketEncryption", "ServerSideEncryptionConfiguration", _encryption(props["BucketEncryption"])
        )
    if "PublicAccessBlockConfiguration" in props:
        put("PutPublicAccessBlock", "PublicAccessBlockConfiguration", props["PublicAccessBlockConfiguration"])
    if "VersioningConfiguration" in props:
        put("PutBucketVersioning", "VersioningConfiguration", props["VersioningConfiguration"])
    if "OwnershipControls" in props:
        put("PutBucketOwnershipControls", "OwnershipControls", props["OwnershipControls"])
    if "LifecycleConfiguration" in props:
        rules = [_lifecycle_rule(r) for r in props["LifecycleConfiguration"].get("Rules", [])]
        put("PutBucketLifecycleConfiguration", "LifecycleConfiguration", {"Rules": rules})
    if "CorsConfiguration" in props:
        put("PutBucketCors", "CORSConfiguration", _cors(props["CorsConfiguration"]))
    if props.get("Tags"):
        put("PutBucketTagging", "Tagging", {"TagSet": props["Tags"]})
    if "NotificationConfiguration" in props:
        put(
            "PutBucketNotificationConfiguration",
            "NotificationConfiguration",
            _notifications(props["NotificationConfiguration"]),
        )
    if "LoggingConfiguration" in props:
        logging_cfg = props["LoggingConfiguration"]
        status = {
            "LoggingEnabled": {
                "TargetBucket": logging_cfg.get("DestinationBucketName", name),
                "TargetPrefix": logging_cfg.get("LogFilePrefix", ""),
            }
        }
        try:
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus=status)
        except ClientError as exc:
            # Access logs are never delivered locally; a local permission check must not
            # stop the deploy.
            ctx.warn(logical_id, f"LoggingConfiguration not applied locally: {exc}")
    ignored = sorted(set(props) - _HANDLED)
    if ignored:
        ctx.warn(logical_id, f"properties not applied locally: {ignored}")

    return Created(
        name,
        {
            "Arn": f"arn:{ctx.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{ctx.url_suffix}",
            "RegionalDomainName": f"{name}.s3.{ctx.region}.{ctx.url_suffix}",
            "DualStackDomainName": f"{name}.s3.dualstack.{ctx.region}.{ctx.url_suffix}",
            "WebsiteURL": f"http://{name}.s3-website-{ctx.region}.{ctx.url_suffix}",
        },
    )


def create_bucket_policy(ctx: CreateContext, logical_id: str, props: dict[str, Any]) -> Created:
    bucket = props["Bucket"]
    ctx.client("s3").put_bucket_policy(Bucket=bucket, Policy=as_json(props["PolicyDocument"]))
    return Created(bucket)


CREATORS: dict[str, Creator] = {
    "AWS::S3::Bucket": create_bucket,
    "AWS::S3::BucketPolicy": create_bucket_policy,
}
