"""Fixtures for the job-container tests: one moto server, real job subprocesses.

Each job runs as `python -m <job>` with cwd=containers/, the way the local cloud runs an
image's Docker context, with the Batch and SLUICE_* environment the state machine would set.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.jobs.helpers import CONTAINERS, IN_BUCKET, OUT_BUCKET, WORK_BUCKET, Run

# In-process unit tests import jobkit/ingest the way the images do: as top-level packages.
if str(CONTAINERS) not in sys.path:
    sys.path.insert(0, str(CONTAINERS))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="session")
def s3(aws_env: dict[str, str]):
    client = boto3.client(
        "s3",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name=aws_env["AWS_DEFAULT_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (IN_BUCKET, WORK_BUCKET, OUT_BUCKET):
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def make_run(s3, aws_env):
    """Upload `data` (bytes or a local file) as the input and return a Run for it."""

    def factory(data: bytes | Path, name: str, **kwargs) -> Run:
        key = f"incoming/{uuid.uuid4().hex[:8]}/{name}"
        if isinstance(data, Path):
            s3.upload_file(str(data), IN_BUCKET, key)
        else:
            s3.put_object(Bucket=IN_BUCKET, Key=key, Body=data)
        return Run(s3=s3, aws_env=aws_env, key=key, **kwargs)

    return factory


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Generated sample data in every input format, made once per session."""
    from sluice.sampledata import generate

    root = tmp_path_factory.mktemp("data")
    paths = {}
    for name in ("sales.csv", "sales.csv.gz", "sales.jsonl", "sales.parquet", "sales.tsv"):
        paths[name] = root / name
        generate(str(paths[name]), 12_000, seed=11)
    return paths
