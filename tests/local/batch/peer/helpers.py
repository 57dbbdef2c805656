"""moto's own AWS Batch tests, unpacked from moto's pinned sdist, run against a local endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
HERE = Path(__file__).resolve().parent
EXPECTED_FAILURES = HERE / "expected_failures.txt"
# The sdist is fetched once (`make peer`, or by the test itself) into the tools cache.
SDIST_DIR = ROOT / ".tools" / "peer"
MOTO_VERSION = version("moto")  # pinned in pyproject.toml
# What the suite needs from the sdist: moto's test package helpers and the Batch tests.
_MEMBERS = (
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/markers.py",
    "tests/test_batch/",
    "pyproject.toml",
)


def sdist() -> Path:
    """The pinned moto sdist, downloaded with pip into the tools cache when not there yet."""
    path = SDIST_DIR / f"moto-{MOTO_VERSION}.tar.gz"
    if not path.exists():
        SDIST_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                f"moto=={MOTO_VERSION}",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-d",
                str(SDIST_DIR),
            ],
            check=True,
            timeout=300,
        )
    return path


def unpack(target: Path) -> Path:
    """moto's Batch tests (and the helpers they import) under `target`; returns the project dir."""
    prefix = f"moto-{MOTO_VERSION}/"
    with tarfile.open(sdist()) as archive:
        members = [
            member
            for member in archive.getmembers()
            if member.name.startswith(prefix) and member.name[len(prefix) :].startswith(_MEMBERS)
        ]
        archive.extractall(target, members=members, filter="data")
    return target / prefix


@dataclass(frozen=True)
class Outcome:
    passed: set[str]
    failed: dict[str, str]  # test id -> first line of the failure
    skipped: set[str]


def run_suite(project: Path, environment: dict[str, str], timeout: float) -> Outcome:
    """Run moto's Batch tests in server mode against `environment`'s endpoint (Docker tests skipped)."""
    report = project / "report.xml"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "TEST_"))},
        **environment,
        "TEST_SERVER_MODE": "true",
        "TEST_SERVER_MODE_ENDPOINT": environment["AWS_ENDPOINT_URL"],
        "TESTS_SKIP_REQUIRES_DOCKER": "true",
        "PYTHONPATH": str(HERE),  # sluice_peer_plugin
    }
    # moto's helpers pass endpoint_url themselves; the variable would also catch clients made
    # outside mock_aws, which is what moto's server mode means too.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_batch",
            "-p",
            "sluice_peer_plugin",
            "-p",
            "no:cacheprovider",
            "-m",
            "not requires_docker",
            "-q",
            "--no-header",
            "-o",
            "addopts=",
            f"--junitxml={report}",
            "--rootdir",
            str(project),
        ],
        cwd=project,
        env=env,
        timeout=timeout,
        capture_output=True,
        check=False,
    )
    return parse(report)


def parse(report: Path) -> Outcome:
    passed: set[str] = set()
    failed: dict[str, str] = {}
    skipped: set[str] = set()
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        test_id = f"{module}.py::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            failed[test_id] = (
                (problem.get("message") or "").splitlines()[0][:300] if problem.get("message") else ""
            )
        elif case.find("skipped") is not None:
            skipped.add(test_id)
        else:
            passed.add(test_id)
    return Outcome(passed, failed, skipped)


def expected_failures() -> dict[str, str]:
    """Test id -> the AWS page that contradicts moto's expectation (`id  URL  reason` per line)."""
    listed: dict[str, str] = {}
    for line in EXPECTED_FAILURES.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            test_id, _, reason = line.partition(" ")
            listed[test_id] = reason.strip()
    return listed
