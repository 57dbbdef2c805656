"""What every per-type creator gets: clients for the local endpoint, naming, warnings."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config

from sluice.local.deploy.botomodel import request_for
from sluice.local.deploy.model import Created, generated_name

log = logging.getLogger("sluice.local.deploy")


@dataclass
class CreateContext:
    endpoint_url: str
    region: str
    account_id: str
    stack_name: str
    partition: str
    url_suffix: str
    base_dir: Path
    warnings: list[str] = field(default_factory=list)
    # (access key, secret key, session token) to sign with; None: the process's credentials.
    credentials: tuple[str, str, str | None] | None = None
    _clients: dict[str, BaseClient] = field(default_factory=dict, repr=False)
    # One session for every client: a new session sets up botocore's handlers and data again.
    _session: boto3.session.Session | None = field(default=None, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            # Signs as whoever deploys (the process's credentials: on the local cloud, the
            # administrator, like `sam deploy`; or the CloudFormation caller's, as given).
            keys = self.credentials
            if self._session is None:
                self._session = (
                    boto3.session.Session(
                        region_name=self.region,
                        aws_access_key_id=keys[0],
                        aws_secret_access_key=keys[1],
                        aws_session_token=keys[2],
                    )
                    if keys is not None
                    else boto3.session.Session(region_name=self.region)
                )
            session = self._session
            self._clients[service] = session.client(
                service,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._clients[service]

    def name(
        self, logical_id: str, *, max_length: int = 64, lowercase: bool = False, suffix_text: str = ""
    ) -> str:
        return generated_name(
            self.stack_name, logical_id, max_length=max_length, lowercase=lowercase, suffix_text=suffix_text
        )

    def arn(
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
    ) -> str:
        region = self.region if region is None else region
        account = self.account_id if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def warn(self, logical_id: str, message: str, *, expected: bool = False) -> None:
        """Record something the local deploy did differently from AWS (``stack.warnings``);
        ``expected`` differences are logged at INFO rather than WARNING."""
        text = f"{logical_id}: {message}"
        log.log(logging.INFO if expected else logging.WARNING, "%s", text)
        self.warnings.append(text)

    def call(
        self,
        logical_id: str,
        service: str,
        operation: str,
        props: dict[str, Any],
        *,
        renames: dict[str, str] | None = None,
        exclude: set[str] | frozenset[str] = frozenset(),
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``operation`` with a request translated from ``props`` through the botocore
        model; properties without an API member are reported, not silently dropped."""
        request, unmapped = request_for(
            service, operation, props, where=logical_id, renames=renames, exclude=exclude, extra=extra
        )
        if unmapped:
            self.warn(logical_id, f"properties not applied locally (no {operation} member): {unmapped}")
        return cast(dict[str, Any], getattr(self.client(service), xform_name(operation))(**request))


Creator = Callable[[CreateContext, str, dict[str, Any]], Created]


def as_json(value: Any) -> str:
    """Policy documents and patterns: CloudFormation takes objects, APIs take JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def attribute_text(value: Any) -> str:
    """Render a property as an SQS/SNS attribute string (booleans lower-case, objects JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
