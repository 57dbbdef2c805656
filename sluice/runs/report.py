"""The run report: one self-contained report.html (no scripts, fonts or files from elsewhere) and a PNG
of its timeline."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from sluice.runs.pricing import CostEstimate
from sluice.runs.records import STAGES, JobRecord, RunRecord
from sluice.runs.timeline import COLOURS, Timeline

ROW_HEIGHT = 18
LABEL_WIDTH = 150
CHART_WIDTH = 760
MAX_LOG_LINES = 20


@dataclass(frozen=True)
class ReportData:
    run: RunRecord
    timeline: Timeline
    cost: CostEstimate
    price_note: str
    manifest: dict[str, Any] | None
    summary: dict[str, Any] | None
    failure_logs: dict[str, list[str]]  # job id -> last log lines
    # Local IAM's denials during the run (records of iam.jsonl); None where nobody recorded them (AWS).
    iam_denials: list[dict[str, Any]] | None = None
    # sluice.runs.iamreport.build_iam_report of the run's local cloud: used and unused statements.
    iam_usage: dict[str, Any] | None = None


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "-"


def _seconds(start: int | None, stop: int | None) -> float | None:
    return (stop - start) / 1000 if start is not None and stop is not None else None


def stage_rows(data: ReportData) -> list[dict[str, Any]]:
    """Per stage: wall time, jobs, attempts, and rows/bytes in and out where the workload recorded them."""
    manifest, summary = data.manifest or {}, data.summary or {}
    figures: dict[str, dict[str, Any]] = {
        "ingest": {
            "rows_in": manifest.get("rows"),
            "bytes_in": (data.run.input.get("input") or {}).get("size"),
        },
        "transform": {"rows_in": manifest.get("rows")},
        "aggregate": {"rows_out": summary.get("groups")},
    }
    rows = []
    for stage in STAGES:
        jobs = data.run.stage_jobs(stage)
        units = [unit for job in jobs for unit in job.runs()]
        attempts = [a for unit in units for a in unit.attempts if a.started_at is not None]
        starts = [a.started_at for a in attempts if a.started_at]
        stops = [a.stopped_at for a in attempts if a.stopped_at]
        wall = (max(stops) - min(starts)) / 1000 if starts and stops else None
        rows_in = figures[stage].get("rows_in")
        rows.append(
            {
                "stage": stage,
                "jobs": len(units),
                "attempts": len(attempts),
                "retried": sum(1 for u in units if len(u.attempts) > 1),
                "reclaimed": sum(1 for a in attempts if a.reclaimed),
                "wall_s": wall,
                "rows_in": rows_in,
                "bytes_in": figures[stage].get("bytes_in"),
                "rows_out": figures[stage].get("rows_out"),
                "rows_per_s": (rows_in / wall) if rows_in and wall else None,
                "status": ", ".join(sorted({job.status for job in jobs})) or "not run",
            }
        )
    return rows


def timeline_svg(timeline: Timeline) -> str:
    height = ROW_HEIGHT * max(len(timeline.rows), 1) + 30
    scale = CHART_WIDTH / timeline.span_s
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_WIDTH + CHART_WIDTH + 50}" height="{height}" '
        f'role="img" aria-label="Run timeline" class="timeline">'
    ]
    for index, label in enumerate(timeline.rows):
        y = index * ROW_HEIGHT
        parts.append(f'<text x="4" y="{y + 13}" class="row-label">{_esc(label)}</text>')
    for bar in timeline.bars:
        x = LABEL_WIDTH + bar.start_s * scale
        width = max((bar.end_s - bar.start_s) * scale, 2.0)
        y = bar.row * ROW_HEIGHT + 2
        parts.append(
            f'<rect class="attempt {bar.outcome}" data-outcome="{bar.outcome}" x="{x:.1f}" y="{y}" '
            f'width="{width:.1f}" height="{ROW_HEIGHT - 4}" fill="{COLOURS[bar.outcome]}">'
            f"<title>{_esc(bar.label)} ({bar.start_s:.2f}s to {bar.end_s:.2f}s)</title></rect>"
        )
    axis_y = ROW_HEIGHT * max(len(timeline.rows), 1) + 14
    for tick in range(6):
        seconds = timeline.span_s * tick / 5
        x = LABEL_WIDTH + seconds * scale
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" class="tick">{seconds:.1f}s</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(data: ReportData) -> str:
    run, cost = data.run, data.cost
    source = run.input.get("input", {})
    stages = stage_rows(data)
    legend = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{_esc(name)} '
        for name, colour in COLOURS.items()
    )
    stage_table = "".join(
        "<tr>"
        + "".join(
            f"<td>{_esc(value)}</td>"
            for value in (
                row["stage"],
                row["status"],
                row["jobs"],
                row["attempts"],
                row["retried"],
                row["reclaimed"],
                f"{row['wall_s']:.2f} s" if row["wall_s"] is not None else "-",
                row["rows_in"] if row["rows_in"] is not None else "-",
                row["bytes_in"] if row["bytes_in"] is not None else "-",
                row["rows_out"] if row["rows_out"] is not None else "-",
                f"{row['rows_per_s']:,.0f}" if row["rows_per_s"] else "-",
            )
        )
        + "</tr>"
        for row in stages
    )
    failures = "".join(_failure_html(job, data.failure_logs) for job in _failed_units(run))
    output = run.output or {}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice run {_esc(run.name)}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d232a}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}
table{{border-collapse:collapse}} td,th{{border:1px solid #d0d7de;padding:4px 8px;text-align:left}}
.status-SUCCEEDED{{color:#2e9e5b}} .status-FAILED,.status-ABORTED,.status-TIMED_OUT{{color:#d64541}}
.timeline text{{font:11px monospace;fill:#333}} .swatch{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}
pre{{background:#f6f8fa;padding:8px;overflow-x:auto;max-height:320px}}
</style></head><body>
<h1>Sluice run <code>{_esc(run.name)}</code>: <span class="status-{_esc(run.status)}">{_esc(run.status)}</span></h1>
<table>
<tr><th>input</th><td>s3://{_esc(source.get("bucket"))}/{_esc(source.get("key"))} ({_esc(source.get("size", "?"))} bytes)</td></tr>
<tr><th>execution</th><td>{_esc(run.execution_arn)}</td></tr>
<tr><th>started / stopped</th><td>{_when(run.started_at)} / {_when(run.stopped_at)}</td></tr>
<tr><th>wall time</th><td>{_esc(f"{_seconds(run.started_at, run.stopped_at):.2f} s" if run.stopped_at else "running")}</td></tr>
<tr><th>input dialect</th><td>{_dialect_text((data.manifest or {}).get("dialect"))}</td></tr>
<tr><th>output</th><td>{_esc(json.dumps(output.get("output", "-")))}</td></tr>
<tr><th>error</th><td>{_esc(f"{run.error}: {(run.cause or '')[:500]}" if run.error else "-")}</td></tr>
</table>
<h2>Timeline</h2>
<p>{legend}</p>
{timeline_svg(data.timeline)}
<h2>Stages</h2>
<table><tr><th>stage</th><th>status</th><th>jobs</th><th>attempts</th><th>retried jobs</th><th>reclaimed attempts</th>
<th>wall</th><th>rows in</th><th>bytes in</th><th>rows out</th><th>rows/s</th></tr>{stage_table}</table>
<h2>Estimated AWS cost of this run</h2>
<table>
<tr><th>vCPU-seconds used / billed</th><td>{cost.vcpu_seconds:,.1f} / {cost.billed_vcpu_seconds:,.1f}</td></tr>
<tr><th>GB-seconds used / billed</th><td>{cost.gb_seconds:,.1f} / {cost.billed_gb_seconds:,.1f}</td></tr>
<tr><th>Fargate On-Demand</th><td>${cost.on_demand_usd:.6f}</td></tr>
<tr><th>Fargate Spot</th><td>${cost.spot_usd:.6f}</td></tr>
<tr><th>saving with Spot</th><td>${cost.saving_usd:.6f} ({cost.saving_fraction:.0%})</td></tr>
</table>
<p><small>{_esc(data.price_note)}</small></p>
<h2>Failures</h2>
{failures or "<p>None.</p>"}
{_iam_html(data.iam_denials)}
{_least_privilege_html(data.iam_usage)}
</body></html>
"""


