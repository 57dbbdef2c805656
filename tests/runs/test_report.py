"""Run report pieces: timeline layout, cost estimate, HTML and PNG rendering (synthetic runs)."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from sluice.runs.pricing import PriceTable, estimate
from sluice.runs.records import Attempt, JobRecord, RunRecord
from sluice.runs.report import ReportData, render_html, write_report
from sluice.runs.timeline import layout

T0 = 1_795_521_600_000


def attempt(start_s: float, stop_s: float, exit_code: int, status_reason: str = "") -> Attempt:
    return Attempt(
        number=1,
        started_at=T0 + int(start_s * 1000),
        stopped_at=T0 + int(stop_s * 1000),
        exit_code=exit_code,
        reason="Essential container in task exited" if exit_code else None,
        status_reason=status_reason or None,
        log_stream="stream",
    )


def job(
    stage: str, status: str, attempts: list[Attempt], index: int | None = None, vcpus: float = 1
) -> JobRecord:
    return JobRecord(
        stage=stage,
        job_id=f"{stage}-{index}",
        name=f"sluice-{stage}",
        status=status,
        status_reason=None,
        created_at=T0,
        started_at=attempts[0].started_at if attempts else None,
        stopped_at=attempts[-1].stopped_at if attempts else None,
        vcpus=vcpus,
        memory_mib=2048,
        array_index=index,
        attempts=attempts,
    )


@pytest.fixture
def run() -> RunRecord:
    transform = job("transform", "SUCCEEDED", [], vcpus=0.5)
    transform.array_size = 3
    transform.children = [
        job("transform", "SUCCEEDED", [attempt(10, 20, 0)], index=0, vcpus=0.5),
        job(
            "transform",
            "SUCCEEDED",
            [attempt(10, 12, 143, "Host EC2 (instance i-0123456789abcdef0) terminated."), attempt(12, 22, 0)],
            index=1,
            vcpus=0.5,
        ),
        job("transform", "SUCCEEDED", [attempt(11, 21, 1), attempt(21, 25, 0)], index=2, vcpus=0.5),
    ]
    return RunRecord(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:run-1",
        name="run-1",
        status="SUCCEEDED",
        started_at=T0,
        stopped_at=T0 + 40_000,
        input={"input": {"bucket": "in", "key": "incoming/a <b>.csv", "size": 100}},
        output={"output": {"bucket": "out", "prefix": "results/x/run-1/"}},
        error=None,
        cause=None,
        jobs=[
            job("ingest", "SUCCEEDED", [attempt(1, 9, 0)]),
            transform,
            job("aggregate", "SUCCEEDED", [attempt(26, 30, 0)]),
        ],
    )


def test_timeline_has_one_bar_per_attempt_with_outcomes(run: RunRecord) -> None:
    timeline = layout(run)
    assert timeline.rows == ["ingest", "transform[0]", "transform[1]", "transform[2]", "aggregate"]
    assert [bar.outcome for bar in timeline.bars] == [
        "succeeded",
        "succeeded",
        "reclaimed",
        "succeeded",
        "retried",
        "succeeded",
        "succeeded",
    ]
    assert timeline.span_s == pytest.approx(40.0)


def test_cost_bills_each_attempt_with_the_one_minute_minimum(run: RunRecord) -> None:
    prices = PriceTable.load()
    cost = estimate(run, prices)
    used_vcpu = 8 * 1 + (10 + 2 + 10 + 10 + 4) * 0.5 + 4 * 1
    assert cost.vcpu_seconds == pytest.approx(used_vcpu)
    assert cost.billed_vcpu_seconds == pytest.approx(2 * 60 * 1 + 5 * 60 * 0.5)
    on_demand = (cost.billed_vcpu_seconds * 0.04048 + cost.billed_gb_seconds * 0.004445) / 3600
    assert cost.on_demand_usd == pytest.approx(on_demand)
    assert 0 < cost.spot_usd < cost.on_demand_usd
    assert cost.saving_fraction == pytest.approx(1 - cost.spot_usd / cost.on_demand_usd)


def test_price_table_can_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        '{"region": "eu-west-1", "as_of": "2026-01-01", "source": "mine", '
        '"on_demand": {"vcpu_hour": 1.0, "gb_hour": 0.0}, "spot": {"vcpu_hour": 0.5, "gb_hour": 0.0}}'
    )
    prices = PriceTable.load(path)
    assert prices.region == "eu-west-1" and prices.on_demand["vcpu_hour"] == 1.0


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rects: list[dict[str, str | None]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "rect":
            self.rects.append(values)
        if tag in ("script", "link", "img") or any(
            (v or "").startswith("http") for k, v in attrs if k != "xmlns"
        ):
            self.external.append(tag)


def test_html_is_self_contained_escaped_and_has_a_bar_per_attempt(run: RunRecord, tmp_path: Path) -> None:
    data = ReportData(
        run=run,
        timeline=layout(run),
        cost=estimate(run, PriceTable.load()),
        price_note="note",
        manifest={
            "rows": 1000,
            "dialect": {"delimiter": ";", "decimal": ",", "detected": ["delimiter"], "paths": ["fast"]},
        },
        summary={"groups": 12},
        failure_logs={},
    )
    page = render_html(data)
    # How ingest read the file (issue: real-world CSV dialects), escaped like everything else.
    assert "delimiter=&quot;;&quot;, decimal=&quot;,&quot;; detected: delimiter; path: fast" in page
    parser = Collector()
    parser.feed(page)
    assert len(parser.rects) == 7
    assert [r["data-outcome"] for r in parser.rects].count("reclaimed") == 1
    assert parser.external == []
    assert "incoming/a &lt;b&gt;.csv" in page

    report = write_report(data, tmp_path / "out")
    assert report.read_text(encoding="utf-8") == page
    with Image.open(tmp_path / "out" / "timeline.png") as image:
        assert image.size[0] > 600 and image.size[1] > 5 * 18


def test_the_report_lists_local_iam_denials(run: RunRecord) -> None:
    base = ReportData(
        run=run,
        timeline=layout(run),
        cost=estimate(run, PriceTable.load()),
        price_note="note",
        manifest=None,
        summary=None,
        failure_logs={},
    )
    assert "Permissions (local IAM)" not in render_html(base)  # on AWS nobody recorded them
    denial = {
        "outcome": "denied",
        "principal": "arn:aws:sts::123456789012:assumed-role/JobRole/j-1",
        "action": "s3:PutObject",
        "resource": "arn:aws:s3:::work/<run>/x",
    }
    page = render_html(dataclasses.replace(base, iam_denials=[denial]))
    assert "Permissions (local IAM)" in page and "s3:PutObject" in page
    assert "arn:aws:s3:::work/&lt;run&gt;/x" in page
    assert "No request was denied." in render_html(dataclasses.replace(base, iam_denials=[]))


def test_the_report_shows_least_privilege_per_principal(run: RunRecord) -> None:
    usage = {
        "principals": [
            {"principal": "arn:aws:iam::123456789012:user/sluice-local-admin", "used": [], "unused": []},
            {
                "principal": "arn:aws:iam::123456789012:role/JobRole",
                "used": [
                    {
                        "action": "s3:PutObject",
                        "resource": "arn:aws:s3:::w/k",
                        "sid": "ReadWriteWork",
                        "policy": "p",
                    }
                ],
                "unused": [{"policy": "p", "sid": "Spare", "statement": 3, "actions": ["s3:DeleteObject"]}],
            },
        ],
        "denials": [],
    }
    data = ReportData(
        run=run,
        timeline=layout(run),
        cost=estimate(run, PriceTable.load()),
        price_note="note",
        manifest=None,
        summary=None,
        failure_logs={},
        iam_usage=usage,
    )
    page = render_html(data)
    assert "Least privilege (local IAM)" in page
    assert "s3:PutObject on arn:aws:s3:::w/k (ReadWriteWork)" in page
    assert "Spare: [&#x27;s3:DeleteObject&#x27;]" in page
    assert "sluice-local-admin" not in page
