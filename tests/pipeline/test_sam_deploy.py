"""The production deploy commands against the local cloud: README's `sam build` / `sam deploy` lines
with the real SAM CLI and AWS CLI, and `aws cloudformation deploy` on a small template.

The stacks go through the local CloudFormation (sluice/local/cloudformation), so what they create
runs on the local engines: a CSV dropped in the SAM-deployed stack's input bucket must run through
its own trigger, state machine and Batch jobs to SUCCEEDED.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from sluice import sampledata
from sluice.stack import load_outputs
from tests.helpers import ROOT
from tests.pipeline.helpers import Pipeline

pytestmark = [pytest.mark.e2e]

SAM_CLI = ROOT / ".tools" / "sam" / "bin" / "sam"
AWS_CLI = ROOT / ".tools" / "awscli" / "bin" / "aws"
# `sam build` needs the Lambda runtime's Python (python3.13): pyenv's, as the Makefile's build target.
PY313_BIN = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions" / "3.13.0" / "bin"
SECTION = "### Deploying into the local cloud with `sam deploy`"


def readme_sam_lines() -> list[str]:
    """The command lines of README's `sam deploy` section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README's sam deploy section has no sh block"
    return [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def cli_environment(pipeline: Pipeline) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **pipeline.cloud.environment,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0.5",
        "PATH": f"{PY313_BIN}:{AWS_CLI.parent}:{os.environ['PATH']}",
    }


def run_script(lines: list[str], env: dict[str, str], data_dir: Path) -> str:
    """Run README lines in one bash, as a person would: build and deploy from the checkout, the
    upload from where data.csv is. `make build` skips remaking the venv and tools (-o): a test
    must not reinstall them; the build recipe itself is what runs."""
    script = ["set -euo pipefail"]
    for line in lines:
        where = data_dir if line.startswith("aws s3 cp") else ROOT
        if line.startswith("make build"):
            line = line.replace("make build", "make -o venv -o tools build", 1)
        script.append(f"cd {where} && {line}")
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)], env=env, capture_output=True, text=True, timeout=900
    )
    output = re.sub(r"\n\s*Uploading to [^\n]*", "", result.stdout + result.stderr)
    assert result.returncode == 0, output[-6000:]
    return output


def test_readme_section_shows_build_deploy_upload_and_delete() -> None:
    lines = readme_sam_lines()
    assert lines[0].startswith("make build")
    assert any(line.startswith(".tools/sam/bin/sam deploy") for line in lines)
    assert lines[-1].startswith(".tools/sam/bin/sam delete")


@pytest.mark.timeout(1200)
def test_sam_build_and_deploy_run_a_file_through_the_deployed_stack(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    assert SAM_CLI.is_file() and AWS_CLI.is_file(), "SAM CLI and AWS CLI are installed by `make tools`"
    assert (PY313_BIN / "python3.13").is_file(), "sam build needs python3.13 (pyenv), as `make build` does"
    sampledata.generate(str(tmp_path / "data.csv"), rows=2_000, seed=5)
    env = cli_environment(pipeline)
    lines = readme_sam_lines()
    upload = next(i for i, line in enumerate(lines) if line.startswith("aws s3 cp"))

    output = run_script(lines[: upload + 1], env, tmp_path)
    assert "Successfully created/updated stack - sluice-sam" in output

    cloudformation = pipeline.cloud.client("cloudformation")
    [stack] = cloudformation.describe_stacks(StackName="sluice-sam")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {"ShardTargetMb": "2"}.items() <= {
        p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]
    }.items()
    assert set(stack["Capabilities"]) == {"CAPABILITY_IAM"}
    # --resolve-s3 (samconfig.toml) made SAM's managed artifact stack here too.
    [managed] = cloudformation.describe_stacks(StackName="aws-sam-cli-managed-default")["Stacks"]
    assert managed["StackStatus"] == "CREATE_COMPLETE"

    deployed = Pipeline(
        cloud=pipeline.cloud,
        outputs=load_outputs(cloudformation, "sluice-sam"),
        clients=pipeline.clients,
    )
    assert deployed.outputs.input_bucket != pipeline.outputs.input_bucket
    # The function runs the zip sam package uploaded, fetched from the local S3.
    functions = cloudformation.describe_stack_resource(
        StackName="sluice-sam", LogicalResourceId="TriggerFunction"
    )
    code = pipeline.cloud.client("lambda").get_function(
        FunctionName=functions["StackResourceDetail"]["PhysicalResourceId"]
    )
    assert code["Configuration"]["Runtime"] == "python3.13"

    execution = deployed.wait_finished(
        deployed.wait_execution_for("incoming/data.csv", timeout=60)["executionArn"], timeout=300
    )
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert execution["stateMachineArn"] == deployed.outputs.state_machine_arn

    run_script(lines[upload + 1 :], env, tmp_path)
    summaries = cloudformation.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in summaries if s["StackName"] == "sluice-sam"] == ["DELETE_COMPLETE"]
    # DeletionPolicy: Retain keeps the input bucket (DELETE_SKIPPED, as on AWS); the work bucket goes.
    names = {b["Name"] for b in pipeline.cloud.client("s3").list_buckets()["Buckets"]}
    assert deployed.outputs.input_bucket in names
    assert deployed.outputs.values["WorkBucketName"] not in names
    events = cloudformation.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
    assert ("InputBucket", "DELETE_SKIPPED") in {
        (e["LogicalResourceId"], e["ResourceStatus"]) for e in events
    }
    # The stack `local up` deployed is untouched.
    assert load_outputs(cloudformation, "sluice").input_bucket == pipeline.outputs.input_bucket


