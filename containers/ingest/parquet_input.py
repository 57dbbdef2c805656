"""Parquet input: spooled to local disk with one streaming GET, then read row group by row group.

Parquet's footer is at the end, so the file must be seekable; a single sequential GET to a
temporary file is faster than many ranged GETs, and reading by row groups (only the needed
columns) keeps memory bounded by a row group, not by the file. A split run (splits.py) instead
opens the object through ranged GETs and reads only its split's row groups; both ways share
the schema rules and the error messages below.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from jobkit.errors import BadInput
from jobkit.options import Options

from ingest.schema import check_present, shard_type
from ingest.streams import ByteSource

BATCH_ROWS = 65_536
_COPY = 8 * 1024 * 1024


def open_parquet(
    source: str | io.RawIOBase, buffer_size: int = 0, pre_buffer: bool = False
) -> pq.ParquetFile:
    """The file's footer read; an unreadable one is bad input.

    pre_buffer: a row group's needed column chunks are fetched in as few reads as their gaps
    allow, which matters when every read is a GET.
    """
    try:
        file = pq.ParquetFile(source, pre_buffer=pre_buffer, buffer_size=buffer_size)
        file.schema_arrow  # noqa: B018 - converting the schema is where some corrupt footers fail
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"input is not a valid Parquet file: {exc}") from None
    return file


def parquet_schema(file: pq.ParquetFile, options: Options) -> tuple[list[str], pa.Schema]:
    """The file's column names, and the types the spec's columns are read into (shard_type)."""
    native = file.schema_arrow
    input_columns = list(native.names)
    check_present(input_columns, options)
    schema = pa.schema([pa.field(c, shard_type(c, native.field(c).type, options)) for c in options.columns()])
    return input_columns, schema


def read_tables(
    file: pq.ParquetFile, schema: pa.Schema, row_groups: Sequence[int] | None = None
) -> Iterator[pa.Table]:
    """The spec's columns (of the given row groups, else all), in `schema`'s types."""
    batches = file.iter_batches(
        batch_size=BATCH_ROWS, row_groups=row_groups, columns=schema.names, use_threads=True
    )
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"Parquet input is corrupt: {exc}") from None
        if batch is None:
            return
        yield pa.Table.from_batches([batch]).select(schema.names).cast(schema)


class ParquetReader:
    format = "parquet"

    def __init__(self, src: ByteSource, options: Options, tmpdir: str) -> None:
        self._options = options
        path = os.path.join(tmpdir, "input.parquet")
        with open(path, "wb") as out:
            while data := src.read(_COPY):
                out.write(data)
        self._file = open_parquet(path, buffer_size=_COPY)
        self.input_columns, self.schema = parquet_schema(self._file, options)
        self.rows_accepted = 0

    def tables(self) -> Iterator[pa.Table]:
        for table in read_tables(self._file, self.schema):
            self.rows_accepted += table.num_rows
            yield table
