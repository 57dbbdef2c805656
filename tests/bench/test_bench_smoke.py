"""`python -m bench --smoke` runs every benchmark and writes well-formed results (no timing checks)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.timeout(300)

COMMON_FORMAT = (
    "throughput",
    "overhead",
    "trigger",
    "jobmemory",
    "startfloor",
    "dialects",
    "startup",
    "planner",
    "manyfiles",
)
OPS = {"<=", "<", ">="}


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("bench-results")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results-dir", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return results


def only_file(results: Path, name: str) -> dict[str, Any]:
    files = sorted(results.glob(f"*-{name}.json"))
    assert len(files) == 1, (name, [f.name for f in results.iterdir()])
    return json.loads(files[0].read_text())


def check_metric(metric: dict[str, Any]) -> None:
    assert isinstance(metric["name"], str) and metric["name"]
    assert isinstance(metric["unit"], str) and metric["unit"]
    value = metric["value"]
    assert value is None or (isinstance(value, int | float) and math.isfinite(value)), metric
    target = metric["target"]
    if target is None:
        assert metric["met"] is None, metric
        return
    assert target["op"] in OPS and isinstance(target["value"], int | float), metric
    if value is None:
        assert metric["met"] is None, metric
    else:
        expected = {
            "<=": value <= target["value"],
            "<": value < target["value"],
            ">=": value >= target["value"],
        }
        assert metric["met"] is expected[target["op"]], metric


@pytest.mark.parametrize("name", COMMON_FORMAT)
def test_benchmark_writes_a_well_formed_result(smoke_results: Path, name: str) -> None:
    body = only_file(smoke_results, name)
    assert body["benchmark"] == name
    assert body["smoke"] is True
    machine = body["machine"]
    assert machine["cpus"] >= 1 and machine["ram_mib"] > 0 and machine["python"]
    assert len(machine["load_avg"]) == 3 and len(machine["load_avg_end"]) == 3
    assert body["metrics"], "no metrics"
    for metric in body["metrics"]:
        check_metric(metric)
    assert isinstance(body["details"], dict) and body["details"]


def test_every_target_is_reported(smoke_results: Path) -> None:
    targets = {
        name: [m["name"] for m in only_file(smoke_results, name)["metrics"] if m["target"]]
        for name in COMMON_FORMAT
    }
    assert any("fastest engine" in m for m in targets["throughput"])
    assert any("StartExecution -> SUCCEEDED" in m for m in targets["overhead"])
    assert any("cold" in m for m in targets["trigger"]) and any("warm" in m for m in targets["trigger"])
    assert any(m.startswith("ingest peak RSS") for m in targets["jobmemory"])
    assert any("local up -> ready" in m for m in targets["startup"])
    assert any("zygote: RUNNING -> first log line" in m for m in targets["startup"])


def test_pipeline_result_matches_duckdb(smoke_results: Path) -> None:
    body = only_file(smoke_results, "throughput")
    for run in body["details"]["median_runs"].values():
        assert run["result_check"]["matches"], run["result_check"]
        phases = run["breakdown"]["phases"]
        assert sum(p["seconds"] for p in phases) == pytest.approx(run["breakdown"]["total_s"], abs=0.01)


def test_fanout_results_are_folded_in(smoke_results: Path) -> None:
    body = only_file(smoke_results, "batch-fanout")
    assert body["runs"], "no fan-out runs"
    for run in body["runs"]:
        assert run["status"] == "SUCCEEDED"
        assert run["wall_s"] > 0 and run["peak_rss_growth_mib"] >= 0


def test_latest_md_names_the_machine_and_every_benchmark(smoke_results: Path) -> None:
    text = (smoke_results / "LATEST.md").read_text()
    assert "## Machine" in text and "## Targets" in text and "Smoke run" in text
    for heading in (
        "Throughput",
        "Orchestration overhead",
        "Fan-out",
        "Trigger Lambda",
        "Job memory",
        "Job start floor",
    ):
        assert heading in text, heading
