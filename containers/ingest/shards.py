"""Parquet shards of about the target size, uploaded while the next one is being written.

Rows are cut into shards by the bytes the Parquet writer has actually produced, so a shard
is close to the target whatever the compression ratio. The last allowed shard (max_shards)
takes whatever remains, so the count can never exceed the cap. The output is a pure function
of the input rows: a retried attempt writes the same bytes to the same keys.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.client import BaseClient
from jobkit import s3 as s3io
from jobkit.keys import shard_key
from jobkit.log import JsonLogger
from jobkit.manifest import ShardInfo

ROW_GROUP_ROWS = 128 * 1024
MIN_SLICE_ROWS = 1024  # never write tiny row groups while homing in on the target size
FILL = 0.95  # a shard this full is done; a sliver more would only make the next one tiny
WRITER_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


class ShardWriter:
    def __init__(
        self,
        s3: BaseClient,
        bucket: str,
        work_prefix: str,
        schema: pa.Schema,
        target_bytes: int,
        max_shards: int,
        tmpdir: str,
        log: JsonLogger,
    ) -> None:
        self._s3, self._bucket, self._prefix = s3, bucket, work_prefix
        self._schema = schema
        self._target = target_bytes
        self._max_shards = max_shards
        self._tmpdir = tmpdir
        self._log = log
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._path = ""
        self._rows = 0
        self._bytes_per_row: float | None = None
        self._uploads = ThreadPoolExecutor(1, thread_name_prefix="upload")
        self._upload: Future[None] | None = None
        self.shards: list[ShardInfo] = []

    def write(self, table: pa.Table) -> None:
        if table.schema != self._schema:
            table = table.select(self._schema.names).cast(self._schema)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= ROW_GROUP_ROWS:
            self._emit(self._take(ROW_GROUP_ROWS))

    def close(self) -> list[ShardInfo]:
        while self._pending_rows:
            self._emit(self._take(min(self._pending_rows, ROW_GROUP_ROWS)))
        if self._writer is not None:
            self._finish()
        self._wait_upload()
        self._uploads.shutdown(wait=True)
        return self.shards

    def abort(self) -> None:
        """Stop without finishing: close files, let an in-flight upload end, keep nothing local."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._uploads.shutdown(wait=True, cancel_futures=True)

    def _take(self, rows: int) -> pa.Table:
        table = pa.concat_tables(self._pending)
        head, rest = table.slice(0, rows), table.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        return head

    def _size(self) -> int:
        assert self._sink is not None
        return self._sink.tell()

    def _emit(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._writer is None:
                self._open()
            assert self._writer is not None
            if len(self.shards) == self._max_shards - 1:
                part, table = table, table.slice(table.num_rows)  # the last shard allowed takes all
            else:
                # Until Parquet has told us the real ratio, assume no compression: undershooting
                # is corrected by topping up, overshooting could not be.
                per_row = self._bytes_per_row or table.nbytes / table.num_rows
                if self._rows:
                    per_row = self._size() / self._rows
                fit = int((self._target - self._size()) / per_row)
                fit = max(fit, min(MIN_SLICE_ROWS, table.num_rows))
                part, table = table.slice(0, fit), table.slice(fit)
            self._writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
            self._rows += part.num_rows
            if self._size() >= self._target * FILL and len(self.shards) < self._max_shards - 1:
                self._finish()

    def _open(self) -> None:
        index = len(self.shards)
        self._path = os.path.join(self._tmpdir, f"shard-{index:05d}.parquet")
        self._sink = pa.OSFile(self._path, "wb")
        self._writer = pq.ParquetWriter(self._sink, self._schema, **WRITER_OPTIONS)
        self._rows = 0

    def _finish(self) -> None:
        assert self._writer is not None and self._sink is not None
        self._writer.close()
        self._sink.close()
        self._writer = None
        index = len(self.shards)
        size = os.path.getsize(self._path)
        self._bytes_per_row = size / self._rows
        info = ShardInfo(index=index, key=shard_key(self._prefix, index), rows=self._rows, bytes=size)
        self.shards.append(info)
        # One upload in flight at a time: overlaps with writing, bounds local disk to two shards.
        self._wait_upload()
        self._upload = self._uploads.submit(self._upload_shard, self._path, info)

    def _upload_shard(self, path: str, info: ShardInfo) -> None:
        try:
            s3io.upload_file(self._s3, path, self._bucket, info.key, "application/vnd.apache.parquet")
        finally:
            os.remove(path)
        self._log.info("shard written", shard=info.index, rows=info.rows, bytes=info.bytes, key=info.key)

    def _wait_upload(self) -> None:
        if self._upload is not None:
            self._upload.result()
            self._upload = None
