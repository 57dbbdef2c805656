"""Text encodings: a byte-order mark decides where there is one, the `encoding` option otherwise.

Everything after this point reads UTF-8, so other encodings are transcoded as the stream is
read (bounded memory, line breaks unchanged, so line numbers stay the file's own).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from jobkit.errors import BadInput

from ingest.streams import ByteSource, Peekable

UTF8_BOM = b"\xef\xbb\xbf"
# Longest first: the UTF-8 mark is three bytes, the UTF-16 ones two.
BOMS = ((UTF8_BOM, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_READ = 1024 * 1024


@dataclass(frozen=True)
class TextEncoding:
    name: str  # what the input was read as, e.g. "utf-8", "utf-16-le", "cp1252"
    bom: bool
    detected: bool  # from a byte-order mark rather than the option


def open_text(src: Peekable, option: str | None) -> tuple[ByteSource, TextEncoding]:
    """The input as UTF-8 without its byte-order mark, and how it was encoded."""
    head = src.peek(3)
    found = next(((bom, name) for bom, name in BOMS if head.startswith(bom)), None)
    if found is not None:
        src.read(len(found[0]))  # a byte-order mark is not part of the first record
    mark = found[1] if found else None
    if option == "utf-16":
        if mark is None or mark == "utf-8":
            raise BadInput(
                "encoding 'utf-16' needs a byte-order mark (FF FE or FE FF) at the start of the input, "
                f"and this input {'starts with a UTF-8 one' if mark else 'has none'}"
            )
        return Transcoder(src, mark), TextEncoding(mark, True, False)
    if mark is not None and option is not None and not (mark == "utf-8" and option.startswith("utf-8")):
        raise BadInput(
            f"the input starts with a {mark.upper()} byte-order mark, but the encoding option says "
            f"{option!r}; remove the option or set it to match"
        )
    if mark is not None and mark != "utf-8":
        return Transcoder(src, mark), TextEncoding(mark, True, True)
    if option in (None, "utf-8", "utf-8-sig"):
        return src, TextEncoding("utf-8", mark is not None, mark is not None and option is None)
    assert option is not None
    return Transcoder(src, option), TextEncoding(option, False, False)


class Transcoder:
    """Reads `encoding`, returns UTF-8; an undecodable byte is bad input naming its offset."""

    def __init__(self, src: ByteSource, encoding: str) -> None:
        self._src = src
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._offset = 0  # input bytes handed to the decoder so far
        self._done = False

    def read(self, n: int) -> bytes:
        while not self._done:
            data = self._src.read(min(n, _READ))
            final = not data
            try:
                text = self._decoder.decode(data, final=final)
            except UnicodeDecodeError as exc:
                where = self._offset + exc.start
                raise BadInput(
                    f"input is not valid {self._encoding}: {exc.reason} at byte {where} of the file "
                    f"(byte {exc.object[exc.start : exc.start + 1].hex()}); set the encoding option "
                    f"to the file's encoding"
                ) from None
            self._offset += len(data)
            self._done = final
            if text:
                return text.encode("utf-8")
        return b""
