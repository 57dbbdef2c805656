"""The text of every Sluice notification: one incident in, one subject + body + attributes out.

This is the only place notification wording lives. The notify function builds an `Incident`
from the event (and what it looks up in Batch and CloudWatch Logs) and publishes `render()`'s
result unchanged; golden files under tests/functions/golden/ pin each kind of message.

Rules the text follows (docs/notifications.md):
- the subject says outcome, stage, file name and reason in at most 100 characters;
- the body is plain text that reads well in email: no quoting, one fact per line;
- the job's own error sentence is quoted verbatim where there is one;
- bad input is worded as a problem with the file, everything else as a problem to retry;
- message attributes (`outcome`, `stage`, `run_id`, `input_key`, `reason_code`) let
  subscribers filter with SNS filter policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

Outcome = Literal["failed", "timed_out", "aborted", "rejected", "succeeded", "completed_with_gaps", "blocked"]
ReasonCode = Literal[
    "bad_input",  # a job exited 65: the file (or its options) is at fault; not retried
    "job_error",  # a job exited non-zero after its retries
    "job_timeout",  # an attempt outlived the job's attempt timeout on every attempt
    "infrastructure",  # the job never ran to an exit code: host lost, Spot reclaimed, cancelled
    "job_blocked",  # no compute environment can start the job: stuck in RUNNABLE, or cancelled for it
    "pipeline_error",  # a state machine step other than a job failed (manifest, input, service)
    "execution_timeout",  # the execution hit its own TimeoutSeconds
    "aborted",  # someone stopped the execution
    "upload_rejected",  # the trigger refused the uploaded object; no run started
    "none",  # succeeded
]

EXIT_BAD_INPUT = 65  # containers/jobkit/errors.py: EX_DATAERR, the jobs' bad-input code
SUBJECT_LIMIT = 100  # https://docs.aws.amazon.com/sns/latest/api/API_Publish.html (Subject)
LISTED_CHILDREN = 5  # first failed array children described in full; the rest are counted
# Attribute values must be non-empty strings (SNS rejects an empty StringValue).
UNKNOWN = "unknown"
# A job stuck at the head of the queue: Batch's reason codes (the text before " - ") and the
# statusReason its jobStateTimeLimitActions leave on the job they cancel.
# https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html
# https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html
TIME_LIMIT_CANCELED = "Canceled by JobStateTimeLimit action due to reason: "
BLOCKED_SHORT = {
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": "job needs more than MaxVcpus allows",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": "no instance type fits the job",
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": "no instance capacity available",
}


@dataclass(frozen=True)
class JobFailure:
    """One failed Batch job (or array child) as DescribeJobs and its log stream describe it."""

    stage: str  # ingest | transform | aggregate
    job_id: str
    job_name: str
    status_reason: str | None = None
    exit_codes: tuple[int | None, ...] = ()  # one per attempt, oldest first
    log_stream: str | None = None
    sentence: str | None = None  # the job's own error line from its log, verbatim
    index: int | None = None  # array child index

    @property
    def attempts(self) -> int:
        return len(self.exit_codes)

    @property
    def last_exit_code(self) -> int | None:
        return self.exit_codes[-1] if self.exit_codes else None


@dataclass(frozen=True)
class ArrayFailure:
    """A failed array parent: how many children failed and the first few in index order."""

    size: int
    failed_total: int
    first_children: tuple[JobFailure, ...] = ()


@dataclass(frozen=True)
class Location:
    """Where links point: the region, partition and log group of the stack."""

    region: str
    partition: str = "aws"
    job_log_group: str | None = None


@dataclass(frozen=True)
class Incident:
    outcome: Outcome
    run_id: str | None
    bucket: str | None
    key: str | None
    location: Location
    execution_arn: str | None = None
    stage: str | None = None  # where it happened; None when no stage ran
    job: JobFailure | None = None  # the failed job (for arrays: the parent)
    array: ArrayFailure | None = None
    error: str | None = None  # the execution's error name
    cause: str | None = None  # the execution's cause, or the rejection reason
    result_prefix: str | None = None  # succeeded runs: s3://bucket/prefix/
    time_limit_seconds: int | None = None  # blocked: the queue's RUNNABLE time limit (MaxRunnableSeconds)
    missing_shard_count: int | None = None  # completed_with_gaps: shards missing from the result


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str
    attributes: dict[str, str]

    def sns_message_attributes(self) -> dict[str, dict[str, str]]:
        """The attributes in the shape sns.publish(MessageAttributes=...) takes."""
        return {name: {"DataType": "String", "StringValue": value} for name, value in self.attributes.items()}


def reason_code(incident: Incident) -> ReasonCode:
    if incident.outcome == "rejected":
        return "upload_rejected"
    if incident.outcome in ("succeeded", "completed_with_gaps"):
        return "none"
    if incident.outcome == "timed_out":
        return "execution_timeout"
    if incident.outcome == "aborted":
        return "aborted"
    if incident.outcome == "blocked":
        return "job_blocked"
    job = _deciding_job(incident)
    if job is None:
        # The state machine's own check of hand-written input (RejectExecutionInput).
        if (incident.error or "").endswith("InvalidExecutionInputError"):
            return "bad_input"
        return "pipeline_error"
    if job.last_exit_code == EXIT_BAD_INPUT:
        return "bad_input"
    if _is_attempt_timeout(job):
        return "job_timeout"
    if _blocked_reason_code(job.status_reason) is not None:
        return "job_blocked"
    if job.last_exit_code is None:
        return "infrastructure"
    return "job_error"


def render(incident: Incident) -> Notice:
    code = reason_code(incident)
    attributes = {
        "outcome": incident.outcome,
        "stage": incident.stage or "none",
        "run_id": incident.run_id or UNKNOWN,
        "input_key": incident.key or UNKNOWN,
        "reason_code": code,
    }
    return Notice(subject=_subject(incident, code), body=_body(incident, code), attributes=attributes)


# ------------------------------------------------------------------ subject


def _subject(incident: Incident, code: ReasonCode) -> str:
    name = _file_name(incident.key)
    if incident.outcome == "rejected":
        text = f"Sluice rejected {name}: {incident.cause or 'see the message'}"
    elif incident.outcome == "succeeded":
        text = f"Sluice processed {name}"
    elif incident.outcome == "completed_with_gaps":
        text = f"Sluice processed {name} with gaps: {incident.missing_shard_count} shards missing"
    elif incident.outcome == "aborted":
        text = f"Sluice run aborted{_in_stage(incident)}: {name}"
    elif incident.outcome == "timed_out":
        text = f"Sluice run timed out{_in_stage(incident)}: {name}"
    elif incident.outcome == "blocked":
        text = f"Sluice run blocked{_in_stage(incident)}: {name}: {_short_reason(incident, code)}"
    else:
        named = f"{name}: " if incident.key else ""
        text = f"Sluice run failed{_in_stage(incident)}: {named}{_short_reason(incident, code)}"
    return _subject_safe(text)


def _in_stage(incident: Incident) -> str:
    return f" in {incident.stage}" if incident.stage else ""


def _short_reason(incident: Incident, code: ReasonCode) -> str:
    if incident.array is not None:
        return f"{incident.array.failed_total} of {incident.array.size} shards failed"
    job = _deciding_job(incident)
    if job is not None and job.sentence and not _stopped_from_outside(job):
        return _strip_job_prefix(job.sentence)
    if job is None and code == "bad_input":
        return "invalid execution input"
    if code == "job_blocked":
        blocked = _blocked_reason_code(job.status_reason if job is not None else None)
        return BLOCKED_SHORT.get(blocked or "", "job cannot start")
    return {
        "bad_input": "bad input",
        "job_error": "job error",
        "job_timeout": "job timed out",
        "infrastructure": "job did not run",
        "pipeline_error": incident.error or "pipeline error",
    }.get(code, code)


def _subject_safe(text: str) -> str:
    """SNS subjects: ASCII, no line breaks, at most 100 characters."""
    ascii_text = " ".join(text.split()).encode("ascii", "replace").decode("ascii")
    if len(ascii_text) <= SUBJECT_LIMIT:
        return ascii_text
    return ascii_text[: SUBJECT_LIMIT - 3].rstrip() + "..."


# ------------------------------------------------------------------ body


def _body(incident: Incident, code: ReasonCode) -> str:
    if incident.outcome == "rejected":
        return _rejected_body(incident)
    if incident.outcome in ("succeeded", "completed_with_gaps"):
        return _succeeded_body(incident)
    if incident.outcome == "blocked":
        return _blocked_body(incident, code)
    lines = [_headline(incident, code), ""]
    lines += _facts(incident)
    job = incident.job
    if job is not None:
        lines += _job_lines(job, incident)
    if incident.array is not None:
        lines += _array_lines(incident.array, incident)
    elif job is None:
        # No job decided it (invalid input, a stop by hand, a state machine error): the
        # execution's own error and cause are all there is, e.g. what StopExecution was given.
        if incident.error:
            lines.append(f"Error:   {_one_line(incident.error)}")
        if incident.cause:
            lines.append(f"Cause:   {_one_line(incident.cause)}")
    lines += ["", *_what_next(incident, code), *_links(incident)]
    return "\n".join(lines).rstrip() + "\n"


def _headline(incident: Incident, code: ReasonCode) -> str:
    where = f" in {incident.stage}" if incident.stage else ""
    file = _uri(incident) or "an input"
    if incident.outcome == "aborted":
        return f"Sluice run was stopped{where} before it finished processing {file}."
    if incident.outcome == "timed_out":
        return f"Sluice run timed out{where} while processing {file}."
    if code == "bad_input" and incident.job is None:
        return "Sluice could not start a run: the execution input is not what the pipeline expects."
    if code == "bad_input":
        return f"Sluice could not process {file}: the file has a problem."
    return f"Sluice run failed{where} while processing {file}."


def _facts(incident: Incident) -> list[str]:
    lines = [f"File:    {_uri(incident) or UNKNOWN}", f"Run:     {incident.run_id or UNKNOWN}"]
    if incident.stage:
        lines.append(f"Stage:   {incident.stage}")
    return lines


def _job_lines(job: JobFailure, incident: Incident) -> list[str]:
    if incident.array is not None:
        return [f"Job:     {job.job_name} {job.job_id} (array of {incident.array.size})"]
    lines = [f"Job:     {job.job_name} {job.job_id}, {_attempts(job)}", f"Why:     {_why(job)}"]
    if job.log_stream and incident.location.job_log_group:
        lines.append(f"Log:     {incident.location.job_log_group} {job.log_stream}")
    return lines


def _array_lines(array: ArrayFailure, incident: Incident) -> list[str]:
    lines = [f"Failed:  {array.failed_total} of {array.size} shards", ""]
    for child in array.first_children:
        shard = f"shard {child.index}" if child.index is not None else child.job_id
        lines.append(f"  {shard}: {_why(child)}")
        lines.append(f"    {_attempts(child)}; job {child.job_id}")
    more = array.failed_total - len(array.first_children)
    if more > 0:
        lines.append(
            f"  and {more} more failed shard{'s' if more != 1 else ''} (sluice status {incident.run_id})"
        )
    return lines


def _why(job: JobFailure) -> str:
    # A job that exited on its own says why in its error line. One that was stopped from outside
    # (attempt timeout, lost host) only logs that it got SIGTERM, so Batch's reason comes first.
    stopped_from_outside = _stopped_from_outside(job)
    if job.sentence and not stopped_from_outside:
        return _one_line(job.sentence)
    if job.status_reason:
        reason = _one_line(job.status_reason)
        if job.sentence:
            return f"{reason} (the job's log ends: {_one_line(job.sentence)})"
        return reason if stopped_from_outside else f"{reason} (no error line in the job's log)"
    return _one_line(job.sentence) if job.sentence else "no reason recorded"


def _attempts(job: JobFailure) -> str:
    if not job.exit_codes:
        return "never started"
    codes = ", ".join("none" if c is None else str(c) for c in job.exit_codes)
    plural = "s" if job.attempts != 1 else ""
    return f"{job.attempts} attempt{plural}, exit code{plural} {codes}"


def _what_next(incident: Incident, code: ReasonCode) -> list[str]:
    run = incident.run_id or "RUN_ID"
    if code == "bad_input" and incident.job is None:
        advice = ['What to do: start the execution again with {"input": {"bucket": ..., "key": ...}}.']
    elif code == "bad_input":
        advice = [
            "What to do: fix the file (or its sluice-options) and upload it again.",
            "Bad input is not retried; the uploaded object was not changed.",
        ]
    elif code == "aborted":
        advice = ["What to do: nothing, if the stop was intended; otherwise upload the file again."]
    elif code == "job_blocked":
        advice = _blocked_advice(incident)
    else:
        advice = [
            "What to do: this looks like a failure to retry, not a problem with the file.",
            f"Check the log, then rerun it: sluice rerun {run}",
            "(a rerun reuses every shard that already succeeded).",
        ]
    commands = [f"  sluice status {run}"]
    job = _deciding_job(incident)
    if job is not None and not (code == "job_blocked" and not job.attempts):  # never ran: no log
        commands.append(f"  sluice logs {job.job_id}")
    return [*advice, "", "Inspect:", *commands, ""]


def _links(incident: Incident) -> list[str]:
    loc = incident.location
    console = _console(loc)
    if console is None:
        return []
    links: list[str] = []
    if incident.execution_arn:
        links.append(
            f"  Execution: {console}/states/home?region={loc.region}#/v2/executions/details/{incident.execution_arn}"
        )
    job = _deciding_job(incident)
    if job is not None:
        links.append(f"  Job:       {console}/batch/home?region={loc.region}#jobs/detail/{job.job_id}")
        if job.log_stream and loc.job_log_group:
            links.append(
                f"  Log:       {console}/cloudwatch/home?region={loc.region}#logsV2:log-groups/log-group/"
                f"{_console_escape(loc.job_log_group)}/log-events/{_console_escape(job.log_stream)}"
            )
    return ["In the AWS console:", *links] if links else []


def _blocked_body(incident: Incident, code: ReasonCode) -> str:
    """A job waits at the head of the queue and no compute environment can start it."""
    where = f" in {incident.stage}" if incident.stage else ""
    lines = [
        f"Sluice run is blocked{where}: a job cannot start while processing {_uri(incident) or 'an input'}.",
        "",
    ]
    lines += _facts(incident)
    job = incident.job
    if job is not None:
        lines.append(f"Job:     {job.job_name} {job.job_id}, waiting in RUNNABLE")
        lines.append(
            f"Why:     {_one_line(job.status_reason) if job.status_reason else 'no reason recorded'}"
        )
    limit = incident.time_limit_seconds
    after = f"after {_duration(limit)} at the head of the queue" if limit else "after the queue's time limit"
    lines += [
        "",
        f"What happens next: unless capacity appears, AWS Batch cancels the job {after}"
        " (MaxRunnableSeconds); the run then fails and you get one more message.",
        *_blocked_advice(incident),
        "",
        "Inspect:",
        f"  sluice status {incident.run_id or 'RUN_ID'}",
        "",
        *_links(incident),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _blocked_advice(incident: Incident) -> list[str]:
    job = incident.job
    blocked = _blocked_reason_code(job.status_reason if job is not None else None)
    if blocked == "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY":
        return [
            "What to do: wait for capacity, or allow more instance types or another compute mode;",
            "then upload the file again if the run failed.",
        ]
    return [
        "What to do: raise the stack's MaxVcpus, or lower the vCPUs or memory of the job definition",
        "(or choose an instance type that fits), then upload the file again. Retrying alone won't help.",
    ]


def _rejected_body(incident: Incident) -> str:
    return (
        "\n".join(
            [
                f"Sluice did not process {_uri(incident) or 'an uploaded object'}: {incident.cause or 'no reason given'}.",
                "",
                f"File:    {_uri(incident) or UNKNOWN}",
                "Nothing was started and the object was left untouched.",
                "",
                "What to do: fix the cause and upload the object again.",
            ]
        )
        + "\n"
    )


def _succeeded_body(incident: Incident) -> str:
    lines = [f"Sluice processed {_uri(incident) or 'an input'}.", ""]
    lines += _facts(incident)
    if incident.result_prefix:
        lines.append(f"Result:  {incident.result_prefix}")
    if incident.outcome == "completed_with_gaps":
        lines += [
            "",
            f"The result is incomplete: {incident.missing_shard_count} shards failed and are missing from it",
            "(summary.json and the _INCOMPLETE marker beside _SUCCESS list them and the rows they held).",
            f"What to do: sluice rerun {incident.run_id or 'RUN_ID'} transforms only those shards and",
            "completes the result; the marker goes away.",
        ]
    lines += ["", "Inspect:", f"  sluice status {incident.run_id or 'RUN_ID'}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ helpers


def _deciding_job(incident: Incident) -> JobFailure | None:
    """The job whose failure decided the run: for arrays, the first failed child."""
    if incident.array is not None and incident.array.first_children:
        return incident.array.first_children[0]
    return incident.job


def _stopped_from_outside(job: JobFailure) -> bool:
    return job.last_exit_code is None or _is_attempt_timeout(job)


def _blocked_reason_code(status_reason: str | None) -> str | None:
    """The stuck-in-RUNNABLE reason code of a blocked or time-limit-cancelled job, else None."""
    text = (status_reason or "").removeprefix(TIME_LIMIT_CANCELED)
    code = text.split(" - ", 1)[0].strip()
    if code in BLOCKED_SHORT or (status_reason or "").startswith(TIME_LIMIT_CANCELED):
        return code or None
    return None


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def _is_attempt_timeout(job: JobFailure) -> bool:
    # Batch's statusReason for an attempt killed by its timeout:
    # https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html
    return bool(job.status_reason) and "timeout" in (job.status_reason or "").lower()


def _strip_job_prefix(sentence: str) -> str:
    """'ingest: bad input: line 5: ...' -> 'line 5: ...' (the subject already names stage and kind)."""
    text = _one_line(sentence)
    for prefix in ("ingest: ", "transform: ", "aggregate: "):
        text = text.removeprefix(prefix)
    return text.removeprefix("bad input: ")


def _uri(incident: Incident) -> str | None:
    if incident.bucket and incident.key:
        return f"s3://{incident.bucket}/{incident.key}"
    return None


def _file_name(key: str | None) -> str:
    return key.rsplit("/", 1)[-1] if key else "an input"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _console(loc: Location) -> str | None:
    domain = {
        "aws": "console.aws.amazon.com",
        "aws-us-gov": "console.amazonaws-us-gov.com",
        "aws-cn": "console.amazonaws.cn",
    }.get(loc.partition)
    return f"https://{loc.region}.{domain}" if domain else None


def _console_escape(name: str) -> str:
    # The CloudWatch console's log-group/stream URL fragment escapes names twice and writes '%' as '$'.
    return quote(quote(name, safe=""), safe="").replace("%", "$")
