"""Many files, one run: an input manifest (ingest/inputs.py) makes one set of shards, one result.

DuckDB reads the same files as one table (read_csv over a list) for the oracle.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from sluice import sampledata
from tests.jobs.helpers import IN_BUCKET
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected

pytestmark = pytest.mark.timeout(120)


def upload_parts(
    s3, tmp_path: Path, names: tuple[str, ...], rows: int, step: int, seed: int
) -> tuple[str, list[Path]]:
    """Sample-data files (`rows`, then `step` more each) under a fresh prefix of the input bucket."""
    prefix = f"many/{uuid.uuid4().hex[:8]}/"
    paths = []
    for number, name in enumerate(names):
        path = tmp_path / name
        sampledata.generate(str(path), rows=rows + step * number, seed=seed + number)
        s3.upload_file(str(path), IN_BUCKET, prefix + name)
        paths.append(path)
    return prefix, paths


@pytest.fixture
def parts(s3, tmp_path: Path) -> tuple[str, list[Path]]:
    """Three CSV files under a fresh prefix of the input bucket (one gzipped)."""
    return upload_parts(s3, tmp_path, ("a.csv", "b.csv", "c.csv.gz"), rows=3000, step=1000, seed=20)


def oracle(paths: list[Path]) -> list[dict]:
    listed = ", ".join(f"'{p}'" for p in paths)
    return duckdb_expected(paths[0], source=f"read_csv([{listed}])")


@pytest.mark.parametrize(
    ("name", "body"),
    [
        (
            "run.manifest.json",
            lambda prefix: json.dumps({"keys": [prefix + n for n in ("a.csv", "b.csv", "c.csv.gz")]}),
        ),
        ("run.manifest.json", lambda prefix: json.dumps({"prefix": prefix})),
        (
            "run.manifest.txt",
            lambda prefix: f"# three parts\n{prefix}a.csv\n\n{prefix}b.csv\n{prefix}c.csv.gz\n",
        ),
    ],
    ids=["keys", "prefix", "text"],
)
def test_a_manifest_of_three_files_is_one_run_with_duckdbs_answer(make_run, parts, name, body) -> None:
    prefix, paths = parts
    run = make_run(body(prefix).encode(), name, shard_target_mb=0.05)
    manifest = run.pipeline()
    assert manifest["input_count"] == 3
    assert [i["key"] for i in manifest["inputs"]] == [prefix + n for n in ("a.csv", "b.csv", "c.csv.gz")]
    assert manifest["rows"] == 3000 + 4000 + 5000
    assert manifest["shard_count"] > 1  # one array across all the files' shards
    assert_matches(run.result(), oracle(paths))


def test_a_file_with_other_columns_is_bad_input_naming_it(make_run, s3, parts, tmp_path: Path) -> None:
    prefix, _ = parts
    s3.put_object(Bucket=IN_BUCKET, Key=prefix + "odd.csv", Body=b"transaction_id,category,amount\nt1,x,1\n")
    listed = [prefix + "a.csv", prefix + "odd.csv"]
    run = make_run(json.dumps({"keys": listed}).encode(), "odd.manifest.json")
    done = run.run("ingest")
    assert done.returncode == 65, done.stderr
    assert f"{prefix}odd.csv: " in done.stderr and "column 'country'" in done.stderr
    assert run.manifest() is None and run.work_keys("shards/") == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{}", 'it must be {"keys": ["..."]} or {"prefix": "..."}'),
        (b'{"keys": []}', "lists no objects"),
        (b"not json", "is not valid JSON"),
        (
            b'{"keys": ["many/missing.csv"]}',
            "input object s3://sluice-test-input/many/missing.csv does not exist",
        ),
        (b'{"keys": ["x.csv", "x.csv"]}', "lists 'x.csv' more than once"),
        (b'{"keys": ["other.manifest.json"]}', "lists another manifest"),
    ],
)
def test_a_malformed_manifest_is_bad_input_saying_why(make_run, body: bytes, says: str) -> None:
    run = make_run(body, "bad.manifest.json")
    done = run.run("ingest")
    assert done.returncode == 65, done.stderr
    assert says in done.stderr


@pytest.fixture
def plain_parts(s3, tmp_path: Path) -> tuple[str, list[Path]]:
    """Three uncompressed CSV files (splittable) under a fresh prefix."""
    return upload_parts(s3, tmp_path, ("a.csv", "b.csv", "c.csv"), rows=2000, step=500, seed=30)


@pytest.mark.parametrize(
    "body",
    [
        lambda prefix: {"prefix": prefix},  # sizes come with the listing
        lambda prefix: {"keys": [prefix + n for n in ("a.csv", "b.csv", "c.csv")]},  # from the heads
    ],
    ids=["prefix", "keys"],
)
def test_a_manifest_larger_than_the_split_target_is_one_split_run(make_run, plain_parts, body) -> None:
    prefix, paths = plain_parts
    total = sum(p.stat().st_size for p in paths)
    target_mb = total / 7 / (1024 * 1024)  # about seven splits over the three files
    run = make_run(
        json.dumps(body(prefix)).encode(),
        "run.manifest.json",
        extra_env={"SLUICE_SPLIT_TARGET_MB": repr(target_mb)},
    )
    manifest = run.pipeline()
    assert manifest["split_index_key"] is not None and 6 <= manifest["shard_count"] <= 8
    assert manifest["input_count"] == 3
    assert_matches(run.result(), oracle(paths))


def test_a_manifest_within_the_split_target_is_read_in_one_pass(make_run, plain_parts) -> None:
    prefix, paths = plain_parts
    run = make_run(
        json.dumps({"keys": [prefix + n for n in ("a.csv", "b.csv", "c.csv")]}).encode(), "run.manifest.json"
    )
    manifest = run.pipeline()
    assert manifest["split_index_key"] is None
    assert_matches(run.result(), oracle(paths))
