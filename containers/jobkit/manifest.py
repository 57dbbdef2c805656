"""What ingest promises to the later stages: `work/<run>/manifest.json`, written last.

It stays small (well under the contract's 200 KB) whatever the shard count: per-shard detail
lives in `work/<run>/shards/index.json`, rejected-row examples are capped, and so are the input
column names recorded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from jobkit.options import Options

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 200_000
MAX_REJECT_EXAMPLES = 10
MAX_RECORDED_INPUT_COLUMNS = 200
MAX_RECORDED_INPUTS = 100  # objects of an input manifest recorded by name (all are counted)


class InputRef(BaseModel):
    """The execution input's `input` object (SLUICE_INPUT)."""

    # The trigger or a person may add fields; they do not change what is read.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    versionId: str | None = None
    etag: str | None = None
    size: int | None = Field(default=None, ge=0)

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ColumnInfo(BaseModel):
    name: str
    type: str  # Arrow type as text, e.g. "string", "double", "int64"
    role: Literal["group", "metric", "group+metric"]


class RejectExample(BaseModel):
    line: int  # 1-based physical line of the input (the header is line 1)
    reason: str


class Rejections(BaseModel):
    count: int = 0
    by_reason: dict[str, int] = Field(default_factory=dict)
    examples: list[RejectExample] = Field(default_factory=list)


class Timing(BaseModel):
    started_at: str
    finished_at: str
    seconds: float
    detail: dict[str, float] = Field(default_factory=dict)


class ShardInfo(BaseModel):
    index: int
    key: str
    rows: int
    bytes: int


class ShardIndex(BaseModel):
    """`work/<run>/shards/index.json`: per-shard detail kept out of the manifest."""

    run_id: str
    shards: list[ShardInfo]


class Dialect(BaseModel):
    """How a CSV/TSV input was read: the options' values with the detected ones filled in."""

    delimiter: str
    quote: str | None
    escape: str | None
    header: bool
    columns: list[str] | None  # the names given for a headerless file
    skip_rows: int
    comment: str | None
    encoding: str  # e.g. "utf-8", "utf-16-le", "latin-1"
    bom: bool  # the input started with a byte-order mark (skipped)
    decimal: str
    null_values: list[str]
    trim_whitespace: bool
    detected: list[str]  # which of the above were detected rather than set or defaulted
    # Work beyond the fast path (whole lines to pyarrow): "quote-aware" (chunks with fewer records
    # than lines were checked for quoted line breaks), "escape", "comments", "transcoded"; else "fast".
    paths: list[str] = Field(default_factory=list)


class SplitInput(BaseModel):
    """One object of a split run, pinned to the version the planner read."""

    bucket: str
    key: str
    versionId: str | None = None
    etag: str
    size: int
    data_start: int  # byte offset of the first data record (after BOM, skipped rows, header)
    lines_before_data: int  # physical lines before data_start: line numbers start after them
    # JSON lines and Parquet: this object's own column types (an Arrow schema, see SplitIndex.arrow_schema)
    # when they differ from the run's. As in one pass, its rows are read with them, then cast.
    arrow_schema: str | None = None


class ByteRange(BaseModel):
    """Bytes [start, end) of inputs[input]: the records that start in it are read here."""

    input: int
    start: int
    end: int


class RowGroups(BaseModel):
    """Parquet: row groups [first, end) of inputs[input], read whole (their needed column chunks)."""

    input: int
    first: int
    end: int


class Split(BaseModel):
    """What one transform child reads: one range of a large object, or several small objects.

    Text formats are cut into byte ranges; Parquet into whole row groups.
    """

    ranges: list[ByteRange] = Field(default_factory=list)
    row_groups: list[RowGroups] = Field(default_factory=list)


class SplitIndex(BaseModel):
    """`work/<run>/splits/index.json`: what each transform child of a split run reads.

    Written by the planner (ingest) before the manifest; array child i parses splits[i].
    """

    run_id: str
    format: str
    input_columns: list[str]  # all of them (the manifest records at most 200)
    inputs: list[SplitInput]
    splits: list[Split]
    # The columns rows are read into: an Arrow schema in IPC form, base64 (Parquet column types
    # such as timestamps or decimals have no short name). None in plans that predate it: the
    # manifest's column types then hold.
    arrow_schema: str | None = None


class KeyedRejectExample(RejectExample):
    key: str  # the object the line is in


class SplitRejects(BaseModel):
    """`work/<run>/splits/rejects-<i>.json`: split i's rejected rows, lines counted in the whole object."""

    split: int
    count: int
    by_reason: dict[str, int]
    examples: list[KeyedRejectExample]
    fatal: str | None = None  # a problem that stops reading (e.g. an over-long line), exact


class RerunPlan(BaseModel):
    """`work/<run>/reruns/<execution>.json`: the shards a rerun transforms (their partials are missing).

    Array child i of the rerun transforms shard `shards[i]`.
    """

    run_id: str
    execution: str
    shards: list[int]
    shard_count: int  # len(shards), read by the state machine like the manifest's
    of: int  # the run's shard count


class Manifest(BaseModel):
    version: int = MANIFEST_VERSION
    run_id: str
    input: InputRef
    # When the input was an input manifest (ingest/inputs.py): the objects it listed, as read
    # (at most MAX_RECORDED_INPUTS of them), and how many there were.
    inputs: list[InputRef] | None = None
    input_count: int = 1
    format: str
    compression: str | None
    dialect: Dialect | None = None  # CSV/TSV only
    options: Options
    input_column_count: int
    input_columns: list[str]  # at most MAX_RECORDED_INPUT_COLUMNS names
    columns: list[ColumnInfo]  # what the shards hold, in shard order
    shard_count: int  # read by the state machine: 1 -> single job, N -> array of N
    # floor(max_failed_shard_fraction * shard_count): the state machine lets a transform array
    # with at most this many failed children go on to aggregate (ASL cannot multiply).
    max_failed_shards: int = 0
    shards_prefix: str
    shard_index_key: str
    # A split run (ingest planned byte ranges; transform children parse them): where the plan is.
    # The row counts below are then unknown until aggregate adds up what the children read.
    split_index_key: str | None = None
    rows: int | None  # rows accepted into the shards
    rows_read: int | None  # rows accepted + rows rejected
    rows_rejected: int | None
    rejected: Rejections
    bytes_read: int  # bytes of the input object as stored (compressed if gzip); a split run: planner's reads
    bytes_written: int  # total size of the shards
    timings: Timing
    job_id: str | None = None
    attempt: int | None = None
