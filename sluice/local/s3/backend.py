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

6. Completed multipart objects stay as their parts. Joining the parts of a 1 GiB upload writes
1 GiB of memory the process has not touched before (seconds on this kind of machine) and holds
two object sizes at the peak. Here CompleteMultipartUpload stores a `PartsBody`: the parts'
own `bytes`, read-only, with a length, views for byte ranges and iteration in pieces.
GetObject serves that view (ranges included) without joining; every other reader of
`FakeKey.value` (CopyObject, SelectObjectContent, ...) still gets the joined `bytes`, as from
moto. Simple objects are served the same way, so a ranged GET copies nothing either.

7. Checksums are verified. S3 checks an `x-amz-checksum-<algorithm>` header against the body
it received and rejects a mismatch with `BadDigest`
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html); moto 5.2.5 stores and
echoes the header unchecked. PutObject and UploadPart verify it here, and a part's verified
checksum is kept, so a COMPOSITE CompleteMultipartUpload does not read every part again.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import contextvars
import hashlib
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from moto.iam.access_control import PermissionResult
from moto.s3 import models as moto_s3_models
from moto.s3 import notifications as moto_s3_notifications
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML, S3ClientError
from moto.s3.models import FakeBucket, FakeKey, FakeMultipart, MultipartChecksumBuilder
from moto.s3.responses import S3Response
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


# -- 6. object bodies as parts (used by 4 and 5) ------------------------------------------


class PartsBody:
    """An object's bytes as a sequence of immutable pieces (section 6): never joined to serve.

    `len()` is the byte count, `body[a:b]` a view of a byte range (no copy), iteration yields
    the range piece by piece as memoryviews, and `tobytes()` joins. Immutable, so copies of a
    key (moto deep-copies keys in ListObjectVersions) share it.
    """

    __slots__ = ("_parts", "_ends", "_start", "_stop")

    def __init__(self, parts: Sequence[bytes], start: int = 0, stop: int | None = None) -> None:
        self._parts = tuple(parts)
        ends: list[int] = []
        total = 0
        for part in self._parts:
            total += len(part)
            ends.append(total)
        self._ends = ends
        self._start = start
        self._stop = total if stop is None else stop

    def _view(self, start: int, stop: int) -> PartsBody:
        view = PartsBody.__new__(PartsBody)
        view._parts, view._ends, view._start, view._stop = self._parts, self._ends, start, stop
        return view

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, index: slice) -> PartsBody:
        if not isinstance(index, slice):
            raise TypeError("PartsBody supports slices only")
        first, last, step = index.indices(len(self))
        if step != 1:
            raise ValueError("PartsBody slices have step 1")
        return self._view(self._start + first, self._start + max(first, last))

    def __iter__(self) -> Iterator[memoryview]:
        position = self._start
        number = bisect.bisect_right(self._ends, position)
        while position < self._stop and number < len(self._parts):
            part_start = self._ends[number] - len(self._parts[number])
            end = min(self._ends[number], self._stop)
            if end > position:
                yield memoryview(self._parts[number])[position - part_start : end - part_start]
            position = end
            number += 1

    def tobytes(self) -> bytes:
        if len(self._parts) == 1 and self._start == 0 and self._stop == self._ends[0]:
            return self._parts[0]
        return b"".join(self)

    def __bytes__(self) -> bytes:
        return self.tobytes()

    def __copy__(self) -> PartsBody:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> PartsBody:
        return self


# Set while a GetObject response (or a copy of a key) is being built: FakeKey.value is then the
# shared PartsBody instead of joined bytes.
_sharing_body: contextvars.ContextVar[bool] = contextvars.ContextVar("sluice_s3_sharing_body", default=False)


@contextlib.contextmanager
def _sharing() -> Iterator[None]:
    token = _sharing_body.set(True)
    try:
        yield
    finally:
        _sharing_body.reset(token)


def _get_key_value(self: FakeKey) -> Any:
    """FakeKey.value's getter: joined bytes as from moto, or the PartsBody while sharing (section 6)."""
    parts: PartsBody | None = self.__dict__.get("_sluice_parts")
    if parts is None:
        value = _moto_get_key_value(self)
        return PartsBody((value,)) if _sharing_body.get() and isinstance(value, bytes) else value
    return parts if _sharing_body.get() else parts.tobytes()


