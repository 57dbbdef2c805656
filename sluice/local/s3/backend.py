"""S3 corrections for the local cloud: EventBridge events and bucket-policy conditions.

1. S3 -> EventBridge events, replacing moto 5.2.5's.

With EventBridge enabled on a bucket, S3 sends `Object Created` for PutObject, POST Object,
CopyObject and CompleteMultipartUpload, and `Object Deleted` for deletes
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventBridge.html; detail fields:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html). moto 5.2.5 sends them
synchronously to every bus's rules, where an SNS/Lambda/Step Functions target raises and the
rest is silently skipped, with `eTag` for `etag`, a constant sequencer and a constant
request id. Here moto's hook emits the AWS-shaped event through the local EventBridge
delivery instead (default bus, asynchronous), with the request id the client saw.

Choices where AWS documents nothing:
- `detail.object.key` is the key as stored, NOT URL-encoded. S3 notification *records*
  URL-encode keys ("red flower.jpg" -> "red+flower.jpg"), but for EventBridge the encoding is
  not documented; the plain key is what a consumer can use directly.
- `sequencer` is 16 hex digits, strictly increasing within the process (AWS promises only
  that later events for the same key have larger sequencers).
- `requester` is the bucket owner's account (the local cloud has one account).
Other S3 EventBridge event types (restore, tagging, ACL, lifecycle) are not emitted.

2. Bucket policies. moto evaluates a bucket policy's statements for object requests itself,
ignoring condition operators it does not know and treating a missing condition key as
satisfied, so the usual TLS-only statement (`Deny s3:* when Bool aws:SecureTransport false`)
denies every request. The local cloud's IAM (sluice.local.iam) evaluates bucket policies with
AWS's full logic before a request reaches moto, so moto's own check is switched off here
(`get_permission` is neutral): one evaluator, not two.

3. PutBucketLogging: moto's check for the log-delivery grant in the target bucket's policy
crashes (HTTP 500) on any statement whose Principal is the string "*", such as the TLS-only
statement above. Such statements cannot grant the logging service anything, so they are
left out of that check.

4. CompleteMultipartUpload without redundant copies. moto 5.2.5's `FakeMultipart.complete`
builds the object by growing a bytearray part by part, copies it again into `bytes`, reads
every part a second time for the checksum and, for a full-object checksum (CRC64NVME when
the upload named none), copies the whole object into yet another bytearray. On a 1 GiB
upload that is five object-sized copies after the last part arrived, which on this kind of
machine (first-touch memory ~300-600 MB/s) takes seconds. The replacement validates the
same way (InvalidPart, EntityTooSmall, MalformedXML), computes the same ETag
(md5 of the part md5s, `-<count>`) and checksum, and joins the parts once.

5. Object bodies without a copy. moto 5.2.5 writes every object body (each PutObject, each
uploaded part, each completed multipart object) into the key's in-memory
SpooledTemporaryFile, copying it once more. Here a body that fits in memory becomes that
file's BytesIO directly: CPython's BytesIO shares an initial `bytes` object until it is
written to, so reads (GetObject, the ETag's MD5, CompleteMultipartUpload) see the request's
bytes themselves. Bodies above the buffer size, `str` or `bytearray` bodies take moto's path.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from moto.iam.access_control import PermissionResult
from moto.s3 import models as moto_s3_models
from moto.s3 import notifications as moto_s3_notifications
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeBucket, FakeKey, FakeMultipart, MultipartChecksumBuilder
from moto.s3.utils import compute_checksum
from moto.utilities.utils import md5_hash

from sluice.local.events.backend import iso_time

log = logging.getLogger(__name__)

# (entry, region, account_id) -> None, as sluice.local.stepfunctions.backend.EventEmitter.
EventEmitter = Callable[[dict[str, Any], str, str], None]

_REASONS = {
    "s3:ObjectCreated:Put": ("Object Created", "PutObject"),
    "s3:ObjectCreated:Post": ("Object Created", "POST Object"),
    "s3:ObjectCreated:Copy": ("Object Created", "CopyObject"),
    "s3:ObjectCreated:CompleteMultipartUpload": ("Object Created", "CompleteMultipartUpload"),
    "s3:ObjectRemoved:Delete": ("Object Deleted", "DeleteObject"),
    "s3:ObjectRemoved:DeleteMarkerCreated": ("Object Deleted", "DeleteObject"),
}
_DELETION_TYPES = {
    "s3:ObjectRemoved:Delete": "Permanently Deleted",
    "s3:ObjectRemoved:DeleteMarkerCreated": "Delete Marker Created",
}


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    source_ip: str


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "sluice_s3_request", default=None
)


class _Sequencer:
    """Strictly increasing 16-hex-digit sequencers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:016x}"[-16:]


