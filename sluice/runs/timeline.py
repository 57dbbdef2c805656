"""Timeline layout of a run: one row per job (or array child), one bar per attempt.

Computed once, drawn twice: as SVG inside report.html and as a PNG beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.runs.records import Attempt, JobRecord, RunRecord

COLOURS = {
    "succeeded": "#2e9e5b",
    "failed": "#d64541",
    "reclaimed": "#f0a202",
    "retried": "#8e6cc6",
    "running": "#3b82c4",
}


@dataclass(frozen=True)
class Bar:
    row: int
    start_s: float  # seconds since the execution started
    end_s: float
    outcome: str  # a COLOURS key
    label: str


@dataclass(frozen=True)
class Timeline:
    rows: list[str]
    bars: list[Bar]
    span_s: float


def attempt_outcome(attempt: Attempt, is_last: bool, job: JobRecord) -> str:
    if attempt.reclaimed:
        return "reclaimed"
    if attempt.stopped_at is None:
        return "running"
    if attempt.succeeded:
        return "succeeded"
    return "failed" if is_last and job.status == "FAILED" else "retried"


def layout(run: RunRecord, now_ms: int | None = None) -> Timeline:
    origin = run.started_at
    end = run.stopped_at or now_ms or origin
    rows: list[str] = []
    bars: list[Bar] = []
    for job in run.jobs:
        for unit in job.runs():
            label = job.stage if unit.array_index is None else f"{job.stage}[{unit.array_index}]"
            row = len(rows)
            rows.append(label)
            for number, attempt in enumerate(unit.attempts, start=1):
                if attempt.started_at is None:
                    continue
                stop = attempt.stopped_at or end
                end = max(end, stop)
                outcome = attempt_outcome(attempt, number == len(unit.attempts), unit)
                bars.append(
                    Bar(
                        row=row,
                        start_s=(attempt.started_at - origin) / 1000,
                        end_s=(stop - origin) / 1000,
                        outcome=outcome,
                        label=f"{label} attempt {number}: {outcome}"
                        + (f" (exit {attempt.exit_code})" if attempt.exit_code is not None else "")
                        + (f" - {attempt.status_reason}" if attempt.status_reason else ""),
                    )
                )
    return Timeline(rows=rows, bars=bars, span_s=max((end - origin) / 1000, 0.001))
