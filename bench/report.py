"""bench/results/LATEST.md from the result files: the machine, every number with its target.

python -m bench.report [--results-dir DIR]   # the newest file of each benchmark there
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench import common

ORDER = (
    "throughput",
    "overhead",
    "batch-fanout",
    "trigger",
    "jobmemory",
    "startfloor",
    "dialects",
    "planner",
    "startup",
    "manyfiles",
)
TITLES = {
    "throughput": "1. Throughput: local pipeline vs DuckDB and Polars",
    "overhead": "2. Orchestration overhead: no-op pipeline, 10-child array",
    "batch-fanout": "3. Fan-out: arrays of `true` children (bench/batch_fanout.py)",
    "trigger": "4. Trigger Lambda: cold initialisation and warm handler",
    "jobmemory": "5. Job memory: peak RSS",
    "startfloor": "6. Job start floor",
    "dialects": "7. Ingest rate per CSV dialect",
    "planner": "8. Split planner: bounded reads at any input size",
    "manyfiles": "10. Many small files: one manifest run vs separate uploads",
    "startup": "9. Local cloud start (`sluice local up` -> ready) and job start (zygote vs exec)",
}


def latest_files(results_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in ORDER:
        candidates = list(results_dir.glob(f"*-{name}.json"))
        if candidates:
            found[name] = max(candidates, key=lambda path: path.stat().st_mtime)
    return found


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _shown(metric: Mapping[str, Any]) -> str:
    value = metric["value"]
    if value is None:
        return "—"
    if metric["unit"] == "bool":
        return "yes" if value >= 1 else "no"
    return f"{_number(value)} {metric['unit']}"


def _target(metric: Mapping[str, Any]) -> str:
    target = metric.get("target")
    if not target:
        return ""
    if metric["unit"] == "bool":
        return "yes"
    return f"{target['op']} {_number(target['value'])} {metric['unit']}"


def _verdict(metric: Mapping[str, Any]) -> str:
    met = metric.get("met")
    if metric.get("target") is None:
        return ""
    return "not measured" if met is None else ("**met**" if met else "**missed**")


def metric_rows(metrics: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = ["| measurement | value | target | result | note |", "| --- | ---: | --- | --- | --- |"]
    for metric in metrics:
        value = metric["value"]
        shown = "—" if value is None else f"{_number(value)} {metric['unit']}"
        if metric["unit"] == "bool" and value is not None:
            shown = "yes" if value >= 1 else "no"
        rows.append(
            f"| {metric['name']} | {shown} | {_target(metric)} | {_verdict(metric)} | {metric.get('note', '')} |"
        )
    return rows


def fanout_metrics(body: Mapping[str, Any]) -> list[common.Metric]:
    """bench/batch_fanout.py's runs as metrics (it predates the common result format)."""
    metrics = []
    for run in body["runs"]:
        label = f"{run['variant']}, {run['children']:,} children"
        metrics.append(common.metric(f"{label}: wall, SubmitJob -> parent done", run["wall_s"], "s"))
        metrics.append(
            common.metric(
                f"{label}: engine peak RSS",
                run["rss_before_mib"] + run["peak_rss_growth_mib"],
                "MiB",
                note=f"growth {run['peak_rss_growth_mib']} MiB; {run['jobs_per_s']} jobs/s; load {run['load_avg_1m']}",
            )
        )
    return metrics


def _machine_lines(machine: Mapping[str, Any]) -> list[str]:
    libraries = ", ".join(
        f"{name} {version}" for name, version in machine.get("libraries", {}).items() if version
    )
    return [
        f"- CPU: {machine.get('cpus')} cores ({machine.get('usable_cpus')} usable), {machine.get('cpu_model')}",
        f"- RAM: {(machine.get('ram_mib') or 0) / 1024:.1f} GiB ({(machine.get('ram_available_mib') or 0) / 1024:.1f} GiB available at start)",
        f"- Python: {machine.get('implementation', 'CPython')} {machine.get('python')} on {machine.get('platform')}",
        f"- Libraries: {libraries}",
    ]


