"""Parse chunks of lines on worker threads, in input order (pyarrow releases the GIL)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa
from jobkit.errors import BadInput

from ingest.lines import MAX_LINE_BYTES, Chunk, MiB
from ingest.rejects import ChunkResult, Parser, RejectTracker, parse_chunk

WORKERS = 2


class UnclosedQuoteError(BadInput):
    """The input ends inside a quoted field. For a split other than an object's last, this
    means the split's end fell inside a quoted field that holds a line break (splits.py)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# Chunks parsed ahead of the shard writer; with 4 MiB chunks this bounds memory to a few
# tens of MiB whatever the input size.
IN_FLIGHT = 4
ChunkParser = Callable[[Chunk, bool], ChunkResult]


def parse_in_order(
    chunks: Iterable[Chunk],
    parse: Parser,
    rejects: RejectTracker,
    parse_whole: ChunkParser | None = None,
    quote: str = '"',
) -> Iterator[pa.Table]:
    """Tables in input order. `parse_whole` (default: parse_chunk with `parse`) may report that
    a chunk ends inside a quoted field; it is then parsed again joined with the next chunk."""

    def default(chunk: Chunk, want: bool) -> ChunkResult:
        return parse_chunk(parse, chunk.data, chunk.first_line, want)

    run = parse_whole or default
    source = iter(chunks)
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="parse")
    pending: deque[tuple[Chunk, Future[ChunkResult]]] = deque()
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < IN_FLIGHT:
                chunk = next(source, None)
                if chunk is None:
                    exhausted = True
                else:
                    pending.append((chunk, pool.submit(run, chunk, rejects.need_examples())))
            if not pending:
                return
            chunk, future = pending.popleft()
            result = future.result()
            while result.open_line is not None:
                # Cut inside a quoted field: the next chunk starts mid-field, so its own result
                # is void. Rare (a cut must land in a multi-line field), so parsed right here.
                following = None
                if pending:
                    following, void = pending.popleft()
                    void.cancel()
                elif not exhausted:
                    following = next(source, None)
                    exhausted = following is None
                if following is None:
                    raise UnclosedQuoteError(
                        f"line {result.open_line}: a quoted field opens here and is not closed by the "
                        f"end of the input (an unbalanced {quote}? set quote to null if fields are not quoted)",
                        result.open_line,
                    )
                chunk = chunk.joined(following)
                if len(chunk.data) > 2 * MAX_LINE_BYTES:
                    raise BadInput(
                        f"line {result.open_line}: a quoted field opens here and is not closed within "
                        f"{MAX_LINE_BYTES // MiB} MiB, the longest record accepted (an unbalanced {quote}? "
                        f"set quote to null if fields are not quoted)"
                    )
                result = run(chunk, rejects.need_examples())
            rejects.add(result)
            for table in result.tables:
                if table.num_rows:
                    yield table
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
