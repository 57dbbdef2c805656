"""S3 access through plain boto3 clients.

boto3 picks up AWS_ENDPOINT_URL by itself, so the same calls reach AWS or the local cloud;
nothing here knows which one it talks to.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

COPY_BUFFER = 8 * 1024 * 1024
# Multipart only for objects that benefit from it; 16 MiB parts x 4 threads bounds the memory
# an upload holds at once to ~64 MiB.
TRANSFER = TransferConfig(
    multipart_threshold=32 * 1024 * 1024,
    multipart_chunksize=16 * 1024 * 1024,
    max_concurrency=4,
    use_threads=True,
)
_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound"}


class NotFound(Exception):
    """The bucket, key or version does not exist."""


def client() -> BaseClient:
    config = Config(
        retries={"mode": "standard", "max_attempts": 8},
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.client("s3", config=config)


def is_not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND


@dataclass
class ObjectStream:
    body: Any  # botocore StreamingBody: read(n) streams the payload without buffering it whole
    size: int
    etag: str
    version_id: str | None
    metadata: dict[str, str]


def open_object(s3: BaseClient, bucket: str, key: str, version_id: str | None = None) -> ObjectStream:
    """One GET whose body is read as a stream (no ranged GETs: one request, no seeks)."""
    kwargs: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        resp = s3.get_object(**kwargs)
    except ClientError as exc:
        if is_not_found(exc):
            raise NotFound(f"s3://{bucket}/{key}") from None
        raise
    return ObjectStream(
        body=resp["Body"],
        size=int(resp["ContentLength"]),
        etag=str(resp.get("ETag", "")).strip('"'),
        version_id=resp.get("VersionId"),
        metadata=dict(resp.get("Metadata") or {}),
    )


def download_to(s3: BaseClient, bucket: str, key: str, dest: IO[bytes], version_id: str | None = None) -> int:
    """Stream an object into an open file with a single GET; returns the byte count."""
    obj = open_object(s3, bucket, key, version_id)
    try:
        shutil.copyfileobj(obj.body, dest, COPY_BUFFER)
    finally:
        obj.body.close()
    return obj.size


def read_bytes(s3: BaseClient, bucket: str, key: str) -> tuple[bytes, dict[str, str]]:
    obj = open_object(s3, bucket, key)
    try:
        return obj.body.read(), obj.metadata
    finally:
        obj.body.close()


def read_json(s3: BaseClient, bucket: str, key: str) -> Any:
    return json.loads(read_bytes(s3, bucket, key)[0])


def put_bytes(
    s3: BaseClient,
    bucket: str,
    key: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
) -> None:
    if len(data) <= TRANSFER.multipart_threshold:
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})
        return
    # Large results (high-cardinality group-bys) go up in parts, like the shards.
    extra: dict[str, Any] = {"ContentType": content_type, "Metadata": metadata or {}}
    s3.upload_fileobj(io.BytesIO(data), bucket, key, ExtraArgs=extra, Config=TRANSFER)


def put_json(s3: BaseClient, bucket: str, key: str, value: Any) -> int:
    data = json.dumps(value, indent=None, separators=(",", ":"), ensure_ascii=False).encode()
    put_bytes(s3, bucket, key, data, "application/json")
    return len(data)


def upload_file(
    s3: BaseClient,
    path: str,
    bucket: str,
    key: str,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
) -> None:
    """Upload from disk; multipart above TRANSFER's threshold, streamed part by part."""
    extra: dict[str, Any] = {"ContentType": content_type}
    if metadata:
        extra["Metadata"] = metadata
    s3.upload_file(path, bucket, key, ExtraArgs=extra, Config=TRANSFER)


def list_objects(s3: BaseClient, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under `prefix`, in key order (ListObjectsV2's order)."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield str(item["Key"]), int(item["Size"])


def list_keys(s3: BaseClient, bucket: str, prefix: str) -> Iterator[str]:
    for key, _ in list_objects(s3, bucket, prefix):
        yield key


def delete_keys(s3: BaseClient, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def delete_prefix(s3: BaseClient, bucket: str, prefix: str) -> int:
    keys = list(list_keys(s3, bucket, prefix))
    delete_keys(s3, bucket, keys)
    return len(keys)
