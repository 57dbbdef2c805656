"""How the commands that start a local cloud (`local run`, `demo`, `local up`) stop on a signal.

The local cloud's job and Lambda worker processes run in their own sessions, as containers do,
so a terminal's Ctrl-C (SIGINT) or hangup (SIGHUP), or a `kill` (SIGTERM), reaches only this
process; only the local cloud's `stop()` ends them and only the command removes its temporary
directories. So the first of these signals ends what the command is doing by raising `Stopped`
in the main thread, and the command's cleanup (`LocalCloud.stop()`, temporary directories) runs
as for any error. Every later signal (a second Ctrl-C while the cloud stops, a hangup after a
Ctrl-C) is noted on stderr but never interrupts that cleanup: an interrupted cleanup is what
would leave processes and directories behind.

Exit status: 128 + the number of the first signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), also
when it arrived while the command was already finishing; `local up`, which runs until stopped,
exits 0 instead.

After SIGHUP the terminal is gone and writing to it fails (EIO), so stdout and stderr are
pointed at /dev/null before the cleanup starts.
"""

from __future__ import annotations

import os
import signal
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt: no `except Exception`
    on the way up may swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        if self.signum == signal.SIGINT:
            return "interrupted"
        return f"stopped by {signal.Signals(self.signum).name}"


class StopSignals:
    """While active (a context manager, in the main thread): the first stop signal raises
    `Stopped` once; `shield()` ends that, so the cleanup that follows runs to its end. Leaving
    the block normally after a signal arrived raises `Stopped` then, so the exit code tells."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._raising = True
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._raising = False
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if exc is None and self.received is not None:
            raise Stopped(self.received)

    def shield(self) -> None:
        """From now on signals are only noted: call it where the cleanup begins."""
        self._raising = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if signum == signal.SIGHUP:
            _detach_from_terminal()
        if self._raising:
            self._raising = False
            _note(
                f"sluice: {signal.Signals(signum).name} received; stopping the local cloud (ending its "
                "processes, removing its temporary files)\n"
            )
            raise Stopped(signum)
        _note(
            f"sluice: {signal.Signals(signum).name} received; still stopping the local cloud "
            "(ending its processes, removing its temporary files), which takes a few seconds\n"
        )


def _note(text: str) -> None:
    """Straight to fd 2: the handler may run while sys.stderr is in the middle of a write."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


def _detach_from_terminal() -> None:
    """Point stdout and stderr at /dev/null, so the cleanup and the exit never fail writing to a
    terminal that hung up."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        # What sys.stdout/sys.stderr still buffer goes there too when they flush.
        for fd in (1, 2):
            os.dup2(null, fd)
    finally:
        os.close(null)
