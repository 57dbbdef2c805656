"""Every way of stopping `sluice local run` mid-run leaves no process and no temporary directory.

The job and Lambda worker processes run in their own sessions, so only the command itself can
end them. Each case starts the real command on a file whose run takes a while (many small
shards), waits until a Batch job process and a Lambda worker exist, records the whole process
tree (the setsid'd workers included: a new session keeps its parent), sends the signal, then
asserts that every recorded process is gone, the exit code is 128 + the signal, and TMPDIR (where
the run's state, image staging and Lambda code directories live) is empty again.

SIGHUP is sent the way a closed terminal sends it: the command's stdout and stderr are a
pseudo-terminal whose master side is closed first, so every later write to it fails (EIO).
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.cli.helpers import Proc, alive, descendants, read_proc, wait_until
from tests.helpers import ROOT

# The checkout whose template.yaml the commands deploy: SLUICE_PROJECT_ROOT, as for the CLI.
PROJECT = Path(os.environ.get("SLUICE_PROJECT_ROOT") or ROOT)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

ROWS = 20_000
# ~5 KB shards: ingest writes hundreds of them and the transform array runs for many seconds.
OPTIONS = '{"shard_target_mb": 0.005}'
LAMBDA_WORKER = "bootstrap.py"


@pytest.fixture(scope="module")
def slow_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sluice import sampledata

    path = tmp_path_factory.mktemp("signals-input") / "transactions.csv"
    sampledata.generate(path, rows=ROWS, seed=11)
    return path


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    tmpdir: Path
    stderr_path: Path | None
    master: int | None  # the pseudo-terminal's master side (SIGHUP case), until the hangup
    recorded: list[Proc] = field(default_factory=list)  # the tree just before the signal
    terminal: bytearray = field(default_factory=bytearray)  # what it wrote to the pseudo-terminal

    def stderr(self) -> str:
        if self.stderr_path is None:
            return self.terminal.decode(errors="replace")
        return self.stderr_path.read_text(errors="replace")

    def drain(self) -> None:
        """Read what the command wrote to its terminal so far (it would block on a full pty)."""
        if self.master is None:
            return
        os.set_blocking(self.master, False)
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(self.master, 65536):
                self.terminal += chunk

    def workers(self) -> tuple[list[Proc], list[Proc]]:
        """(Batch job processes, Lambda worker processes) below the command right now."""
        tree = [p for p in descendants(self.process.pid) if p.session == p.pid]  # session leaders
        lambdas = [p for p in tree if any(arg.endswith(LAMBDA_WORKER) for arg in p.argv)]
        return [p for p in tree if p not in lambdas], lambdas


@contextlib.contextmanager
def local_run(tmp_path: Path, data: Path, *, terminal: bool) -> Iterator[Run]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(tmpdir),
        "SLUICE_PROJECT_ROOT": str(PROJECT),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "sluice.cli", "local", "run", str(data), "--options", OPTIONS]
    argv += ["--out", str(tmp_path / "out")]
    master: int | None = None
    stderr_path: Path | None = None
    handles: list[IO[bytes]] = []
    if terminal:
        master, slave = pty.openpty()
        process = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
        )
        os.close(slave)
    else:
        stderr_path = tmp_path / "stderr.txt"
        handles = [(tmp_path / "stdout.txt").open("wb"), stderr_path.open("wb")]
        process = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=handles[0], stderr=handles[1]
        )
    run = Run(process, tmpdir, stderr_path, master)
    try:
        yield run
    finally:
        # Whatever the test started stops here, whatever happened: the command, then every
        # process recorded below it (by pid and start time, so no reused pid is hit).
        seen = descendants(process.pid) if process.poll() is None else []
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for proc in seen + run.recorded:
            if alive(proc):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        if run.master is not None:
            os.close(run.master)
        for handle in handles:
            handle.close()


CASES = {
    "SIGINT": (signal.SIGINT,),
    "SIGINT-twice": (signal.SIGINT, signal.SIGINT),
    "SIGTERM": (signal.SIGTERM,),
    "SIGHUP": (signal.SIGHUP,),
}


@pytest.mark.timeout(150)
@pytest.mark.parametrize("case", list(CASES))
def test_a_stopped_run_leaves_no_process_and_no_temp_directory(
    case: str, tmp_path: Path, slow_input: Path
) -> None:
    signals = CASES[case]
    hangup = signals[0] == signal.SIGHUP
    with local_run(tmp_path, slow_input, terminal=hangup) as run:

        def workers_running() -> bool:
            run.drain()
            jobs, lambdas = run.workers()
            return bool(jobs and lambdas) or run.process.poll() is not None

        assert wait_until(workers_running, timeout=90), "no job process and Lambda worker within 90 s"
        run.drain()
        assert run.process.poll() is None, f"the run ended before it could be stopped:\n{run.stderr()}"
        command = read_proc(run.process.pid)
        assert command is not None
        recorded = run.recorded = [command, *descendants(run.process.pid)]
        jobs, lambdas = run.workers()
        assert jobs and lambdas

        if hangup:
            assert run.master is not None
            os.close(run.master)  # the terminal goes away, then the hangup arrives
            run.master = None
        run.process.send_signal(signals[0])
        if len(signals) > 1:
            # The second Ctrl-C comes while the cloud is stopping.
            assert wait_until(lambda: "stopping the local cloud" in run.stderr(), timeout=30), run.stderr()
            run.process.send_signal(signals[1])

        code = run.process.wait(timeout=60)
        assert wait_until(lambda: not [p for p in recorded if alive(p)], timeout=15), [
            (p.pid, " ".join(p.argv)) for p in recorded if alive(p)
        ]
        assert code == 128 + signals[0], f"exit code {code}:\n{run.stderr()}"
        assert sorted(os.listdir(run.tmpdir)) == []
        stderr = run.stderr()
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
        if not hangup:
            name = "interrupted" if signals[0] == signal.SIGINT else f"stopped by {signals[0].name}"
            assert f"sluice: {name}; the local cloud was stopped" in stderr, stderr
        if len(signals) > 1:
            assert "still stopping the local cloud" in stderr, stderr
