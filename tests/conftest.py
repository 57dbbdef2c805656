"""Shared test setup: never reach a real AWS account, whatever the developer's shell has."""

from __future__ import annotations

import os

# Fake credentials and a fixed region for every boto3 client a test creates, directly or in a
# subprocess. setdefault would let a developer's real profile leak in, so these are forced.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "SluiceTest"
os.environ["POWERTOOLS_SERVICE_NAME"] = "sluice"
