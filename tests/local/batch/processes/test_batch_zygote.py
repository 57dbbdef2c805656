"""The zygote executor: Python job images forked from a pre-imported process, one process per
attempt, with the same environment, exit codes, signals and teardown as a plain exec."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.local.batch import BatchEngine
from sluice.local.batch.container import LocalImage
from sluice.local.batch.executor import LaunchSpec
from sluice.local.batch.testing import EventRecorder
from sluice.local.batch.zygote import ZygoteExecutor
from tests.local.batch.processes.conftest import TIMEOUT_SCALE
from tests.local.batch.processes.helpers import Harness, batch_client, serve

JOB = """
import json, os, signal, sys, time
import jobpkg.state as state

mode = sys.argv[1] if len(sys.argv) > 1 else "report"
report = {
    "pid": os.getpid(), "sid": os.getsid(0), "cwd": os.getcwd(), "argv": sys.argv,
    "env": dict(os.environ), "counter": state.COUNTER, "zygote_pid": state.LOADED_BY,
    "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "stdin": sys.stdin.read(),
}
state.COUNTER += 1
os.environ["LEAKED_BY_A_JOB"] = "1"
print(json.dumps(report), flush=True)
print("to stderr", file=sys.stderr, flush=True)
if mode == "exit":
    sys.exit(int(sys.argv[2]))
if mode == "raise":
    raise RuntimeError("job failed")
if mode == "os_exit":
    os._exit(int(sys.argv[2]))
if mode == "wait":
    print("waiting", flush=True)
    time.sleep(60)
