"""Which Python a Lambda worker runs: the project's, or the Runtime's for a `sam build` package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sluice.local.awslambda.pool import interpreter_for

OTHER = "3.13" if sys.version_info[:2] != (3, 13) else "3.12"


def fake_python(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / f"python{version}"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_a_package_with_its_dependencies_runs_on_the_runtimes_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "code"
    (code / "pydantic-2.0.dist-info").mkdir(parents=True)
    program = fake_python(tmp_path / "bin", OTHER)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert interpreter_for(f"python{OTHER}", code) == str(program)


def test_a_package_without_dependencies_runs_on_the_projects_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_python(tmp_path / "bin", OTHER)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert interpreter_for(f"python{OTHER}", tmp_path) == sys.executable
    same = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / "x.dist-info").mkdir()
    assert interpreter_for(same, tmp_path) == sys.executable


def test_a_pyenv_shim_is_passed_over_for_the_versions_own_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "code" / "x.dist-info").mkdir(parents=True)
    fake_python(tmp_path / "pyenv" / "shims", OTHER)
    real = fake_python(tmp_path / "pyenv" / "versions" / f"{OTHER}.0" / "bin", OTHER)
    monkeypatch.setenv("PATH", str(tmp_path / "pyenv" / "shims"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    assert interpreter_for(f"python{OTHER}", tmp_path / "code") == str(real)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "nowhere"))
    assert interpreter_for(f"python{OTHER}", tmp_path / "code") == sys.executable
