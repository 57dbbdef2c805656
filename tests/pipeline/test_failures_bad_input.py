"""Bad input, end to end: every case is rejected by the trigger or fails ingest with exit code 65.

Either way: no retry, one alert per incident (the failed run, or the rejection) naming the input
object and, in the job's own words, why; nothing written under results/<key>/; the
uploaded object byte-identical afterwards. The whole corpus is uploaded at once, so the
cases' jobs overlap.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sluice import sampledata
from sluice.runs.records import RunRecord, load_run
from tests.jobs.helpers_oracle import assert_matches, duckdb_expected
from tests.pipeline.helpers import Pipeline, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PREFIX = "incoming/failures/bad-input"
HEADER = b"transaction_id,category,country,amount\n"


def rows(n: int, start: int = 0) -> bytes:
    return b"".join(b"t%d,groceries,DE,%d.5\n" % (i, i) for i in range(start, start + n))


def truncated_gzip() -> bytes:
    data = gzip.compress(HEADER + rows(5000), mtime=0)
    return data[: len(data) // 2]


@dataclass(frozen=True)
class Case:
    name: str  # the file name under PREFIX (or the whole key when `key` is given)
    body: bytes
    expect: str  # "ingest": ingest exits 65; "trigger": the trigger rejects the upload
    reason: str  # what the job's log (ingest) or the rejection (trigger) says
    options: dict[str, Any] | None = None
    key: str | None = None

    @property
    def object_key(self) -> str:
        return self.key or f"{PREFIX}/{self.name}"


# "empty object" is covered twice: a zero-byte object (the trigger refuses it before any job
# runs) and an object holding only line breaks (non-zero size, so ingest decides: no header).
CASES = {
    case.name: case
    for case in [
        Case("zero-byte.csv", b"", "trigger", "the object is empty (0 bytes)"),
        Case("blank-lines.csv", b"\n\n\n", "ingest", "line 1 is empty; a header row naming the columns"),
        Case("header-only.csv", HEADER, "ingest", "input has a header row but no data rows"),
        Case("no-header.csv", rows(20), "ingest", "is the header row missing?"),
        Case(
            "wrong-delimiter.csv",
            # ';' splits one line unevenly, so the delimiter is not detected (an even ';' file is).
            HEADER.replace(b",", b";") + rows(5).replace(b",", b";") + b"t9;groceries;DE;1;2\n",
            "ingest",
            "wrong delimiter? the header is one column containing ';'",
        ),
        Case(
            "missing-column.csv",
            b"transaction_id,category,amount\nt1,groceries,1.5\n",
            "ingest",
            "column 'country' named in the aggregation spec is not in the input",
        ),
        Case(
            "non-numeric.csv",
            HEADER + rows(90) + b"t9,groceries,DE,x\n" * 10,
            "ingest",
            "10 of 100 rows rejected (10.00%), more than max_bad_row_fraction 0.05",
            options={"max_bad_row_fraction": 0.05},
        ),
        Case(
            "invalid-utf8.csv",
            HEADER + rows(2) + "t8,épicerie,FR,2.5\n".encode("latin-1") + rows(2, 5),
            "ingest",
            "line 4: invalid UTF-8",
        ),
        Case("truncated.csv.gz", truncated_gzip(), "ingest", "gzip input is truncated"),
        Case("not-really.parquet", HEADER + rows(3), "ingest", "is not a Parquet file"),
        Case(
            "line-of-10-mb.csv",
            HEADER + rows(3) + b"t9,groceries,DE," + b"9" * (10 * 1024 * 1024) + b"\n" + rows(3),
            "ingest",
            "line 5 is longer than 8 MiB",
        ),
        Case(
            "outside-prefix.csv",
            HEADER + rows(3),
            "trigger",
            "the key is outside the input prefix 'incoming/'",
            key="outside/failures/bad-input/outside-prefix.csv",
        ),
    ]
}
NAMING_KEY = f"{PREFIX}/naming/Q3 report – Zürich ü 100% final.csv"


class ExecutionIndex:
    """Executions of the pipeline by input key; each execution is described once."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._keys: dict[str, str] = {}

    def arns_for(self, key: str) -> list[str]:
        sfn = self._pipeline.clients.sfn
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self._pipeline.outputs.state_machine_arn
        ):
            for execution in page["executions"]:
                arn = execution["executionArn"]
                if arn not in self._keys:
                    described = sfn.describe_execution(executionArn=arn)
                    self._keys[arn] = json.loads(described["input"]).get("input", {}).get("key", "")
        return [arn for arn, known in self._keys.items() if known == key]


