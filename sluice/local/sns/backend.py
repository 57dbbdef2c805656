"""The local notifications outbox: every message published to an SNS topic, as JSON lines.

moto delivers SNS messages to SQS/Lambda/HTTP subscribers and records email subscriptions
but sends no mail, so nobody would see an alert. The local cloud therefore also appends
every message published to any topic, whether by a client's Publish/PublishBatch, a Step
Functions `sns:publish` task or EventBridge delivery, to an outbox file the CLI can show.
One line per message: topic_arn, subject, message, attributes (as SNS hands them to
subscribers: {"name": {"Type", "Value"}}), time (ISO 8601, UTC), message_id, and `email`:
the email endpoints subscribed to the topic (who would have been mailed).

The hook wraps moto's `Topic.publish`, the one place every topic publish passes through.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Any

from moto.sns.models import Topic

log = logging.getLogger(__name__)


class Outbox:
    """Append-only JSON-lines file of published notifications."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]


_outbox: Outbox | None = None
_moto_publish = Topic.publish


def _email_endpoints(topic: Any) -> list[str]:
    subscriptions, _ = topic.sns_backend.list_subscriptions_by_topic(topic_arn=topic.arn)
    return [s.endpoint for s in subscriptions if s.protocol in ("email", "email-json")]


def _publish(
    self: Any,
    message: str,
    subject: str | None = None,
    message_attributes: dict[str, Any] | None = None,
    group_id: str | None = None,
    deduplication_id: str | None = None,
    message_structure: str | None = None,
) -> str:
    message_id = _moto_publish(
        self,
        message,
        subject=subject,
        message_attributes=message_attributes,
        group_id=group_id,
        deduplication_id=deduplication_id,
        message_structure=message_structure,
    )
    outbox = _outbox
    if outbox is not None:
        try:
            outbox.append(
                {
                    "topic_arn": self.arn,
                    "subject": subject,
                    "message": message,
                    "attributes": message_attributes or {},
                    "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "message_id": message_id,
                    "email": _email_endpoints(self),
                }
            )
        except Exception:  # the publish succeeded; the outbox is a convenience
            log.exception("writing the notifications outbox failed")
    return message_id


def install(outbox: Outbox | None) -> None:
    """Record every topic publish in `outbox`."""
    global _outbox
    _outbox = outbox
    Topic.publish = _publish  # type: ignore[method-assign]


def uninstall() -> None:
    global _outbox
    _outbox = None
    Topic.publish = _moto_publish  # type: ignore[method-assign]
