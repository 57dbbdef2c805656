"""Helpers shared by the job tests: running jobs as subprocesses, reading S3 state."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "containers"
IN_BUCKET, WORK_BUCKET, OUT_BUCKET = "sluice-test-input", "sluice-test-work", "sluice-test-output"
JOB_TIMEOUT = 60


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@dataclass
class Run:
    """One pipeline run: its input object, environment, and helpers to run each job."""

    s3: object
    aws_env: dict[str, str]
    key: str
    options: dict = field(default_factory=dict)
    shard_target_mb: float = 64
    max_shards: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. SLUICE_INGEST_CHUNK_BYTES
    run_id: str = field(default_factory=lambda: f"run-{uuid.uuid4().hex[:12]}")

    @property
    def work_prefix(self) -> str:
        return f"work/{self.run_id}/"

    @property
    def output_prefix(self) -> str:
        return f"results/{self.key}/{self.run_id}/"

    def env(self, index: int | None = None, size: int | None = None, attempt: int = 1) -> dict[str, str]:
        source: dict[str, object] = {"bucket": IN_BUCKET, "key": self.key}
        try:  # what the trigger would pass along from the S3 event
            head = self.s3.head_object(Bucket=IN_BUCKET, Key=self.key)  # type: ignore[attr-defined]
            source.update(size=head["ContentLength"], etag=head["ETag"].strip('"'))
        except self.s3.exceptions.ClientError:  # type: ignore[attr-defined]
            pass  # a deleted input: the job must say so
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **self.aws_env,
            "SLUICE_RUN_ID": self.run_id,
            "SLUICE_INPUT": json.dumps(source),
            "SLUICE_OPTIONS": json.dumps(self.options),
            "SLUICE_WORK_PREFIX": self.work_prefix,
            "SLUICE_OUTPUT_PREFIX": self.output_prefix,
            "SLUICE_WORK_BUCKET": WORK_BUCKET,
            "SLUICE_OUTPUT_BUCKET": OUT_BUCKET,
            "SLUICE_SHARD_TARGET_MB": str(self.shard_target_mb),
            # The job tests exercise fault injection; the template sets this from a parameter.
            "SLUICE_ALLOW_FAULT_INJECTION": "true",
            "AWS_BATCH_JOB_ID": f"{self.run_id}-job",
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
            "AWS_BATCH_JQ_NAME": "test-queue",
            "AWS_BATCH_CE_NAME": "test-ce",
        }
        if self.max_shards is not None:
            env["SLUICE_MAX_SHARDS"] = str(self.max_shards)
        env.update(self.extra_env)
        if index is not None:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        if size is not None:
            env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(size)
        return env

    def start(self, job: str, plan: bool = False, **env_args: int | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", job, *(["plan"] if plan else [])],  # plan: the Batch Command override
            cwd=CONTAINERS,
            env=self.env(**env_args),  # type: ignore[arg-type]
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, job: str, plan: bool = False, **env_args: int | None) -> subprocess.CompletedProcess[str]:
        proc = self.start(job, plan, **env_args)
        out, err = proc.communicate(timeout=JOB_TIMEOUT)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def transform_all(self, shard_count: int) -> list[subprocess.CompletedProcess[str]]:
        """Like Batch: one child per index (array of N), or the single-job branch for N = 1."""
        if shard_count == 1:
            return [self.run("transform")]
        procs = [self.start("transform", index=i, size=shard_count) for i in range(shard_count)]
        done = []
        for proc in procs:
            out, err = proc.communicate(timeout=JOB_TIMEOUT)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done

    def manifest(self) -> dict | None:
        try:
            obj = self.s3.get_object(Bucket=WORK_BUCKET, Key=f"{self.work_prefix}manifest.json")  # type: ignore[attr-defined]
        except self.s3.exceptions.NoSuchKey:  # type: ignore[attr-defined]
            return None
        return json.loads(obj["Body"].read())

    def pipeline(self) -> dict:
        """ingest -> transforms -> aggregate, asserting each succeeds; returns the manifest."""
        ingest = self.run("ingest")
        assert ingest.returncode == 0, ingest.stderr + ingest.stdout
        manifest = self.manifest()
        assert manifest is not None
        for done in self.transform_all(manifest["shard_count"]):
            assert done.returncode == 0, done.stderr + done.stdout
        aggregate = self.run("aggregate")
        assert aggregate.returncode == 0, aggregate.stderr + aggregate.stdout
        return manifest

    def output(self, name: str) -> bytes:
        obj = self.s3.get_object(Bucket=OUT_BUCKET, Key=f"{self.output_prefix}{name}")  # type: ignore[attr-defined]
        return obj["Body"].read()

    def result(self) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.output("result.parquet")))

    def work_keys(self, sub: str = "") -> list[str]:
        return list_keys(self.s3, WORK_BUCKET, self.work_prefix + sub)

    def output_keys(self) -> list[str]:
        return list_keys(self.s3, OUT_BUCKET, self.output_prefix)


class LineReader:
    """Reads a process's output lines on a thread so tests can wait with a deadline."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"no output line containing {text!r} within {timeout} s")
