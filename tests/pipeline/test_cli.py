"""The `sluice` entry point as a user runs it (subprocesses), on the local cloud."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sluice import sampledata
from tests.helpers import ROOT
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e]


def sluice(*args: str, endpoint: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICE_PROJECT_ROOT": str(ROOT)}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.timeout(300)
def test_local_run_writes_outputs_report_and_notifications(tmp_path: Path) -> None:
    source = tmp_path / "sales.csv"
    sampledata.generate(str(source), rows=2_000, seed=3)
    out = tmp_path / "out"
    result = sluice("local", "run", str(source), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "execution SUCCEEDED" in result.stdout
    for name in (
        "output/result.csv",
        "output/result.parquet",
        "output/summary.json",
        "output/_SUCCESS",
        "report.html",
        "timeline.png",
        "notifications.jsonl",
        "iam.jsonl",
    ):
        assert (out / name).is_file(), name
    assert (out / "notifications.jsonl").read_text() == ""
    assert "iam:           enforce; 0 request(s) denied" in result.stdout
    assert result.stderr.count("TriggerErrorsAlarm") == 1, result.stderr  # each not-emulated resource once
    assert (out / "iam.jsonl").read_text() == ""
    report = (out / "report.html").read_text()
    assert "Least privilege (local IAM)" in report and "No request was denied." in report
    assert "ReadWriteWork" in report  # the job role's statement that allowed its work-bucket writes


@pytest.mark.timeout(300)
def test_local_run_of_bad_input_exits_1_with_notifications(tmp_path: Path) -> None:
    source = tmp_path / "header-only.csv"
    source.write_text("timestamp,account,category,country,amount\n")
    out = tmp_path / "out"
    result = sluice("local", "run", str(source), "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    notes = [json.loads(line) for line in (out / "notifications.jsonl").read_text().splitlines()]
    assert len(notes) == 1, notes
    assert notes[0]["subject"].startswith("Sluice run failed in ingest: header-only.csv: ")
    assert "Why:     bad input: input has a header row but no data rows" in notes[0]["message"]
    assert not (out / "output").exists()


@pytest.mark.timeout(180)
def test_status_logs_and_report_of_a_finished_run(pipeline: Pipeline, tmp_path: Path) -> None:
    source = tmp_path / "status.csv"
    sampledata.generate(str(source), rows=1_000, seed=5)
    key = "incoming/e2e/status.csv"
    pipeline.upload(key, source.read_bytes())
    execution = pipeline.wait_finished(pipeline.wait_execution_for(key)["executionArn"])
    assert execution["status"] == "SUCCEEDED"
    endpoint = pipeline.cloud.endpoint_url

    listing = sluice("status", endpoint=endpoint)
    assert listing.returncode == 0, listing.stderr
    assert re.search(rf"SUCCEEDED\s+\S+\s+{execution['name']}", listing.stdout)

    detail = sluice("status", execution["name"], endpoint=endpoint)
    assert detail.returncode == 0, detail.stderr
    assert "ingest" in detail.stdout and "aggregate" in detail.stdout
    ingest_job = re.search(r"ingest\s+SUCCEEDED\s+(\S+)", detail.stdout)
    assert ingest_job, detail.stdout

    logs = sluice("logs", ingest_job.group(1), endpoint=endpoint)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip(), "ingest wrote no log lines"

    report_path = tmp_path / "report" / "report.html"
    report = sluice("report", execution["name"], "--out", str(report_path), endpoint=endpoint)
    assert report.returncode == 0, report.stderr
    assert_report_renders_in_chromium(report_path, bars=3)


def assert_report_renders_in_chromium(report: Path, bars: int) -> None:
    """The report opens in headless Chromium without console errors, one bar per attempt."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is needed for the report test: apt-get install chromium (make test installs it)"
    profile = report.parent / "chromium-profile"
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console_errors = [
        line for line in result.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()
    ]
    assert console_errors == []
    assert result.stdout.count('class="attempt ') == bars


