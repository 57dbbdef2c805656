"""Reading what earlier stages left in the work bucket."""

from __future__ import annotations

from botocore.client import BaseClient

from jobkit import s3 as s3io
from jobkit.errors import JobError
from jobkit.keys import manifest_key
from jobkit.manifest import Manifest


def read_manifest(s3: BaseClient, bucket: str, work_prefix: str) -> Manifest:
    """The manifest, or a retryable error: without it, ingest has not finished."""
    key = manifest_key(work_prefix)
    try:
        return Manifest.model_validate(s3io.read_json(s3, bucket, key))
    except s3io.NotFound:
        raise JobError(f"manifest s3://{bucket}/{key} does not exist: ingest has not finished") from None
