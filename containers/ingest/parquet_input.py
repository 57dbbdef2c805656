"""Parquet input: spooled to local disk with one streaming GET, then read row group by row group.

Parquet's footer is at the end, so the file must be seekable; a single sequential GET to a
temporary file is faster than many ranged GETs, and reading by row groups (only the needed
columns) keeps memory bounded by a row group, not by the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from jobkit.errors import BadInput
from jobkit.options import Options

from ingest.schema import check_present, shard_type
from ingest.streams import ByteSource

BATCH_ROWS = 65_536
_COPY = 8 * 1024 * 1024


class ParquetReader:
    format = "parquet"

    def __init__(self, src: ByteSource, options: Options, tmpdir: str) -> None:
        self._options = options
        path = os.path.join(tmpdir, "input.parquet")
        with open(path, "wb") as out:
            shutil.copyfileobj(src, out, _COPY)  # type: ignore[misc]
        try:
            self._file = pq.ParquetFile(path, pre_buffer=False, buffer_size=_COPY)
            native = self._file.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"input is not a valid Parquet file: {exc}") from None
        self.input_columns = list(native.names)
        check_present(self.input_columns, options)
        self.schema = pa.schema(
            [pa.field(c, shard_type(c, native.field(c).type, options)) for c in options.columns()]
        )
        self.rows_accepted = 0

    def tables(self) -> Iterator[pa.Table]:
        batches = self._file.iter_batches(batch_size=BATCH_ROWS, columns=self.schema.names, use_threads=True)
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as exc:
                raise BadInput(f"Parquet input is corrupt: {exc}") from None
            if batch is None:
                return
            table = pa.Table.from_batches([batch]).select(self.schema.names).cast(self.schema)
            self.rows_accepted += table.num_rows
            yield table
