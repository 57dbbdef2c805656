"""Every `sluice` command README shows, run as README shows it, in README's order.

README's fenced shell blocks are parsed; each `sluice ...` (or `.venv/bin/sluice ...`) line is run
through the real entry point in a subprocess, from one scratch directory (as a user's shell would
be): the `local run` lines each start their own local cloud; `local up` starts the one the lines
after it use (through `.sluice/local/credentials.env`, as README's next line says); placeholders
(`BUCKET`, `KEY`, `EXECUTION`, `JOB_ID`) take the values earlier commands printed, and `[X]` runs
the command both without and with X. The files the examples name (`my-file.csv`, `data.csv`) are
sample data made first.

`test_every_readme_command_is_run` fails when README gains a `sluice` command this module does not
know how to run (a new line in PLANS is all it takes), so no example goes untested.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sluice import sampledata
from tests.cli.helpers import alive, descendants, read_proc, wait_until
from tests.helpers import ROOT

# The checkout whose template.yaml the commands deploy: SLUICE_PROJECT_ROOT, as for the CLI.
PROJECT = Path(os.environ.get("SLUICE_PROJECT_ROOT") or ROOT)

pytestmark = [pytest.mark.e2e]

SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell|console)\n(.*?)```", re.S)
SLUICE = re.compile(r"^(?:\.venv/bin/)?sluice$")
PLACEHOLDERS = ("BUCKET", "KEY", "EXECUTION", "JOB_ID")


def readme_sluice_commands() -> list[list[str]]:
    """The `sluice` command lines of README's shell blocks (continuations joined, comments
    dropped), as argv after the program name."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in SHELL_BLOCK.findall(text):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            if words and SLUICE.match(words[0]):
                commands.append(words[1:])
    return commands


def shown(argv: list[str]) -> str:
    return " ".join(argv)


def variants(argv: list[str]) -> list[list[str]]:
    """`[X]` is optional: the command without it, then with it (every combination)."""
    optional = [i for i, word in enumerate(argv) if word.startswith("[") and word.endswith("]")]
    found = []
    for keep in itertools.product((False, True), repeat=len(optional)):
        chosen = dict(zip(optional, keep, strict=True))
        found.append(
            [w[1:-1] if i in chosen and chosen[i] else w for i, w in enumerate(argv) if chosen.get(i, True)]
        )
    return found


@dataclass(frozen=True)
class Plan:
    """How one README command is run and judged."""

    codes: tuple[int, ...] = (0,)  # the exit codes README documents for it here
    background: bool = False  # `local up`: serves until stopped
    why: str = ""


# Every `sluice` command README shows, as it shows it. A `local run` with Spot reclaim may fail
# its run when one job is reclaimed on all 3 attempts (0.3^3 per job): exit 1 is the documented
# code for a failed run, so both are README's promise there.
PLANS = {
    "local run my-file.csv": Plan(),
    'local run my-file.csv --options {"group_by": ["country"], "metrics": {"amount": ["sum", "mean"]}}': Plan(),
    "local run my-file.csv --spot-reclaim 0.3": Plan(codes=(0, 1), why="a run may lose a job to Spot"),
    "local up": Plan(background=True),
    "drop data.csv": Plan(),
    'run s3://BUCKET/KEY --options {"split_target_mb": 16}': Plan(),
    "run s3://BUCKET/KEY": Plan(),
    "status [EXECUTION]": Plan(),
    "logs JOB_ID [--follow]": Plan(),
    "rerun EXECUTION": Plan(why="the run succeeded, so there is nothing to rerun: exit 0"),
    "report EXECUTION": Plan(),
    "notifications": Plan(),
    "sample-data --rows 1000000 sales.csv.gz": Plan(),
    "iam report": Plan(),
}

# What earlier commands print that later ones need.
LEARN = {
    "BUCKET": re.compile(r"^uploaded s3://([^/\s]+)/", re.M),
    "KEY": re.compile(r"^uploaded s3://[^/\s]+/(\S+)", re.M),
    "EXECUTION": re.compile(r"^execution arn:aws:states:[^:]+:\d+:execution:[^:]+:(\S+)$", re.M),
    "JOB_ID": re.compile(r"^  ingest\s+\S+\s+([0-9a-f-]{36})\b", re.M),
}


