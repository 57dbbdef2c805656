"""Shared by every benchmark: the machine, metrics with targets, result files, subprocess runs.

A result file is `<results dir>/<date>-<name>.json`:

    {"benchmark": name, "date": ISO, "smoke": bool, "machine": {...},
     "metrics": [{"name", "value", "unit", "target", "met", "note"}], "details": {...}}

`target` is null or {"op": "<=" | ">=" | "<", "value": number}; `met` is null without a target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CONTAINERS = ROOT / "containers"
PYTHON = sys.executable
SMOKE_RESULTS_DIR = Path(tempfile.gettempdir()) / "sluice-bench-smoke"
LIBRARIES = ("duckdb", "polars", "pyarrow", "boto3", "moto", "aws-lambda-powertools", "pydantic")

Metric = dict[str, Any]


def _meminfo_mib(field: str) -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith(f"{field}:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on, including how busy the machine was."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": _cpu_model(),
        "ram_mib": _meminfo_mib("MemTotal"),
        "ram_available_mib": _meminfo_mib("MemAvailable"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_avg": [round(value, 2) for value in os.getloadavg()],
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def metric(
    name: str,
    value: float | None,
    unit: str,
    *,
    target: tuple[str, float] | None = None,
    note: str = "",
) -> Metric:
    """One reported number; `target` is (op, bound), e.g. ("<=", 2.0)."""
    met: bool | None = None
    if target is not None and value is not None:
        op, bound = target
        met = {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[op]
    return {
        "name": name,
        "value": None if value is None else round(float(value), 4),
        "unit": unit,
        "target": None if target is None else {"op": target[0], "value": target[1]},
        "met": met,
        "note": note,
    }


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and the samples themselves (rounded), for the details section."""
    values = [float(v) for v in samples]
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "samples": []}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "samples": [round(v, 4) for v in values],
    }


def result_path(results_dir: Path, name: str) -> Path:
    return results_dir / f"{dt.date.today().isoformat()}-{name}.json"


def write_result(
    results_dir: Path,
    name: str,
    *,
    smoke: bool,
    metrics: Iterable[Metric],
    details: Mapping[str, Any],
    started: float,
    machine_before: Mapping[str, Any],
) -> Path:
    """Write the benchmark's JSON; the machine is described at start, load average also at end."""
    described = dict(machine_before)
    described["load_avg_end"] = [round(value, 2) for value in os.getloadavg()]
    body = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "smoke": smoke,
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": described,
        "metrics": list(metrics),
        "details": dict(details),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = result_path(results_dir, name)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def default_results_dir(smoke: bool) -> Path:
    """Smoke runs never overwrite the recorded results."""
    return SMOKE_RESULTS_DIR if smoke else RESULTS_DIR


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark module takes."""
    parsed = argparse.ArgumentParser(description=description)
    parsed.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmark works")
    parsed.add_argument("--results-dir", type=Path, default=None, help="where the JSON goes")
    return parsed


def results_dir_of(args: argparse.Namespace) -> Path:
    return args.results_dir or default_results_dir(args.smoke)


def quiet_logs() -> None:
    """The local cloud logs every request and deployment step; benchmarks print their own lines."""
    logging.basicConfig(level=logging.ERROR)
    for name in ("werkzeug", "sluice", "moto", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_json(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run a helper process whose last stdout line is a JSON object; raise with its stderr if not."""
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def bench_env(**extra: str) -> dict[str, str]:
    """This environment with the project importable (helpers run as `python -m bench.<x>`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
