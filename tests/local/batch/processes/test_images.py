"""Job images resolved from the stack's ECR repositories and their Dockerfiles, run as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.local.batch.images import ImageResolver
from sluice.local.deploy import DeployedStack

PROJECT = Path(__file__).parent / "fixtures"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sluice-hello:latest"


def stack_with_repository(metadata: dict) -> DeployedStack:
    return DeployedStack(
        stack_name="sluice",
        region="us-east-1",
        account_id="123456789012",
        resources={"HelloRepository": "sluice-hello", "Other": "x"},
        resource_types={"HelloRepository": "AWS::ECR::Repository", "Other": "AWS::SQS::Queue"},
        metadata={"HelloRepository": metadata},
    )


@pytest.fixture
def resolver(tmp_path: Path):
    stack = stack_with_repository({"DockerContext": "containers", "Dockerfile": "hello/Dockerfile"})
    resolver = ImageResolver(stack, PROJECT, staging_root=tmp_path / "staging")
    yield resolver
    resolver.close()


def run(image, command: list[str] | None = None) -> dict:
    env = {"PATH": os.environ["PATH"], **image.env}
    argv = image.entrypoint + (command if command is not None else image.cmd)
    done = subprocess.run(argv, cwd=image.workdir, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_dockerfile_becomes_a_local_image(resolver, tmp_path):
    image = resolver(IMAGE)
    assert image is not None
    staging = tmp_path / "staging" / "sluice-hello"
    assert image.workdir == str(staging / "app")
    assert image.entrypoint == [sys.executable, "-m", "hello_job"]  # python -> the venv's interpreter
    assert image.cmd == ["--name", "world"]
    assert image.env["JOB_MODE"] == "local"
    assert image.env["APP_HOME"] == str(staging / "app")  # image paths mapped to the staging dir
    assert image.env["PYTHONUNBUFFERED"] == "1"
    assert image.env["PYTHONPATH"] == str(staging / "app")
    # COPY instructions mirrored as symlinks into the Docker context.
    context = PROJECT / "containers"
    assert (staging / "app" / "jobkit").resolve() == (context / "jobkit").resolve()
    assert (staging / "app" / "hello_job").resolve() == (context / "hello" / "hello_job").resolve()
    assert (staging / "app" / "requirements.txt").resolve() == (
        context / "hello" / "requirements.txt"
    ).resolve()


def test_image_runs_as_a_process(resolver):
    image = resolver(IMAGE)
    out = run(image)
    assert out["greeting"] == "hello world"
    assert Path(out["cwd"]) == Path(image.workdir)
    assert out["mode"] == "local" and out["requirements_present"] is True
    # A job's command replaces CMD, as in Docker.
    assert run(image, ["--name", "batch"])["greeting"] == "hello batch"


def test_unresolvable_images(resolver, tmp_path):
    assert resolver("python:3.13-slim") is None
    assert resolver("123456789012.dkr.ecr.us-east-1.amazonaws.com/not-in-stack:1") is None
    without_context = ImageResolver(stack_with_repository({}), PROJECT, staging_root=tmp_path / "other")
    assert without_context(IMAGE) is None


def test_shell_form_and_multistage(tmp_path):
    context = tmp_path / "ctx"
    (context / "src").mkdir(parents=True)
    (context / "src" / "tool.py").write_text("import sys; print('tool', *sys.argv[1:])\n")
    (context / "Dockerfile").write_text(
        "FROM python:3.13 AS build\n"
        "WORKDIR /build\n"
        "COPY src/ ./src/\n"
        "FROM python:3.13-slim\n"
        "COPY --from=build /build/src /opt/tool\n"
        "WORKDIR /opt/tool\n"
        "ENV PATH=/opt/tool:$PATH\n"
        "CMD python tool.py from-shell\n"
    )
    resolver = ImageResolver(None, tmp_path, staging_root=tmp_path / "staging")
    image = resolver.build(context / "Dockerfile", context, name="tool")
    assert image.entrypoint == []
    assert image.cmd[:2] == ["/bin/sh", "-c"] and sys.executable in image.cmd[2]
    assert image.env["PATH"].split(":")[0] == str(tmp_path / "staging" / "tool" / "opt" / "tool")
    assert str(Path(sys.executable).parent) in image.env["PATH"].split(":")
    done = subprocess.run(
        image.cmd, cwd=image.workdir, env=image.env, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == "tool from-shell", done.stderr
