"""Which format an input is in: the `format` option, else the key's extension, else its content.

Binary magic numbers are unambiguous, so they override a misleading extension: gzip is
detected by content alone, and a PAR1 header means Parquet whatever the key says (unless the
`format` option says otherwise, which always wins).
"""

from __future__ import annotations

from jobkit.errors import BadInput

PARQUET_MAGIC = b"PAR1"
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".parq": "parquet",
    ".pq": "parquet",
}


def format_from_key(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1].lower()
    for suffix in (".gz", ".gzip"):
        name = name.removesuffix(suffix)
    dot = name.rfind(".")
    return _EXTENSIONS.get(name[dot:]) if dot >= 0 else None


def choose_format(key: str, option: str | None, head: bytes, gzipped: bool) -> str | None:
    """The format, or None when only the (decompressed) text content can tell."""
    is_parquet = head.startswith(PARQUET_MAGIC)
    fmt = option or ("parquet" if is_parquet else format_from_key(key))
    if fmt == "parquet":
        if gzipped:
            raise BadInput("gzip-compressed Parquet is not supported; Parquet compresses internally")
        if not is_parquet:
            raise BadInput(
                f"input is not a Parquet file: it does not start with the PAR1 magic bytes "
                f"(starts with {head[:16]!r})"
            )
    return fmt


def sniff_text(head: bytes) -> str:
    """JSON lines if the first non-blank character opens an object, else CSV or TSV."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "jsonl"
    first_line = text.split(b"\n", 1)[0]
    return "tsv" if first_line.count(b"\t") > first_line.count(b",") else "csv"
