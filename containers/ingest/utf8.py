"""UTF-8 validation of raw chunks, vectorised (Arrow's validator), without copying them."""

from __future__ import annotations

import struct

import pyarrow as pa

from ingest.rejects import SegmentError


def check_utf8(data: bytes) -> None:
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        raise SegmentError("invalid_utf8", _describe(data)) from None


def _describe(data: bytes) -> str:
    if len(data) > 64 * 1024:
        return "invalid UTF-8"  # only single lines get a precise description
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.end]
        return f"invalid UTF-8: byte {bad.hex(' ')!s} at offset {exc.start} of the line ({exc.reason})"
    return "invalid UTF-8"
