"""S3 keys, each a pure function of the run's prefixes and a shard index (docs/contracts.md).

A retried attempt therefore writes to exactly the keys the failed one did.
"""

from __future__ import annotations


def normalize_prefix(prefix: str) -> str:
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def manifest_key(work_prefix: str) -> str:
    return f"{work_prefix}manifest.json"


def shards_prefix(work_prefix: str) -> str:
    return f"{work_prefix}shards/"


def shard_key(work_prefix: str, index: int) -> str:
    return f"{work_prefix}shards/part-{index:05d}.parquet"


def shard_index_key(work_prefix: str) -> str:
    return f"{work_prefix}shards/index.json"


def split_index_key(work_prefix: str) -> str:
    return f"{work_prefix}splits/index.json"


def split_rejects_prefix(work_prefix: str) -> str:
    return f"{work_prefix}splits/rejects-"


def split_rejects_key(work_prefix: str, index: int) -> str:
    return f"{split_rejects_prefix(work_prefix)}{index:05d}.json"


def partials_prefix(work_prefix: str) -> str:
    return f"{work_prefix}partials/"


def partial_key(work_prefix: str, index: int) -> str:
    return f"{work_prefix}partials/part-{index:05d}.parquet"


def rerun_plan_key(work_prefix: str, execution: str) -> str:
    return f"{work_prefix}reruns/{execution}.json"


def output_key(output_prefix: str, name: str) -> str:
    return f"{output_prefix}{name}"


RESULT_PARQUET = "result.parquet"
RESULT_CSV = "result.csv"
SUMMARY_JSON = "summary.json"
SUCCESS_MARKER = "_SUCCESS"
INCOMPLETE_MARKER = "_INCOMPLETE"  # beside _SUCCESS when shards are missing from the result
