"""Many files, one run, end to end: parts uploaded under PartsPrefix start nothing; one input
manifest dropped into the input prefix starts one run over all of them (containers/ingest/inputs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sluice import sampledata
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PARTS = "parts/e2e-many/"  # the stack's PartsPrefix default is parts/
MANIFEST = "incoming/e2e-many/day.manifest.json"


def test_one_manifest_over_many_parts_is_one_run_with_one_result(pipeline: Pipeline, tmp_path: Path) -> None:
    paths = []
    for number in range(4):
        path = tmp_path / f"part-{number}.csv"
        sampledata.generate(str(path), rows=1500 + 500 * number, seed=60 + number)
        pipeline.upload(PARTS + path.name, path.read_bytes())
        paths.append(path)
    pipeline.upload(MANIFEST, json.dumps({"prefix": PARTS}).encode(), {"shard_target_mb": 0.05})
    execution = pipeline.wait_finished(pipeline.wait_execution_for(MANIFEST)["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution.get("cause")

    prefix = json.loads(execution["output"])["output"]["prefix"]
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}result.parquet"
    )
    local = tmp_path / "result.parquet"
    local.write_bytes(body["Body"].read())
    listed = ", ".join(f"'{p}'" for p in paths)
    assert_matches(pq.read_table(local), duckdb_expected(paths[0], source=f"read_csv([{listed}])"))
    summary = json.loads(
        pipeline.clients.s3.get_object(Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}summary.json")[
            "Body"
        ].read()
    )
    assert summary["input_count"] == 4
    assert [i["key"] for i in summary["inputs"]] == [PARTS + p.name for p in paths]

    # The parts started no run of their own and sent no alert.
    pipeline.cloud.settle(10)
    for path in paths:
        assert pipeline.executions_for(PARTS + path.name) == []
        assert pipeline.notifications_about(PARTS + path.name) == []
