"""S3 -> EventBridge `Object Created` / `Object Deleted` events on the local cloud."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluice.local.s3 import backend as s3_events
from tests.local.helpers import Local, drain_queue, queue_with_rule

PATTERN = {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"]}


def bucket_with_events(local: Local, name: str = "input-bucket", *, versioned: bool = False) -> Any:
    s3 = local.client("s3")
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    return s3


def received(local: Local, queue: str) -> list[dict[str, Any]]:
    return [json.loads(body) for body in drain_queue(local, queue)]


@pytest.mark.timeout(30)
def test_put_object_emits_object_created(local: Local) -> None:
    queue = queue_with_rule(local, "s3-events", PATTERN)
    s3 = bucket_with_events(local)
    response = s3.put_object(Bucket="input-bucket", Key="incoming/red flower.csv", Body=b"a,b\n1,2\n")

    [event] = received(local, queue)
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["resources"] == ["arn:aws:s3:::input-bucket"]
    detail = event["detail"]
    assert detail["version"] == "0"
    assert detail["bucket"] == {"name": "input-bucket"}
    assert detail["object"]["key"] == "incoming/red flower.csv"  # not URL-encoded
    assert detail["object"]["size"] == 8
    assert detail["object"]["etag"] == response["ETag"].strip('"')
    assert "version-id" not in detail["object"]  # unversioned bucket
    assert len(detail["object"]["sequencer"]) == 16
    assert detail["request-id"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert detail["requester"] == "123456789012"
    assert detail["source-ip-address"] == "127.0.0.1"
    assert detail["reason"] == "PutObject"


@pytest.mark.timeout(30)
def test_multipart_upload_and_copy_emit_object_created(local: Local) -> None:
    queue = queue_with_rule(local, "s3-mpu", PATTERN)
    s3 = bucket_with_events(local, versioned=True)
    upload = s3.create_multipart_upload(Bucket="input-bucket", Key="big.bin")
    parts = []
    for number, body in enumerate([b"x" * 5 * 1024 * 1024, b"tail"], start=1):
        part = s3.upload_part(
            Bucket="input-bucket", Key="big.bin", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    completed = s3.complete_multipart_upload(
        Bucket="input-bucket", Key="big.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    copied = s3.copy_object(
        Bucket="input-bucket", Key="copy.bin", CopySource={"Bucket": "input-bucket", "Key": "big.bin"}
    )

    multipart, copy = received(local, queue)
    assert multipart["detail"]["reason"] == "CompleteMultipartUpload"
    assert multipart["detail"]["object"]["key"] == "big.bin"
    assert multipart["detail"]["object"]["size"] == 5 * 1024 * 1024 + 4
    assert multipart["detail"]["object"]["etag"] == completed["ETag"].strip('"')
    assert multipart["detail"]["object"]["version-id"] == completed["VersionId"]
    assert copy["detail"]["reason"] == "CopyObject"
    assert copy["detail"]["object"]["key"] == "copy.bin"
    assert copy["detail"]["object"]["version-id"] == copied["VersionId"]
    # Later events carry larger sequencers.
    assert copy["detail"]["object"]["sequencer"] > multipart["detail"]["object"]["sequencer"]


@pytest.mark.timeout(30)
def test_delete_emits_object_deleted(local: Local) -> None:
    queue = queue_with_rule(local, "s3-delete", PATTERN)
    s3 = bucket_with_events(local)
    s3.put_object(Bucket="input-bucket", Key="gone.csv", Body=b"1")
    s3.delete_object(Bucket="input-bucket", Key="gone.csv")
    created, deleted = received(local, queue)
    assert deleted["detail-type"] == "Object Deleted"
    assert deleted["detail"]["reason"] == "DeleteObject"
    assert deleted["detail"]["deletion-type"] == "Permanently Deleted"
    assert deleted["detail"]["object"]["key"] == "gone.csv"


@pytest.mark.timeout(30)
def test_buckets_without_eventbridge_send_nothing(local: Local) -> None:
    queue = queue_with_rule(local, "s3-quiet", PATTERN)
    s3 = local.client("s3")
    s3.create_bucket(Bucket="quiet-bucket")
    s3.put_object(Bucket="quiet-bucket", Key="k", Body=b"1")
    assert received(local, queue) == []


@pytest.mark.timeout(30)
def test_moto_still_sends_its_own_event_shape_without_the_fix(local: Local) -> None:
    """Fails once moto sends AWS's S3 event detail itself (then sluice.local.s3.backend can go)."""
    queue = queue_with_rule(local, "s3-moto", PATTERN)
    s3 = bucket_with_events(local)
    with s3_events.suspended():
        s3.put_object(Bucket="input-bucket", Key="k", Body=b"1")
    [event] = received(local, queue)
    assert "eTag" in event["detail"]["object"] and "etag" not in event["detail"]["object"]
    assert event["detail"]["object"]["sequencer"] == "617f08299329d189"
