"""Byte streams over the S3 body: counting, peeking and gzip decompression, all bounded.

Memory is bounded by the read size, never by the object size.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from jobkit.errors import BadInput

GZIP_MAGIC = b"\x1f\x8b"
_IN_CHUNK = 1024 * 1024


class ByteSource(Protocol):
    def read(self, n: int) -> bytes: ...


class CountingSource:
    """Counts what comes off the wire (the compressed size for gzip inputs)."""

    def __init__(self, body: ByteSource) -> None:
        self._body = body
        self.bytes_read = 0

    def read(self, n: int) -> bytes:
        data = self._body.read(n)
        self.bytes_read += len(data)
        return data


class Peekable:
    """Lets the sniffer look at the first bytes without losing them for the reader."""

    def __init__(self, src: ByteSource) -> None:
        self._src = src
        self._buf = b""

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            data = self._src.read(n - len(self._buf))
            if not data:
                break
            self._buf += data
        return self._buf[:n]

    def read(self, n: int) -> bytes:
        if self._buf:
            data, self._buf = self._buf[:n], self._buf[n:]
            return data
        return self._src.read(n)


class Gunzip:
    """Streaming gzip decompression with clear errors for corrupt or truncated input.

    Handles multi-member files (what `cat a.gz b.gz` produces) like gzip(1) does; output per
    read is capped at `n` bytes, so a highly compressed input cannot balloon memory.
    """

    def __init__(self, src: ByteSource) -> None:
        self._src = src
        self._dec = zlib.decompressobj(wbits=31)
        self._in_member = False  # bytes fed to the current member's decompressor
        self._tail = b""  # compressed bytes read but not yet consumed
        self._done = False
        self.bytes_out = 0

    def read(self, n: int) -> bytes:
        while not self._done:
            data = self._tail or self._src.read(_IN_CHUNK)
            self._tail = b""
            if not data:
                if self._in_member:
                    raise BadInput(
                        f"gzip input is truncated: the stream ends inside compressed data "
                        f"after {self.bytes_out} decompressed bytes"
                    )
                self._done = True
                break
            self._in_member = True
            try:
                out = self._dec.decompress(data, n)
            except zlib.error as exc:
                raise BadInput(f"input is not valid gzip data: {exc}") from None
            if self._dec.eof:
                # Next member (if any) starts in the bytes after this one's trailer.
                self._tail = self._dec.unused_data
                self._dec = zlib.decompressobj(wbits=31)
                self._in_member = False
            else:
                self._tail = self._dec.unconsumed_tail
            if out:
                self.bytes_out += len(out)
                return out
        return b""
