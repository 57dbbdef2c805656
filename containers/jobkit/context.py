"""The run context: AWS Batch's environment plus the pipeline's SLUICE_* variables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from jobkit.errors import BadInput, JobError
from jobkit.keys import normalize_prefix
from jobkit.manifest import InputRef
from jobkit.options import Options, describe_validation_error, parse_options

DEFAULT_SHARD_TARGET_MB = 64.0
# The stack's DefaultOptions parameter: options every run gets unless its own options say otherwise.
DEFAULT_OPTIONS_VARIABLE = "SLUICE_DEFAULT_OPTIONS"
DEFAULT_MAX_SHARDS = 10_000
DEFAULT_SPLIT_TARGET_MB = 64.0
# Batch array jobs have at most 10,000 children, so more shards could never be transformed.
ARRAY_SIZE_LIMIT = 10_000


@dataclass(frozen=True)
class BatchEnv:
    job_id: str | None
    attempt: int
    array_index: int | None
    array_size: int | None
    queue: str | None
    compute_environment: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchEnv:
        return cls(
            job_id=env.get("AWS_BATCH_JOB_ID") or None,
            attempt=_int(env, "AWS_BATCH_JOB_ATTEMPT", 1),
            array_index=_opt_int(env, "AWS_BATCH_JOB_ARRAY_INDEX"),
            array_size=_opt_int(env, "AWS_BATCH_JOB_ARRAY_SIZE"),
            queue=env.get("AWS_BATCH_JQ_NAME") or None,
            compute_environment=env.get("AWS_BATCH_CE_NAME") or None,
        )

    @property
    def shard_index(self) -> int:
        """Array child i transforms shard i; the single-job branch (no array) shard 0."""
        return self.array_index if self.array_index is not None else 0


@dataclass(frozen=True)
class JobContext:
    env: Mapping[str, str]
    run_id: str
    work_prefix: str
    batch: BatchEnv

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobContext:
        env = dict(os.environ if env is None else env)
        run_id = _required(env, "SLUICE_RUN_ID")
        work_prefix = normalize_prefix(env.get("SLUICE_WORK_PREFIX") or f"work/{run_id}/")
        return cls(env=env, run_id=run_id, work_prefix=work_prefix, batch=BatchEnv.from_env(env))

    @property
    def work_bucket(self) -> str:
        return _required(self.env, "SLUICE_WORK_BUCKET")

    @property
    def output_bucket(self) -> str:
        return _required(self.env, "SLUICE_OUTPUT_BUCKET")

    @property
    def output_prefix(self) -> str:
        return normalize_prefix(_required(self.env, "SLUICE_OUTPUT_PREFIX"))

    def options(self) -> Options:
        return parse_options(self.env.get("SLUICE_OPTIONS"), self.env.get(DEFAULT_OPTIONS_VARIABLE))

    def input(self) -> InputRef:
        raw = _required(self.env, "SLUICE_INPUT")
        try:
            return InputRef.model_validate(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise BadInput(f"SLUICE_INPUT is not valid JSON: {exc}") from None
        except ValidationError as exc:
            raise BadInput(f"invalid input descriptor: {describe_validation_error(exc)}") from None

    def shard_target_bytes(self) -> int:
        return _megabytes(self.env, "SLUICE_SHARD_TARGET_MB", DEFAULT_SHARD_TARGET_MB)

    def split_target_bytes(self) -> int:
        """Bytes of input per transform child of a split run (ingest/splits.py); a smaller input
        is read in one pass."""
        return _megabytes(self.env, "SLUICE_SPLIT_TARGET_MB", DEFAULT_SPLIT_TARGET_MB)

    def max_shards(self) -> int:
        value = _int(self.env, "SLUICE_MAX_SHARDS", DEFAULT_MAX_SHARDS)
        if value < 1:
            raise JobError(f"SLUICE_MAX_SHARDS must be at least 1, got {value}")
        return min(value, ARRAY_SIZE_LIMIT)

    def log_context(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "job_id": self.batch.job_id,
            "attempt": self.batch.attempt,
            "array_index": self.batch.array_index,
        }


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        # A deployment problem, not the user's input: retryable code, clear message.
        raise JobError(f"environment variable {name} is not set")
    return value


def _opt_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise JobError(f"environment variable {name} is not an integer: {raw!r}") from None


def _megabytes(env: Mapping[str, str], name: str, default: float) -> int:
    """A positive size in MiB from the environment, as bytes."""
    raw = env.get(name) or str(default)
    try:
        mb = float(raw)
    except ValueError:
        raise JobError(f"{name} is not a number: {raw!r}") from None
    if not mb > 0:
        raise JobError(f"{name} must be positive, got {raw!r}")
    return max(1, int(mb * 1024 * 1024))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _opt_int(env, name)
    return default if value is None else value
