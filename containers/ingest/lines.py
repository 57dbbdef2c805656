"""Cut a text stream into chunks of whole lines, keeping track of line numbers.

Chunks end at a line break, so they can be parsed independently, in parallel, and every
rejected row can be reported with its exact line number. A CSV record may hold line breaks
inside a quoted field; a chunk cut inside one is recognised by its parser and joined with the
next chunk (textread.parse_in_order), so this module need not look at quotes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jobkit.errors import BadInput

from ingest.streams import ByteSource

MiB = 1024 * 1024
CHUNK_BYTES = 4 * MiB
# The longest record accepted. Longer lines are bad input, not a reason to grow memory.
MAX_LINE_BYTES = 8 * MiB


@dataclass(frozen=True)
class Chunk:
    data: bytes  # whole lines; the last one may lack its newline at the end of the input
    first_line: int  # 1-based line number of the chunk's first line
    lines: int  # physical lines in data

    def joined(self, following: Chunk) -> Chunk:
        return Chunk(self.data + following.data, self.first_line, self.lines + following.lines)


class LineChunker:
    def __init__(
        self,
        src: ByteSource,
        chunk_bytes: int = CHUNK_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
        first_line: int = 1,
    ) -> None:
        self._src = src
        self._chunk = chunk_bytes
        self._max_line = max_line_bytes
        self._buf = b""
        self._eof = False
        self._line_end = 0  # where peek_line found the line's end
        self.next_line = first_line  # a split starts at a line of the object, not at 1
        self.consumed = 0  # bytes taken by read_line: where the data starts after header lines

    def _fill(self, want: int) -> None:
        parts = [self._buf]
        size = len(self._buf)
        while size < want and not self._eof:
            data = self._src.read(want - size)
            if not data:
                self._eof = True
                break
            parts.append(data)
            size += len(data)
        self._buf = b"".join(parts)

    def _too_long(self) -> BadInput:
        return BadInput(
            f"line {self.next_line} is longer than {self._max_line // MiB} MiB, the longest record "
            f"accepted (is the file binary, or not newline-delimited?)"
        )

    def peek(self, n: int) -> bytes:
        """Up to `n` bytes ahead (fewer at the end of the input), without consuming them."""
        if len(self._buf) < n:
            self._fill(n)
        return self._buf[:n]

    def read_line(self) -> bytes | None:
        """The next line without its line ending; None at the end of the input."""
        line = self.peek_line()
        if line is not None:
            self.consumed += min(self._line_end + 1, len(self._buf))
            self._buf = self._buf[self._line_end + 1 :]
            self.next_line += 1
        return line

    def peek_line(self) -> bytes | None:
        """The next line without its line ending, not consumed; None at the end of the input."""
        while True:
            pos = self._buf.find(b"\n")
            if pos >= 0 or self._eof:
                break
            if len(self._buf) > self._max_line:
                raise self._too_long()
            self._fill(len(self._buf) + self._chunk)
        if pos < 0:
            if not self._buf:
                return None
            pos = len(self._buf)
        if pos > self._max_line:
            raise self._too_long()
        self._line_end = pos
        return self._buf[:pos].rstrip(b"\r")

    def chunks(self) -> Iterator[Chunk]:
        while True:
            self._fill(len(self._buf) + self._chunk)
            if not self._buf:
                return
            first_end = self._buf.find(b"\n")
            if first_end < 0:
                if len(self._buf) > self._max_line:
                    raise self._too_long()
                if not self._eof:
                    continue  # one line spans reads: read on until it ends
                data, self._buf = self._buf, b""
            else:
                # Only the buffer's first line, carried over from earlier reads, can be over-long:
                # every later line lies within the latest read, which is shorter than the limit.
                if first_end > self._max_line:
                    raise self._too_long()
                end = self._buf.rfind(b"\n")
                data, self._buf = self._buf[: end + 1], self._buf[end + 1 :]
            first = self.next_line
            newlines = data.count(b"\n")
            self.next_line += newlines
            yield Chunk(data, first, newlines + (0 if data.endswith(b"\n") else 1))
