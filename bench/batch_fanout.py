"""Fan-out benchmark of the local Batch engine: array jobs whose children run `true`.

For each array size it measures, through the real API (boto3 → WSGI → engine):
- ``processes``: children run as processes; wall time from SubmitJob to the parent's final
  event, and the engine process's peak RSS growth during the run;
- ``processes+logs``: the same with CloudWatch Logs shipping to a moto server in another
  process (so its memory is not counted), which is how the local cloud runs: one log stream
  per attempt;
- ``scheduler``: children "run" on an executor that exits them at once, which isolates the
  engine's own cost per job (API, scheduling, state, events).

Each run also records ``engine_cpu_s`` (CPU time of the engine's process from submission until
the array finished and its logs were shipped) and the 1-minute load average, because wall time
on a shared machine also measures the neighbours.

Writes JSON to bench/results/<date>-batch-fanout.json (or --output). ``--smoke`` runs 50 children.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import boto3
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sluice.local.batch import BatchEngine  # noqa: E402
from sluice.local.batch.executor import ExitCallback, LaunchSpec, OutputCallback  # noqa: E402


class InstantExecutor:
    """Every attempt exits 0 at once, reported from a worker thread like a real exit."""

    def __init__(self) -> None:
        self._exits: queue.SimpleQueue[ExitCallback | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def launch(self, spec: LaunchSpec, on_output: OutputCallback, on_exit: ExitCallback) -> InstantExecutor:
        self._exits.put(on_exit)
        return self

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass

    def close(self) -> None:
        self._exits.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (on_exit := self._exits.get()) is not None:
            on_exit(0)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@contextmanager
def moto_logs_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # wait for the port to accept connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class TerminalEvents:
    """Remembers every job that reached SUCCEEDED or FAILED, so a fast array can't finish unseen."""

    def __init__(self) -> None:
        self.count = 0
        self._done: dict[str, str] = {}
        self._cond = threading.Condition()

    def __call__(self, entry: dict[str, Any]) -> None:
        detail = json.loads(entry["Detail"])
        with self._cond:
            self.count += 1
            if detail["status"] in ("SUCCEEDED", "FAILED"):
                self._done[detail["jobId"]] = detail["status"]
                self._cond.notify_all()

    def wait(self, job_id: str, timeout: float) -> str:
        with self._cond:
            if not self._cond.wait_for(lambda: job_id in self._done, timeout):
                raise RuntimeError(f"{job_id} did not finish in {timeout} s")
            return self._done[job_id]


def run_fanout(size: int, *, variant: str, job_vcpus: str, endpoint_url: str | None = None) -> dict[str, Any]:
    events = TerminalEvents()
    executor = InstantExecutor() if variant == "scheduler" else None
    engine = BatchEngine(endpoint_url=endpoint_url, emit_event=events, executor=executor)
    engine.start()
    server = make_server("127.0.0.1", 0, engine.wsgi_app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        batch = boto3.client(
            "batch",
            endpoint_url=f"http://127.0.0.1:{server.server_port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ce = batch.create_compute_environment(
            computeEnvironmentName="bench",
            type="MANAGED",
            computeResources={
                "type": "FARGATE",
                "maxvCpus": 256,
                "subnets": ["subnet-1"],
                "securityGroupIds": ["sg-1"],
            },
        )
        batch.create_job_queue(
            jobQueueName="bench",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
        )
        memory = {"0.25": "512", "0.5": "1024", "1": "2048", "2": "4096"}[job_vcpus]
        batch.register_job_definition(
            jobDefinitionName="true",
            type="container",
            platformCapabilities=["FARGATE"],
            containerProperties={
                "image": "bench/true",
                "command": ["true"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": job_vcpus},
                    {"type": "MEMORY", "value": memory},
                ],
            },
        )
        rss_before = _rss_mib()
        start, cpu_start = time.perf_counter(), time.process_time()
        parent = batch.submit_job(
            jobName="fanout", jobQueue="bench", jobDefinition="true", arrayProperties={"size": size}
        )["jobId"]
        status = events.wait(parent, timeout=600)
        wall = time.perf_counter() - start
        peak_after = _peak_rss_mib()
        logs_drained = None
        if endpoint_url:
            if not engine.flush(timeout=600):
                raise RuntimeError("logs did not drain")
            logs_drained = time.perf_counter() - start
        return {
            "variant": variant,
            "children": size,
            "job_vcpus": float(job_vcpus),
            "status": status,
            "wall_s": round(wall, 3),
            "per_job_ms": round(wall / size * 1000, 3),
            "jobs_per_s": round(size / wall, 1),
            "events": events.count,
            "rss_before_mib": round(rss_before, 1),
            "peak_rss_growth_mib": round(max(0.0, peak_after - rss_before), 1),
            "logs_drained_s": None if logs_drained is None else round(logs_drained, 3),
            "engine_cpu_s": round(time.process_time() - cpu_start, 3),
            "load_avg_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews wall time
        }
    finally:
        server.shutdown()
        serving.join()
        engine.stop()


def spawn_baseline_ms(count: int = 200) -> float:
    """Serial Popen + wait of `true` here: the floor any process-per-job engine pays."""
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(["true"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True, check=True)
    return (time.perf_counter() - start) / count * 1000


def run_isolated(variant: str, size: int, job_vcpus: str) -> dict[str, Any]:
    """One run in a fresh interpreter, so peak RSS belongs to that run alone."""
    command = [sys.executable, __file__, "--run", variant, str(size), "--job-vcpus", job_vcpus]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} x{size} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def in_process_moto() -> Iterator[str]:
    """moto inside the engine's process, as the local cloud runs it (its CPU and memory count here)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


VARIANTS: dict[str, Callable[[], Any]] = {
    "scheduler": nullcontext,
    "processes": nullcontext,
    "processes+logs": moto_logs_server,
    "processes+logs-in-process": in_process_moto,
}


def run_one(variant: str, size: int, job_vcpus: str) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("sluice.local.batch.backend").setLevel(logging.ERROR)
    with VARIANTS[variant]() as endpoint_url:
        return run_fanout(size, variant=variant, job_vcpus=job_vcpus, endpoint_url=endpoint_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="one small run (50 children) to check the bench works"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--job-vcpus", default="1", choices=["0.25", "0.5", "1", "2"])
    parser.add_argument("--no-logs", action="store_true", help="skip the processes+logs variant")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--run", nargs=2, metavar=("VARIANT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        print(json.dumps(run_one(args.run[0], int(args.run[1]), args.job_vcpus)))
        return 0
    sizes = [50] if args.smoke else args.sizes
    variants = list(VARIANTS) if not args.no_logs else ["scheduler", "processes"]
    runs = []
    for variant in variants:
        for size in sizes:
            result = run_isolated(variant, size, args.job_vcpus)
            print(json.dumps(result), flush=True)
            runs.append(result)
    report = {
        "benchmark": "batch-fanout",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "max_local_vcpus": os.cpu_count(),
        "spawn_baseline_ms": round(spawn_baseline_ms(), 3),
        "runs": runs,
    }
    output = args.output or ROOT / "bench" / "results" / f"{dt.date.today().isoformat()}-batch-fanout.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")
    return 0 if all(run["status"] == "SUCCEEDED" for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
