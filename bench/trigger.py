"""Trigger Lambda: cold initialisation and warm handler time.

- Cold: a fresh interpreter imports functions/trigger/app.py with the environment Lambda (and
  the local Lambda runtime) gives it: the template's variables, AWS_LAMBDA_FUNCTION_NAME, and
  tracing active (so Powertools' Tracer loads the X-Ray SDK and patches boto3). Reported: the
  import alone, timed inside the process (what Lambda's Init Duration covers after the runtime
  has started), and the whole process, interpreter start included (the strict number). The
  median of fresh processes; a target of 300 ms. `-X importtime` names the heaviest imports.
- Warm: `lambda_handler` (Powertools decorators included) on the sample S3 Object Created
  event, with HeadObject answered from memory and StartExecution by a fake client, so the
  number is the function's own work: parsing and validating the event (pydantic), admission
  rules, the execution name, logging and metrics. Median of many calls; a target of 10 ms.
  `handle()` without the decorators is reported beside it.

Measured on this virtualenv's Python; Lambda runs python3.13.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

from bench import common, imports

FUNCTION_DIR = common.ROOT / "functions" / "trigger"
COLD_TARGET_MS = 300.0
WARM_TARGET_MS = 10.0
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-pipeline"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:sluice-alerts"


def lambda_environment() -> dict[str, str]:
    """What the function sees on Lambda (template Globals + its own variables + the runtime's)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "POWERTOOLS_SERVICE_NAME": "sluice",
        "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "ALERTS_TOPIC_ARN": TOPIC_ARN,
        "SLUICE_ENVIRONMENT": "dev",
        "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
        "INPUT_PREFIX": "incoming/",
        "INPUT_SUFFIX": "",
        "MAX_INPUT_BYTES": str(50 * 1024**3),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "sluice-trigger",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        # Reserved variables every Lambda runtime sets
        # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
        # LAMBDA_TASK_ROOT matters here: the X-Ray SDK checks it at import and, on Lambda, uses its
        # local sampler; without it, it builds two botocore X-Ray clients for centralized sampling
        # (~130 ms of the import) that Lambda never pays.
        "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
        "LAMBDA_RUNTIME_DIR": sys.prefix,
        "_HANDLER": "app.lambda_handler",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "PYTHONPATH": str(common.ROOT),
    }


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app", FUNCTION_DIR / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


# -- cold ------------------------------------------------------------------------------


# Run by `python -c` in functions/trigger/: nothing but the import is loaded before timing
# (`-m bench.trigger` would first import this module and its dependencies).
COLD_CHILD = (
    "import time; t, c = time.perf_counter(), time.process_time(); import app; "
    "t, c = time.perf_counter() - t, time.process_time() - c; "
    "import json; print(json.dumps({'import_ms': t * 1000, 'import_cpu_ms': c * 1000}))"
)


# The proposed fix, measured without editing app.py: Powertools' Tracer replaced by a stand-in
# whose decorators return the function, so nothing loads the X-Ray SDK. (Tracer() loads it
# and builds its recorder even with POWERTOOLS_TRACE_DISABLED=true.)
COLD_CHILD_NO_TRACER = (
    "import time; t, c = time.perf_counter(), time.process_time()\n"
    "import aws_lambda_powertools as powertools\n"
    "class Tracer:\n"
    "    def __init__(self, *args, **kwargs): pass\n"
    "    def capture_lambda_handler(self, function=None, **kwargs): return function\n"
    "    def capture_method(self, function=None, **kwargs): return function\n"
    "powertools.Tracer = Tracer\n"
    "import app; t, c = time.perf_counter() - t, time.process_time() - c\n"
    "import json; print(json.dumps({'import_ms': t * 1000, 'import_cpu_ms': c * 1000}))"
)


def cold(runs: int) -> dict[str, dict[str, Any]]:
    """Fresh interpreters importing app.py, the variants interleaved so they share the machine's load."""
    active = lambda_environment()
    disabled = {**active, "POWERTOOLS_TRACE_DISABLED": "true"}
    variants = {
        "cold_tracing_active": (COLD_CHILD, active),
        "cold_tracing_disabled": (COLD_CHILD, disabled),
        "cold_without_tracer": (COLD_CHILD_NO_TRACER, active),
    }
    samples: dict[str, dict[str, list[float]]] = {
        name: {"import": [], "cpu": [], "process": []} for name in variants
    }
    for _ in range(runs):
        for name, (code, env) in variants.items():
            started = time.perf_counter()
            child = common.run_json([common.PYTHON, "-c", code], cwd=FUNCTION_DIR, env=env)
            samples[name]["process"].append((time.perf_counter() - started) * 1000)
            samples[name]["import"].append(child["import_ms"])
            samples[name]["cpu"].append(child["import_cpu_ms"])
    return {
        name: {
            "import_ms": common.summary(found["import"]),
            "import_cpu_ms": common.summary(found["cpu"]),
            "process_ms": common.summary(found["process"]),
        }
        for name, found in samples.items()
    }


