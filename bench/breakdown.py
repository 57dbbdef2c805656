"""Where a pipeline run's time went, read back through the APIs (sluice.runs.records) and the job logs.

Every phase is the difference of two timestamps taken on this machine's clock (epoch ms):
the client's upload, the execution's start/stop dates, each Batch job's createdAt /
startedAt / stoppedAt, and the first and last line each attempt wrote to CloudWatch Logs
(stamped by the engine as the line was read). The top-level phases tile the interval from
upload start to execution stop exactly, so they add up to the pipeline's wall time. The
trigger phase can come out a few milliseconds negative: the execution may start before the
client's thread has noticed that its upload was answered.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from sluice.runs.records import JobRecord, RunRecord


@dataclass(frozen=True)
class LogSpan:
    first_ms: int
    last_ms: int
    lines: int


def log_span(logs: Any, group: str, stream: str | None) -> LogSpan | None:
    """First and last line of an attempt's log stream (None if it wrote nothing)."""
    if not stream:
        return None
    first: int | None = None
    last: int | None = None
    lines = 0
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.get_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return None
        events = page.get("events", [])
        if events:
            first = events[0]["timestamp"] if first is None else first
            last = events[-1]["timestamp"]
            lines += len(events)
        if not events or page.get("nextForwardToken") in (None, token):
            break
        token = page["nextForwardToken"]
    return None if first is None or last is None else LogSpan(first, last, lines)


def _s(later: int | None, earlier: int | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) / 1000, 3)


def job_phases(job: JobRecord, logs: Any, group: str) -> dict[str, Any]:
    """queue (created -> RUNNING), start (RUNNING -> first log line: process start and imports),
    work (first -> last log line), exit (last line -> stopped) of the job's last attempt."""
    attempt = job.attempts[-1] if job.attempts else None
    started = attempt.started_at if attempt and attempt.started_at else job.started_at
    stopped = attempt.stopped_at if attempt and attempt.stopped_at else job.stopped_at
    span = log_span(logs, group, (attempt.log_stream if attempt else None) or job.log_stream)
    return {
        "job_id": job.job_id,
        "attempts": len(job.attempts),
        "queue_s": _s(started, job.created_at),
        "start_s": _s(span.first_ms, started) if span else None,
        "work_s": _s(span.last_ms, span.first_ms) if span else None,
        "exit_s": _s(stopped, span.last_ms) if span else None,
        "run_s": _s(stopped, started),
        "log_lines": span.lines if span else 0,
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def stage_phases(job: JobRecord, logs: Any, group: str) -> dict[str, Any]:
    """One stage: its job, or for an array the parent's span and its children summarised."""
    if not job.children:
        return {"kind": "single", **job_phases(job, logs, group)}
    children = [job_phases(child, logs, group) for child in job.children]
    starts = [c.started_at for c in job.children if c.started_at]
    stops = [c.stopped_at for c in job.children if c.stopped_at]
    busy = sum(p["run_s"] or 0.0 for p in children)
    span = _s(max(stops), min(starts)) if starts and stops else None
    return {
        "kind": "array",
        "children": len(children),
        "parent_s": _s(job.stopped_at, job.created_at),
        "to_first_child_s": _s(min(starts), job.created_at) if starts else None,
        "children_span_s": span,
        "child_run_s_total": round(busy, 3),
        "mean_concurrency": round(busy / span, 2) if span else None,
        "child_queue_s_median": _median([p["queue_s"] for p in children]),
        "child_start_s_median": _median([p["start_s"] for p in children]),
        "child_work_s_median": _median([p["work_s"] for p in children]),
        "child_exit_s_median": _median([p["exit_s"] for p in children]),
        "last_child_to_parent_done_s": _s(job.stopped_at, max(stops)) if stops else None,
    }


def run_breakdown(
    run: RunRecord,
    logs: Any,
    group: str,
    upload_start_ms: int | None = None,
    upload_end_ms: int | None = None,
) -> dict[str, Any]:
    """Top-level phases (tiling upload start -> execution stop) plus each stage's detail."""
    phases: list[tuple[str, float | None]] = []
    if upload_start_ms is not None and upload_end_ms is not None:
        phases.append(("upload (client PUT to S3)", _s(upload_end_ms, upload_start_ms)))
        phases.append(
            (
                "trigger (S3 event -> EventBridge -> Lambda -> StartExecution)",
                _s(run.started_at, upload_end_ms),
            )
        )
    cursor: int | None
    cursor, cursor_name = run.started_at, "execution start"
    stages: dict[str, Any] = {}
    for job in run.jobs:
        phases.append((f"{cursor_name} -> {job.stage} submitted (states, .sync)", _s(job.created_at, cursor)))
        phases.append((f"{job.stage} job (submitted -> stopped)", _s(job.stopped_at, job.created_at)))
        stages[job.stage] = stage_phases(job, logs, group)
        cursor, cursor_name = job.stopped_at, f"{job.stage} stopped"
    phases.append((f"{cursor_name} -> execution stop (.sync wake, end states)", _s(run.stopped_at, cursor)))
    start = upload_start_ms if upload_start_ms is not None else run.started_at
    return {
        "total_s": _s(run.stopped_at, start),
        "phases": [{"phase": name, "seconds": seconds} for name, seconds in phases],
        "stages": stages,
    }