# Set by sluice.local.s3.api for requests served over HTTP, where a response body may be any
# iterable of bytes-like pieces (mock_aws's in-process responses must be `bytes`).
streaming_responses: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sluice_s3_streaming_responses", default=False
)


def _get_object(self: S3Response) -> Any:
    """S3Response.get_object, answering with the object's PartsBody (section 6).

    moto then applies the Range header by slicing it (`_handle_range_header`: 206 with
    Content-Range, 416 InvalidRange), and Flask's Response iterates it: the endpoint writes the
    parts' memory directly. https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
    """
    if not streaming_responses.get():
        return _moto_get_object(self)
    with _sharing():
        return _moto_get_object(self)


def _key_getstate(self: FakeKey) -> dict[str, Any]:
    """FakeKey.__getstate__ keeping the body shared (moto deep-copies every version to list them)."""
    with _sharing():
        state: dict[str, Any] = _moto_getstate(self)
    if isinstance(state.get("value"), PartsBody) and "_sluice_parts" not in self.__dict__:
        state["value"] = state["value"].tobytes()  # a plain key: its bytes object, shared
    return state


# -- 4. CompleteMultipartUpload ------------------------------------------------------------


def _complete_multipart(
    self: FakeMultipart, body: Iterable[tuple[int, str]]
) -> tuple[PartsBody, str, tuple[str, str, int] | None]:
    """moto's FakeMultipart.complete without joining the parts (sections 4 and 6)."""
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
        with _sharing():
            value = part.value
        values.append(value.tobytes() if isinstance(value, PartsBody) else value)
        if composite:
            # The part's checksum as UploadPart verified it (section 7), else computed as moto does.
            known: tuple[str, bytes] | None = part.__dict__.get("_sluice_checksum")
            if known is not None and known[0] == builder.checksum_algorithm:
                builder.checksum.extend(known[1])
                builder.part_count += 1
            else:
                builder.addPart(values[-1])
        last = part
    if not values:
        raise MalformedXML
    count = len(values)
    total = PartsBody(values)
    del values
    digest = md5_hash()
    digest.update(bytes(md5s))
    etag = f"{digest.hexdigest()}-{count}"
    if composite:
        return total, etag, builder.build()
    # A full-object checksum (CRC64NVME when the upload named none) runs over the parts in order.
    return total, etag, ("FULL_OBJECT", _full_object_checksum(total, builder.checksum_algorithm), 1)


def _full_object_checksum(body: PartsBody, algorithm: str) -> str:
    """compute_checksum over the whole object, fed piece by piece where the algorithm allows."""
    if algorithm in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        checksum = _streaming_checksum(algorithm)
        if checksum is not None:
            for piece in body:
                checksum.update(piece)
            return checksum.b64()
    return compute_checksum(body.tobytes(), algorithm).decode()


class _Checksum:
    def __init__(self, update: Callable[[Any], None], digest: Callable[[], bytes]) -> None:
        self.update = update
        self._digest = digest

    def b64(self) -> str:
        return base64.b64encode(self._digest()).decode()


def _streaming_checksum(algorithm: str) -> _Checksum | None:
    """An incremental form of moto.s3.utils.compute_checksum's algorithm, with the same result."""
    if algorithm in ("SHA1", "SHA256"):
        hashed = hashlib.new(algorithm.lower(), usedforsecurity=False)
        return _Checksum(hashed.update, hashed.digest)
    state = {"crc": 0}
    if algorithm == "CRC32" or (algorithm == "CRC32C" and not _has_crc32c()):
        # compute_checksum falls back to CRC32 without the crc32c package, as does this.
        def crc32(piece: Any) -> None:
            state["crc"] = binascii.crc32(piece, state["crc"])

        return _Checksum(crc32, lambda: state["crc"].to_bytes(4, "big"))
    if algorithm == "CRC32C":
        import crc32c  # type: ignore[import-not-found, unused-ignore]

        def crc32c_update(piece: Any) -> None:
            state["crc"] = crc32c.crc32c(piece, state["crc"])

        return _Checksum(crc32c_update, lambda: state["crc"].to_bytes(4, "big"))
    if algorithm == "CRC64NVME":
        try:
            from awscrt import checksums
        except ImportError:  # compute_checksum falls back to CRC32 without awscrt
            return _streaming_checksum("CRC32")

        def crc64(piece: Any) -> None:
            state["crc"] = checksums.crc64nvme(piece, state["crc"])

        return _Checksum(crc64, lambda: state["crc"].to_bytes(8, "big"))
    return None


