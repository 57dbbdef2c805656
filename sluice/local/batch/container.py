"""What an attempt runs: argv, environment and working directory, built like a container's.

Docker semantics: the job's command replaces the image's CMD and is appended to its
ENTRYPOINT; without a command the CMD runs. Environment, lowest precedence first: a minimal
host baseline (never the engine's whole environment), the image's ENV, the job definition's
environment, the SubmitJob overrides, then the variables Batch sets
(https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html) and AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sluice.local.batch.executor import LaunchError, LaunchSpec
from sluice.local.batch.models import Attempt, Job
from sluice.local.batch.multinode import node_environment

_BASELINE = ("PATH", "HOME", "LANG")
_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True)
class LocalImage:
    """How to run a job image as a host process (resolved by the local cloud from its Dockerfile)."""

    entrypoint: list[str] = field(default_factory=list)  # ENTRYPOINT (exec form), may be empty
    cmd: list[str] = field(default_factory=list)  # CMD, used when the job gives no command
    env: dict[str, str] = field(default_factory=dict)  # ENV
    workdir: str = "."  # host directory to run in


def baseline_environment(region: str, endpoint_url: str | None) -> dict[str, str]:
    """The host part of every job's environment, computed once per engine."""
    env = {name: os.environ[name] for name in _BASELINE if name in os.environ}
    env.setdefault("PATH", os.defpath)
    for name in _CREDENTIALS:
        if name in os.environ:
            env[name] = os.environ[name]
    if endpoint_url is not None and "AWS_ACCESS_KEY_ID" not in env:
        # Local endpoints accept any credentials; jobs use plain boto3 clients, which need some.
        env["AWS_ACCESS_KEY_ID"] = "testing"
        env["AWS_SECRET_ACCESS_KEY"] = "testing"
    env["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", region)
    env["AWS_REGION"] = os.environ.get("AWS_REGION", env["AWS_DEFAULT_REGION"])
    return env


# (role ARN, session name) -> the session's credential variables; raises if it cannot be assumed.
RoleCredentials = Callable[[str, str], dict[str, str]]


def build_launch(
    job: Job,
    attempt: Attempt,
    image: LocalImage | None,
    baseline: dict[str, str],
    endpoint_url: str | None,
    role_credentials: RoleCredentials | None = None,
) -> LaunchSpec:
    spec = job.spec
    env = dict(baseline)
    if role_credentials is not None:
        # The container's credentials are its job role's, and only those: with no jobRoleArn a
        # Fargate task has none (https://docs.aws.amazon.com/batch/latest/userguide/job-role.html).
        for name in _CREDENTIALS:
            env.pop(name, None)
        role_arn = spec.container.get("jobRoleArn")
        if role_arn:
            env.update(role_credentials(str(role_arn), _session_name(job.job_id)))
    if image is not None:
        env.update(image.env)
    env.update(spec.environment)
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt.number)
    env["AWS_BATCH_JQ_NAME"] = spec.queue.name
    env["AWS_BATCH_CE_NAME"] = attempt.ce.name
    if job.index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.index)
        env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(spec.array_size)
    if job.node_index is not None:
        env.update(node_environment(job))
    if endpoint_url is not None:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    command = list(spec.command) if spec.command is not None else list(image.cmd if image else [])
    argv = (list(image.entrypoint) if image else []) + command
    if not argv:
        raise LaunchError("no command: the job definition, the overrides and the image give none")
    return LaunchSpec(argv=tuple(argv), env=env, cwd=image.workdir if image else None)


def _session_name(job_id: str) -> str:
    """A role session name from a job ID: array (`:`) and node (`#`) suffixes aren't allowed in one."""
    return job_id.replace(":", "-").replace("#", "-")