"""


class Run:
    """One attempt's output lines and exit code, as the executor reports them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.code: int | None = None
        self.done = threading.Event()

    def on_output(self, events: list[tuple[int, str]]) -> None:
        self.lines.extend(line for _, line in events)

    def on_exit(self, code: int) -> None:
        self.code = code
        self.done.set()

    def finish(self, timeout: float = 30) -> int:
        assert self.done.wait(timeout), f"no exit within {timeout} s; output so far: {self.lines}"
        assert self.code is not None
        return self.code

    def wait_for_line(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.lines:
            assert time.monotonic() < deadline, f"{text!r} not printed; output: {self.lines}"
            time.sleep(0.01)

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(next(line for line in self.lines if line.startswith("{")))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A job package whose __main__ imports a module with state the zygote preloads."""
    package = tmp_path / "app" / "jobpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "state.py").write_text("import os\nCOUNTER = 0\nLOADED_BY = os.getpid()\n")
    (package / "__main__.py").write_text(textwrap.dedent(JOB))
    return tmp_path / "app"


@pytest.fixture
def executor() -> Iterator[ZygoteExecutor]:
    running = ZygoteExecutor(enabled=True)
    yield running
    running.close()


def spec(app: Path, *args: str, env: dict[str, str] | None = None, module: str = "jobpkg") -> LaunchSpec:
    base = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(app), "PYTHONUNBUFFERED": "1"}
    return LaunchSpec(argv=(sys.executable, "-m", module, *args), env={**base, **(env or {})}, cwd=str(app))


def run(executor: ZygoteExecutor, launch: LaunchSpec) -> Run:
    attempt = Run()
    executor.launch(launch, attempt.on_output, attempt.on_exit)
    attempt.finish()
    return attempt


def test_each_job_gets_its_own_process_environment_and_fresh_module_state(executor, image):
    first = run(executor, spec(image, env={"AWS_ACCESS_KEY_ID": "KEY-A", "AWS_BATCH_JOB_ID": "job-a"}))
    second = run(executor, spec(image, env={"AWS_BATCH_JOB_ID": "job-b"}))
    assert executor.forked == 2
    a, b = first.report, second.report
    assert a["env"]["AWS_ACCESS_KEY_ID"] == "KEY-A"
    assert "AWS_ACCESS_KEY_ID" not in b["env"], "credentials of one job reached the next"
    assert b["env"]["AWS_BATCH_JOB_ID"] == "job-b"
    assert "LEAKED_BY_A_JOB" not in b["env"]
    # The environment is exactly the attempt's: nothing of the zygote's (e.g. its jemalloc setting).
    assert b["env"] == {**spec(image).env, "AWS_BATCH_JOB_ID": "job-b"}
    assert a["counter"] == b["counter"] == 0, "module state changed by a job reached the next"
    assert a["pid"] != b["pid"]
    assert a["zygote_pid"] == b["zygote_pid"] not in (a["pid"], b["pid"]), "state.py was not preloaded"
    for report in (a, b):
        assert report["sid"] == report["pid"], "each attempt leads its own session (process group)"
        assert report["cwd"] == str(image)
        assert report["argv"] == [str(image / "jobpkg" / "__main__.py")]
        assert report["sigterm_default"] is True
        assert report["stdin"] == ""
    assert "to stderr" in first.lines and "to stderr" in second.lines


@pytest.mark.parametrize(
    ("args", "code"),
    [(("exit", "3"), 3), (("raise",), 1), (("os_exit", "7"), 7), (("report",), 0), (("exit", "256"), 0)],
)
def test_exit_codes_are_the_processes(executor, image, args, code):
    attempt = run(executor, spec(image, *args))
    assert attempt.code == code
    assert executor.forked == 1
    if args == ("raise",):
        assert any("RuntimeError: job failed" in line for line in attempt.lines)


def test_terminate_sends_sigterm_and_kill_ends_the_group(executor, image):
    attempt = Run()
    process = executor.launch(spec(image, "wait"), attempt.on_output, attempt.on_exit)
    attempt.wait_for_line("waiting")
    process.terminate()
    assert attempt.finish() == 128 + signal.SIGTERM
    killed = Run()
    process = executor.launch(spec(image, "wait"), killed.on_output, killed.on_exit)
    killed.wait_for_line("waiting")
    process.kill()
    assert killed.finish() == 128 + signal.SIGKILL
    assert executor.forked == 2


def test_commands_a_zygote_cannot_run_are_executed(executor, image):
    shell = run(executor, LaunchSpec(argv=("/bin/sh", "-c", "echo plain; exit 4"), env={}, cwd=str(image)))
    script = run(executor, LaunchSpec(argv=(sys.executable, "-c", "print('inline')"), env={}, cwd=None))
    assert (shell.code, shell.lines) == (4, ["plain"])
    assert (script.code, script.lines) == (0, ["inline"])
    assert executor.forked == 0


def test_disabled_zygote_executes(image):
    executor = ZygoteExecutor(enabled=False)
    try:
        attempt = run(executor, spec(image, "exit", "5"))
    finally:
        executor.close()
    assert attempt.code == 5
    assert executor.forked == 0
    assert attempt.report["zygote_pid"] == attempt.report["pid"]


def test_an_import_that_starts_a_thread_makes_the_zygote_unhealthy(executor, image):
    (image / "jobpkg" / "state.py").write_text(
        "import os, threading, time\nCOUNTER = 0\nLOADED_BY = os.getpid()\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    )
    first = run(executor, spec(image, "exit", "2"))
    second = run(executor, spec(image))
    assert (first.code, second.code) == (2, 0)
    assert executor.forked == 0, "forked from a process with another thread"
    assert second.report["zygote_pid"] == second.report["pid"]


def test_edited_job_code_is_picked_up(executor, image):
    assert run(executor, spec(image)).report["counter"] == 0
    state = image / "jobpkg" / "state.py"
    state.write_text("import os\nCOUNTER = 41\nLOADED_BY = os.getpid()\n")
    os.utime(state, ns=(time.time_ns(), time.time_ns() + 10**9))  # a later mtime, whatever the clock
    edited = run(executor, spec(image))
    assert edited.report["counter"] == 41
    assert executor.forked == 2


def test_a_job_running_when_its_code_is_edited_runs_on(executor, image):
    running = Run()
    process = executor.launch(spec(image, "wait"), running.on_output, running.on_exit)
    running.wait_for_line("waiting")
    state = image / "jobpkg" / "state.py"
    state.write_text("import os\nCOUNTER = 7\nLOADED_BY = os.getpid()\n")
    os.utime(state, ns=(time.time_ns(), time.time_ns() + 10**9))
    edited = run(executor, spec(image))
    assert edited.report["counter"] == 7
    assert edited.report["zygote_pid"] != running.report["zygote_pid"]
    assert not running.done.is_set(), "replacing the zygote ended the attempt it had started"
    process.terminate()
    assert running.finish() == 128 + signal.SIGTERM  # its own exit, reported by the old zygote


def test_a_dead_zygote_is_replaced_and_its_running_child_reported_killed(executor, image):
    waiting = Run()
    executor.launch(spec(image, "wait"), waiting.on_output, waiting.on_exit)
    waiting.wait_for_line("waiting")
    zygote_pid = waiting.report["zygote_pid"]
    os.kill(zygote_pid, signal.SIGKILL)
    assert waiting.finish() == 128 + signal.SIGKILL
    after = run(executor, spec(image, "exit", "6"))
    assert after.code == 6
    assert after.report["zygote_pid"] not in (zygote_pid, after.report["pid"])


def test_different_startup_environments_get_different_zygotes(executor, image):
    utf8 = run(executor, spec(image, env={"PYTHONUTF8": "1"}))
    plain = run(executor, spec(image))
    assert utf8.report["zygote_pid"] != plain.report["zygote_pid"]
    assert executor.forked == 2


# -- through the Batch engine: a `python -m` image's jobs are forked, with Batch's semantics ------


@pytest.fixture
def engine_with_image(image: Path, moto_endpoint: str) -> Iterator[Harness]:
    """The Batch engine whose job image `sluice/jd` runs `python -m jobpkg` in the image's directory."""
    events = EventRecorder()
    resolved = LocalImage(entrypoint=[sys.executable, "-m", "jobpkg"], workdir=str(image))
    engine = BatchEngine(
        endpoint_url=moto_endpoint,
        emit_event=events,
        max_local_vcpus=4,
        timeout_scale=TIMEOUT_SCALE,
        image_resolver=lambda uri: resolved,
    )
    engine.start()
    server, thread = serve(engine)
    try:
        yield Harness(engine, None, events, batch_client(server.server_port))
    finally:
        server.shutdown()
        thread.join()
        engine.stop()


def _job_report(logs: Any, detail: dict[str, Any]) -> dict[str, Any]:
    stream = detail["container"]["logStreamName"]
    events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True)
    return json.loads(next(e["message"] for e in events["events"] if e["message"].startswith("{")))


