"""Live progress of one execution: each stage's state and elapsed time, the array as a bar.

Rich live view on a terminal, plain lines otherwise (CI logs stay readable). Everything is read
through the public APIs: DescribeExecution, the execution history and DescribeJobs, whose array
parent carries `arrayProperties.statusSummary`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sluice.aws import Clients
from sluice.runs.records import STAGES, describe_jobs, submitted_jobs

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
POLL_SECONDS = 0.25


class RunTimeoutError(Exception):
    """The execution did not finish before the caller's deadline."""


@dataclass
class StageState:
    status: str = "waiting"
    started: float | None = None
    finished: float | None = None
    array_size: int | None = None
    summary: dict[str, int] = field(default_factory=dict)

    def describe(self, now: float) -> str:
        elapsed = ""
        if self.started is not None:
            elapsed = f" {((self.finished or now) - self.started):.1f}s"
        if self.array_size:
            done = self.summary.get("SUCCEEDED", 0)
            running = self.summary.get("RUNNING", 0) + self.summary.get("STARTING", 0)
            failed = self.summary.get("FAILED", 0)
            return f"{self.status}{elapsed} [{done}/{self.array_size} succeeded, {running} running, {failed} failed]"
        return f"{self.status}{elapsed}"


@dataclass
class Progress:
    execution_status: str = "RUNNING"
    stages: dict[str, StageState] = field(default_factory=lambda: {s: StageState() for s in STAGES})

    def lines(self, now: float) -> list[str]:
        return [f"{stage:<9} {state.describe(now)}" for stage, state in self.stages.items()]


def poll_once(clients: Clients, execution_arn: str, progress: Progress) -> dict[str, Any]:
    execution = clients.sfn.describe_execution(executionArn=execution_arn)
    progress.execution_status = execution["status"]
    jobs = submitted_jobs(clients.sfn, execution_arn)
    described = {job["jobId"]: job for job in describe_jobs(clients.batch, [job_id for _, job_id in jobs])}
    now = time.monotonic()
    for stage, job_id in jobs:
        job = described.get(job_id)
        if not job:
            continue
        state = progress.stages.setdefault(stage, StageState())  # "plan" appears in reruns only
        if state.started is None:
            state.started = now
        state.status = job["status"]
        array = job.get("arrayProperties") or {}
        if array.get("size"):
            state.array_size = array["size"]
            state.summary = dict(array.get("statusSummary") or {})
        if job["status"] in ("SUCCEEDED", "FAILED") and state.finished is None:
            state.finished = now
    return execution


def watch(
    clients: Clients,
    execution_arn: str,
    *,
    timeout_s: float = 3600.0,
    out: TextIO | None = None,
    live: bool | None = None,
    on_poll: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Follow the execution until it ends; returns DescribeExecution's final answer."""
    out = out or sys.stdout
    live = out.isatty() if live is None else live
    progress = Progress()
    deadline = time.monotonic() + timeout_s
    if live:
        return _watch_live(clients, execution_arn, progress, deadline, out, on_poll)
    last: list[str] = []
    while True:
        execution = poll_once(clients, execution_arn, progress)
        if on_poll:
            on_poll(progress)
        now = time.monotonic()
        lines = [
            f"{s:<9} {st.describe(now).split(' ')[0]}{_summary_suffix(st)}"
            for s, st in progress.stages.items()
        ]
        for number, line in enumerate(lines):  # a rerun's "plan" stage can appear between polls
            if line != (last[number] if number < len(last) else ""):
                print(f"  {line}", file=out, flush=True)
        last = lines
        if execution["status"] in TERMINAL:
            print(f"  execution {execution['status']}", file=out, flush=True)
            return execution
        if now > deadline:
            raise RunTimeoutError(f"{execution_arn} still {execution['status']} after {timeout_s:.0f} s")
        time.sleep(POLL_SECONDS)


def _summary_suffix(state: StageState) -> str:
    if not state.array_size:
        return ""
    size = state.array_size
    done = state.summary.get("SUCCEEDED", 0)
    failed = state.summary.get("FAILED", 0)
    # Plain output prints a line per change: past 100 children report progress in tenths, so a
    # 10,000-child array prints a dozen lines, not 10,000.
    if size > 100:
        done = (done * 10 // size) * size // 10
    return f" [{done}/{size} succeeded, {failed} failed]"


def _watch_live(
    clients: Clients,
    execution_arn: str,
    progress: Progress,
    deadline: float,
    out: TextIO,
    on_poll: Callable[[Progress], None] | None,
) -> dict[str, Any]:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    console = Console(file=out)

    def render() -> Group:
        table = Table(show_header=True, header_style="bold")
        table.add_column("stage")
        table.add_column("state")
        now = time.monotonic()
        for stage, state in progress.stages.items():
            table.add_row(stage, state.describe(now))
        parts: list[Any] = [table]
        transform = progress.stages["transform"]
        if transform.array_size:
            finished = transform.summary.get("SUCCEEDED", 0) + transform.summary.get("FAILED", 0)
            parts.append(ProgressBar(total=transform.array_size, completed=finished, width=60))
        parts.append(f"execution: {progress.execution_status}")
        return Group(*parts)

    with Live(render(), console=console, refresh_per_second=8) as view:
        while True:
            execution = poll_once(clients, execution_arn, progress)
            if on_poll:
                on_poll(progress)
            view.update(render())
            if execution["status"] in TERMINAL:
                return execution
            if time.monotonic() > deadline:
                raise RunTimeoutError(f"{execution_arn} still {execution['status']}")
            time.sleep(POLL_SECONDS)
