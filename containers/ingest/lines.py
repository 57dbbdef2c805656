"""Cut a text stream into chunks of whole lines, keeping track of line numbers.

Records must not contain raw newlines (the same assumption pyarrow's CSV reader makes by
default); that is what lets chunks be parsed independently, in parallel, and lets every
rejected row be reported with its exact line number.
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


class LineChunker:
    def __init__(
        self, src: ByteSource, chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        self._src = src
        self._chunk = chunk_bytes
        self._max_line = max_line_bytes
        self._buf = b""
        self._eof = False
        self.next_line = 1

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

    def read_line(self) -> bytes | None:
        """The next line without its line ending; None at the end of the input."""
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
        line, self._buf = self._buf[:pos], self._buf[pos + 1 :]
        self.next_line += 1
        return line.rstrip(b"\r")

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
            self.next_line += data.count(b"\n")
            yield Chunk(data, first)