_sequencer = _Sequencer()
_emit: EventEmitter | None = None


def object_event_entry(event_name: str, bucket: Any, key: Any) -> dict[str, Any] | None:
    """The PutEvents entry S3 sends for a moto notification event, or None if not emitted."""
    event_name = str(getattr(event_name, "value", event_name))
    kind = _REASONS.get(event_name)
    if kind is None:
        return None
    if event_name == "s3:ObjectCreated:Put" and getattr(key, "multipart", None) is not None:
        # moto's CompleteMultipartUpload stores the object through put_object (which notifies
        # `Put`) and then notifies `CompleteMultipartUpload`; S3 sends only the latter.
        return None
    detail_type, reason = kind
    request = current_request.get() or RequestInfo(uuid.uuid4().hex[:16].upper(), "127.0.0.1")
    obj: dict[str, Any] = {"key": key.name}
    if detail_type == "Object Created":
        obj["size"] = key.size
        obj["etag"] = key.etag.strip('"')
    if bucket.is_versioned and key.version_id != "null":
        obj["version-id"] = key.version_id
    obj["sequencer"] = _sequencer.next()
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": obj,
        "request-id": request.request_id,
        "requester": bucket.account_id,
        "source-ip-address": request.source_ip,
        "reason": reason,
    }
    if event_name in _DELETION_TYPES:
        detail["deletion-type"] = _DELETION_TYPES[event_name]
    return {
        "Source": "aws.s3",
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Resources": [f"arn:aws:s3:::{bucket.name}"],
        "Time": iso_time(key.last_modified) if detail_type == "Object Created" else None,
    }


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    # Replaces moto.s3.notifications._send_event_bridge_message; moto only calls it when the
    # bucket's notification configuration has EventBridgeConfiguration.
    if _emit is None:
        return
    try:
        entry = object_event_entry(event_name, bucket, key)
        if entry is not None:
            _emit(entry, bucket.region_name, account_id)
    except Exception:  # S3 sends events asynchronously: the request itself must not fail
        log.exception("emitting S3 %s event for s3://%s/%s failed", event_name, bucket.name, key.name)


# -- 2. bucket policies: decided by the IAM gate ---------------------------------------------


def _get_permission(self: Any, action: str, resource: str) -> PermissionResult:
    """Replaces moto's FakeBucket.get_permission: the endpoint's IAM gate already decided."""
    return PermissionResult.NEUTRAL


# -- 3. PutBucketLogging with string principals -----------------------------------------------

_moto_log_permissions = FakeBucket._log_permissions_enabled_policy


def _log_permissions_enabled_policy(target_bucket: Any, target_prefix: str | None) -> bool:
    """Replaces moto's static method: only statements with a Principal object can grant."""
    if target_bucket.policy:
        policy = json.loads(target_bucket.policy)
        found = policy["Statement"]
        statements = [
            s
            for s in (found if isinstance(found, list) else [found])
            if isinstance(s.get("Principal", {}), dict)
        ]
        target_bucket = SimpleNamespace(
            policy=json.dumps(policy | {"Statement": statements}).encode(),
            partition=target_bucket.partition,
            name=target_bucket.name,
        )
    return bool(_moto_log_permissions(target_bucket, target_prefix))


# -- 4. CompleteMultipartUpload ------------------------------------------------------------


