"""Sample data: realistic card transactions, deterministic by seed, from kilobytes to gigabytes.

    python -m sluice.sampledata out.csv --rows 100000 --seed 7
    python -m sluice.sampledata big.csv.gz --size 1GB
    python -m sluice.sampledata excel.csv --rows 1000 --dialect semicolon-decimal-comma

Columns: transaction_id, timestamp, account, merchant, category, country, amount, currency,
channel, card_present, note. category, country, amount and channel have a few nulls, amounts
include refunds (negative), merchant names and notes include non-ASCII text and commas, and
"NA" (Namibia) is a real country code, not a null. The default aggregation spec of the
pipeline (group by category, country; metrics on amount) fits this data.

Everything is vectorised with pyarrow compute (no per-row Python), batch by batch, so memory
stays flat and a gigabyte of CSV takes seconds. The CSV dialects (DIALECTS: what spreadsheets,
R and other locales write) are rendered row by row with the csv module, which is slower. Batch i draws from random streams seeded by
(seed, i, column), so the output depends only on the seed and the row count.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import gzip as gzip_module
import io
import math
import os
import re
import struct
import sys
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

FORMATS = ("csv", "tsv", "jsonl", "parquet")
BATCH_ROWS = 65_536
START_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
SECONDS_PER_ROW = 3  # a transaction every ~3 s: timestamps rise through the file

CATEGORIES = {
    "groceries": 24,
    "restaurants": 14,
    "transport": 10,
    "electronics": 8,
    "fashion": 8,
    "health": 6,
    "entertainment": 6,
    "utilities": 6,
    "travel": 5,
    "cafés": 5,
    "home & garden": 5,
    "books": 3,
}
# country -> (weight, currency)
COUNTRIES = {
    "US": (22, "USD"),
    "GB": (10, "GBP"),
    "DE": (10, "EUR"),
    "FR": (8, "EUR"),
    "ES": (5, "EUR"),
    "IT": (5, "EUR"),
    "NL": (4, "EUR"),
    "SE": (3, "SEK"),
    "PL": (3, "PLN"),
    "JP": (6, "JPY"),
    "BR": (5, "BRL"),
    "IN": (6, "INR"),
    "CA": (4, "CAD"),
    "AU": (3, "AUD"),
    "MX": (3, "MXN"),
    "NA": (1, "NAD"),
    "ZA": (2, "ZAR"),
}
MERCHANTS = [
    "Acme Market",
    "Café Lumière",
    "Müller Drogerie",
    "東京ラーメン",
    "São Paulo Eletrônicos",
    "Smith, Jones & Co",
    "Northwind Traders",
    "Żabka",
    "Ωmega Books",
    "Blue Bottle",
    "Città Moda",
    "Fjällräven Outlet",
    "QuickRide",
    "Green Grocer",
    "Pixel Palace",
    "Bodega 24",
]
CHANNELS = {"pos": 50, "web": 25, "mobile": 22, "phone": 3}
NOTES = ["gift 🎁", "refund requested", "split bill, 3 ways", "déjà vu purchase", "recurring"]


@dataclass(frozen=True)
class CsvDialect:
    """A way real files are written, and how to read it: Sluice's options and DuckDB's read_csv."""

    description: str
    options: dict[str, object]  # the pipeline's options that read it (besides the spec)
    duckdb: dict[str, object]  # DuckDB read_csv arguments that read it the same way
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    null: str = ""
    decimal: str = "."
    escape: str | None = None  # None: quotes are doubled
    preamble: tuple[str, ...] = ()
    comment_every: int = 0  # a comment line before every n-th row
    multiline: bool = False  # notes and one category hold line breaks and quotes
    quoting: int = csv.QUOTE_MINIMAL


COLUMNS = (
    "transaction_id", "timestamp", "account", "merchant", "category", "country",
    "amount", "currency", "channel", "card_present", "note",
)  # fmt: skip
DIALECTS: dict[str, CsvDialect] = {
    "semicolon-decimal-comma": CsvDialect(
        "European spreadsheet export: ';' between fields, ',' as the decimal mark",
        {"decimal": ","},  # the delimiter is detected
        {"delim": ";", "decimal_separator": ","},
        delimiter=";",
        decimal=",",
    ),
    "na-nulls": CsvDialect(
        "R's write.csv: missing values as NA, text quoted (so Namibia's \"NA\" is null too, as in DuckDB)",
        {"null_values": ["NA", ""]},
        {"nullstr": ["NA", ""]},
        null="NA",
        quoting=csv.QUOTE_NONNUMERIC,
    ),
    "latin-1": CsvDialect(
        "Latin-1 (ISO 8859-1) text, e.g. an older Western European export; unencodable letters become '?'",
        {"encoding": "latin-1"},
        {"encoding": "latin-1"},
        encoding="latin-1",
    ),
    "utf-16": CsvDialect(
        "UTF-16 with a byte-order mark, as some spreadsheet exports write it (detected)",
        {},
        {"encoding": "utf-16"},
        encoding="utf-16",
    ),
    "headerless-tsv": CsvDialect(
        "tab-separated, no header row: the columns are named in the options",
        {"header": False, "columns": list(COLUMNS), "delimiter": "\t"},
        {"delim": "\t", "header": False, "names": list(COLUMNS)},
        delimiter="\t",
        header=False,
        quoting=csv.QUOTE_NONE,
    ),
    "multiline-quoted": CsvDialect(
        "RFC 4180: quoted fields holding line breaks and doubled quotes, in a note and a group key",
        {},
        {"quote": '"', "escape": '"'},
        multiline=True,
    ),
    "backslash-escape": CsvDialect(
        'quotes inside quoted fields escaped as \\" (MySQL, some JSON-minded writers), with line breaks',
        {"escape": "\\"},
        {"quote": '"', "escape": "\\"},
        escape="\\",
        multiline=True,
    ),
    "comments-preamble": CsvDialect(
        "two lines of preamble before the header, and '#' comment lines among the rows",
        {"skip_rows": 2, "comment": "#"},
        {"skip": 2, "comment": "#"},
        preamble=("Card transactions export", "generated by sluice sample-data"),
        comment_every=997,
    ),
}


@dataclass(frozen=True)
class Generated:
    rows: int
    bytes: int  # bytes written to the file (after compression, if any)


def _rand(seed: int, batch: int, salt: int, n: int) -> pa.Array:
    # One independent, reproducible uniform [0, 1) stream per (seed, batch, column).
    initializer = (seed * 1_000_003 + batch * 7_919 + salt * 104_729) & 0x7FFF_FFFF_FFFF_FFFF
    return pc.random(n, initializer=initializer)


def _pick(u: pa.Array, weights: dict[str, int] | dict[str, tuple[int, str]]) -> pa.Array:
    """Weighted choice: indexes into a table where each value fills `weight` slots."""
    names = list(weights)
    slots = [i for i, name in enumerate(names) for _ in range(_weight(weights[name]))]
    idx = pc.cast(pc.floor(pc.multiply(u, len(slots))), pa.int64())
    return pc.take(pa.array(slots, pa.int64()), idx)


def _weight(value: int | tuple[int, str]) -> int:
    return value[0] if isinstance(value, tuple) else value


def _nulls(values: pa.Array, u: pa.Array, rate: float) -> pa.Array:
    return pc.if_else(pc.less(u, rate), pa.scalar(None, values.type), values)


def make_batch(seed: int, batch: int, first_row: int, n: int) -> pa.Table:
    r = [_rand(seed, batch, salt, n) for salt in range(14)]
    row = pa.array(range(first_row, first_row + n), pa.int64())
    tx = pc.binary_join_element_wise(
        "tx-", pc.utf8_lpad(pc.cast(row, pa.string()), width=12, padding="0"), ""
    )
    seconds = pc.add(
        pc.add(pc.multiply(row, SECONDS_PER_ROW), START_EPOCH),
        pc.cast(pc.floor(pc.multiply(r[0], SECONDS_PER_ROW)), pa.int64()),
    )
    timestamp = pc.cast(seconds, pa.timestamp("s", tz="UTC"))  # epoch seconds are UTC
    # Squaring skews activity towards a minority of busy accounts, as in real card data.
    acct = pc.cast(pc.floor(pc.multiply(pc.multiply(r[1], r[1]), 50_000)), pa.int64())
    account = pc.binary_join_element_wise(
        "AC", pc.utf8_lpad(pc.cast(acct, pa.string()), width=6, padding="0"), ""
    )
    merchant_idx = pc.cast(pc.floor(pc.multiply(r[2], len(MERCHANTS))), pa.int64())
    merchant = pc.take(pa.array(MERCHANTS), merchant_idx)
    category = _nulls(pc.take(pa.array(list(CATEGORIES)), _pick(r[3], CATEGORIES)), r[4], 0.005)
    country_idx = _pick(r[5], COUNTRIES)
    country = _nulls(pc.take(pa.array(list(COUNTRIES)), country_idx), r[6], 0.01)
    currency = pc.take(pa.array([c for _, c in COUNTRIES.values()]), country_idx)
    # Log-normal amounts (Box-Muller normal), median ~25, long right tail; 3 % refunds.
    z = pc.multiply(
        pc.sqrt(pc.multiply(pc.ln(pc.subtract(1.0, r[7])), -2.0)),
        pc.cos(pc.multiply(r[8], 2 * math.pi)),
    )
    amount = pc.round(pc.exp(pc.add(pc.multiply(z, 1.1), 3.2)), 2)
    amount = pc.if_else(pc.less(r[9], 0.03), pc.negate(amount), amount)
    amount = _nulls(amount, r[10], 0.015)
    channel = _nulls(pc.take(pa.array(list(CHANNELS)), _pick(r[11], CHANNELS)), r[12], 0.005)
    card_present = pc.equal(channel, "pos")
    note_idx = pc.cast(pc.floor(pc.multiply(r[13], len(NOTES) / 0.04)), pa.int64())
    in_range = pc.less(note_idx, len(NOTES))
    note = pc.take(pa.array(NOTES), pc.if_else(in_range, note_idx, pa.scalar(None, pa.int64())))
    return pa.table(
        {
            "transaction_id": tx,
            "timestamp": timestamp,
            "account": account,
            "merchant": merchant,
            "category": category,
            "country": country,
            "amount": amount,
            "currency": currency,
            "channel": channel,
            "card_present": card_present,
            "note": note,
        }
    )


def _as_text(table: pa.Table) -> pa.Table:
    # ISO 8601 in UTC. Formatting the zone-less value and appending "Z" is ~20x faster than
    # strftime, which converts time zones value by value.
    naive = pc.cast(table["timestamp"], pa.timestamp("s"))
    ts = pc.binary_join_element_wise(pc.replace_substring(pc.cast(naive, pa.string()), " ", "T"), "Z", "")
    return table.set_column(table.schema.get_field_index("timestamp"), "timestamp", ts)


def _json_lines(table: pa.Table) -> pa.Buffer:
    """Render rows as JSON lines, vectorised. Safe because no generated text needs escaping."""
    parts: list[object] = []
    for i, name in enumerate(table.column_names):
        col = table[name]
        if pa.types.is_string(col.type):
            value = pc.binary_join_element_wise('"', col, '"', "")
        else:
            value = pc.cast(col, pa.string())  # numbers and booleans print as JSON literals
        parts.extend(["{" if i == 0 else ",", f'"{name}":', pc.fill_null(value, "null")])
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "").combine_chunks()
    # The values buffer holds the lines back to back: write it as is, no per-row copy.
    offsets = lines.buffers()[1]
    start = struct.unpack_from("<i", offsets, lines.offset * 4)[0]
    end = struct.unpack_from("<i", offsets, (lines.offset + len(lines)) * 4)[0]
    return lines.buffers()[2].slice(start, end - start)


def detect_format(path: str) -> tuple[str, bool]:
    name = path.lower()
    gzipped = name.endswith(".gz")
    name = name.removesuffix(".gz")
    ext = name.rsplit(".", 1)[-1]
    fmt = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl"}.get(ext)
    fmt = fmt or ("parquet" if ext in ("parquet", "pq") else "csv")
    return fmt, gzipped


class _Counting:
    """File wrapper that counts bytes, so generation can stop at a target size."""

    def __init__(self, f: io.BufferedIOBase) -> None:
        self._f = f
        self.count = 0

    def write(self, data: bytes | memoryview) -> int:
        self.count += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:  # the owner closes the real file
        self._f.flush()

    @property
    def closed(self) -> bool:
        return False


def generate(
    path: str | os.PathLike[str],
    rows: int | None = None,
    seed: int = 0,
    fmt: str | None = None,
    *,
    gzip: bool | None = None,
    size_bytes: int | None = None,
    dialect: str | None = None,
) -> Generated:
    """Write `rows` rows (or rows until about `size_bytes` uncompressed bytes) to `path`.

    fmt and gzip default to what the file name says (".csv.gz" -> gzip CSV); `dialect` (a key of
    DIALECTS) writes CSV the way that dialect does, whatever the extension.
    """
    if (rows is None) == (size_bytes is None):
        raise ValueError("give exactly one of rows or size_bytes")
    path = os.fspath(path)
    name_fmt, name_gzip = detect_format(path)
    fmt = fmt or name_fmt
    gzipped = name_gzip if gzip is None else gzip
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "parquet" and gzipped:
        raise ValueError("Parquet compresses internally; gzip applies to text formats only")
    if dialect is not None and dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    with open(path, "wb") as raw:
        # No name, mtime=0: the same seed gives the same bytes, gzip header included.
        gz = (
            gzip_module.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0)
            if gzipped
            else None
        )
        sink = _Counting(gz or raw)  # counts uncompressed bytes, which --size refers to
        if dialect is not None:
            written = _write_dialect(sink, DIALECTS[dialect], rows, size_bytes, seed)
        else:
            written = _write_batches(sink, fmt, rows, size_bytes, seed)
        if gz:
            gz.close()
    return Generated(rows=written, bytes=os.path.getsize(path))


def _write_batches(sink: _Counting, fmt: str, rows: int | None, size_bytes: int | None, seed: int) -> int:
    written, batch = 0, 0
    out = pa.PythonFile(sink, mode="w")
    writer: pcsv.CSVWriter | pq.ParquetWriter | None = None
    try:
        while (rows is not None and written < rows) or (size_bytes is not None and sink.count < size_bytes):
            n = BATCH_ROWS if rows is None else min(BATCH_ROWS, rows - written)
            table = make_batch(seed, batch, written, n)
            if fmt == "parquet":
                writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
                writer.write_table(table)
            elif fmt == "jsonl":
                sink.write(memoryview(_json_lines(_as_text(table))))
            else:
                text = _as_text(table)
                if writer is None:
                    if fmt == "csv":
                        options = pcsv.WriteOptions(quoting_style="needed")
                    else:
                        # Generated text never holds tabs or newlines, so TSV goes unquoted,
                        # header included (Arrow would quote the header).
                        sink.write("\t".join(text.column_names).encode() + b"\n")
                        options = pcsv.WriteOptions(
                            delimiter="\t", quoting_style="none", include_header=False
                        )
                    writer = pcsv.CSVWriter(out, text.schema, write_options=options)
                writer.write_table(text)
            out.flush()
            written += n
            batch += 1
    finally:
        if writer is not None:
            writer.close()
    return written


def _write_dialect(
    sink: _Counting, d: CsvDialect, rows: int | None, size_bytes: int | None, seed: int
) -> int:
    text = io.StringIO()
    writer = csv.writer(
        text,
        delimiter=d.delimiter,
        lineterminator="\n",
        quoting=d.quoting,  # type: ignore[arg-type]
        escapechar=d.escape or ("\\" if d.quoting == csv.QUOTE_NONE else None),
        doublequote=d.escape is None,
    )
    for line in d.preamble:
        text.write(line + "\n")
    if d.header:
        writer.writerow(COLUMNS)
    # The "utf-16" codec writes its byte-order mark once, at the start of the stream.
    encoder = codecs.getincrementalencoder(d.encoding)(errors="replace")
    written, batch = 0, 0
    while (rows is not None and written < rows) or (size_bytes is not None and sink.count < size_bytes):
        n = BATCH_ROWS if rows is None else min(BATCH_ROWS, rows - written)
        table = _as_text(make_batch(seed, batch, written, n))
        columns = [table[name].to_pylist() for name in COLUMNS]
        for i in range(n):
            if d.comment_every and (written + i) % d.comment_every == d.comment_every - 1:
                text.write(f"# checkpoint after row {written + i}\n")
            writer.writerow([_render(d, name, col[i]) for name, col in zip(COLUMNS, columns, strict=True)])
        sink.write(encoder.encode(text.getvalue()))
        text.seek(0)
        text.truncate()
        written += n
        batch += 1
    sink.write(encoder.encode(text.getvalue(), final=True))
    return written


def _render(d: CsvDialect, name: str, value: object) -> object:
    if value is None:
        return d.null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(value).replace(".", d.decimal)
    if d.multiline and name == "note":
        return f'{value}\nsaid "ok"'
    if d.multiline and name == "category" and value == "home & garden":
        return 'home &\n"garden"'
    return value


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?i?b?)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 500KB, 300MB, 1GB)")
    unit = (m.group(2) or "").lower().rstrip("b").rstrip("i")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[unit]
    return int(float(m.group(1)) * scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sluice.sampledata", description=__doc__.split("\n")[0])
    parser.add_argument(
        "path", help="output file; the extension picks the format (.csv, .tsv, .jsonl, .parquet, +.gz)"
    )
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--rows", type=int, help="number of rows")
    amount.add_argument("--size", type=parse_size, help="approximate uncompressed size, e.g. 300MB or 1GB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=FORMATS, help="override the format the extension implies")
    parser.add_argument("--gzip", action=argparse.BooleanOptionalAction, default=None, help="gzip the output")
    parser.add_argument("--dialect", choices=list(DIALECTS), help="write CSV the way this dialect does")
    args = parser.parse_args(argv)
    result = generate(
        args.path,
        args.rows,
        args.seed,
        args.format,
        gzip=args.gzip,
        size_bytes=args.size,
        dialect=args.dialect,
    )
    print(f"wrote {result.rows} rows, {result.bytes} bytes to {args.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
