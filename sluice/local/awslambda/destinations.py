"""Where asynchronous invocation records go: on-success/on-failure destinations and DLQs.

Record and message shapes follow "Retaining records of asynchronous invocations"
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html):
a destination gets the invocation record (request and response); a dead-letter queue
gets the original event with RequestID / ErrorCode / ErrorMessage message attributes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sluice.local.awslambda")


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return payload.decode("utf-8", "replace")


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: bytes,
    executed_version: str,
    response_payload: bytes | None,
    function_error: str | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _iso_now(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if response_payload is not None:
        record["responseContext"] = {"statusCode": 200, "executedVersion": executed_version}
        if function_error:
            record["responseContext"]["functionError"] = function_error
        record["responsePayload"] = _json_or_text(response_payload)
    return record


def _arn_parts(arn: str) -> tuple[str, str, str, str]:
    parts = arn.split(":", 5)
    if len(parts) < 6:
        raise ValueError(f"not an ARN: {arn}")
    return parts[2], parts[3], parts[4], parts[5]  # service, region, account, resource


class DestinationSender:
    """Delivers records and dead letters through boto3 at the endpoint."""

    def __init__(
        self,
        client: Callable[[str, str | None], Any],
        invoke_async: Callable[[str, bytes], None],
        endpoint_url: str,
    ) -> None:
        self._client = client  # (service, role ARN or None) -> boto3 client
        self._invoke_async = invoke_async
        self._endpoint_url = endpoint_url

    def _queue_url(self, arn: str) -> str:
        # Lambda sends to the queue ARN; it needs no sqs:GetQueueUrl of its own. The endpoint's
        # queue URLs are <endpoint>/<account>/<name>.
        _, _, account, name = _arn_parts(arn)
        return f"{self._endpoint_url}/{account}/{name}"

    def send_record(
        self, destination: str, record: dict[str, Any], *, success: bool, role_arn: str | None = None
    ) -> None:
        body = json.dumps(record)
        try:
            service, _, _, resource = _arn_parts(destination)
            if service == "sqs":
                self._client("sqs", role_arn).send_message(
                    QueueUrl=self._queue_url(destination), MessageBody=body
                )
            elif service == "sns":
                self._client("sns", role_arn).publish(TopicArn=destination, Message=body)
            elif service == "lambda":
                self._invoke_async(destination, body.encode())
            elif service == "events":
                outcome = "Success" if success else "Failure"
                function_arn = record["requestContext"]["functionArn"]
                self._client("events", role_arn).put_events(
                    Entries=[
                        {
                            "Source": "lambda",
                            "DetailType": f"Lambda Function Invocation Result - {outcome}",
                            "Detail": body,
                            "Resources": [destination, function_arn],
                            "EventBusName": destination,
                        }
                    ]
                )
            else:
                log.warning(
                    "destination %s (%s) is not supported locally; record dropped", destination, service
                )
        except Exception as exc:
            log.warning("could not deliver invocation record to %s: %s", destination, exc)

    def send_dead_letter(
        self, target: str, payload: bytes, *, request_id: str, error_message: str, role_arn: str | None = None
    ) -> None:
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            # "ErrorMessage – The first 1 KB of the error message."
            "ErrorMessage": {
                "DataType": "String",
                "StringValue": error_message.encode()[:1024].decode("utf-8", "ignore"),
            },
        }
        body = payload.decode("utf-8", "replace") if payload else "{}"
        try:
            service = _arn_parts(target)[0]
            if service == "sqs":
                self._client("sqs", role_arn).send_message(
                    QueueUrl=self._queue_url(target), MessageBody=body, MessageAttributes=attributes
                )
            elif service == "sns":
                self._client("sns", role_arn).publish(
                    TopicArn=target, Message=body, MessageAttributes=attributes
                )
            else:
                log.warning("dead-letter target %s must be an SQS queue or SNS topic; event dropped", target)
        except Exception as exc:
            log.warning("could not send dead letter to %s: %s", target, exc)