def _complete_multipart(
    self: FakeMultipart, body: Iterable[tuple[int, str]]
) -> tuple[bytes, str, tuple[str, str, int] | None]:
    """moto's FakeMultipart.complete with the object assembled by one join (section 4)."""
    builder = MultipartChecksumBuilder(
        self.metadata.get("x-amz-checksum-algorithm"), self.metadata.get("x-amz-checksum-type")
    )
    composite = builder.checksum_type == "COMPOSITE"
    values: list[bytes] = []
    md5s = bytearray()
    last = None
    for number, etag in body:
        part = self.parts.get(number)
        part_etag = part.etag.replace('"', "") if part is not None else None
        if part is None or part_etag != etag.replace('"', ""):
            raise InvalidPart()
        # Read at call time, as moto does: tests and users may lower it (S3_UPLOAD_PART_MIN_SIZE).
        # moto.s3.models only imports it (from moto.settings), but its global is the one moto's own check
        # reads and tests patch; strict mypy (no implicit re-export) objects, the default run does not.
        if last is not None and last.contentsize < moto_s3_models.S3_UPLOAD_PART_MIN_SIZE:  # type: ignore[attr-defined, unused-ignore]
            raise EntityTooSmall()
        md5s.extend(bytes.fromhex(part_etag))
        value = part.value
        values.append(value)
        if composite:
            builder.addPart(value)
        last = part
    if not values:
        raise MalformedXML
    count = len(values)
    total = b"".join(values)
    del values
    digest = md5_hash()
    digest.update(bytes(md5s))
    etag = f"{digest.hexdigest()}-{count}"
    if composite:
        return total, etag, builder.build()
    return total, etag, ("FULL_OBJECT", compute_checksum(total, builder.checksum_algorithm).decode(), 1)


# -- 5. object bodies ------------------------------------------------------------------------


def _set_key_value(self: FakeKey, new_value: bytes) -> None:
    """FakeKey.value's setter, sharing an in-memory `bytes` body instead of copying it (section 5)."""
    buffer = self._value_buffer
    # SpooledTemporaryFile keeps its BytesIO in `_file` until it rolls over to disk at `_max_size`.
    if type(new_value) is bytes and not buffer._rolled and len(new_value) <= buffer._max_size:  # type: ignore[attr-defined]  # private SpooledTemporaryFile state, deliberately read
        buffer._file = io.BytesIO(new_value)
        self.contentsize = len(new_value)
    else:
        _moto_set_key_value(self, new_value)


# -- install ---------------------------------------------------------------------------------

_moto_send = moto_s3_notifications._send_event_bridge_message
_moto_get_permission = FakeBucket.get_permission
_moto_complete = FakeMultipart.complete
_moto_key_value = cast(property, FakeKey.value)  # read on the class, `value` is the property object
_moto_set_key_value = cast(Callable[[FakeKey, bytes], None], _moto_key_value.fset)  # moto defines a setter
_key_value = property(_moto_key_value.fget, _set_key_value)


def install(emit: EventEmitter | None) -> None:
    """Route S3's EventBridge notifications to `emit`; evaluate bucket-policy conditions."""
    global _emit
    _emit = emit
    moto_s3_notifications._send_event_bridge_message = _send_event_bridge_message
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
    FakeBucket._log_permissions_enabled_policy = staticmethod(_log_permissions_enabled_policy)  # type: ignore[method-assign]
    FakeMultipart.complete = _complete_multipart  # type: ignore[method-assign]
    FakeKey.value = _key_value  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    global _emit
    _emit = None
    moto_s3_notifications._send_event_bridge_message = _moto_send
    FakeBucket.get_permission = _moto_get_permission  # type: ignore[method-assign]
    FakeBucket._log_permissions_enabled_policy = staticmethod(_moto_log_permissions)  # type: ignore[method-assign]
    FakeMultipart.complete = _moto_complete  # type: ignore[method-assign]
    FakeKey.value = _moto_key_value  # type: ignore[method-assign,assignment]


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """moto as shipped, for the duration (tests use it to check the gap still exists)."""
    emit, installed = _emit, FakeBucket.get_permission is _get_permission
    uninstall()
    try:
        yield
    finally:
        if installed:
            install(emit)