def _phase_rows(breakdown: Mapping[str, Any]) -> list[str]:
    total = breakdown.get("total_s") or 0
    rows = ["| phase | seconds | share |", "| --- | ---: | ---: |"]
    for phase in breakdown["phases"]:
        seconds = phase["seconds"] or 0
        share = f"{seconds / total:.0%}" if total else ""
        rows.append(f"| {phase['phase']} | {seconds:.3f} | {share} |")
    rows.append(f"| **total** | **{total:.3f}** | |")
    return rows


def _job_rows(stages: Mapping[str, Any]) -> list[str]:
    rows = [
        "| stage | queue (submitted -> RUNNING) | start (RUNNING -> first log line) | work (first -> last line) | exit (last line -> stopped) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for stage, info in stages.items():
        if info["kind"] == "array":
            rows.append(
                f"| {stage} (array of {info['children']}, median child; mean concurrency {info['mean_concurrency']}) "
                f"| {info['child_queue_s_median']} | {info['child_start_s_median']} | {info['child_work_s_median']} "
                f"| {info['child_exit_s_median']} |"
            )
        else:
            rows.append(
                f"| {stage} | {info['queue_s']} | {info['start_s']} | {info['work_s']} | {info['exit_s']} |"
            )
    return rows


def throughput_details(details: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    engines, pipeline = details["engines"], details["pipeline"]
    lines += [
        "",
        "Per input (medians; engine time is the query: read + parse + aggregate, imports excluded):",
        "",
    ]
    lines += [
        "| input | pipeline | DuckDB | Polars | pipeline MB/s | shards | result = DuckDB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, run in details["median_runs"].items():
        check = run.get("result_check") or {}
        lines.append(
            f"| {label} ({run['input_bytes'] / 1e6:,.0f} MB) | {run['wall_s']:.2f} s | "
            f"{engines[label]['duckdb']['query_s']['median']:.2f} s | {engines[label]['polars']['query_s']['median']:.2f} s | "
            f"{run['mb_per_s']} | {run['shards']} | {'yes' if check.get('matches') else 'no'} |"
        )
    for label, run in details["median_runs"].items():
        lines += ["", f"Where the pipeline's time went, {label} (the median run):", ""]
        lines += _phase_rows(run["breakdown"])
        lines += ["", "Inside each Batch job (seconds):", ""]
        lines += _job_rows(run["breakdown"]["stages"])
    variant = pipeline.get("variant")
    if variant:
        lines += [
            "",
            f"Variant: the largest input with `shard_target_mb: {variant['options'].get('shard_target_mb')}` "
            f"({variant['shards']} shards): {variant['wall_s']:.2f} s.",
            "",
        ]
        lines += _phase_rows(variant["breakdown"])
    warmup = pipeline.get("warmup")
    if warmup:
        lines += ["", f"First run after deploy (10,000 rows, cold trigger worker): {warmup['wall_s']:.2f} s."]
    s3 = pipeline["s3"]
    lines += ["", f"S3 through boto3 ({s3['file_bytes'] / 1e6:,.0f} MB object; MB/s):", ""]
    lines += [
        "| server, client | upload_file | put_object (≤64 MiB) | get_object stream | download_file |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for where, label in (
        ("endpoint_client_in_cloud_process", "local endpoint, client in the cloud's process"),
        ("endpoint_client_separate_process", "local endpoint, client in another process"),
        ("moto_server_separate_process", "moto's own server (another process)"),
        ("moto_in_process_no_http", "moto in-process, no HTTP (mock_aws)"),
    ):
        rates = s3[where]
        lines.append(
            f"| {label} | {rates['upload_file']['mb_per_s']} | {rates['put_object']['mb_per_s']} | "
            f"{rates['get_object_stream']['mb_per_s']} | {rates['download_file']['mb_per_s']} |"
        )
    return lines


def overhead_details(details: Mapping[str, Any]) -> list[str]:
    runs = details["pipeline"]
    median = sorted(runs, key=lambda r: r["start_to_succeeded_s"])[(len(runs) - 1) // 2]
    lines = ["", "The median no-op run, phase by phase:", ""]
    lines += _phase_rows({"total_s": median["execution_s"], "phases": median["phases"]})
    lines += [
        "",
        "States (entered -> exited, from the execution history):",
        "",
        "| state | seconds |",
        "| --- | ---: |",
    ]
    lines += [f"| {state['state']} | {state['seconds']:.3f} |" for state in median["states"]]
    warmup = details.get("warmup")
    if warmup:
        lines += ["", f"Warm-up run (first after deploy): {warmup['start_to_succeeded_s']:.3f} s."]
    return lines


def trigger_details(details: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        f"Python {details['python']}; interpreter floor (`python -c pass`) {details['interpreter_floor_ms']['median']:.0f} ms.",
        "",
    ]
    lines += [
        "What importing app.py loads (cumulative ms, tracing active):",
        "",
        "| module | ms |",
        "| --- | ---: |",
    ]
    lines += [f"| {item['module']} | {item['ms']} |" for item in details["heaviest_imports"]]
    return lines


def jobmemory_details(details: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        f"Shard target {details['shard_target_mb']} MB; reserved MEMORY {details['reserved_memory_mib']}; every figure includes the launcher's {details['launcher_floor_mib']} MiB floor.",
        "",
    ]
    lines += ["| input | job | peak RSS MiB | wall s | CPU s |", "| --- | --- | ---: | ---: | ---: |"]
    for label, run in details["runs"].items():
        for job in ("ingest", "aggregate"):
            info = run[job]
            lines.append(f"| {label} | {job} | {info['peak_rss_mib']} | {info['wall_s']} | {info['cpu_s']} |")
        transform = run["transform"]
        lines.append(
            f"| {label} | transform ({transform['children']} children) | {transform['peak_rss_mib']} | "
            f"{max(transform['wall_s'])} (slowest) | |"
        )
    return lines


def startfloor_details(details: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        "Third-party packages the job imports (cumulative ms where first imported; nested packages overlap):",
        "",
    ]
    lines += ["| package | ms |", "| --- | ---: |"]
    lines += [f"| {item['module']} | {item['ms']} |" for item in details["job_import_packages"]]
    lines += ["", "The pipeline run's own jobs (seconds):", ""]
    lines += _job_rows(details["pipeline_run"])
    return lines


def fanout_details(body: Mapping[str, Any]) -> list[str]:
    lines = ["", f"Serial `Popen(['true'])` + wait here: {body.get('spawn_baseline_ms')} ms per process.", ""]
    lines += [
        "| variant | children | wall s | ms/job | jobs/s | engine CPU s | logs drained s | RSS before MiB | peak growth MiB | load |"
    ]
    lines += ["| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in body["runs"]:
        lines.append(
            f"| {run['variant']} | {run['children']:,} | {run['wall_s']} | {run['per_job_ms']} | {run['jobs_per_s']} | "
            f"{run['engine_cpu_s']} | {run['logs_drained_s'] if run['logs_drained_s'] is not None else '—'} | "
            f"{run['rss_before_mib']} | {run['peak_rss_growth_mib']} | {run['load_avg_1m']} |"
        )
    return lines


def dialects_details(details: Mapping[str, Any]) -> list[str]:
    plain = details["plain"]
    lines = [
        "",
        f"Plain CSV, {plain['bytes'] / 1e6:.0f} MB, old ({details['baseline_ref']}) and new ingest taking turns:",
        "",
    ]
    lines += ["| code | wall s | CPU s | MB/s |", "| --- | ---: | ---: | ---: |"]
    for code in ("new", "old"):
        for run in plain[code]:
            lines.append(f"| {code} | {run['wall_s']} | {run['cpu_s']} | {run['mb_per_s']} |")
    lines += [
        "",
        f"Dialects, {details['dialect_bytes'] / 1e6:.0f} MB each (plain CSV of the same size: {details['plain_same_size']['mb_per_s']} MB/s):",
        "",
    ]
    lines += [
        "| dialect | path | wall s | CPU s | MB/s | MB per CPU-s | peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in details["dialects"].items():
        paths = ", ".join((run.get("dialect") or {}).get("paths", []))
        lines.append(
            f"| {name} | {paths} | {run['wall_s']} | {run['cpu_s']} | {run['mb_per_s']} | "
            f"{run.get('mb_per_cpu_s', '-')} | {run['peak_rss_mib']} |"
        )
    return lines


def startup_details(details: Mapping[str, Any]) -> list[str]:
    before, after = details["phases_before_s"], details["phases_after_s"]
    lines = ["", "In-process start by phase, seconds (median of the helper runs; before = cuts off):", ""]
    lines += ["| phase | before | after |", "| --- | ---: | ---: |"]
    for name in sorted({*before, *after}, key=lambda n: -max(before.get(n) or 0, after.get(n) or 0))[:16]:
        lines.append(f"| {name} | {_number(before.get(name))} | {_number(after.get(name))} |")
    lines += [
        "",
        "Imported while starting (cumulative ms where first imported; nested packages overlap):",
        "",
    ]
    lines += ["| package | ms |", "| --- | ---: |"]
    lines += [f"| {item['module']} | {item['ms']} |" for item in details["import_packages"][:10]]
    return lines


DETAILS = {
    "throughput": throughput_details,
    "overhead": overhead_details,
    "trigger": trigger_details,
    "jobmemory": jobmemory_details,
    "startfloor": startfloor_details,
    "startup": startup_details,
    "dialects": dialects_details,
}


def render(files: Mapping[str, Path], failures: Mapping[str, str] | None = None, title_note: str = "") -> str:
    bodies = {name: json.loads(path.read_text()) for name, path in files.items()}
    machine = next(
        (b["machine"] for b in bodies.values() if "libraries" in b.get("machine", {})), common.machine()
    )
    smoke = any(b.get("smoke") for b in bodies.values())
    lines = [
        "# Sluice benchmarks: latest results",
        "",
        f"Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} by `python -m bench{' --smoke' if smoke else ''}`"
        f"{title_note}. Methods and the bottleneck analysis: [bench/README.md](../README.md).",
        "",
    ]
    if smoke:
        lines += ["**Smoke run: tiny sizes, the numbers only show that the benchmarks work.**", ""]
    lines += ["## Machine", ""] + _machine_lines(machine)
    lines += [
        "- Load average (1, 5, 15 min) at the start and end of each benchmark (other work on the machine skews wall times):"
    ]
    for name in ORDER:
        body = bodies.get(name)
        if body is None:
            continue
        described = body.get("machine", {})
        start, end = described.get("load_avg"), described.get("load_avg_end")
        if start:
            lines.append(f"  - {name}: {start} -> {end or '?'}")
        elif "runs" in body:
            lines.append(f"  - {name}: 1-min load during runs {[run['load_avg_1m'] for run in body['runs']]}")
    all_metrics = {
        name: (fanout_metrics(body) if name == "batch-fanout" else body["metrics"])
        for name, body in bodies.items()
    }
    lines += [
        "",
        "## Targets",
        "",
        "| benchmark | measurement | value | target | result |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for name in ORDER:
        for metric in all_metrics.get(name, []):
            if metric.get("target"):
                lines.append(
                    f"| {name} | {metric['name']} | {_shown(metric)} | {_target(metric)} | {_verdict(metric)} |"
                )
    for name, error in (failures or {}).items():
        lines.append(
            f"| {name} | benchmark failed: {error.splitlines()[-1] if error else ''} | — | — | **failed** |"
        )
    for name in ORDER:
        if name not in bodies:
            continue
        body = bodies[name]
        lines += ["", f"## {TITLES[name]}", ""]
        duration = body.get("duration_s")
        lines.append(f"File: `{files[name].name}`" + (f"; took {duration} s." if duration else "."))
        lines += [""] + metric_rows(all_metrics[name])
        if name == "batch-fanout":
            lines += fanout_details(body)
        elif name in DETAILS:
            lines += DETAILS[name](body["details"])
    return "\n".join(lines) + "\n"


def write_latest(
    results_dir: Path,
    files: Mapping[str, Path] | None = None,
    failures: Mapping[str, str] | None = None,
    title_note: str = "",
) -> Path:
    chosen = dict(files) if files is not None else latest_files(results_dir)
    path = results_dir / "LATEST.md"
    path.write_text(render(chosen, failures, title_note))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=common.RESULTS_DIR)
    args = parser.parse_args(argv)
    print(write_latest(args.results_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
