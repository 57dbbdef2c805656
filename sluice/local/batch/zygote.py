"""Fast job start: a pre-imported "zygote" per Python job image forks one process per attempt.

A Python job spends nearly all of RUNNING -> first log line starting the interpreter and
importing pyarrow, boto3 and its own package (~0.2-0.3 s, bench/jobstart.py). For an attempt
whose command is ``<this interpreter> -m <module> [args]`` (what every job image of this
project runs: ``ENTRYPOINT ["python", "-m", "transform"]``), `ZygoteExecutor` keeps one
process per (interpreter, module, working directory, interpreter-level environment) that has
imported what the module's ``__main__`` imports (`zygote_child`), and asks it to fork.

Each attempt is still its own process, as with ``ProcessExecutor``: its own pid and session
(the child calls ``setsid()``), working directory, environment (replaced whole: credentials,
AWS_BATCH_* and the job's variables are never the zygote's), output pipe (created here, sent
to the zygote, dup'ed onto the child's stdout and stderr), default signal dispositions, exit
code (128 + signal when signalled) and process-group teardown. The engine signals it through
a pidfd the zygote hands over, so SIGTERM/SIGKILL are immune to pid reuse as before.

What the zygote shares with its children is only what it imported (module code and module
level state, copy-on-write): no clients, sessions or threads exist yet at that point
(botocore builds its session on the first client call, which a job makes itself); the
zygote refuses to fork when a second thread exists, and starts pyarrow's bundled jemalloc
without its background purge thread (``JE_ARROW_MALLOC_CONF=background_thread:false``; the
default pool is mimalloc here), the one thread importing pyarrow starts.
Children of one zygote share its hash seed (``PYTHONHASHSEED``); ``random`` reseeds after fork.

Falls back to a plain exec (``ProcessExecutor``) when the command is anything else, when
there are no pidfds (macOS), when the zygote is not healthy (an import started a thread, it
died), or when ``SLUICE_BATCH_ZYGOTE=0`` is set in the engine's environment. A zygote whose
job sources (files outside the interpreter's installation) changed since it imported them is
replaced before the next fork, so edited job code is picked up as with a fresh process; the
attempts it already started run on (it reaps them, then exits).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from sluice.local.batch.executor import _HAS_PIDFD, ChildProcess, LaunchSpec, ProcessExecutor

log = logging.getLogger(__name__)

_SOURCE = (Path(__file__).with_name("zygote_child.py")).read_text(encoding="utf-8")
_MAX_MESSAGE = 1 << 20
_READY_TIMEOUT_S = 60.0
_FORK_TIMEOUT_S = 10.0
# Variables the interpreter or a native library reads while starting or importing: a zygote
# is shared only by attempts that agree on all of them. Everything else (AWS_*, the job's own
# variables) is read by the job when it runs, in its own environment.
_STARTUP_PREFIXES = ("PYTHON", "LC_", "ARROW_", "JE_ARROW_", "MALLOC_", "OMP_", "OPENBLAS_", "MKL_")
_STARTUP_NAMES = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})
_JEMALLOC_CONF = "JE_ARROW_MALLOC_CONF"
DISABLE_VARIABLE = "SLUICE_BATCH_ZYGOTE"


class ZygoteUnavailableError(Exception):
    """The zygote cannot fork this attempt; the plain exec path is used instead."""


def startup_environment(env: dict[str, str] | Any) -> dict[str, str]:
    return {
        name: value
        for name, value in env.items()
        if name in _STARTUP_NAMES or name.startswith(_STARTUP_PREFIXES)
    }


def zygote_module(spec: LaunchSpec) -> str | None:
    """The module of ``<this interpreter> -m <module> ...``, or None when a zygote cannot run it."""
    argv = spec.argv
    if len(argv) < 3 or argv[1] != "-m" or not argv[2] or argv[2].startswith("-"):
        return None
    if os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
        return None
    if spec.cwd is None or not os.path.isdir(spec.cwd):
        return None
    return argv[2]


class ZygoteChild:
    """An attempt's process forked by a zygote; its exit status arrives from the zygote."""

    def __init__(self, pid: int, stdout: IO[bytes]) -> None:
        self._pid = pid
        self._stdout = stdout
        self._exited = threading.Event()
        self._returncode = 0

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._stdout

    def exited(self, returncode: int) -> None:
        self._returncode = returncode
        self._exited.set()

    def wait(self) -> int:
        self._exited.wait()
        return self._returncode


