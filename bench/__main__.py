"""Run every Sluice benchmark, then write bench/results/LATEST.md.

    python -m bench              # everything (about 10 minutes on 2 cores)
    python -m bench --skip-1gb   # without the 1 GB input (the throughput target is judged at 1 GB)
    python -m bench --smoke      # tiny sizes, under a minute; results go to a temporary directory

Each benchmark runs in its own interpreter (the local cloud's moto state is process-wide, and
peak memory must belong to one benchmark), one after the other so they do not compete for the
cores; a smoke run overlaps them, since its numbers mean nothing. The generated inputs are
made once and shared by the throughput and job-memory benchmarks.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import common, report

NOISE = ("not emulated locally", "has no local meaning")


@dataclass
class Step:
    name: str
    argv: list[str]
    timeout_s: float
    result: Path | None = None
    error: str | None = None
    seconds: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)


def steps(args: argparse.Namespace, results_dir: Path, data_dir: Path) -> list[Step]:
    common_args = ["--results-dir", str(results_dir)] + (["--smoke"] if args.smoke else [])
    sizes = ["--skip-1gb"] if args.skip_1gb else []
    module = [common.PYTHON, "-m"]
    fanout = [common.PYTHON, str(common.ROOT / "bench" / "batch_fanout.py")]
    fanout += ["--output", str(fanout_output(results_dir))]
    fanout += ["--smoke", "--no-logs"] if args.smoke else []
    return [
        Step("trigger", [*module, "bench.trigger", *common_args], 300),
        Step("startfloor", [*module, "bench.startfloor", *common_args], 300),
        Step("startup", [*module, "bench.startup", *common_args], 600),
        Step("overhead", [*module, "bench.overhead", *common_args], 300),
        Step(
            "throughput",
            [*module, "bench.throughput", *common_args, *sizes, "--data-dir", str(data_dir)],
            900,
        ),
        Step(
            "jobmemory", [*module, "bench.jobmemory", *common_args, *sizes, "--data-dir", str(data_dir)], 600
        ),
        Step("planner", [*module, "bench.planner", *common_args, "--data-dir", str(data_dir)], 900),
        Step("manyfiles", [*module, "bench.manyfiles", *common_args], 1800),
        Step("batch-fanout", fanout, 900),
        Step("dialects", [*module, "bench.dialects", *common_args, *sizes, "--data-dir", str(data_dir)], 900),
    ]


def fanout_output(results_dir: Path) -> Path:
    """Never overwrite a recorded fan-out result (bench/batch_fanout.py names files by date only)."""
    path = common.result_path(results_dir, "batch-fanout")
    if path.exists():
        path = results_dir / f"{time.strftime('%Y-%m-%d-%H%M%S')}-batch-fanout.json"
    return path


def run_step(step: Step, lock: threading.Lock) -> Step:
    """Run one benchmark; its progress lines go to stderr, its result path is its last stdout line."""
    started = time.perf_counter()
    with lock:
        common.say(f"== {step.name}")
    process = subprocess.Popen(
        step.argv,
        cwd=common.ROOT,
        env=common.bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    reader.start()
    assert process.stderr is not None
    for line in process.stderr:
        if any(noise in line for noise in NOISE):
            continue
        step.stderr_tail = (step.stderr_tail + [line.rstrip()])[-40:]
        with lock:
            print(f"[{step.name}] {line.rstrip()}", file=sys.stderr, flush=True)
    try:
        code = process.wait(timeout=step.timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
        step.error = f"timed out after {step.timeout_s} s"
    reader.join()
    step.seconds = time.perf_counter() - started
    if code != 0 and step.error is None:
        step.error = "\n".join(step.stderr_tail[-15:]) or f"exit code {code}"
    if step.error is None:
        step.result = _result_path(output, step.name, step.argv)
    with lock:
        common.say(f"== {step.name}: {'ok' if step.error is None else 'FAILED'} in {step.seconds:.0f} s")
    return step


def _result_path(output: list[str], name: str, argv: list[str]) -> Path:
    for line in reversed(output):
        text = line.strip().removeprefix("wrote ")
        if text.endswith(".json"):
            return Path(text)
    raise RuntimeError(f"{name} printed no result path ({' '.join(argv)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, under a minute, nothing recorded")
    parser.add_argument("--skip-1gb", action="store_true", help="leave out the 1 GB input")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the generated inputs here (reused)")
    parser.add_argument("--only", nargs="+", default=None, help="run only these benchmarks")
    args = parser.parse_args(argv)
    results_dir = args.results_dir or common.default_results_dir(args.smoke)
    results_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="sluice-bench-inputs-"))
    try:
        chosen = [
            s
            for s in steps(args, results_dir, args.data_dir or scratch)
            if not args.only or s.name in args.only
        ]
        lock = threading.Lock()
        if args.smoke:
            with ThreadPoolExecutor(2) as pool:
                done = list(pool.map(lambda step: run_step(step, lock), chosen))
        else:
            done = [run_step(step, lock) for step in chosen]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = {step.name: step.result for step in done if step.result is not None}
    failures = {step.name: step.error or "" for step in done if step.error is not None}
    if args.only:  # keep the other benchmarks' newest results in LATEST.md
        files = {**report.latest_files(results_dir), **files}
    total = time.perf_counter() - started
    latest = report.write_latest(results_dir, files, failures, title_note=f" in {total / 60:.1f} min")
    common.say(f"results: {results_dir}; summary: {latest}; total {total:.0f} s")
    for step in done:
        common.say(f"  {step.name:<13} {step.seconds:6.1f} s  {'ok' if step.error is None else 'FAILED'}")
    print(latest)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