def interpreter_floor_ms(runs: int) -> dict[str, Any]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([common.PYTHON, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return common.summary(samples)


def heaviest_imports(limit: int = 12) -> list[dict[str, Any]]:
    """What app.py imports directly (what runs at its import), by cumulative import time."""
    text = imports.importtime(COLD_CHILD, cwd=FUNCTION_DIR, env=lambda_environment())
    return imports.direct_imports(text, ("app",), limit)


# -- warm ------------------------------------------------------------------------------


class FakeS3:
    def __init__(self, head: dict[str, Any]) -> None:
        self._head = head

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        return self._head


class FakeStepFunctions:
    def __init__(self) -> None:
        self.started = 0

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started += 1
        return {"executionArn": f"{STATE_MACHINE_ARN}:{kwargs['name']}", "startDate": 0}


class FakeContext:
    function_name = "sluice-trigger"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-trigger"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/sluice-trigger"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def warm_child(calls: int) -> dict[str, Any]:
    """Runs in a fresh interpreter with the Lambda environment: time warm invocations."""
    app: Any = load_app()  # the handler module; its attributes are set below
    event = json.loads((common.ROOT / "events" / "s3-object-created.json").read_text())
    obj = event["detail"]["object"]
    head = {
        "ContentLength": obj["size"],
        "ETag": f'"{obj["etag"]}"',
        "VersionId": obj["version-id"],
        "Metadata": {},
    }
    sfn = FakeStepFunctions()
    app._s3 = lambda: FakeS3(head)
    app._sfn = lambda: sfn
    settings = app.Settings.from_env()
    context = FakeContext()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # log and metric lines go nowhere (on Lambda: to CloudWatch Logs)
    sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), line_buffering=True)
    results: dict[str, list[float]] = {"lambda_handler": [], "handle": []}
    outcome: dict[str, Any] = {}
    try:
        for _ in range(min(50, calls)):  # first calls build pydantic validators, caches
            app.lambda_handler(copy.deepcopy(event), context)
        for _ in range(calls):
            payload = copy.deepcopy(event)
            started = time.perf_counter()
            outcome = app.lambda_handler(payload, context)
            results["lambda_handler"].append((time.perf_counter() - started) * 1000)
        for _ in range(calls):
            payload = copy.deepcopy(event)
            started = time.perf_counter()
            app.handle(payload, settings)
            results["handle"].append((time.perf_counter() - started) * 1000)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        sys.stdout = sys.__stdout__
    if outcome.get("status") != "started":
        raise RuntimeError(f"the handler did not start an execution: {outcome}")
    found: dict[str, Any] = {"calls": calls, "executions_started": sfn.started}
    for name, samples in results.items():
        ordered = sorted(samples)
        found[name] = {
            "median_ms": statistics.median(samples),
            "p95_ms": ordered[int(len(ordered) * 0.95) - 1],
            "p99_ms": ordered[int(len(ordered) * 0.99) - 1],
            "min_ms": ordered[0],
        }
    return found


def warm(calls: int, tracing: bool) -> dict[str, Any]:
    env = lambda_environment()
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return common.run_json(
        [common.PYTHON, "-m", "bench.trigger", "--warm-child", str(calls)], cwd=FUNCTION_DIR, env=env
    )


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--warm-calls", type=int, default=2000)
    parser.add_argument("--warm-child", type=int, default=None, help="internal")
    args = parser.parse_args(argv)
    if args.warm_child is not None:
        print(json.dumps(warm_child(args.warm_child)))
        return 0
    started, described = time.perf_counter(), common.machine()
    cold_runs = 2 if args.smoke else args.cold_runs
    calls = 100 if args.smoke else args.warm_calls
    common.say("trigger: cold imports, warm handler")
    details: dict[str, Any] = {
        "python": sys.version.split()[0],
        "interpreter_floor_ms": interpreter_floor_ms(cold_runs),
        **cold(cold_runs),
        "heaviest_imports": heaviest_imports(),
        "warm_tracing_active": warm(calls, tracing=True),
        "warm_tracing_disabled": warm(calls, tracing=False),
    }
    active, disabled = details["cold_tracing_active"], details["cold_tracing_disabled"]
    warm_active, warm_disabled = details["warm_tracing_active"], details["warm_tracing_disabled"]
    metrics = [
        common.metric(
            "cold: import app.py, tracing active (median)",
            active["import_ms"]["median"],
            "ms",
            target=("<=", COLD_TARGET_MS),
        ),
        common.metric(
            "cold: fresh process + import app.py, tracing active (median)",
            active["process_ms"]["median"],
            "ms",
            target=("<=", COLD_TARGET_MS),
            note="interpreter start included",
        ),
        common.metric(
            "cold: CPU time of the import, tracing active (median)",
            active["import_cpu_ms"]["median"],
            "ms",
            note="less sensitive than wall time to other work on the machine",
        ),
        common.metric(
            "cold: import app.py, POWERTOOLS_TRACE_DISABLED=true (median)",
            disabled["import_ms"]["median"],
            "ms",
            note="Tracer() still loads the X-Ray SDK",
        ),
        common.metric(
            "cold: import app.py with Tracer stubbed out (proposed fix, median)",
            details["cold_without_tracer"]["import_ms"]["median"],
            "ms",
            target=("<=", COLD_TARGET_MS),
        ),
        common.metric(
            "cold: CPU time of the import with Tracer stubbed out (median)",
            details["cold_without_tracer"]["import_cpu_ms"]["median"],
            "ms",
        ),
        common.metric(
            "cold: fresh process + import app.py with Tracer stubbed out (median)",
            details["cold_without_tracer"]["process_ms"]["median"],
            "ms",
            target=("<=", COLD_TARGET_MS),
        ),
        common.metric(
            "warm: lambda_handler without network, tracing active (median)",
            warm_active["lambda_handler"]["median_ms"],
            "ms",
            target=("<=", WARM_TARGET_MS),
        ),
        common.metric(
            "warm: lambda_handler, tracing active (p99)", warm_active["lambda_handler"]["p99_ms"], "ms"
        ),
        common.metric(
            "warm: lambda_handler, tracing disabled (median)",
            warm_disabled["lambda_handler"]["median_ms"],
            "ms",
        ),
        common.metric("warm: handle() alone (median)", warm_active["handle"]["median_ms"], "ms"),
    ]
    path = common.write_result(
        common.results_dir_of(args),
        "trigger",
        smoke=args.smoke,
        metrics=metrics,
        details=details,
        started=started,
        machine_before=described,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
