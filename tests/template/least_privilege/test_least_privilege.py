"""Every permission the pipeline needs is in template.yaml, and local IAM notices when one is not.

For each Allow statement (and SAM policy template) a run uses, a copy of the template without it
is deployed on a fresh local cloud with IAM enforced and the pipeline is run: the run must fail
with an AccessDenied naming the principal, the action and the resource. An explicit Deny for one
needed action fails it the same way. A baseline run with the real template checks that the list
below is exactly what a run uses, so a new statement cannot go untested.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sluice import sampledata
from sluice.aws import Clients
from sluice.cli.localrun import LOCAL_PARAMETERS
from sluice.local.cloud import LocalCloud
from sluice.local.deploy.cfnyaml import load_template
from sluice.stack import DEFAULT_STACK, load_outputs
from tests.helpers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TEMPLATE = load_template(ROOT / "template.yaml")


@dataclass(frozen=True)
class Needed:
    """One statement the pipeline needs: where it is, who uses it, for what."""

    path: tuple[str | int, ...]  # into the template, down to the statement (or SAM policy template)
    role: str  # logical id of the role (or function, for SAM roles) that uses it
    action: str  # the action a run performs that only this statement allows
    resource: str  # a fragment of the resource ARN the denial names
    run: str = "good"  # good: a run succeeds; bad: ingest rejects the data (alerts); empty: the trigger rejects the upload

    @property
    def id(self) -> str:
        return f"{self.role}-{self.action}"


def _policies(logical_id: str) -> tuple[str | int, ...]:
    return ("Resources", logical_id, "Properties", "Policies")


JOB_DATA = (*_policies("JobRole"), 0, "PolicyDocument", "Statement")
STATE_MACHINE = (*_policies("PipelineStateMachine"), 0, "Statement")
KEY_POLICY = ("Resources", "AlertsKey", "Properties", "KeyPolicy", "Statement")
TOPIC_POLICY = ("Resources", "AlertsTopicPolicy", "Properties", "PolicyDocument", "Statement")

NOTIFY = (*_policies("NotifyFunction"), 1, "Statement")

NEEDED = [
    Needed((*_policies("TriggerFunction"), 0), "TriggerFunction", "states:StartExecution", ":stateMachine:"),
    Needed(
        (*_policies("TriggerFunction"), 3, "Statement", 0),
        "TriggerFunction",
        "s3:GetObjectVersion",
        "InputBucket",
    ),
    Needed((*JOB_DATA, 0), "JobRole", "s3:GetObjectVersion", "inputbucket"),
    Needed(
        (*JOB_DATA, 1), "JobRole", "s3:DeleteObject", "workbucket"
    ),  # ingest clears the run's old manifest
    Needed((*JOB_DATA, 2), "JobRole", "s3:PutObject", "outputbucket"),
    Needed((*JOB_DATA, 3), "JobRole", "s3:DeleteObject", "/_SUCCESS"),
    Needed((*JOB_DATA, 4), "JobRole", "s3:ListBucket", "workbucket"),
    Needed((*STATE_MACHINE, 0), "PipelineStateMachine", "batch:SubmitJob", ":job-definition/"),
    Needed((*STATE_MACHINE, 1), "PipelineStateMachine", "batch:DescribeJobs", "*"),
    Needed((*STATE_MACHINE, 4), "PipelineStateMachine", "s3:GetObject", "/manifest.json"),
    # A failed run: the notify function describes the failed job, reads its error line and
    # publishes one alert (SAM policy template + key use).
    Needed((*_policies("NotifyFunction"), 0), "NotifyFunction", "sns:Publish", "AlertsTopic", run="bad"),
    Needed((*NOTIFY, 0), "NotifyFunction", "batch:DescribeJobs", "*", run="bad"),
    Needed((*NOTIFY, 1), "NotifyFunction", "logs:GetLogEvents", ":log-stream:", run="bad"),
    Needed((*NOTIFY, 3), "NotifyFunction", "kms:GenerateDataKey", ":key/", run="bad"),
    # A rejected upload: the trigger puts a rejection event on the default bus (SAM policy template).
    Needed(
        (*_policies("TriggerFunction"), 2),
        "TriggerFunction",
        "events:PutEvents",
        "event-bus/default",
        run="empty",
    ),
]


def without(template: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    copied = copy.deepcopy(template)
    parent: Any = copied
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    # A policy whose only statement was removed would be malformed (IAM refuses an empty
    # Statement list): remove the whole inline policy instead.
    if path[-2:-1] == ("Statement",) and not parent:
        owner: Any = copied
        for step in path[:-3]:
            owner = owner[step]
        del owner[path[-3]]
    return copied


def get(template: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = template
    for step in path:
        node = node[step]
    return node


@dataclass
class Run:
    cloud: LocalCloud
    status: str
    usage: list[dict[str, Any]]


@pytest.fixture
def run_pipeline(tmp_path: Path) -> Iterator[Callable[[dict[str, Any], str], Run]]:
    """Deploy a template on a fresh local cloud and run one upload through it."""
    clouds: list[LocalCloud] = []
    good = tmp_path / "good.csv"
    sampledata.generate(good, rows=2000, seed=7)
    bad = tmp_path / "bad.csv"
    bad.write_text("this,is\nnot,the,sample,schema\n")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    sources = {"good": good, "bad": bad, "empty": empty}

    def run(template: dict[str, Any], kind: str) -> Run:
        path = tmp_path / f"template-{len(clouds)}.json"
        path.write_text(json.dumps(template))
        state = tmp_path / f"state-{len(clouds)}"
        cloud = LocalCloud(project_root=ROOT, state_dir=state)
        clouds.append(cloud)
        cloud.start()
        cloud.deploy(path, LOCAL_PARAMETERS)
        outputs = load_outputs(cloud.client("cloudformation"), DEFAULT_STACK)
        clients = Clients(endpoint_url=cloud.endpoint_url)
        source = sources[kind]
        clients.s3.upload_file(str(source), outputs.input_bucket, f"incoming/{source.name}")
        status = "NONE"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            executions = clients.sfn.list_executions(stateMachineArn=outputs.state_machine_arn)["executions"]
            if executions and executions[0]["status"] != "RUNNING":
                status = executions[0]["status"]
                break
            if not executions and (
                cloud.iam.audit.denials or (kind == "empty" and cloud.notifications(settle=0))
            ):
                break  # the trigger was refused, or rejected the upload: no execution will start
            time.sleep(0.2)
        cloud.settle(10)
        usage_path = state / "iam-usage.jsonl"
        usage = (
            [json.loads(line) for line in usage_path.read_text().splitlines()] if usage_path.exists() else []
        )
        return Run(cloud, status, usage)

    yield run
    for cloud in clouds:
        cloud.stop()


def test_the_list_is_what_a_run_uses(run_pipeline: Callable[[dict[str, Any], str], Run]) -> None:
    """A succeeding, a failing and a rejected run with the real template: every template statement
    they use is in NEEDED, and every NEEDED statement is used (so the cases below test real needs)."""
    used: set[tuple[str, str]] = set()  # (statement Sid or policy, action)
    for kind, status in (("good", "SUCCEEDED"), ("bad", "FAILED"), ("empty", "NONE")):
        run = run_pipeline(TEMPLATE, kind)
        assert run.status == status
        assert run.cloud.iam.audit.denials == []
        for record in run.usage:
            if "sluice-local-admin" not in record["principal"]:
                used.add((record["sid"] or record["policy"].rsplit(" ", 1)[-1], record["action"]))
        run.cloud.stop()
    sids = {
        get(TEMPLATE, case.path).get("Sid") for case in NEEDED if isinstance(get(TEMPLATE, case.path), dict)
    }
    used_sids = {sid for sid, _ in used}
    template_sids = {
        statement.get("Sid")
        for path in (JOB_DATA, STATE_MACHINE, KEY_POLICY, TOPIC_POLICY, NOTIFY)
        for statement in get(TEMPLATE, path)
    } | {"ReadUploadedObjectMetadata", "EncryptAlerts"}
    missing = (used_sids & template_sids) - sids - {"AllowAccountAdministration"}
    assert not missing, f"statements a run uses that no case removes: {missing}"
    for case in NEEDED:
        statement = get(TEMPLATE, case.path)
        sid = statement.get("Sid") if isinstance(statement, dict) else None
        if sid:
            assert sid in used_sids, f"{sid} is listed as needed but no run used it"
    assert any(action == "states:StartExecution" for _, action in used)  # the SAM policy template


@pytest.mark.parametrize("case", NEEDED, ids=lambda case: case.id)
def test_removing_a_needed_statement_fails_the_run_with_access_denied(
    run_pipeline: Callable[[dict[str, Any], str], Run], case: Needed
) -> None:
    run = run_pipeline(without(TEMPLATE, case.path), case.run)
    denials = [d for d in run.cloud.iam.audit.denials if d["action"].lower() == case.action.lower()]
    assert denials, f"no {case.action} denial; denials: {run.cloud.iam.audit.denials}"
    denial = denials[0]
    principal = "events.amazonaws.com" if case.role == "events" else f"/sluice-{case.role}"
    assert principal in denial["principal"]
    assert case.resource.lower() in denial["resource"].lower()
    assert f"is not authorized to perform: {denial['action']}" in denial["message"]
    assert denial["resource"] in denial["message"] or denial["resource"] == "*"
    if case.run == "good":
        assert run.status != "SUCCEEDED"


def test_an_explicit_deny_for_a_needed_action_fails_the_run_the_same_way(
    run_pipeline: Callable[[dict[str, Any], str], Run],
) -> None:
    template = copy.deepcopy(TEMPLATE)
    get(template, JOB_DATA).append(
        {
            "Sid": "NoWorkWrites",
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "${WorkBucket.Arn}/work/*"},
        }
    )
    run = run_pipeline(template, "good")
    assert run.status == "FAILED"
    denial = next(d for d in run.cloud.iam.audit.denials if d["action"] == "s3:PutObject")
    assert "/sluice-JobRole" in denial["principal"]
    assert "workbucket" in denial["resource"]
    assert denial["message"].endswith("with an explicit deny in an identity-based policy")
