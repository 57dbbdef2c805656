"""Runs job attempts as host processes: the local stand-in for an ECS task on a container instance.

One I/O thread waits on every attempt's output pipe and on a pidfd per process (Linux), so
output and exits are handled as they happen, with no polling and no thread per process.
Where pidfds are missing (macOS), a small waiter thread per running process reports the exit
instead; the number of running processes is bounded by the scheduler's vCPU capacity.

Container semantics kept: stdout and stderr go to one log stream (like the awslogs driver);
a stop sends SIGTERM to the main process and SIGKILL to everything after the grace period
(like ``docker stop``); when the main process exits its whole process group is killed, as the
container's teardown would. Exit codes of signalled processes are reported as 128 + signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Protocol

from sluice.local.batch.models import now_ms

log = logging.getLogger(__name__)

OutputCallback = Callable[[list[tuple[int, str]]], None]  # [(epoch ms, line)]
ExitCallback = Callable[[int], None]

_READ_CHUNK = 65536
# CloudWatch Logs events are at most 256 KB; longer lines are split.
MAX_LINE_BYTES = 256 * 1024 - 26
_HAS_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


class LaunchError(Exception):
    """The attempt's process could not be started (the container failed to start)."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None


class ChildProcess(Protocol):
    """What the I/O loop needs of a started process: ``subprocess.Popen`` or a zygote's child."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def wait(self) -> int:
        """Block until the process has exited; its return code (-signal if signalled)."""
        ...


class RunningProcess(Protocol):
    def terminate(self) -> None:
        """SIGTERM to the main process (what ``docker stop`` does first)."""

    def kill(self) -> None:
        """SIGKILL to every process of the attempt."""


class Executor(Protocol):
    def launch(self, spec: LaunchSpec, on_output: OutputCallback, on_exit: ExitCallback) -> RunningProcess:
        """Start an attempt; raise LaunchError if it cannot start.

        ``on_output`` and ``on_exit`` are called from the executor's threads; ``on_exit`` exactly
        once, after all output was passed to ``on_output``.
        """

    def close(self) -> None:
        """Kill every running attempt and stop the executor's threads (no callbacks after)."""


def exit_code_of(returncode: int) -> int:
    """Docker reports a signalled container as 128 + signal (SIGTERM → 143, SIGKILL → 137)."""
    return 128 - returncode if returncode < 0 else returncode


class LineSplitter:
    """Turns output chunks into timestamped lines."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[tuple[int, str]]:
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_LINE_BYTES:
            lines.append(self._partial)
            self._partial = b""
        return self._events(lines)

    def finish(self) -> list[tuple[int, str]]:
        rest, self._partial = self._partial, b""
        return self._events([rest] if rest else [])

    @staticmethod
    def _events(lines: list[bytes]) -> list[tuple[int, str]]:
        if not lines:
            return []
        stamp = now_ms()
        events = []
        for line in lines:
            for start in range(0, max(len(line), 1), MAX_LINE_BYTES):
                events.append((stamp, line[start : start + MAX_LINE_BYTES].decode("utf-8", "replace")))
        return events


class _Process:
    """A running attempt's process, its output pipe and (on Linux) its pidfd."""

    __slots__ = ("popen", "pidfd", "stdout", "splitter", "on_output", "on_exit", "lock", "done", "eof")

    def __init__(
        self, popen: ChildProcess, on_output: OutputCallback, on_exit: ExitCallback, pidfd: int | None = None
    ) -> None:
        self.popen = popen
        if pidfd is None:
            pidfd = os.pidfd_open(popen.pid) if _HAS_PIDFD else -1
        self.pidfd = pidfd
        assert popen.stdout is not None
        self.stdout = popen.stdout.fileno()
        os.set_blocking(self.stdout, False)
        self.splitter = LineSplitter()
        self.on_output = on_output
        self.on_exit = on_exit
        self.lock = threading.Lock()
        self.done = False
        self.eof = False

    def terminate(self) -> None:
        self._signal(signal.SIGTERM, group=False)

    def kill(self) -> None:
        self._signal(signal.SIGKILL, group=True)

    def _signal(self, sig: int, *, group: bool) -> None:
        with self.lock:
            if self.done:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group:
                    os.killpg(self.popen.pid, sig)  # start_new_session made pid the group id
                elif self.pidfd >= 0:
                    signal.pidfd_send_signal(self.pidfd, sig)  # immune to pid reuse
                else:
                    os.kill(self.popen.pid, sig)


