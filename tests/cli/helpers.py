"""What the CLI tests share: the process tree of a command they started, read from /proc (Linux).

A process is named by (pid, start time in clock ticks since boot), so a pid the kernel reuses
after the process ended is never mistaken for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int  # /proc/PID/stat field 22: start time, clock ticks after boot
    ppid: int
    session: int
    argv: tuple[str, ...]


def read_proc(pid: int) -> Proc | None:
    """The process `pid` is now, or None once it is gone (a zombie counts as gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (the name) is in parentheses and may hold spaces: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    argv = tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return Proc(pid, int(fields[19]), int(fields[1]), int(fields[3]), argv)


def all_processes() -> list[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := read_proc(int(entry))) is not None:
            found.append(proc)
    return found


def descendants(root: int) -> list[Proc]:
    """Every live process below `root` (setsid'd ones included: a new session keeps its parent)."""
    processes = all_processes()
    children: dict[int, list[Proc]] = {}
    for proc in processes:
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def alive(proc: Proc) -> bool:
    now = read_proc(proc.pid)
    return now is not None and now.started == proc.started


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it is true or `timeout` seconds have passed; its last truth value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
