"""Request checks Batch makes before it accepts a resource or a job.

Messages quoted from AWS where one was observed (noted inline); the others are plausible
wordings because AWS does not document them (ND: docs/aws-behaviour.md#batch-submission-and-queues).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from sluice.local.batch.errors import ClientException
from sluice.local.batch.models import MILLI, Resources

NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
MIN_ARRAY_SIZE = 2
MAX_ARRAY_SIZE = 10_000
MAX_DEPENDENCIES = 20
MIN_TIMEOUT_SECONDS = 60
RESERVED_ENV_PREFIX = "AWS_BATCH_"
MAX_REASON = 1024

# Fargate task sizes (vCPU → allowed MiB), per the ECS table AWS Batch uses:
# https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ecs/aws.sdk.kotlin.services.ecs.model/-task-definition/memory.html
_GIB = 1024
FARGATE_MEMORY: dict[int, frozenset[int]] = {
    250: frozenset((512, 1024, 2048)),
    500: frozenset(range(1 * _GIB, 4 * _GIB + 1, _GIB)),
    1000: frozenset(range(2 * _GIB, 8 * _GIB + 1, _GIB)),
    2000: frozenset(range(4 * _GIB, 16 * _GIB + 1, _GIB)),
    4000: frozenset(range(8 * _GIB, 30 * _GIB + 1, _GIB)),
    8000: frozenset(range(16 * _GIB, 60 * _GIB + 1, 4 * _GIB)),
    16000: frozenset(range(32 * _GIB, 120 * _GIB + 1, 8 * _GIB)),
}


def check_resource_name(value: Any, what: str) -> str:
    """Compute environment, job queue and job definition names: up to 128 letters, digits, - and _."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        # Observed AWS wording for a name that fails the pattern.
        raise ClientException(f"{what} name {value!r} is not supported pattern[a-zA-Z_0-9-]{{1,128}}")
    return value


def check_job_name(value: Any) -> str:
    """Up to 128 letters, digits, hyphens and underscores (submit_job.html); first-char rule ND."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ClientException("Job name should match valid pattern")  # observed AWS message
    return value


def check_environment(environment: Iterable[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    """Names may not start with AWS_BATCH_ (job_env_vars.html: a protected prefix)."""
    pairs = []
    for item in environment or ():
        name = item.get("name")
        if not name:
            raise ClientException("Environment variable name can't be empty")
        if name.startswith(RESERVED_ENV_PREFIX):
            raise ClientException(
                f"Environment variable {name} isn't allowed: the {RESERVED_ENV_PREFIX} prefix is reserved for AWS Batch"
            )
        pairs.append((name, str(item.get("value", ""))))
    return tuple(pairs)


def check_command(command: Any) -> tuple[str, ...] | None:
    if command is None:
        return None
    if any(not isinstance(part, str) or part == "" for part in command):
        raise ClientException("Command cannot be empty")  # observed AWS message
    return tuple(command)


def check_timeout(timeout: dict[str, Any] | None) -> int | None:
    """attemptDurationSeconds must be at least 60; there is no maximum (job_timeouts.html)."""
    if not timeout or timeout.get("attemptDurationSeconds") is None:
        return None
    seconds = timeout["attemptDurationSeconds"]
    if not isinstance(seconds, int) or seconds < MIN_TIMEOUT_SECONDS:
        raise ClientException(
            f"timeout.attemptDurationSeconds must be at least {MIN_TIMEOUT_SECONDS} seconds, got {seconds}"
        )
    return seconds


def check_array_size(array_properties: dict[str, Any] | None) -> int | None:
    """Array size 2..10,000 (array_jobs.html)."""
    if not array_properties or array_properties.get("size") is None:
        return None
    size = array_properties["size"]
    if not isinstance(size, int) or not MIN_ARRAY_SIZE <= size <= MAX_ARRAY_SIZE:
        raise ClientException(f"Array size must be between {MIN_ARRAY_SIZE} and {MAX_ARRAY_SIZE}, got {size}")
    return size


def check_reason(reason: Any) -> str:
    """CancelJob/TerminateJob `reason` is required and at most 1,024 characters."""
    if not isinstance(reason, str) or not reason:
        raise ClientException("reason is required")
    if len(reason) > MAX_REASON:
        raise ClientException(f"reason can be at most {MAX_REASON} characters")
    return reason


def resolve_resources(
    requirements: list[dict[str, Any]], legacy_vcpus: Any, legacy_memory: Any, *, fargate: bool
) -> Resources:
    """vCPUs (as thousandths) and MiB from resourceRequirements, falling back to the legacy fields."""
    values: dict[str, str] = {}
    for item in requirements:
        kind = item.get("type")
        if kind not in ("VCPU", "MEMORY", "GPU"):
            raise ClientException(f"Unsupported resource requirement type {kind!r}")
        values[kind] = str(item.get("value", ""))
    if fargate and (legacy_vcpus is not None or legacy_memory is not None):
        # Observed AWS message (redun#95) for the deprecated fields on Fargate.
        raise ClientException("vcpus is not applicable for Fargate. Use resource requirements instead.")
    vcpu_text = values.get("VCPU", None if legacy_vcpus is None else str(legacy_vcpus))
    memory_text = values.get("MEMORY", None if legacy_memory is None else str(legacy_memory))
    if vcpu_text is None:
        raise ClientException("vCPU is not provided.")  # observed AWS message
    if memory_text is None:
        raise ClientException("Memory is not provided.")
    vcpu_milli = _vcpu_milli(vcpu_text)
    memory = _positive_int(memory_text, "MEMORY")
    gpus = _positive_int(values["GPU"], "GPU") if "GPU" in values else 0
    if fargate:
        if gpus:
            raise ClientException("GPU resource requirements aren't supported on Fargate resources")
        if memory not in FARGATE_MEMORY.get(vcpu_milli, ()):
            # Observed AWS message (Netflix/metaflow#749).
            raise ClientException(
                f"Fargate resource requirements ({vcpu_milli / MILLI:.2f} vCPU, {memory} MiB) not valid."
            )
    else:
        if vcpu_milli % MILLI:
            raise ClientException("vCPU value for jobs on EC2 resources must be a whole number of vCPUs")
        if memory < 4:
            raise ClientException("Memory must be at least 4 MiB for jobs on EC2 resources")
    return Resources(vcpu_milli=vcpu_milli, memory_mib=memory, gpus=gpus)


def _vcpu_milli(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ClientException(f"Invalid VCPU value {text!r}") from None
    milli = value * MILLI
    if value <= 0 or milli != milli.to_integral_value():
        raise ClientException(f"Invalid VCPU value {text!r}")
    return int(milli)


def _positive_int(text: str, kind: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ClientException(f"Invalid {kind} value {text!r}") from None
    if value <= 0:
        raise ClientException(f"Invalid {kind} value {text!r}")
    return value
