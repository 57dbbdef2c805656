"""boto3 clients for the chosen target: AWS, or any endpoint (the local cloud) by URL."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode with a few attempts: the CLI polls, so fail fast on a dead endpoint.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=60)


class Clients:
    def __init__(self, endpoint_url: str | None = None, region: str | None = None) -> None:
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self.region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        self._session = boto3.session.Session(region_name=self.region)

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def sfn(self) -> Any:
        return self.client("stepfunctions")

    @cached_property
    def batch(self) -> Any:
        return self.client("batch")

    @cached_property
    def logs(self) -> Any:
        return self.client("logs")

    @cached_property
    def cloudformation(self) -> Any:
        return self.client("cloudformation")