def _dialect_text(dialect: Any) -> str:
    """How ingest read the file (the manifest's `dialect`): options in effect, what was detected, the path."""
    if not isinstance(dialect, dict):
        return "-"
    shown = {k: v for k, v in dialect.items() if k not in ("detected", "paths")}
    parts = [", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in shown.items())]
    if dialect.get("detected"):
        parts.append(f"detected: {', '.join(str(d) for d in dialect['detected'])}")
    if dialect.get("paths"):
        parts.append(f"path: {', '.join(str(p) for p in dialect['paths'])}")
    return _esc("; ".join(part for part in parts if part))


def _iam_html(denials: list[dict[str, Any]] | None) -> str:
    if denials is None:
        return ""
    if not denials:
        return "<h2>Permissions (local IAM)</h2><p>No request was denied.</p>"
    rows = "".join(
        f"<tr><td>{_esc(d.get('outcome'))}</td><td>{_esc(d.get('principal'))}</td><td>{_esc(d.get('action'))}</td>"
        f"<td>{_esc(d.get('resource'))}</td></tr>"
        for d in denials
    )
    return (
        "<h2>Permissions (local IAM)</h2><p>What the template's policies did not allow; on AWS these "
        "requests fail the same way.</p><table><tr><th>outcome</th><th>principal</th><th>action</th>"
        f"<th>resource</th></tr>{rows}</table>"
    )


def _least_privilege_html(usage: dict[str, Any] | None) -> str:
    if usage is None:
        return ""
    rows = []
    for entry in usage["principals"]:
        if entry["principal"].endswith(":user/sluice-local-admin"):
            continue  # the person at the keyboard, with administrator rights
        used = "<br>".join(
            f"{_esc(r['action'])} on {_esc(r['resource'])} ({_esc(r.get('sid') or r['policy'])})"
            for r in entry["used"]
        )
        unused = "<br>".join(
            f"{_esc(r.get('sid') or r['policy'])}: {_esc(r['actions'])}" for r in entry["unused"]
        )
        rows.append(
            f"<tr><td>{_esc(entry['principal'])}</td><td>{used or '-'}</td><td>{unused or '-'}</td></tr>"
        )
    return (
        "<h2>Least privilege (local IAM)</h2><p>Per principal, what the run used and the statement that "
        "allowed it; Allow statements nothing used are candidates for removal.</p><table><tr><th>principal</th>"
        f"<th>used (allowed by)</th><th>unused statements</th></tr>{''.join(rows)}</table>"
    )


def _failed_units(run: RunRecord) -> list[JobRecord]:
    return [unit for job in run.jobs for unit in job.runs() if unit.status == "FAILED"]


def _failure_html(job: JobRecord, logs: dict[str, list[str]]) -> str:
    lines = logs.get(job.job_id, [])
    last = job.attempts[-1] if job.attempts else None
    return (
        f"<h3>{_esc(job.stage)} {_esc(job.job_id)}</h3><p>reason: {_esc(job.status_reason or '-')}; "
        f"exit code: {_esc(last.exit_code if last else '-')}; log stream: {_esc(job.log_stream or '-')}</p>"
        f"<pre>{_esc(chr(10).join(lines[-MAX_LOG_LINES:]) or '(no log lines)')}</pre>"
    )


def render_png(timeline: Timeline, path: Path) -> None:
    height = ROW_HEIGHT * max(len(timeline.rows), 1) + 30
    image = Image.new("RGB", (LABEL_WIDTH + CHART_WIDTH + 50, height), "white")
    draw = ImageDraw.Draw(image)
    scale = CHART_WIDTH / timeline.span_s
    for index, label in enumerate(timeline.rows):
        draw.text((4, index * ROW_HEIGHT + 3), label, fill="#333333")
    for bar in timeline.bars:
        x0 = LABEL_WIDTH + bar.start_s * scale
        x1 = max(x0 + 2, LABEL_WIDTH + bar.end_s * scale)
        y0 = bar.row * ROW_HEIGHT + 2
        draw.rectangle((x0, y0, x1, y0 + ROW_HEIGHT - 4), fill=COLOURS[bar.outcome])
    axis_y = ROW_HEIGHT * max(len(timeline.rows), 1) + 8
    for tick in range(6):
        seconds = timeline.span_s * tick / 5
        draw.text((LABEL_WIDTH + seconds * scale, axis_y), f"{seconds:.1f}s", fill="#333333")
    image.save(path, "PNG")


def write_report(data: ReportData, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / "report.html"
    report.write_text(render_html(data), encoding="utf-8")
    render_png(data.timeline, directory / "timeline.png")
    return report
