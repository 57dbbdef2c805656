"""Warm worker processes and the per-function pool that hands them out.

One worker process serves one invocation at a time, like a Lambda execution environment:
the first invocation pays the cold start (spawn + handler import), later ones reuse an
idle worker. A timed-out or crashed worker is killed and replaced by the next cold start.
Workers run the handler with ``sys.executable`` (the project's virtualenv interpreter),
whatever Python version the function's ``Runtime`` names, except for a package that ships its
own dependencies (``sam build``'s output, deployed with ``sam deploy``): its compiled modules
are built for the ``Runtime``'s Python, so it runs on that Python when one is installed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("bootstrap.py")

LogSink = Callable[[str], None]

# Every worker this process started and has not seen exit: the safety net of kill_all_workers().
_live_lock = threading.Lock()
_live: set[WorkerProcess] = set()


def kill_all_workers() -> int:
    """Kill every worker process still running (the local cloud calls it last when it stops: a
    pool made by a request that raced the runtime's stop is in no runtime's list). Returns how
    many were still running."""
    with _live_lock:
        workers = list(_live)
    running = [worker for worker in workers if worker.alive]
    for worker in workers:
        worker.kill()
    return len(running)


# Lambda gives the init phase (handler import) its own 10 s on top of the function timeout
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
INIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to start an execution environment for one function version."""

    function_name: str
    version: str
    handler: str
    code_dir: Path
    env: dict[str, str]
    log_group: str
    memory_size: int
    runtime: str = ""


