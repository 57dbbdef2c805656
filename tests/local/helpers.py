"""Small stand-ins for the Batch engine and Lambda runtime, speaking their real wire protocols."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sluice.local.cloud import EngineContext, LocalCloud

TERMINAL = ("SUCCEEDED", "FAILED")


def _json_response(
    start_response: Callable[..., Any], status: str, body: dict[str, Any], headers=()
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]


class FakeBatch:
    """AWS Batch's REST API (SubmitJob, DescribeJobs, TerminateJob) over in-memory jobs.

    Validates the members Batch requires, so a request with the wrong casing fails the way
    AWS Batch would fail it. Tests end jobs with `finish()`.
    """

    def __init__(self, context: EngineContext | None = None) -> None:
        self.emit = context.emit_event if context else None
        self.region = context.region if context else "us-east-1"
        self.account_id = context.account_id if context else "123456789012"
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self.started = self.stopped = False

    # engine lifecycle
    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def flush(self, timeout: float = 10.0) -> bool:
        return True  # events are handed on synchronously by finish()

    # test controls
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError("condition not met")
            return predicate()

    def wait_for_job(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_for(lambda: next(iter(self.jobs.values()), None), timeout)

    def wait_until_polled(self, timeout: float = 10.0) -> None:
        """Until Step Functions has described a job, i.e. its `.sync` wait is under way.

        Stopping an execution earlier races moto: between SubmitJob and the wait, a stopped
        execution leaves moto's waiter thread with a corrupt timeout (a moto race, harmless
        but noisy).
        """
        self.wait_for(lambda: any(op == "describejobs" for op, _ in self.requests), timeout)

    def finish(self, job_id: str, status: str, reason: str = "Essential container in task exited") -> None:
        with self._changed:
            job = self.jobs[job_id]
            job["status"] = status
            job["stoppedAt"] = int(time.time() * 1000)
            if status == "FAILED":
                job["statusReason"] = reason
            self._changed.notify_all()
        self._emit_change(job)

    def _emit_change(self, job: dict[str, Any]) -> None:
        if self.emit is not None:
            self.emit(
                {
                    "Source": "aws.batch",
                    "DetailType": "Batch Job State Change",
                    "Detail": json.dumps(job),
                    "Resources": [job["jobArn"]],
                }
            )

    # wire protocol
    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        operation = environ["PATH_INFO"].rstrip("/").rsplit("/", 1)[-1]
        with self._changed:
            self.requests.append((operation, body))
            self._changed.notify_all()
        if operation == "submitjob":
            missing = [m for m in ("jobName", "jobQueue", "jobDefinition") if not body.get(m)]
            if missing:
                return _json_response(
                    start_response,
                    "400 Bad Request",
                    {"__type": "ClientException", "message": f"{missing[0]} is required"},
                    [("x-amzn-ErrorType", "ClientException")],
                )
            job_id = str(uuid.uuid4())
            job = {
                "jobArn": f"arn:aws:batch:{self.region}:{self.account_id}:job/{job_id}",
                "jobName": body["jobName"],
                "jobId": job_id,
                "jobQueue": body["jobQueue"],
                "jobDefinition": body["jobDefinition"],
                "status": "RUNNING",
                "createdAt": int(time.time() * 1000),
                "parameters": body.get("parameters", {}),
                "container": {"environment": (body.get("containerOverrides") or {}).get("environment", [])},
            }
            if body.get("arrayProperties"):
                job["arrayProperties"] = {"size": body["arrayProperties"]["size"]}
            with self._changed:
                self.jobs[job_id] = job
                self._changed.notify_all()
            return _json_response(
                start_response,
                "200 OK",
                {"jobArn": job["jobArn"], "jobName": job["jobName"], "jobId": job_id},
            )
        if operation == "describejobs":
            with self._changed:
                jobs = [json.loads(json.dumps(self.jobs[j])) for j in body.get("jobs", []) if j in self.jobs]
            return _json_response(start_response, "200 OK", {"jobs": jobs})
        if operation == "terminatejob":
            self.finish(body["jobId"], "FAILED", body.get("reason", ""))
            return _json_response(start_response, "200 OK", {})
        return _json_response(
            start_response, "400 Bad Request", {"__type": "ClientException", "message": operation}
        )


class FakeLambda:
    """Records Invoke calls (in-process and over the Lambda REST API)."""

    def __init__(self, context: EngineContext | None = None) -> None:
        self.invocations: list[tuple[str, bytes, str]] = []
        self.http_requests: list[str] = []
        self._changed = threading.Condition()
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def wait_for_async(self, timeout: float) -> bool:
        return True  # invocations are only recorded

    def policy_document(self, function_arn: str) -> str | None:
        """Every fake function lets EventBridge invoke it (the permission the template grants)."""
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": function_arn,
        }
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    def invoke(self, function_name_or_arn: str, payload: bytes, invocation_type: str) -> dict[str, Any]:
        with self._changed:
            self.invocations.append((function_name_or_arn, payload, invocation_type))
            self._changed.notify_all()
        return {"StatusCode": 202}

    def wait_for_invocations(self, count: int, timeout: float = 10.0) -> list[tuple[str, bytes, str]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.invocations) >= count, timeout):
                raise TimeoutError(f"{len(self.invocations)} of {count} invocations")
            return list(self.invocations)

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.http_requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return _json_response(start_response, "200 OK", {"Functions": []})


@dataclass
class Local:
    cloud: LocalCloud
    batch: FakeBatch
    lam: FakeLambda

    def client(self, service: str) -> Any:
        return self.cloud.client(service)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def queue_with_rule(local: Local, name: str, pattern: dict[str, Any], **target: Any) -> str:
    """An SQS queue receiving, through a rule on the default bus, the events matching `pattern`.

    The queue policy lets EventBridge send for that rule only, as AWS requires
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions).
    """
    sqs, events = local.client("sqs"), local.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_arn = events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps(pattern))["RuleArn"]
    allow_eventbridge(local, rule_arn, arn)
    events.put_targets(Rule=f"{name}-rule", Targets=[{"Id": "q", "Arn": arn, **target}])
    return url


def drain_queue(local: Local, url: str) -> list[str]:
    """Every message body now in the queue, after EventBridge delivered what it had accepted."""
    assert local.cloud.events.wait_idle(10.0)
    sqs = local.client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def service_role(iam: Any, name: str, *services: str) -> str:
    """A role the given services may assume, allowed everything: for tests about something else.

    The local cloud enforces IAM, so a service integration needs a real role whose trust policy
    names the service, as on AWS.
    """
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="everything", PolicyDocument=json.dumps(everything))
    return arn


def allow_eventbridge(local: Local, rule_arn: str, target_arn: str) -> None:
    """Let EventBridge deliver to the target for this rule: the target's resource policy, as
    AWS requires (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html)."""
    service = target_arn.split(":")[2]
    action = {"sns": "sns:Publish", "sqs": "sqs:SendMessage", "logs": "logs:PutLogEvents"}.get(service)
    if action is None:
        return
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": [action, "logs:CreateLogStream"] if service == "logs" else action,
        "Resource": f"{target_arn}:*" if service == "logs" and not target_arn.endswith(":*") else target_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    if service == "sns":
        local.client("sns").set_topic_attributes(
            TopicArn=target_arn, AttributeName="Policy", AttributeValue=policy
        )
    elif service == "sqs":
        sqs = local.client("sqs")
        url = sqs.get_queue_url(QueueName=target_arn.rsplit(":", 1)[1])["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    else:
        local.client("logs").put_resource_policy(
            policyName=f"events-{rule_arn.rsplit('/', 1)[1]}", policyDocument=policy
        )
