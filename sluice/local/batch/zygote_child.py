"""The zygote program: one pre-imported Python process per job image that forks one child per attempt.

Run by `sluice.local.batch.zygote` as ``python -c <this file's source> <control fd> <module>`` in
the image's working directory, with the image's interpreter-level environment (``PYTHON*``,
``LANG``/``LC_*``, ``PATH``, ``HOME``). Standard library only: nothing of Sluice (or of the
engine) ends up in a job's ``sys.modules``.

Start-up: put the working directory first on ``sys.path`` (what ``python -m`` does), import
the modules the entry module's ``__main__`` imports (for ``python -m transform``: jobkit.runner,
transform.job, transform.plan and, through them, pyarrow and boto3), never the entry module's
code itself, then answer ``ready`` (or ``unhealthy`` when forking would be unsafe: another
thread exists after the imports). Per attempt the engine sends the argv/env/cwd and the
write end of the attempt's output pipe; the zygote forks, sends back the child's pid and a
pidfd for it, reaps it later and sends its wait status. The child becomes what
``subprocess.Popen(argv, env=env, cwd=cwd, stdin=DEVNULL, stdout=pipe, stderr=STDOUT,
start_new_session=True)`` would have started: its own session, cwd, environment (replaced
whole), output pipe, default signal dispositions, then ``runpy`` runs the module as
``__main__``.

Protocol: a SOCK_SEQPACKET socket, one JSON object per message, file descriptors as SCM_RIGHTS.
"""

from __future__ import annotations

import ast
import atexit
import importlib.util
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import traceback
from typing import Any

_MAX_MESSAGE = 1 << 20


def _send(control: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(control, [data], fds)
    else:
        control.sendall(data)


def _imports_of_main(module: str) -> list[str]:
    """Absolute module names imported anywhere in ``<module>/__main__.py`` (or the module itself
    when it is not a package): what the job imports before its first instruction."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ImportError(f"No module named {module}")
    if spec.submodule_search_locations is not None:
        spec = importlib.util.find_spec(f"{module}.__main__")
        if spec is None:
            raise ImportError(f"No module named {module}.__main__")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return []
    with open(spec.origin, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), spec.origin)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            # `from package import submodule` imports the submodule too.
            names.extend(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return [name for name in dict.fromkeys(names) if name != "__main__"]


def _preload(module: str) -> tuple[list[str], list[str]]:
    # `python -m` imports the module's parent packages (and the package itself when it is one)
    # before running it; a plain module's own code is never run here.
    parts = module.split(".")
    spec = importlib.util.find_spec(module)
    is_package = spec is not None and spec.submodule_search_locations is not None
    packages = [".".join(parts[:i]) for i in range(1, len(parts) + (1 if is_package else 0))]
    loaded, failed = [], []
    for name in [*packages, *_imports_of_main(module)]:
        if name in sys.modules:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                continue  # `from package import attribute`: not a module
        except (ImportError, ValueError):
            continue
        try:
            __import__(name)
            loaded.append(name)
        except BaseException:  # the job itself will fail on it, with its own traceback
            failed.append(name)
    return loaded, failed


def _own_sources() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every loaded module file outside the interpreter's installation: the
    job code, which a developer may edit while the cloud runs."""
    installed = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    found: dict[str, tuple[int, int]] = {}
    for loaded in list(sys.modules.values()):
        path = getattr(loaded, "__file__", None)
        if not isinstance(path, str) or path.startswith(installed):
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def _unchanged(sources: dict[str, tuple[int, int]]) -> bool:
    for path, seen in sources.items():
        try:
            stat = os.stat(path)
        except OSError:
            return False
        if (stat.st_mtime_ns, stat.st_size) != seen:
            return False
    return True


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _run_child(request: dict[str, Any], output: int, own_fds: list[int]) -> None:
    """In the forked child: become the attempt's process, run the module, exit. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        for fd in {devnull, output, *own_fds}:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = os.getcwd()
        argv: list[str] = request["argv"]
        sys.argv = ["-m", *argv[3:]]  # runpy puts the module's file in argv[0], as -m does
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        # What interpreter exit does before the process ends, except module teardown.
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


def serve(control_fd: int, module: str) -> None:
    control = socket.socket(fileno=control_fd)
    sys.path[0] = os.getcwd()  # `python -c` put "" there; `python -m` puts the directory
    try:
        loaded, failed = _preload(module)
    except BaseException as error:
        _send(control, {"unhealthy": f"{type(error).__name__}: {error}"})
        return
    threads = _thread_count()
    if threads != 1:
        _send(control, {"unhealthy": f"{threads} threads after the imports: forking is unsafe"})
        return
    sources = _own_sources()
    sys.stdout.flush()
    sys.stderr.flush()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    own_fds = [control.fileno(), wake_r, wake_w]
    _send(control, {"ready": True, "preloaded": loaded, "failed": failed, "pid": os.getpid()})
    children: set[int] = set()
    # Once stale (job code edited) or unsafe, fork no more; the attempts already running go on,
    # reaped and reported as before, and the zygote exits after the last one.
    retired: str | None = None
    while True:
        for key, _ in selector.select():
            if key.data == "child":
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                for pid in list(children):
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        children.discard(pid)
                        _send(control, {"exit": pid, "status": status})
                if retired and not children:
                    return
                continue
            message, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 1)
            if not message:  # the engine closed its end: stop (children are the engine's to kill)
                return
            request = json.loads(message)
            if not fds:
                _send(control, {"error": "no output pipe"})
                continue
            output = fds[0]
            if retired is None and not _unchanged(sources):
                retired = "stale"
            if retired is None and _thread_count() != 1:
                retired = "unhealthy"
            if retired is not None:
                os.close(output)
                _send(
                    control, {retired: True if retired == "stale" else "a thread appeared: forking is unsafe"}
                )
                if not children:
                    return
                continue
            try:
                pid = os.fork()
            except OSError as error:
                os.close(output)
                _send(control, {"error": f"fork failed: {error}"})
                continue
            if pid == 0:
                selector.close()
                _run_child(request, output, own_fds)
            os.close(output)
            children.add(pid)
            pidfd = os.pidfd_open(pid)
            try:
                _send(control, {"pid": pid}, [pidfd])
            finally:
                os.close(pidfd)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
