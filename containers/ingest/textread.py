"""Parse chunks of lines on worker threads, in input order (pyarrow releases the GIL)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from ingest.lines import Chunk
from ingest.rejects import ChunkResult, Parser, RejectTracker, parse_chunk

WORKERS = 2
# Chunks parsed ahead of the shard writer; with 4 MiB chunks this bounds memory to a few
# tens of MiB whatever the input size.
IN_FLIGHT = 4


def parse_in_order(chunks: Iterable[Chunk], parse: Parser, rejects: RejectTracker) -> Iterator[pa.Table]:
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="parse")
    pending: deque[Future[ChunkResult]] = deque()
    try:
        for chunk in chunks:
            pending.append(
                pool.submit(parse_chunk, parse, chunk.data, chunk.first_line, rejects.need_examples())
            )
            while len(pending) >= IN_FLIGHT:
                yield from _collect(pending.popleft(), rejects)
        while pending:
            yield from _collect(pending.popleft(), rejects)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(future: Future[ChunkResult], rejects: RejectTracker) -> Iterator[pa.Table]:
    result = future.result()
    rejects.add(result)
    for table in result.tables:
        if table.num_rows:
            yield table