def interpreter_for(runtime: str, code_dir: Path) -> str:
    """The Python a worker runs: the project's, or the ``Runtime``'s one for a self-contained package.

    A package with ``*.dist-info`` next to the handler carries its dependencies (``sam build``
    installs them there with pip); their compiled modules (pydantic_core) load only on the Python
    they were built for. That Python is looked up on PATH, else in pyenv's versions directory.
    """
    match = re.fullmatch(r"python(3\.\d+)", runtime)
    if match is None or match.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    if not any(code_dir.glob("*.dist-info")):
        return sys.executable
    name = f"python{match.group(1)}"
    found = shutil.which(name)
    if found is None or Path(found).parent.name == "shims":
        # A pyenv shim fails unless that version is selected; the version's own binary works.
        pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        candidates = sorted(pyenv_root.glob(f"versions/{match.group(1)}*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    return found or sys.executable


@dataclass
class Outcome:
    """The result of one invocation in a worker."""

    payload: bytes
    error: dict[str, Any] | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    init_duration_ms: float | None = None
    max_memory_mb: int = 0
    log_lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None


def log_stream_name(version: str) -> str:
    # Lambda's stream name format: YYYY/MM/DD/[<version>]<environment id>.
    return f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{version}]{uuid.uuid4().hex}"


def _max_rss_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class WorkerProcess:
    """One execution environment: a Python process running bootstrap.py."""

    def __init__(self, spec: WorkerSpec, emit_log: Callable[[str, str], None]) -> None:
        self.spec = spec
        self.log_stream = log_stream_name(spec.version)
        self._emit_log = emit_log  # (stream, message)
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._capture: list[str] | None = None
        self._ready = False
        self.started_at = time.monotonic()
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        env = dict(spec.env)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = self.log_stream
        env["_SLUICE_LAMBDA_REQUEST_FD"] = str(request_r)
        env["_SLUICE_LAMBDA_RESPONSE_FD"] = str(response_w)
        try:
            self.process = subprocess.Popen(
                [interpreter_for(spec.runtime, spec.code_dir), "-P", str(WORKER_SCRIPT)],
                env=env,
                cwd=spec.code_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_r, response_w),
                start_new_session=True,  # the worker's own children die with it on kill
            )
        finally:
            os.close(request_r)
            os.close(response_w)
        self._requests = os.fdopen(request_w, "wb", buffering=0)
        self._responses = os.fdopen(response_r, "rb")
        self.pid = self.process.pid
        with _live_lock:
            _live.add(self)
        threading.Thread(target=self._read_channel, name=f"lambda-{self.pid}-channel", daemon=True).start()
        threading.Thread(target=self._drain_output, name=f"lambda-{self.pid}-output", daemon=True).start()

    # ------------------------------------------------------------------ readers
    def _log(self, message: str) -> None:
        if self._capture is not None:
            self._capture.append(message)
        self._emit_log(self.log_stream, message)

    def _read_channel(self) -> None:
        for line in self._responses:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("t") == "log":
                self._log(str(message.get("m", "")))
            else:
                self._messages.put(message)
        self._messages.put({"t": "exit"})
        self._responses.close()

    def _drain_output(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in self.process.stdout:
                self._log(raw.decode("utf-8", "replace").rstrip("\n"))

    # ------------------------------------------------------------------ lifecycle
    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        else:
            self._forget()
        self.request_exit()

    def _forget(self) -> None:
        with _live_lock:
            _live.discard(self)

    def request_exit(self) -> None:
        """Graceful shutdown, step one: closing the request pipe ends the worker's loop."""
        try:
            self._requests.close()
        except OSError:
            pass

    def wait_exit(self, deadline: float) -> None:
        """Step two: wait for the exit until ``deadline`` (monotonic), then kill."""
        try:
            self.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            self.kill()
        else:
            self._forget()

    def _exit_description(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name.removeprefix("SIG").lower()
            return f"signal: {'killed' if name == 'kill' else name}"
        return f"exit status {code}"

    # ------------------------------------------------------------------ invoke
    def invoke(
        self,
        request_id: str,
        event: str,
        *,
        timeout_s: float,
        invoked_arn: str,
        client_context: Any = None,
    ) -> Outcome:
        """Run one invocation. A cold start's init has its own budget (the larger of 10 s
        and the timeout); the handler then gets the full function timeout."""
        started = time.monotonic()
        self._capture = []
        init_ms: float | None = None
        try:
            if not self._ready:
                message = self._next(self.started_at + max(INIT_TIMEOUT_S, timeout_s))
                init_ms = (time.monotonic() - self.started_at) * 1000
                if message is None:
                    return self._timeout(request_id, timeout_s, started, init_ms)
                if message["t"] != "ready":
                    error = message.get("error") or self._exit_error(request_id)
                    error["requestId"] = request_id
                    self.kill()
                    return self._outcome(error, started, init_ms, failed=True)
                self._ready = True
            deadline = time.monotonic() + timeout_s
            trace_id = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
            request = {
                "id": request_id,
                "event": event,
                "deadline_ms": int((time.time() + (deadline - time.monotonic())) * 1000),
                "arn": invoked_arn,
                "trace_id": trace_id,
                "client_context": client_context,
            }
            try:
                self._requests.write((json.dumps(request) + "\n").encode())
            except (BrokenPipeError, OSError):
                return self._outcome(self._exit_error(request_id), started, init_ms, failed=True)
            message = self._next(deadline)
            if message is None:
                return self._timeout(request_id, timeout_s, started, init_ms)
            if message["t"] == "result":
                return self._outcome(str(message["payload"]).encode(), started, init_ms)
            if message["t"] == "error":
                return self._outcome(message["error"], started, init_ms, failed=True)
            return self._outcome(self._exit_error(request_id), started, init_ms, failed=True)
        finally:
            self._capture = None

    def _next(self, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return self._messages.get(timeout=remaining)
        except queue.Empty:
            return None

    def _exit_error(self, request_id: str) -> dict[str, Any]:
        return {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {self._exit_description()}",
        }

    def _timeout(self, request_id: str, timeout_s: float, started: float, init_ms: float | None) -> Outcome:
        # Lambda stops the environment at the timeout (no cleanup runs) and reports
        # "Task timed out after N.NN seconds" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
        memory = _max_rss_mb(self.pid)
        self.kill()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
        self._log(f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds")
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
        outcome = self._outcome(error, started, init_ms, failed=True)
        outcome.timed_out = True
        outcome.max_memory_mb = memory
        return outcome

    def _outcome(self, body: Any, started: float, init_ms: float | None, *, failed: bool = False) -> Outcome:
        duration = (time.monotonic() - started) * 1000
        if init_ms is not None:
            duration = max(duration - init_ms, 0.0)
        memory = _max_rss_mb(self.pid) if self.alive else 0
        lines = list(self._capture or [])
        if failed:
            error = dict(body)
            payload = json.dumps(error).encode()
            return Outcome(payload, error, False, duration, init_ms, memory, lines)
        return Outcome(body, None, False, duration, init_ms, memory, lines)


class WorkerPool:
    """The execution environments of one function version.

    ``limit`` caps concurrent environments. ``acquire(block=False)`` returns None at the
    cap (throttling, for reserved concurrency); ``block=True`` waits for a free one.
    """

    def __init__(self, spec: WorkerSpec, emit_log: Callable[[str, str], None]) -> None:
        self.spec = spec
        self._emit_log = emit_log
        self._idle: list[WorkerProcess] = []
        self._all: set[WorkerProcess] = set()
        self._busy = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def busy(self) -> int:
        with self._cond:
            return self._busy

    def acquire(self, limit: int, *, block: bool, timeout: float | None = None) -> WorkerProcess | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("worker pool is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        self._busy += 1
                        return worker
                    worker.kill()
                if self._busy < limit:
                    self._busy += 1
                    break
                if not block:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
        try:
            worker = WorkerProcess(self.spec, self._emit_log)  # cold start, outside the lock
        except BaseException:
            with self._cond:
                self._busy -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._all.add(worker)
            closed = self._closed
        if closed:  # closed while this worker was starting
            worker.kill()
        return worker

    def release(self, worker: WorkerProcess) -> None:
        with self._cond:
            self._busy -= 1
            keep = worker.alive and not self._closed
            if keep:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
            self._cond.notify()
        if not keep:
            worker.kill()

    def begin_close(self) -> list[WorkerProcess]:
        """Stop handing out environments: idle ones are asked to exit (returned, to wait
        for), busy ones are killed (their invocation fails as if the environment was lost)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = self._all - set(idle)
            self._all = set()
            self._cond.notify_all()
        for worker in busy:
            worker.kill()
        for worker in idle:
            worker.request_exit()
        return idle

    def close(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.begin_close():
            worker.wait_exit(deadline)

    def idle_pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in self._idle]