def test_the_engine_forks_python_image_jobs_with_batch_semantics(engine_with_image, logs):
    batch = engine_with_image
    batch.basic(command=("exit", "0"), timeout={"attemptDurationSeconds": 60})
    ok = batch.submit("ok", containerOverrides={"environment": [{"name": "JOB_SECRET", "value": "a"}]})
    ok_detail = batch.wait(ok, "SUCCEEDED", timeout=30)
    failed = batch.submit("failed", containerOverrides={"command": ["exit", "3"]})
    failed_detail = batch.wait(failed, "FAILED", timeout=30)
    assert failed_detail["attempts"][0]["container"]["exitCode"] == 3
    timed_out = batch.submit("slow", containerOverrides={"command": ["wait"]})
    slow_detail = batch.wait(timed_out, "FAILED", timeout=30)
    assert slow_detail["statusReason"] == "Job attempt duration exceeded timeout"
    assert slow_detail["attempts"][0]["container"]["exitCode"] == 143  # 128 + SIGTERM
    assert batch.engine._executor.forked == 3  # the executor the engine made: a ZygoteExecutor
    assert batch.engine.flush(timeout=10)
    first, second = _job_report(logs, ok_detail), _job_report(logs, failed_detail)
    assert first["env"]["JOB_SECRET"] == "a" and "JOB_SECRET" not in second["env"]
    assert first["env"]["AWS_BATCH_JOB_ID"] == ok and second["env"]["AWS_BATCH_JOB_ID"] == failed
    assert first["pid"] != second["pid"] and first["zygote_pid"] == second["zygote_pid"]
