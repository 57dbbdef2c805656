"""Every `aws ...` command README shows, run by the real AWS CLI (from PyPI) against the local cloud.

A wrong example (the shorthand `--metadata key='{json}'` the CLI cannot parse, a wrong bucket
variable) fails here instead of in a user's shell.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from sluice import sampledata
from tests.helpers import ROOT
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e]

AWS_CLI = ROOT / ".tools" / "awscli" / "bin" / "aws"


def readme_aws_commands() -> list[str]:
    """The `aws` commands of README's bash blocks, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.strip() for line in joined.splitlines() if line.strip().startswith("aws ")]
    return commands


def test_readme_shows_aws_cli_commands() -> None:
    commands = readme_aws_commands()
    assert any(c.startswith("aws s3 cp") and "--metadata" in c for c in commands), commands


@pytest.mark.timeout(240)
def test_every_readme_aws_command_works_against_the_local_cloud(pipeline: Pipeline, tmp_path: Path) -> None:
    assert AWS_CLI.is_file(), "the AWS CLI is installed by `make tools` (part of `make test`)"
    sampledata.generate(str(tmp_path / "sales.csv"), rows=500, seed=11)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **pipeline.cloud.environment,
        "INPUT_BUCKET": pipeline.outputs.input_bucket,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PATH": f"{AWS_CLI.parent}:{os.environ['PATH']}",
    }
    for command in readme_aws_commands():
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"

    # What the two uploads started: one run each, the second with the options from the metadata.
    plain = pipeline.wait_finished(pipeline.wait_execution_for("incoming/sales.csv")["executionArn"])
    assert plain["status"] == "SUCCEEDED", plain.get("cause")
    by_country = pipeline.wait_finished(
        pipeline.wait_execution_for("incoming/sales-by-country.csv")["executionArn"]
    )
    assert by_country["status"] == "SUCCEEDED", by_country.get("cause")
    assert json.loads(by_country["input"])["options"] == {
        "group_by": ["country"],
        "metrics": {"amount": ["sum", "mean"]},
    }
