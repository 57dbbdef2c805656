"""Gather everything the run report shows, through the AWS APIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sluice.aws import Clients
from sluice.runs.pricing import PriceTable, estimate
from sluice.runs.records import RunRecord, load_run
from sluice.runs.report import MAX_LOG_LINES, ReportData
from sluice.runs.timeline import layout
from sluice.stack import StackOutputs

FAILED_UNITS_WITH_LOGS = 10


def read_json(clients: Clients, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None


def last_log_lines(clients: Clients, group: str, stream: str | None) -> list[str]:
    if not stream:
        return []
    try:
        page = clients.logs.get_log_events(
            logGroupName=group, logStreamName=stream, limit=MAX_LOG_LINES, startFromHead=False
        )
    except ClientError:
        return []
    return [event["message"] for event in page["events"]]


def failure_logs(clients: Clients, run: RunRecord, group: str) -> dict[str, list[str]]:
    failed = [unit for job in run.jobs for unit in job.runs() if unit.status == "FAILED"]
    return {
        unit.job_id: last_log_lines(
            clients, group, unit.log_stream or (unit.attempts[-1].log_stream if unit.attempts else None)
        )
        for unit in failed[:FAILED_UNITS_WITH_LOGS]
    }


def build_report_data(
    clients: Clients, outputs: StackOutputs, execution_arn: str, prices: Path | None = None
) -> ReportData:
    run = load_run(clients.sfn, clients.batch, execution_arn)
    price_table = PriceTable.load(prices)
    output_prefix = ((run.output or {}).get("output") or {}).get("prefix")
    summary = (
        read_json(clients, outputs.output_bucket, f"{output_prefix}summary.json") if output_prefix else None
    )
    return ReportData(
        run=run,
        timeline=layout(run),
        cost=estimate(run, price_table),
        price_note=f"Prices: {price_table.region}, as of {price_table.as_of}. {price_table.source}.",
        manifest=read_json(clients, outputs.work_bucket, f"work/{run.name}/manifest.json"),
        summary=summary,
        failure_logs=failure_logs(clients, run, outputs.job_log_group),
    )
