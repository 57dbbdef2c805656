"""Test support for code that runs against the Batch engine.

- :class:`FakeExecutor`: attempts without processes, ended by the test (``BatchEngine(executor=...)``).
- :class:`EventRecorder`: an ``emit_event`` target that keeps events and lets a test wait for one
  (job state changes by job and status; `Batch Job Queue Blocked` events apart, in ``blocked``).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from sluice.local.batch.executor import ExitCallback, LaunchError, LaunchSpec, OutputCallback

TERM_EXIT = 143
KILL_EXIT = 137


class FakeProcess:
    """An attempt that ends when the test says so (or when it is signalled)."""

    def __init__(
        self, executor: FakeExecutor, spec: LaunchSpec, on_output: OutputCallback, on_exit: ExitCallback
    ) -> None:
        self.executor = executor
        self.spec = spec
        self.on_output = on_output
        self.on_exit = on_exit
        self.signals: list[str] = []
        self.exit_code: int | None = None

    @property
    def job_id(self) -> str:
        return self.spec.env["AWS_BATCH_JOB_ID"]

    @property
    def attempt(self) -> int:
        return int(self.spec.env["AWS_BATCH_JOB_ATTEMPT"])

    def exit(self, code: int = 0) -> None:
        self.executor.deliver(self, code)

    def terminate(self) -> None:
        self.signals.append("TERM")
        if not self.executor.ignore_term:
            self.exit(TERM_EXIT)

    def kill(self) -> None:
        self.signals.append("KILL")
        self.exit(KILL_EXIT)


class FakeExecutor:
    """Records launches; exits are delivered from a worker thread, like a real executor's.

    ``auto_exit(spec)`` may return an exit code to end an attempt as soon as it starts;
    ``launch_error(spec)`` may return a message to make the launch fail.
    """

    def __init__(
        self,
        auto_exit: Callable[[LaunchSpec], int | None] | None = None,
        launch_error: Callable[[LaunchSpec], str | None] | None = None,
    ) -> None:
        self.auto_exit = auto_exit
        self.launch_error = launch_error
        self.ignore_term = False
        self.gate: threading.Event | None = None  # when set by a test, launches wait for it
        self.launched: list[FakeProcess] = []
        self._cond = threading.Condition()
        self._exits: queue.SimpleQueue[tuple[FakeProcess, int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fake-executor", daemon=True)
        self._thread.start()

    def launch(self, spec: LaunchSpec, on_output: OutputCallback, on_exit: ExitCallback) -> FakeProcess:
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.launch_error is not None and (message := self.launch_error(spec)):
            raise LaunchError(message)
        process = FakeProcess(self, spec, on_output, on_exit)
        with self._cond:
            self.launched.append(process)
            self._cond.notify_all()
        if self.auto_exit is not None and (code := self.auto_exit(spec)) is not None:
            process.exit(code)
        return process

    def deliver(self, process: FakeProcess, code: int) -> None:
        with self._cond:
            if process.exit_code is not None:
                return
            process.exit_code = code
        self._exits.put((process, code))

    def running(self) -> list[FakeProcess]:
        with self._cond:
            return [p for p in self.launched if p.exit_code is None]

    def wait_launched(self, count: int, timeout: float = 5.0) -> list[FakeProcess]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.launched) >= count, timeout):
                raise AssertionError(f"expected {count} launches, saw {len(self.launched)}")
            return list(self.launched)

    def process(self, job_id: str, attempt: int = 1, timeout: float = 5.0) -> FakeProcess:
        """A job's attempt, once it was launched."""

        def launched() -> FakeProcess | None:
            return next((p for p in self.launched if p.job_id == job_id and p.attempt == attempt), None)

        with self._cond:
            if not self._cond.wait_for(lambda: launched() is not None, timeout):
                raise AssertionError(f"attempt {attempt} of {job_id} was never launched")
            process = launched()
            assert process is not None
            return process

    def close(self) -> None:
        self._exits.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._exits.get()) is not None:
            process, code = item
            process.on_exit(code)


class EventRecorder:
    """emit_event target: keeps every event (detail parsed once) and lets tests wait for one."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.blocked: list[dict[str, Any]] = []  # Batch Job Queue Blocked entries, detail parsed
        self.hook: Callable[[dict[str, Any]], None] | None = None
        self._details: list[dict[str, Any]] = []
        self._reached: dict[tuple[str, str], dict[str, Any]] = {}  # (jobId, status) -> first such detail
        self._cond = threading.Condition()

    def __call__(self, entry: dict[str, Any]) -> None:
        if self.hook is not None:
            self.hook(entry)
        detail = json.loads(entry["Detail"])
        with self._cond:
            self.entries.append(entry)
            if entry["DetailType"] != "Batch Job State Change":
                self.blocked.append({**entry, "Detail": detail})
                self._cond.notify_all()
                return
            self._details.append(detail)
            self._reached.setdefault((detail["jobId"], detail["status"]), detail)
            self._cond.notify_all()

    def wait_blocked(self, job_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first `Batch Job Queue Blocked` entry about a job (its Detail parsed)."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.blocked if e["Detail"]["jobId"] == job_id), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no Batch Job Queue Blocked event for {job_id}")
            entry = found()
            assert entry is not None
            return entry

    def details(self, job_id: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [d for d in self._details if job_id is None or d["jobId"] == job_id]

    def statuses(self, job_id: str) -> list[str]:
        return [d["status"] for d in self.details(job_id)]

    def wait_status(self, job_id: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        key = (job_id, status)
        with self._cond:
            if not self._cond.wait_for(lambda: key in self._reached, timeout):
                raise AssertionError(f"{job_id} never reached {status}; saw {self.statuses(job_id)}")
            return self._reached[key]
