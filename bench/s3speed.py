"""S3 transfer rates through boto3, the way Sluice's clients move data.

- `upload_file` with boto3's default transfer settings (multipart, 10 threads): how
  `sluice`'s drop_file and `aws s3 cp` upload the input;
- one `put_object` of up to 64 MiB: one request, one body;
- `get_object` read as a stream in 8 MiB pieces: how ingest reads its input (one GET);
- `download_file` with boto3's defaults (ranged GETs on 10 threads): how transform fetches a shard.

    python -m bench.s3speed --file F --endpoint URL --bucket B   # a client in its own process
    python -m bench.s3speed --file F --moto-server              # moto's own server, in another process
    python -m bench.s3speed --file F --mock                     # moto in this process, no HTTP at all

Each prints one JSON line. MB/s are 10^6 bytes per second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

PUT_LIMIT = 64 * 1024 * 1024
READ_CHUNK = 8 * 1024 * 1024


def client(endpoint_url: str | None) -> Any:
    """An S3 client signing with the process's credentials (the local cloud's administrator
    once a LocalCloud runs in this process; any key for a bare moto server)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
    )


def _rate(size: int, seconds: float) -> dict[str, float]:
    return {"bytes": size, "seconds": round(seconds, 4), "mb_per_s": round(size / seconds / 1e6, 1)}


def measure(s3: Any, bucket: str, path: Path) -> dict[str, Any]:
    """Upload, put, stream-read and download `path` once each; deletes what it wrote."""
    size = path.stat().st_size
    key = f"bench/s3speed/{uuid.uuid4().hex}"
    found: dict[str, Any] = {}
    started = time.perf_counter()
    s3.upload_file(str(path), bucket, f"{key}/upload")
    found["upload_file"] = _rate(size, time.perf_counter() - started)

    body = _head(path, PUT_LIMIT)
    started = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=f"{key}/put", Body=body)
    found["put_object"] = _rate(len(body), time.perf_counter() - started)
    del body

    started = time.perf_counter()
    stream = s3.get_object(Bucket=bucket, Key=f"{key}/upload")["Body"]
    read = 0
    while chunk := stream.read(READ_CHUNK):
        read += len(chunk)
    found["get_object_stream"] = _rate(read, time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="sluice-bench-s3-") as scratch:
        target = Path(scratch) / "download"
        started = time.perf_counter()
        s3.download_file(bucket, f"{key}/upload", str(target))
        found["download_file"] = _rate(target.stat().st_size, time.perf_counter() - started)
    delete_prefix(s3, bucket, key)
    return found


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    """Every version under `prefix` (a versioned bucket keeps the bytes otherwise)."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    doomed = [
        {"Key": item["Key"], "VersionId": item["VersionId"]}
        for kind in ("Versions", "DeleteMarkers")
        for item in listing.get(kind, [])
    ]
    if doomed:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's own server (werkzeug, Connection: close per request) in a separate process."""
    from bench.batch_fanout import moto_logs_server

    with moto_logs_server() as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--moto-server", action="store_true")
    mode.add_argument("--mock", action="store_true")
    args = parser.parse_args(argv)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    if args.mock:
        from moto import mock_aws

        os.environ.pop("AWS_ENDPOINT_URL", None)
        with mock_aws():
            s3 = client(None)
            s3.create_bucket(Bucket="bench")
            found = measure(s3, "bench", args.file)
    elif args.moto_server:
        with moto_server() as url:
            s3 = client(url)
            s3.create_bucket(Bucket="bench")
            found = measure(s3, "bench", args.file)
    else:
        if not (args.endpoint and args.bucket):
            parser.error("--endpoint and --bucket, or --moto-server, or --mock")
        found = measure(client(args.endpoint), args.bucket, args.file)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