class Zygote:
    """One zygote process and the thread reading its messages."""

    def __init__(self, module: str, cwd: str, env: dict[str, str]) -> None:
        self.module = module
        self.alive = True
        self.preloaded: list[str] = []
        self._replies: queue.Queue[tuple[dict[str, Any], list[int]]] = queue.Queue()
        self._children: dict[int, ZygoteChild] = {}  # forked, exit status not yet received
        self._early_exits: dict[int, int] = {}  # exit statuses that came before fork() returned
        self._children_lock = threading.Lock()
        self._reader_done = False
        self._lock = threading.Lock()  # one fork request at a time
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        env = dict(env)
        conf = env.get(_JEMALLOC_CONF, "")
        if "background_thread" not in conf:
            env[_JEMALLOC_CONF] = ",".join(filter(None, [conf, "background_thread:false"]))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SOURCE, str(theirs.fileno()), module],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except OSError as error:
            ours.close()
            raise ZygoteUnavailableError(f"the zygote could not start: {error}") from error
        finally:
            theirs.close()
        self._reader = threading.Thread(target=self._read, name=f"batch-zygote-{module}", daemon=True)
        self._reader.start()
        reply = self._reply(_READY_TIMEOUT_S)
        if not reply.get("ready"):
            self.close()
            raise ZygoteUnavailableError(
                f"zygote for {module} is unhealthy: {reply.get('unhealthy') or reply}"
            )
        self.preloaded = list(reply.get("preloaded", []))
        log.info("zygote for %s ready (pid %s): %s", module, self.process.pid, ", ".join(self.preloaded))
        if reply.get("failed"):
            log.info("zygote for %s could not import %s", module, ", ".join(reply["failed"]))

    def fork(self, spec: LaunchSpec) -> tuple[ZygoteChild, int]:
        """Fork the attempt's process; its pidfd is the caller's to close. Raises
        ZygoteUnavailableError (the zygote is then dead or stale: close it)."""
        read_end, write_end = os.pipe()
        request = {"argv": list(spec.argv), "env": dict(spec.env), "cwd": spec.cwd}
        with self._lock:
            try:
                if not self.alive:
                    raise ZygoteUnavailableError("the zygote has exited")
                try:
                    socket.send_fds(self._control, [json.dumps(request).encode()], [write_end])
                except OSError as error:
                    raise ZygoteUnavailableError(f"the zygote is gone: {error}") from error
                finally:
                    os.close(write_end)
                reply, fds = self._reply_with_fds(_FORK_TIMEOUT_S)
                if "pid" not in reply or not fds:
                    for fd in fds:
                        os.close(fd)
                    self.alive = False
                    raise ZygoteUnavailableError(str(reply))
                child = ZygoteChild(int(reply["pid"]), os.fdopen(read_end, "rb", buffering=0))
                with self._children_lock:
                    if child.pid in self._early_exits:
                        child.exited(self._early_exits.pop(child.pid))
                    elif self._reader_done:  # the zygote died: no status will come
                        child.exited(-signal.SIGKILL)
                    else:
                        self._children[child.pid] = child
                return child, fds[0]
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(read_end)
                raise

    def running_children(self) -> bool:
        with self._children_lock:
            return bool(self._children) and not self._reader_done

    def close(self) -> None:
        """Stop the zygote (its running children are the executor's: it kills them first). It
        holds nothing to save, so it is killed: its interpreter's teardown would take ~0.1 s."""
        self.alive = False
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=5)
        self._control.close()

    def _reply(self, timeout: float) -> dict[str, Any]:
        reply, fds = self._reply_with_fds(timeout)
        for fd in fds:
            os.close(fd)
        return reply

    def _reply_with_fds(self, timeout: float) -> tuple[dict[str, Any], list[int]]:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            self.alive = False
            return {"error": f"no answer from the zygote within {timeout} s"}, []

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._control, _MAX_MESSAGE, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                break
            message = json.loads(data)
            if "exit" in message:
                pid, code = int(message["exit"]), os.waitstatus_to_exitcode(int(message["status"]))
                with self._children_lock:
                    child = self._children.pop(pid, None)
                    if child is None:  # exited before fork() registered it
                        self._early_exits[pid] = code
                if child is not None:
                    child.exited(code)
                continue
            self._replies.put((message, list(fds)))
        self.alive = False
        self._replies.put(({"error": "the zygote exited"}, []))
        # Children whose zygote died cannot be reaped here: end them, report them killed.
        with self._children_lock:
            self._reader_done = True
            orphans, self._children = self._children, {}
        for pid, child in orphans.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            child.exited(-signal.SIGKILL)