@dataclass
class Shell:
    """One scratch directory and the environment README's commands run in."""

    cwd: Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    up: subprocess.Popen[str] | None = None

    def run(self, argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sluice.cli", *argv],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def fill(self, argv: list[str]) -> list[str]:
        filled = []
        for word in argv:
            for name in PLACEHOLDERS:
                if name in word:
                    assert name in self.values, f"{name} in `{shown(argv)}` before any command printed it"
                    word = word.replace(name, self.values[name])
            filled.append(word)
        return filled

    def learn(self, output: str) -> None:
        for name, pattern in LEARN.items():
            if found := pattern.search(output):
                self.values[name] = found.group(1)

    def start_up(self, argv: list[str], log: Path) -> None:
        """`local up` in the background until it is ready; later commands use what it wrote."""
        with log.open("w") as handle:
            self.up = subprocess.Popen(
                [sys.executable, "-m", "sluice.cli", *argv],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
            )
        ready = wait_until(
            lambda: (
                "Sluice local cloud ready" in log.read_text() or self.up is None or self.up.poll() is not None
            ),
            timeout=120,
        )
        assert ready and self.up.poll() is None, f"local up did not become ready:\n{log.read_text()}"
        # README: `. .sluice/local/credentials.env` in another shell.
        for line in (self.cwd / ".sluice/local/credentials.env").read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            self.env[name] = value

    def stop_up(self) -> int | None:
        if self.up is None:
            return None
        up, self.up = self.up, None
        tree = [p for p in [read_proc(up.pid), *descendants(up.pid)] if p is not None]
        if up.poll() is None:
            up.send_signal(signal.SIGINT)  # Ctrl-C, the way README's `local up` ends
        try:
            code = up.wait(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
                up.wait(timeout=30)
            wait_until(lambda: not [p for p in tree if alive(p)], timeout=15)
            for proc in tree:
                if alive(proc):
                    os.kill(proc.pid, signal.SIGKILL)
        return code


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"SLUICE_PROJECT_ROOT": str(PROJECT), "AWS_CONFIG_FILE": os.devnull}
    env |= {"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "PYTHONUNBUFFERED": "1"}
    # The files README's examples name.
    sampledata.generate(tmp_path / "my-file.csv", rows=2000, seed=5)
    sampledata.generate(tmp_path / "data.csv", rows=2000, seed=6)
    state = Shell(tmp_path, env)
    try:
        yield state
    finally:
        state.stop_up()


def test_readme_shows_sluice_commands() -> None:
    commands = [shown(argv) for argv in readme_sluice_commands()]
    assert "local up" in commands and any(c.startswith("local run ") for c in commands), commands


def test_every_readme_command_is_run() -> None:
    """A `sluice` command README gains must get a plan here (and so be run by the test below)."""
    commands = [shown(argv) for argv in readme_sluice_commands()]
    unplanned = [c for c in commands if c not in PLANS]
    assert not unplanned, f"README shows sluice commands no test runs; add them to PLANS: {unplanned}"
    gone = [c for c in PLANS if c not in commands]
    assert not gone, f"PLANS has commands README no longer shows; remove them: {gone}"


@pytest.mark.timeout(600)
def test_every_readme_sluice_command_works(shell: Shell, tmp_path: Path) -> None:
    reported = ""  # the execution `report EXECUTION` wrote a report for (later runs learn others)
    for argv in readme_sluice_commands():
        plan = PLANS[shown(argv)]
        for variant in variants(argv):
            command = shell.fill(variant)
            if command[0] == "report":
                reported = command[1]
            if plan.background:
                shell.start_up(command, tmp_path / "local-up.log")
                continue
            result = shell.run(command)
            output = result.stdout + result.stderr
            assert result.returncode in plan.codes, (
                f"`sluice {shown(command)}` exited {result.returncode}, README promises {plan.codes}:\n{output}"
            )
            assert "Traceback" not in output, output
            shell.learn(result.stdout)

    # What the commands left behind is what README says they leave.
    assert reported and (tmp_path / "sluice-out" / reported / "report.html").is_file()
    local_runs = [
        p for p in (tmp_path / "sluice-out").glob("*/report.html") if (p.parent / "output").is_dir()
    ]
    assert local_runs, "no `local run` wrote its report and outputs under ./sluice-out/<run-id>/"
    assert (tmp_path / "sales.csv.gz").stat().st_size > 0
    assert shell.stop_up() == 0  # Ctrl-C ends `local up`: "local cloud stopped", exit 0