def _has_crc32c() -> bool:
    try:
        import crc32c  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


# -- 7. checksums verified ------------------------------------------------------------------

_CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class BadDigest(S3ClientError):
    code = "BadDigest"

    def __init__(self, algorithm: str) -> None:
        # S3's message for a checksum header that does not match the body (ErrorResponses: BadDigest).
        super().__init__("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")


def _verified_checksum(response: S3Response) -> tuple[str, bytes] | None:
    """The (algorithm, raw digest) of the request body when it names one; BadDigest if wrong."""
    headers = response.headers
    if headers.get("x-amz-copy-source"):
        return None
    for algorithm in _CHECKSUM_ALGORITHMS:
        stated = headers.get(f"x-amz-checksum-{algorithm.lower()}")
        if stated is None:
            continue
        body = response.body if isinstance(response.body, bytes) else bytes(response.body or b"")
        raw = compute_checksum(body, algorithm, encode_base64=False)
        if base64.b64encode(raw).decode() != str(stated).strip():
            raise BadDigest(algorithm)
        return algorithm, raw
    return None


def _key_response_put(self: S3Response, *args: Any, **kwargs: Any) -> Any:
    """S3Response._key_response_put verifying a stated checksum first (section 7)."""
    verified = _verified_checksum(self)
    result = _moto_key_response_put(self, *args, **kwargs)
    if verified is not None and "uploadId" in self.querystring and "partNumber" in self.querystring:
        try:
            upload = self.backend.get_bucket(self.bucket_name).multiparts[self.querystring["uploadId"][0]]
            part = upload.parts[int(self.querystring["partNumber"][0])]
        except (KeyError, ValueError, S3ClientError):
            return result
        part.__dict__["_sluice_checksum"] = verified
    return result


# -- 5. object bodies ------------------------------------------------------------------------


def _set_key_value(self: FakeKey, new_value: Any) -> None:
    """FakeKey.value's setter, sharing an in-memory `bytes` body instead of copying it (section 5)
    and keeping a PartsBody as it is (section 6)."""
    buffer = self._value_buffer
    if isinstance(new_value, PartsBody):
        buffer.seek(0)
        buffer.truncate()
        self.__dict__["_sluice_parts"] = new_value
        self.contentsize = len(new_value)
        return
    self.__dict__.pop("_sluice_parts", None)
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
_moto_get_key_value = cast(Callable[[FakeKey], bytes], _moto_key_value.fget)
_moto_set_key_value = cast(Callable[[FakeKey, bytes], None], _moto_key_value.fset)  # moto defines a setter
_key_value = property(_get_key_value, _set_key_value)
_moto_getstate = FakeKey.__getstate__
_moto_get_object = S3Response.get_object
_moto_key_response_put = S3Response._key_response_put


def install(emit: EventEmitter | None) -> None:
    """Route S3's EventBridge notifications to `emit`; evaluate bucket-policy conditions."""
    global _emit
    _emit = emit
    moto_s3_notifications._send_event_bridge_message = _send_event_bridge_message
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
    FakeBucket._log_permissions_enabled_policy = staticmethod(_log_permissions_enabled_policy)  # type: ignore[method-assign]
    FakeMultipart.complete = _complete_multipart  # type: ignore[method-assign,assignment]
    FakeKey.value = _key_value  # type: ignore[method-assign,assignment]
    FakeKey.__getstate__ = _key_getstate  # type: ignore[method-assign]
    S3Response.get_object = _get_object  # type: ignore[method-assign]
    S3Response._key_response_put = _key_response_put  # type: ignore[method-assign]


def uninstall() -> None:
    global _emit
    _emit = None
    moto_s3_notifications._send_event_bridge_message = _moto_send
    FakeBucket.get_permission = _moto_get_permission  # type: ignore[method-assign]
    FakeBucket._log_permissions_enabled_policy = staticmethod(_moto_log_permissions)  # type: ignore[method-assign]
    FakeMultipart.complete = _moto_complete  # type: ignore[method-assign]
    FakeKey.value = _moto_key_value  # type: ignore[method-assign,assignment]
    FakeKey.__getstate__ = _moto_getstate  # type: ignore[method-assign]
    S3Response.get_object = _moto_get_object  # type: ignore[method-assign]
    S3Response._key_response_put = _moto_key_response_put  # type: ignore[method-assign]


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
