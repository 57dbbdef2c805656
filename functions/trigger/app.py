"""Trigger: one S3 `Object Created` event (via EventBridge) -> at most one pipeline execution.

The execution name is a pure function of (bucket, key, version id or etag, sequencer), so an
event delivered twice maps to the same name and Step Functions refuses the second start
(`ExecutionAlreadyExists`), which this function counts as success.

An object it refuses becomes one `Sluice Upload Rejected` event on the default event bus; the
notify function turns it into the message (all notification wording lives there).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# https://docs.aws.amazon.com/step-functions/latest/dg/limits.html: names are at most 80
# characters; we keep to [A-Za-z0-9_-], which is valid everywhere a run id ends up
# (execution names, S3 keys, Batch parameters, log lines).
MAX_EXECUTION_NAME = 80
HASH_CHARS = 24
SLUG_CHARS = MAX_EXECUTION_NAME - HASH_CHARS - 1
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
OPTIONS_METADATA_KEY = "sluice-options"
# The custom event the notify function subscribes to (template.yaml, NotifyFunction events).
# "aws." sources are reserved for AWS services:
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html
REJECTION_SOURCE = "sluice"
REJECTION_DETAIL_TYPE = "Sluice Upload Rejected"


class ObjectRejectedError(Exception):
    """The object cannot be processed; the reason is meant for people."""


class RejectionNotSentError(Exception):
    """EventBridge did not accept the rejection event; raising makes Lambda retry the event."""


@dataclass(frozen=True)
class Settings:
    state_machine_arn: str
    input_prefix: str
    input_suffix: str
    parts_prefix: str  # objects under it wait for an input manifest that lists them
    max_input_bytes: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            state_machine_arn=os.environ["STATE_MACHINE_ARN"],
            input_prefix=os.environ.get("INPUT_PREFIX", ""),
            input_suffix=os.environ.get("INPUT_SUFFIX", ""),
            parts_prefix=os.environ.get("PARTS_PREFIX", ""),
            max_input_bytes=int(os.environ.get("MAX_INPUT_BYTES", str(50 * 1024**3))),
        )


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    key: str
    size: int
    etag: str | None
    version_id: str | None
    sequencer: str | None
    metadata: dict[str, str]


@cache
def _s3() -> Any:
    return boto3.client("s3")


@cache
def _sfn() -> Any:
    return boto3.client("stepfunctions")


@cache
def _events() -> Any:
    return boto3.client("events")


def execution_name(bucket: str, key: str, version_or_etag: str | None, sequencer: str | None) -> str:
    """Deterministic, readable, valid execution name: `<key slug>-<hash of identity>`."""
    if not key or CONTROL_CHARS.search(key):
        raise ObjectRejectedError("the key is empty or contains control characters, so it cannot name a run")
    identity = "\x00".join([bucket, key, version_or_etag or "", sequencer or ""])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:HASH_CHARS]
    base = key.rsplit("/", 1)[-1] or key
    ascii_base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", ascii_base).strip("-_")[:SLUG_CHARS].strip("-_")
    return f"{slug}-{digest}" if slug else digest


def locate_object(bucket: str, raw_key: str, version_id: str | None) -> tuple[str, dict[str, Any]]:
    """Find the real key: EventBridge sends it as stored, notification records URL-encode it.

    Whether EventBridge's `detail.object.key` is ever URL-encoded is not documented, so the key is
    tried as sent first and, only if that object does not exist, decoded once (`+` = space).
    """
    candidates = [raw_key]
    decoded = unquote_plus(raw_key)
    if decoded != raw_key:
        candidates.append(decoded)
    for key in candidates:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            return key, _s3().head_object(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in (
                "404",
                "NoSuchKey",
                "NoSuchVersion",
                "400",
            ):
                raise
    raise ObjectRejectedError("the object no longer exists (deleted or overwritten before the run started)")


def admit(obj: UploadedObject, settings: Settings) -> None:
    """Raise ObjectRejectedError with a reason a person can act on, or return if the object is fine."""
    if not obj.key.startswith(settings.input_prefix):
        raise ObjectRejectedError(f"the key is outside the input prefix '{settings.input_prefix}'")
    if settings.input_suffix and not obj.key.endswith(settings.input_suffix):
        raise ObjectRejectedError(f"the key does not end with the required suffix '{settings.input_suffix}'")
    if obj.key.endswith("/"):
        raise ObjectRejectedError("the key is a folder marker, not a file")
    if obj.size == 0:
        raise ObjectRejectedError("the object is empty (0 bytes)")
    if obj.size > settings.max_input_bytes:
        raise ObjectRejectedError(
            f"the object is {obj.size} bytes, above the limit of {settings.max_input_bytes} bytes"
        )


def options_from_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """Per-object aggregation options may ride along as user metadata `x-amz-meta-sluice-options`."""
    raw = metadata.get(OPTIONS_METADATA_KEY)
    if raw is None:
        return {}
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ObjectRejectedError(
            f"metadata {OPTIONS_METADATA_KEY} is not valid JSON ({error.msg})"
        ) from error
    if not isinstance(options, dict):
        raise ObjectRejectedError(f"metadata {OPTIONS_METADATA_KEY} must be a JSON object")
    return options


def execution_input(obj: UploadedObject, options: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = {"bucket": obj.bucket, "key": obj.key, "size": obj.size}
    if obj.version_id:
        source["versionId"] = obj.version_id
    if obj.etag:
        source["etag"] = obj.etag
    return {"input": source, "options": options}


def start_execution(name: str, payload: dict[str, Any], settings: Settings) -> str:
    """Start the run; a duplicate event finds its execution already there and that is success.

    While the first execution runs, StartExecution with the same name and input simply returns
    it (idempotent); once it has closed, the call fails with ExecutionAlreadyExists. Either way
    exactly one execution exists per uploaded object version.
    """
    try:
        _sfn().start_execution(
            stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps(payload)
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return "duplicate"
        raise
    return "started"


def report_rejection(
    bucket: str, key: str, version_id: str | None, reason: str, resources: list[str]
) -> None:
    detail = {"bucket": bucket, "key": key, "reason": reason}
    if version_id:
        detail["versionId"] = version_id
    response = _events().put_events(
        Entries=[
            {
                "Source": REJECTION_SOURCE,
                "DetailType": REJECTION_DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "Resources": resources,  # the bucket ARN, as the S3 event named it
            }
        ]
    )
    # PutEvents reports per-entry failures in a 200 response:
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise RejectionNotSentError(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")


def handle(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    model = parse(event=event, model=S3EventNotificationEventBridgeModel)
    bucket = model.detail.bucket.name
    s3_object = model.detail.object
    display_key = s3_object.key
    parts = settings.parts_prefix
    if parts and (s3_object.key.startswith(parts) or unquote_plus(s3_object.key).startswith(parts)):
        # Parts of a many-file run: an input manifest dropped later lists them (one run for
        # all), so neither a run nor an alert per part.
        logger.info("part of a many-file run; waiting for its manifest", extra={"key": s3_object.key})
        metrics.add_metric(name="PartsIgnored", unit=MetricUnit.Count, value=1)
        return {"status": "ignored", "bucket": bucket, "key": s3_object.key}
    try:
        key, head = locate_object(bucket, s3_object.key, s3_object.version_id)
        display_key = key
        obj = UploadedObject(
            bucket=bucket,
            key=key,
            size=int(head.get("ContentLength", s3_object.size or 0)),
            etag=(s3_object.etag or head.get("ETag", "")).strip('"') or None,
            version_id=s3_object.version_id or head.get("VersionId"),
            sequencer=s3_object.sequencer,
            metadata={k.lower(): v for k, v in (head.get("Metadata") or {}).items()},
        )
        admit(obj, settings)
        options = options_from_metadata(obj.metadata)
        name = execution_name(bucket, key, obj.version_id or obj.etag, obj.sequencer)
    except ObjectRejectedError as rejection:
        reason = str(rejection)
        logger.warning("object rejected", extra={"bucket": bucket, "key": display_key, "reason": reason})
        metrics.add_metric(name="ObjectsRejected", unit=MetricUnit.Count, value=1)
        report_rejection(bucket, display_key, s3_object.version_id, reason, list(model.resources))
        return {"status": "rejected", "bucket": bucket, "key": display_key, "reason": reason}

    outcome = start_execution(name, execution_input(obj, options), settings)
    if outcome == "duplicate":
        logger.info("duplicate event, execution already exists", extra={"execution_name": name})
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
    else:
        logger.info(
            "execution started (or already running: StartExecution is idempotent)",
            extra={"execution_name": name, "bucket": bucket, "key": key},
        )
        metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=1)
    return {"status": outcome, "executionName": name, "bucket": bucket, "key": key}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, Settings.from_env())