@pytest.mark.timeout(300)
def test_demo_runs_the_whole_pipeline_with_an_array(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = sluice("demo", "--rows", "300000", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "execution SUCCEEDED" in result.stdout
    assert re.search(r"transform\s+SUCCEEDED \[(\d+)/\1 succeeded, 0 failed\]", result.stdout), result.stdout
    assert (out / "output" / "_SUCCESS").is_file()
    assert (out / "report.html").is_file() and (out / "timeline.png").is_file()


@pytest.mark.timeout(300)
def test_local_up_prints_a_new_key_and_serves_only_requests_signed_with_it(tmp_path: Path) -> None:
    """README's `local up` session: the export line, the 0600 credentials file, `drop`, `iam report`."""
    env = {**os.environ, "SLUICE_PROJECT_ROOT": str(ROOT), "PYTHONUNBUFFERED": "1"}
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    server = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "local", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        for line in server.stdout:
            if line.startswith("export "):
                exports = dict(item.split("=", 1) for item in line.split()[1:])
                break
        # Keep reading what the server prints: a full pipe would block it mid-write, stop included.
        rest: list[str] = []
        drain = threading.Thread(target=lambda: rest.extend(server.stdout or ()), daemon=True)
        drain.start()
        assert exports["AWS_ACCESS_KEY_ID"].startswith("AKIA") and exports["AWS_ACCESS_KEY_ID"] != "testing"
        credentials = tmp_path / ".sluice" / "local" / "credentials.env"
        assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        assert f"AWS_ACCESS_KEY_ID={exports['AWS_ACCESS_KEY_ID']}" in credentials.read_text()

        source = tmp_path / "data.csv"
        sampledata.generate(str(source), rows=500, seed=9)
        signed = {**env, **exports}
        drop = subprocess.run(
            [sys.executable, "-m", "sluice.cli", "drop", str(source)],
            capture_output=True,
            text=True,
            timeout=120,
            env=signed,
            cwd=tmp_path,
        )
        assert drop.returncode == 0, drop.stderr
        unknown = {**signed, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        refused = subprocess.run(
            [sys.executable, "-m", "sluice.cli", "status"],
            capture_output=True,
            text=True,
            timeout=120,
            env=unknown,
            cwd=tmp_path,
        )
        assert (
            refused.returncode != 0 and "InvalidClientTokenId" in refused.stderr
        )  # CloudFormation speaks query
        report = subprocess.run(
            [sys.executable, "-m", "sluice.cli", "iam", "report"],
            capture_output=True,
            text=True,
            timeout=120,
            env=signed,
            cwd=tmp_path,
        )
        assert report.returncode == 0, report.stderr
        assert "used   s3:PutObject" in report.stdout  # the person's upload, by the administrator policy
        assert "sluice-local-admin" in report.stdout
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.timeout(300)
def test_fault_injection_options_are_refused_by_a_stack_that_does_not_allow_them(tmp_path: Path) -> None:
    """Anyone who can upload can set options; fail_shards/hang_shards need AllowFaultInjection=true."""
    source = tmp_path / "sales.csv"
    sampledata.generate(str(source), rows=500, seed=4)
    out = tmp_path / "out"
    result = sluice("local", "run", str(source), "--out", str(out), "--options", '{"fail_shards": [0]}')
    assert result.returncode == 1, result.stdout + result.stderr
    messages = [
        json.loads(line)["message"] for line in (out / "notifications.jsonl").read_text().splitlines()
    ]
    assert len(messages) == 1 and "deploy with AllowFaultInjection=true" in messages[0], (
        messages
    )  # refused up front
    # The job's own sentence is in its log (the report shows a failed job's last log lines).
    assert "deploy with AllowFaultInjection=true" in (out / "report.html").read_text()
    assert not (out / "output").exists()
