"""Object bodies in the local cloud (sluice/local/s3/backend.py, sections 4 and 5): PutObject, UploadPart
and CompleteMultipartUpload give moto 5.2.5's answers without its object-sized copies."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.s3.models import FakeKey

from sluice.local.s3 import backend as local_s3

pytestmark = pytest.mark.timeout(60)

PART = 5 * 1024 * 1024  # S3's minimum part size (all parts but the last)
BUCKET = "multipart-bucket"


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture
def corrected() -> Iterator[None]:
    local_s3.install(None)
    try:
        yield
    finally:
        local_s3.uninstall()


def _upload(s3: Any, key: str, parts: list[bytes], **create: Any) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key, **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        extra = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
        response = s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **extra
        )
        entry = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            entry["ChecksumCRC32"] = response["ChecksumCRC32"]
        done.append(entry)
    return upload_id, done


def _complete(s3: Any, key: str, parts: list[bytes], **create: Any) -> dict[str, Any]:
    upload_id, done = _upload(s3, key, parts, **create)
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return {
        "etag": head["ETag"],
        "checksums": {k: v for k, v in head.items() if k.startswith("Checksum")},
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }


def _parts(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(PART), rng.randbytes(PART), rng.randbytes(1234)]


CASES = [
    pytest.param({}, id="no-checksum (moto: full-object CRC64NVME)"),
    pytest.param({"ChecksumAlgorithm": "CRC32"}, id="crc32-composite"),
    pytest.param({"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}, id="crc32-full-object"),
]


@pytest.mark.parametrize("create", CASES)
def test_same_object_etag_and_checksum_as_moto(client: Any, create: dict[str, Any]) -> None:
    parts = _parts(1)
    expected = _complete(client, "as-moto", parts, **create)
    local_s3.install(None)
    try:
        got = _complete(client, "corrected", parts, **create)
    finally:
        local_s3.uninstall()
    assert got == expected
    joined = b"".join(parts)
    assert got["size"] == len(joined) and got["sha256"] == hashlib.sha256(joined).hexdigest()
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert got["etag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'  # S3's multipart ETag form
    if create.get("ChecksumType") == "FULL_OBJECT":
        crc = base64.b64encode(zlib.crc32(joined).to_bytes(4, "big")).decode()
        assert got["checksums"]["ChecksumCRC32"] == crc


def test_wrong_etag_is_invalid_part(client: Any, corrected: None) -> None:
    upload_id, done = _upload(client, "bad-etag", _parts(2))
    done[1]["ETag"] = '"' + "0" * 32 + '"'
    with pytest.raises(ClientError) as error:
        client.complete_multipart_upload(
            Bucket=BUCKET, Key="bad-etag", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    assert error.value.response["Error"]["Code"] == "InvalidPart"


def test_small_part_before_the_last_is_entity_too_small(client: Any, corrected: None) -> None:
    upload_id, done = _upload(client, "small", [os.urandom(1000), os.urandom(1000)])
    with pytest.raises(ClientError) as error:
        client.complete_multipart_upload(
            Bucket=BUCKET, Key="small", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    assert error.value.response["Error"]["Code"] == "EntityTooSmall"


def _peak_of_complete(s3: Any, key: str, parts: list[bytes]) -> int:
    upload_id, done = _upload(s3, key, parts)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_complete_allocates_less_than_moto(client: Any) -> None:
    """Fails when moto stops copying the object several times (then section 4 can go) or when
    the correction stops saving anything."""
    parts = [os.urandom(PART) for _ in range(4)]
    size = sum(map(len, parts))
    moto_peak = _peak_of_complete(client, "moto", parts)
    local_s3.install(None)
    try:
        corrected_peak = _peak_of_complete(client, "corrected", parts)
    finally:
        local_s3.uninstall()
    assert moto_peak >= 3 * size, f"moto 5.2.5 peaks at >= 3 object sizes; now {moto_peak / size:.1f}"
    assert corrected_peak <= 2.2 * size, f"corrected peak {corrected_peak / size:.1f} object sizes"


def test_moto_copies_every_body_and_the_correction_shares_it() -> None:
    """Fails when moto stops copying bodies into the key's buffer (then section 5 can go)."""
    body = os.urandom(1024 * 1024)  # below moto's default in-memory buffer (~5 MiB)
    assert FakeKey("k", body, account_id="123456789012", region_name="us-east-1").value is not body
    local_s3.install(None)
    try:
        key = FakeKey("k", body, account_id="123456789012", region_name="us-east-1")
        assert key.value is body
        assert key.etag == f'"{hashlib.md5(body).hexdigest()}"' and key.contentsize == len(body)
        key.value = b"replaced"  # overwriting works as before
        assert (key.value, key.contentsize) == (b"replaced", 8)
        assert FakeKey("t", "text", account_id="123456789012", region_name="us-east-1").value == b"text"
    finally:
        local_s3.uninstall()


def test_bodies_round_trip_through_the_corrected_backend(client: Any, corrected: None) -> None:
    body = os.urandom(PART + 17)
    client.put_object(Bucket=BUCKET, Key="plain", Body=body)
    assert client.get_object(Bucket=BUCKET, Key="plain")["Body"].read() == body
    assert client.get_object(Bucket=BUCKET, Key="plain", Range="bytes=10-19")["Body"].read() == body[10:20]
    client.copy_object(Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "plain"})
    assert client.get_object(Bucket=BUCKET, Key="copy")["Body"].read() == body
    client.put_object(Bucket=BUCKET, Key="plain", Body=b"second version")
    assert client.get_object(Bucket=BUCKET, Key="plain")["Body"].read() == b"second version"
    assert client.get_object(Bucket=BUCKET, Key="copy")["Body"].read() == body