@dataclass
class Uploaded:
    case: Case
    version_id: str


@pytest.fixture(scope="module")
def corpus(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Upload every case (and the naming case, which must succeed) at the same time."""
    source = tmp_path_factory.mktemp("naming") / "naming.csv"
    sampledata.generate(str(source), rows=1_500, seed=23)

    def upload(case: Case) -> Uploaded:
        head = pipeline.upload(case.object_key, case.body, case.options)
        return Uploaded(case, head["VersionId"])

    naming = Case("naming", source.read_bytes(), "succeed", "", key=NAMING_KEY)
    with ThreadPoolExecutor(8) as pool:
        uploads = list(pool.map(upload, [*CASES.values(), naming]))
    yield {
        "uploads": {u.case.name: u for u in uploads},
        "index": ExecutionIndex(pipeline),
        "naming_source": source,
    }


def finished_execution(pipeline: Pipeline, index: ExecutionIndex, key: str) -> dict[str, Any]:
    arns = wait_for(lambda: index.arns_for(key), 60, f"an execution for {key}", interval=0.3)
    assert len(arns) == 1, arns
    return pipeline.wait_finished(arns[0], timeout=120)


def assert_input_untouched(pipeline: Pipeline, uploaded: Uploaded) -> None:
    """Still exactly the one version that was uploaded, with the same bytes."""
    s3 = pipeline.clients.s3
    bucket, key = pipeline.outputs.input_bucket, uploaded.case.object_key
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    versions = [v for v in listing.get("Versions", []) if v["Key"] == key]
    assert [v["VersionId"] for v in versions] == [uploaded.version_id]
    assert not [m for m in listing.get("DeleteMarkers", []) if m["Key"] == key]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == uploaded.case.body


def log_lines(pipeline: Pipeline, stream: str) -> list[str]:
    events = pipeline.clients.logs.get_log_events(
        logGroupName=pipeline.outputs.job_log_group, logStreamName=stream, startFromHead=True
    )["events"]
    return [event["message"] for event in events]


def notes_naming(pipeline: Pipeline, text: str) -> list[str]:
    return [note["message"] for note in pipeline.notifications_about(text)]


INGEST_CASES = [name for name, case in CASES.items() if case.expect == "ingest"]
TRIGGER_CASES = [name for name, case in CASES.items() if case.expect == "trigger"]


@pytest.mark.parametrize("name", INGEST_CASES)
def test_bad_data_fails_ingest_once_with_exit_65_and_one_alert_quoting_the_job(
    pipeline: Pipeline, corpus: dict[str, Any], name: str
) -> None:
    uploaded: Uploaded = corpus["uploads"][name]
    case = uploaded.case
    bucket, key = pipeline.outputs.input_bucket, case.object_key
    execution = finished_execution(pipeline, corpus["index"], key)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.TaskFailed"
    run_name = execution["name"]

    # Only ingest ran, once: exit code 65 is EXIT in the retry strategy, whatever attempts remain.
    run: RunRecord = load_run(pipeline.clients.sfn, pipeline.clients.batch, execution["executionArn"])
    assert [job.stage for job in run.jobs] == ["ingest"]
    ingest = run.jobs[0]
    assert ingest.status == "FAILED"
    assert len(ingest.attempts) == 1
    assert ingest.attempts[0].exit_code == 65
    assert ingest.status_reason == "Essential container in task exited"
    stream = ingest.attempts[0].log_stream
    assert stream and stream.startswith("sluice-ingest/default/")
    # The reason in words, as the job wrote it to its log stream (the alert quotes it).
    said = [line for line in log_lines(pipeline, stream) if line.startswith("ingest: bad input: ")]
    assert len(said) == 1 and case.reason in said[0], said

    # One alert for the incident, quoting the job's own sentence from its log.
    alert = pipeline.the_alert_for(run_name)
    text = alert["message"]
    assert alert["subject"].startswith(f"Sluice run failed in ingest: {key.rsplit('/', 1)[-1]}: ")
    assert f"File:    s3://{bucket}/{key}" in text
    assert f"Why:     {said[0].removeprefix('ingest: ')}" in text
    assert f"Job:     sluice-ingest {ingest.job_id}, 1 attempt, exit code 65" in text
    assert f"{stream}" in text and f"sluice logs {ingest.job_id}" in text
    assert "fix the file" in text
    assert {k: v["Value"] for k, v in alert["attributes"].items()} == {
        "outcome": "failed",
        "stage": "ingest",
        "run_id": run_name,
        "input_key": key,
        "reason_code": "bad_input",
    }
    assert len(pipeline.notifications_about(run_name)) == 1  # no job, child or alarm message besides

    assert pipeline.output_keys(f"results/{key}/") == []
    work = pipeline.clients.s3.list_objects_v2(
        Bucket=pipeline.outputs.work_bucket, Prefix=f"work/{run_name}/"
    )
    assert [item["Key"] for item in work.get("Contents", [])] == []  # no manifest, shards removed
    assert_input_untouched(pipeline, uploaded)


@pytest.mark.parametrize("name", TRIGGER_CASES)
def test_unprocessable_upload_is_rejected_by_the_trigger_with_one_notification(
    pipeline: Pipeline, corpus: dict[str, Any], name: str
) -> None:
    uploaded: Uploaded = corpus["uploads"][name]
    case = uploaded.case
    uri = f"s3://{pipeline.outputs.input_bucket}/{case.object_key}"
    expected = f"Sluice did not process {uri}: {case.reason}."
    wait_for(lambda: notes_naming(pipeline, expected), 30, f"the rejection of {case.object_key}")
    pipeline.cloud.settle(10)
    notes = notes_naming(pipeline, uri)
    assert len(notes) == 1, notes
    [alert] = pipeline.alerts_for("input_key", case.object_key)
    assert alert["attributes"]["outcome"]["Value"] == "rejected"
    assert alert["subject"].startswith(f"Sluice rejected {case.object_key.rsplit('/', 1)[-1]}: ")
    print(f"--- {name}\nSubject: {alert['subject']}\n{notes[0]}")
    assert corpus["index"].arns_for(case.object_key) == []
    assert pipeline.output_keys(f"results/{case.object_key}/") == []
    assert_input_untouched(pipeline, uploaded)


def test_key_with_spaces_unicode_and_percent_runs_normally(
    pipeline: Pipeline, corpus: dict[str, Any]
) -> None:
    execution = finished_execution(pipeline, corpus["index"], NAMING_KEY)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert output["input"]["key"] == NAMING_KEY
    prefix = output["output"]["prefix"]
    assert prefix == f"results/{NAMING_KEY}/{execution['name']}/"
    written = {key[len(prefix) :] for key in pipeline.output_keys(prefix)}
    assert written == {"result.parquet", "result.csv", "summary.json", "_SUCCESS"}
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.outputs.output_bucket, Key=f"{prefix}result.parquet"
    )
    assert_matches(pq.read_table(io.BytesIO(body["Body"].read())), duckdb_expected(corpus["naming_source"]))
    assert notes_naming(pipeline, NAMING_KEY) == []
    assert_input_untouched(pipeline, corpus["uploads"]["naming"])


def test_object_above_the_size_limit_is_rejected(pipeline: Pipeline, tmp_path: Path) -> None:
    """MaxInputBytes is a stack parameter (50 GiB by default) that reaches the trigger as
    MAX_INPUT_BYTES; the deployed function's configuration is lowered for this test, the way
    a redeploy with a smaller MaxInputBytes would, and restored afterwards."""
    lam = pipeline.clients.client("lambda")
    function = pipeline.outputs.values["TriggerFunctionName"]
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    limit = 1_000
    source = tmp_path / "too-big.csv"
    sampledata.generate(str(source), rows=50, seed=31)
    body = source.read_bytes()
    assert len(body) > limit
    key = f"{PREFIX}/too-big.csv"
    lam.update_function_configuration(
        FunctionName=function, Environment={"Variables": {**variables, "MAX_INPUT_BYTES": str(limit)}}
    )
    try:
        head = pipeline.upload(key, body)
        uri = f"s3://{pipeline.outputs.input_bucket}/{key}"
        expected = f"Sluice did not process {uri}: the object is {len(body)} bytes, above the limit of {limit} bytes."
        wait_for(lambda: notes_naming(pipeline, expected), 30, "the size rejection")
    finally:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    notes = notes_naming(pipeline, uri)
    assert len(notes) == 1, notes
    print(f"--- too-big\n{notes[0]}")
    assert pipeline.executions_for(key) == []
    assert pipeline.output_keys(f"results/{key}/") == []
    assert_input_untouched(pipeline, Uploaded(Case("too-big.csv", body, "trigger", ""), head["VersionId"]))
    restored = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    assert restored == variables