class ProcessExecutor:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._new: list[_Process] = []
        self._exited: list[_Process] = []  # from waiter threads when there are no pidfds
        self._running: set[_Process] = set()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="batch-executor", daemon=True)
        self._thread.start()

    def launch(self, spec: LaunchSpec, on_output: OutputCallback, on_exit: ExitCallback) -> RunningProcess:
        popen, pidfd = self._spawn(spec)
        process = _Process(popen, on_output, on_exit, pidfd)
        with self._lock:
            if self._closing:
                process.kill()
                raise LaunchError("the executor is shutting down")
            self._new.append(process)
        if not _HAS_PIDFD:
            threading.Thread(
                target=self._wait_thread, args=(process,), name="batch-wait", daemon=True
            ).start()
        self._wake()
        return process

    def _spawn(self, spec: LaunchSpec) -> tuple[ChildProcess, int | None]:
        """Start the attempt's process (and give its pidfd, if known); raise LaunchError."""
        try:
            popen = subprocess.Popen(
                spec.argv,
                env=dict(spec.env),
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as error:
            raise LaunchError(str(error)) from error
        return popen, None

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._wake()
        self._thread.join()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _wait_thread(self, process: _Process) -> None:
        process.popen.wait()
        with self._lock:
            self._exited.append(process)
        self._wake()

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_r, 4096):
                            pass
                    continue
                kind, process = key.data
                if process not in self._running:
                    # Reaped earlier in this same batch of events (its exit came before its
                    # output): its pipe is closed now, and the fd number may already be reused.
                    continue
                if kind == "out":
                    self._read(process)
                else:
                    self._reap(process)
            with self._lock:
                new, self._new = self._new, []
                exited, self._exited = self._exited, []
                closing = self._closing
            for process in new:
                self._running.add(process)
                self._selector.register(process.stdout, selectors.EVENT_READ, ("out", process))
                if process.pidfd >= 0:
                    self._selector.register(process.pidfd, selectors.EVENT_READ, ("exit", process))
            for process in exited:
                self._reap(process)
            if closing:
                self._shutdown()
                return

    def _read(self, process: _Process) -> None:
        try:
            chunk = os.read(process.stdout, _READ_CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            # EOF: every writer closed the pipe; the exit itself comes through the pidfd.
            process.eof = True
            self._selector.unregister(process.stdout)
            return
        events = process.splitter.feed(chunk)
        if events:
            self._deliver(process, events)

    def _reap(self, process: _Process) -> None:
        if process not in self._running:
            return
        with process.lock:
            returncode = process.popen.wait()
            process.done = True
            # Tear the "container" down: nothing the job started outlives it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.popen.pid, signal.SIGKILL)
        # Drain what the pipe still holds (non-blocking: a killed grandchild may keep it open).
        while not process.eof:
            try:
                chunk = os.read(process.stdout, _READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            events = process.splitter.feed(chunk)
            if events:
                self._deliver(process, events)
        tail = process.splitter.finish()
        if tail:
            self._deliver(process, tail)
        self._forget(process)
        try:
            process.on_exit(exit_code_of(returncode))
        except Exception:
            log.exception("Batch attempt exit handler failed")

    def _deliver(self, process: _Process, events: list[tuple[int, str]]) -> None:
        try:
            process.on_output(events)
        except Exception:
            log.exception("Batch attempt output handler failed")

    def _forget(self, process: _Process) -> None:
        self._running.discard(process)
        if not process.eof:
            self._selector.unregister(process.stdout)
        if process.pidfd >= 0:
            self._selector.unregister(process.pidfd)
            os.close(process.pidfd)
        assert process.popen.stdout is not None
        process.popen.stdout.close()

    def _shutdown(self) -> None:
        for process in list(self._running):
            process.kill()
        for process in list(self._running):
            with process.lock:
                process.popen.wait()
                process.done = True
            self._forget(process)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
