"""The execution's `options` object (SLUICE_OPTIONS): aggregation spec, input format, tolerances.

The default spec fits the bundled sample data (`python -m sluice.sampledata`).
"""

from __future__ import annotations

import json
import os
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, model_validator

from jobkit.errors import BadInput

Metric = Literal["count", "sum", "mean", "min", "max", "stddev"]
InputFormat = Literal["csv", "tsv", "jsonl", "parquet"]
Encoding = Literal["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
# Delimiters detection chooses among; any other single character can be set explicitly.
DETECTED_DELIMITERS = (",", ";", "\t", "|")
METRICS: tuple[str, ...] = get_args(Metric)
# These need numbers; count/min/max also work on text (min/max compare UTF-8 bytes, as DuckDB does).
NUMERIC_METRICS = frozenset({"sum", "mean", "stddev"})
ROWS_COLUMN = "rows"


def _default_metrics() -> dict[str, list[Metric]]:
    return {"amount": ["count", "sum", "mean", "min", "max", "stddev"]}


class Options(BaseModel):
    # Unknown keys are refused: a misspelt "metric" silently falling back to the default
    # spec would produce a plausible but wrong result.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_alias=True, validate_by_name=False, serialize_by_alias=True
    )

    group_by: list[str] = Field(default_factory=lambda: ["category", "country"])
    metrics: dict[str, list[Metric]] = Field(default_factory=_default_metrics)
    format: InputFormat | None = None
    max_bad_row_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    # Shards allowed to fail (after their retries) with the run still producing a result from the
    # others, marked incomplete; `sluice rerun` fills the gaps. 0: any failed shard fails the run.
    max_failed_shard_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Per-run override of the stack's ShardTargetMb (SLUICE_SHARD_TARGET_MB): controls the fan-out
    # of one run without redeploying, e.g. to try a file with more, smaller transform children.
    shard_target_mb: float | None = Field(default=None, gt=0.0, le=1024.0)
    # Per-run override of SLUICE_SPLIT_TARGET_MB: input bytes per transform child of a split run
    # (docs/splits.md); an input of at most this size is read in one pass.
    split_target_mb: float | None = Field(default=None, gt=0.0, le=102400.0)
    # Fault injection for testing retry strategies and notifications: transform exits 1 with
    # "injected failure for shard N" for these indexes ...
    fail_shards: list[NonNegativeInt] = Field(default_factory=list)
    # ... and blocks until it is killed (SIGTERM -> 143) for these, to exercise attempt timeouts.
    hang_shards: list[NonNegativeInt] = Field(default_factory=list)

    # CSV/TSV dialect (docs/contracts.md, "Options"). None means: detect, or the format's default.
    null_values: list[str] = Field(default_factory=lambda: [""])  # fields read as null
    delimiter: str | None = None  # detected among DETECTED_DELIMITERS when not set
    quote: str | None = '"'  # None: fields are never quoted
    escape: str | None = None  # None: a quote inside a quoted field is doubled ("")
    header: bool = True
    # Named `columns` in JSON; the attribute has another name because columns() is taken.
    column_names: list[str] | None = Field(default=None, alias="columns")
    skip_rows: NonNegativeInt = 0  # physical lines before the header (or first row)
    comment: str | None = None  # lines starting with it are skipped
    encoding: Encoding | None = None  # None: from a byte-order mark, else UTF-8
    decimal: Literal[".", ","] = "."
    trim_whitespace: bool = False

    @model_validator(mode="after")
    def _check_dialect(self) -> Options:
        for name in ("delimiter", "quote", "escape", "comment"):
            value = getattr(self, name)
            if value is not None and (len(value) != 1 or value in "\r\n"):
                raise ValueError(f"{name} must be one character other than a line break, got {value!r}")
        chars = {n: getattr(self, n) for n in ("delimiter", "quote", "escape", "comment")}
        seen = [(n, c) for n, c in chars.items() if c is not None]
        for i, (name, char) in enumerate(seen):
            for other, other_char in seen[i + 1 :]:
                if char == other_char:
                    raise ValueError(f"{name} and {other} must differ, both are {char!r}")
        if self.escape is not None and self.quote is None:
            raise ValueError("escape is set but quote is null: escape only applies inside quoted fields")
        if self.decimal == "," and self.delimiter == ",":
            raise ValueError("decimal ',' needs a delimiter other than ',' (e.g. delimiter ';')")
        if self.header and self.column_names is not None:
            raise ValueError("columns names the columns of a file without a header row; set header: false")
        if not self.header:
            if not self.column_names:
                raise ValueError("header is false, so columns must name the file's columns in order")
            if any(not c for c in self.column_names):
                raise ValueError("columns must not contain an empty name")
            if len(set(self.column_names)) != len(self.column_names):
                raise ValueError(f"columns repeats a name: {self.column_names}")
        if len(self.null_values) > 100 or any(len(v) > 100 for v in self.null_values):
            raise ValueError("null_values takes at most 100 strings of at most 100 characters")
        return self

    @model_validator(mode="after")
    def _check_spec(self) -> Options:
        names = [*self.group_by, *self.metrics]
        if any(not name for name in names):
            raise ValueError("column names must not be empty")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError(f"group_by repeats a column: {self.group_by}")
        for column, metrics in self.metrics.items():
            if not metrics:
                raise ValueError(f"metrics.{column} lists no metric")
            if len(set(metrics)) != len(metrics):
                raise ValueError(f"metrics.{column} repeats a metric: {metrics}")
        outputs = self.output_columns()
        clashes = sorted({c for c in outputs if outputs.count(c) > 1})
        if clashes:
            raise ValueError(f"result columns would clash: {clashes}")
        return self

    def columns(self) -> list[str]:
        """Input columns the spec reads, group-by columns first, each once."""
        return list(dict.fromkeys([*self.group_by, *self.metrics]))

    def needs_numeric(self, column: str) -> bool:
        return any(m in NUMERIC_METRICS for m in self.metrics.get(column, []))

    def metric_items(self) -> list[tuple[str, Metric]]:
        return [(column, metric) for column, metrics in self.metrics.items() for metric in metrics]

    def output_columns(self) -> list[str]:
        return [*self.group_by, ROWS_COLUMN, *(f"{c}_{m}" for c, m in self.metric_items())]

    def spec(self) -> dict[str, object]:
        """The part that defines the result (what manifest and summary record)."""
        return {"group_by": self.group_by, "metrics": self.metrics}


def _json_object(raw: str | None, what: str) -> dict[str, object]:
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{what} are not valid JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def parse_options(raw: str | None, defaults: str | None = None) -> Options:
    """Parse SLUICE_OPTIONS over the stack's SLUICE_DEFAULT_OPTIONS (a run's keys win, key by key).

    Any problem is bad input (65) with a one-line reason.
    """
    data = {**_json_object(defaults, "the stack's default options"), **_json_object(raw, "options")}
    try:
        options = Options.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"invalid options: {describe_validation_error(exc)}") from None
    if (options.fail_shards or options.hang_shards) and not fault_injection_allowed():
        # Anyone who can upload can set options through object metadata: fault injection only
        # where the stack was deployed to allow it (the AllowFaultInjection parameter).
        raise BadInput(
            "fail_shards/hang_shards inject faults for testing and this stack does not allow them "
            "(deploy with AllowFaultInjection=true, never in production)"
        )
    return options


FAULT_INJECTION_VARIABLE = "SLUICE_ALLOW_FAULT_INJECTION"


def fault_injection_allowed() -> bool:
    return os.environ.get(FAULT_INJECTION_VARIABLE, "false").lower() == "true"


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown option {where!r}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
