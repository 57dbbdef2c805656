"""CLI argument handling: usage errors exit 2 with a message, through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sluice.cli.arguments import parse_options
from sluice.cli.exits import UsageError
from sluice.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_no_command_prints_help_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: sluice" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["local", "run", "/definitely/not/here.csv"],
        ["local", "run", "--spot-reclaim", "1.5", "README.md"],
        ["sample-data", "out.csv"],
        ["nonsense"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "error" in result.stderr


def test_bad_options_json_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "s3://bucket/key", "--options", "{nope", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    assert "--options is not valid JSON" in capsys.readouterr().err


def test_bad_s3_uri_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "bucket/key", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    assert "is not an s3://BUCKET/KEY URI" in capsys.readouterr().err


def test_options_from_file(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    path.write_text('{"group_by": ["country"]}')
    assert parse_options(f"@{path}") == {"group_by": ["country"]}
    with pytest.raises(UsageError, match="must be a JSON object"):
        parse_options("[1, 2]")
    with pytest.raises(UsageError, match="does not exist"):
        parse_options(f"@{tmp_path / 'missing.json'}")


def test_help_of_every_command() -> None:
    for command in [
        "demo",
        "local",
        "drop",
        "run",
        "status",
        "logs",
        "notifications",
        "report",
        "sample-data",
    ]:
        result = run_cli(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: sluice" in result.stdout


@pytest.mark.parametrize("remainder", ["../escape.csv", "/etc/passwd", "a/../../b", "a//b", "./x", ""])
def test_output_keys_that_would_leave_the_output_directory_are_refused(tmp_path, remainder):
    from sluice.cli.localrun import UnsafeKeyError, local_path_for

    with pytest.raises(UnsafeKeyError, match="would not stay inside"):
        local_path_for(tmp_path, remainder)


def test_ordinary_output_keys_land_inside_the_output_directory(tmp_path):
    from sluice.cli.localrun import local_path_for

    assert local_path_for(tmp_path, "result.csv") == tmp_path / "result.csv"
    assert local_path_for(tmp_path, "sub/dir/x.parquet") == tmp_path / "sub" / "dir" / "x.parquet"