SMALL_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
Resources:
  Notes:
    Type: AWS::S3::Bucket
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Ref Greeting
Outputs:
  NotesBucket:
    Value: !Ref Notes
  AlertsTopic:
    Description: where alerts go
    Value: !Ref Alerts
"""


@pytest.mark.timeout(300)
def test_aws_cloudformation_deploy_creates_updates_and_deletes(pipeline: Pipeline, tmp_path: Path) -> None:
    assert AWS_CLI.is_file(), "the AWS CLI is installed by `make tools`"
    template = tmp_path / "small.yaml"
    template.write_text(SMALL_TEMPLATE)
    env = cli_environment(pipeline)

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AWS_CLI), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
        )

    deploy = ["cloudformation", "deploy", "--template-file", str(template), "--stack-name", "cli-small"]
    created = aws(*deploy, "--parameter-overrides", "Greeting=hello")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Successfully created/updated stack - cli-small" in created.stdout

    cloudformation = pipeline.cloud.client("cloudformation")
    [stack] = cloudformation.describe_stacks(StackName="cli-small")["Stacks"]
    outputs = {o["OutputKey"]: o for o in stack["Outputs"]}
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs["AlertsTopic"]["Description"] == "where alerts go"
    topic = outputs["AlertsTopic"]["OutputValue"]
    attributes = pipeline.cloud.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["DisplayName"] == "hello"

    # The same template and parameters again: an empty change set ("didn't contain changes"), which
    # deploy reports, and fails on unless told not to (the AWS CLI v1 default).
    again = aws(*deploy, "--parameter-overrides", "Greeting=hello")
    assert again.returncode == 255
    assert "No changes to deploy. Stack cli-small is up to date" in again.stderr
    # The CLI names change sets by the second and leaves the FAILED one (on AWS too); clear it so a
    # deploy within the same second does not collide with it.
    failed = [
        c
        for c in cloudformation.list_change_sets(StackName="cli-small")["Summaries"]
        if c["Status"] == "FAILED"
    ]
    assert [c["StatusReason"] for c in failed] == [
        "The submitted information didn't contain changes. Submit different information to create a change set."
    ]
    cloudformation.delete_change_set(ChangeSetName=failed[0]["ChangeSetId"])
    accepted = aws(*deploy, "--parameter-overrides", "Greeting=hello", "--no-fail-on-empty-changeset")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr

    for summary in cloudformation.list_change_sets(StackName="cli-small")["Summaries"]:
        if summary["Status"] == "FAILED":
            cloudformation.delete_change_set(ChangeSetName=summary["ChangeSetId"])
    updated = aws(*deploy, "--parameter-overrides", "Greeting=bye")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    [stack] = cloudformation.describe_stacks(StackName="cli-small")["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    topic = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["AlertsTopic"]
    assert (
        pipeline.cloud.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"]
        == "bye"
    )

    deleted = aws("cloudformation", "delete-stack", "--stack-name", "cli-small")
    assert deleted.returncode == 0, deleted.stderr
    waited = aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", "cli-small")
    assert waited.returncode == 0, waited.stderr
    described = aws("cloudformation", "describe-stacks", "--stack-name", "cli-small")
    assert described.returncode == 255
    assert "Stack with id cli-small does not exist" in described.stderr