class ZygoteExecutor(ProcessExecutor):
    """`ProcessExecutor` that forks Python attempts from a pre-imported zygote where it can."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        super().__init__()
        if enabled is None:
            enabled = os.environ.get(DISABLE_VARIABLE, "1") != "0"
        self.enabled = enabled and _HAS_PIDFD
        self._zygotes: dict[tuple[Any, ...], Zygote] = {}
        self._unhealthy: set[tuple[Any, ...]] = set()
        self._retired: list[Zygote] = []  # replaced, with attempts still running
        self._zygote_lock = threading.Lock()
        self.forked = 0  # attempts started by a zygote (the rest were exec'ed)

    def _spawn(self, spec: LaunchSpec) -> tuple[ChildProcess, int | None]:
        module = zygote_module(spec) if self.enabled else None
        if module is not None:
            key = (spec.argv[0], module, spec.cwd, tuple(sorted(startup_environment(spec.env).items())))
            for _ in range(2):  # a stale zygote is replaced once
                zygote = self._zygote(key, module, spec)
                if zygote is None:
                    break
                try:
                    child, pidfd = zygote.fork(spec)
                except ZygoteUnavailableError as error:
                    log.info("zygote for %s: %s", module, error)
                    self._drop(key, zygote)
                    continue
                self.forked += 1
                return child, pidfd
        return super()._spawn(spec)

    def _zygote(self, key: tuple[Any, ...], module: str, spec: LaunchSpec) -> Zygote | None:
        with self._zygote_lock:
            if key in self._unhealthy:
                return None
            zygote = self._zygotes.get(key)
            if zygote is not None and zygote.alive:
                return zygote
            assert spec.cwd is not None
            try:
                zygote = Zygote(module, spec.cwd, startup_environment(spec.env))
            except ZygoteUnavailableError as error:
                log.warning("%s; its attempts start as plain processes", error)
                self._unhealthy.add(key)
                return None
            self._zygotes[key] = zygote
            return zygote

    def _drop(self, key: tuple[Any, ...], zygote: Zygote) -> None:
        """Stop using a zygote. One whose attempts still run (its job code was edited while they
        ran) stays until they end: it reaps them and reports their exits, then exits itself."""
        with self._zygote_lock:
            if self._zygotes.get(key) is zygote:
                del self._zygotes[key]
            self._retired.append(zygote)
            finished = [z for z in self._retired if not z.running_children()]
            self._retired = [z for z in self._retired if z.running_children()]
        for done in finished:
            done.close()

    def close(self) -> None:
        super().close()  # kills and reaps every attempt, zygote children included
        with self._zygote_lock:
            zygotes, self._zygotes = [*self._zygotes.values(), *self._retired], {}
            self._retired = []
        for zygote in zygotes:
            zygote.close()
