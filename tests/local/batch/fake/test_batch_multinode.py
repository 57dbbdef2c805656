"""Multi-node parallel jobs (multinode.py): definitions, node overrides, node IDs and shapes,
gang placement, and how the main node decides the job, as AWS documents them
(https://docs.aws.amazon.com/batch/latest/userguide/multi-node-parallel-jobs.html,
https://docs.aws.amazon.com/batch/latest/userguide/job-lifecycle.html)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.local.batch.fake.helpers import assert_shape, output_shape
from tests.local.batch.fake.test_batch_api import assert_client_exception

pytestmark = pytest.mark.timeout(30)

IMAGE = "sluice/mnp"


def node_container(command: tuple[str, ...] = ("run",), vcpus: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "image": IMAGE,
        "command": list(command),
        "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": "512"}],
        **extra,
    }


def register(
    batch,
    *,
    name: str = "mnp",
    num_nodes: int = 3,
    main_node: int = 0,
    ranges: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return batch.client.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        nodeProperties={
            "numNodes": num_nodes,
            "mainNode": main_node,
            "nodeRangeProperties": ranges or [{"targetNodes": "0:", "container": node_container()}],
        },
        **extra,
    )


def ec2_queue(batch, *, max_vcpus: int = 16, kind: str = "EC2", name: str = "q", ce: str = "ce") -> None:
    batch.environment(ce, kind=kind, max_vcpus=max_vcpus)
    batch.queue(name, environments=(ce,))


def setup(batch, **definition: Any) -> None:
    ec2_queue(batch)
    register(batch, **definition)


def submit(batch, **extra: Any) -> str:
    return batch.submit(definition="mnp", **extra)


def describe_checked(batch, *job_ids: str) -> list[dict[str, Any]]:
    raw = batch.client.describe_jobs(jobs=list(job_ids))
    raw.pop("ResponseMetadata")
    assert_shape(raw, output_shape("DescribeJobs"))
    return list(raw["jobs"])


def start_all(batch, job: str, num_nodes: int = 3, attempt: int = 1) -> list[Any]:
    """The nodes' processes of an attempt: the main node first, the children once it runs."""
    return [batch.process(f"{job}#{index}", attempt) for index in range(num_nodes)]


# -- RegisterJobDefinition -------------------------------------------------------------------------------


def test_definition_validation(batch):
    two = [{"targetNodes": "0:1", "container": node_container()}]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("Fargate", {"platformCapabilities": ["FARGATE"]}),
        ("mainNode must be fewer than the number of nodes", {"main_node": 3}),
        ("numNodes must be an integer between 1 and 1000", {"num_nodes": 1001}),
        ("numNodes must be an integer between 1 and 1000", {"num_nodes": 0}),
        ("must account for all nodes (0:2); node 2", {"ranges": two}),
        ("outside the job's nodes 0:2", {"ranges": [{"targetNodes": "0:5", "container": node_container()}]}),
        ("must be a node range", {"ranges": [{"targetNodes": "all", "container": node_container()}]}),
        ("ends before it starts", {"ranges": [{"targetNodes": "2:1", "container": node_container()}]}),
        (
            "overlap without nesting",
            {
                "ranges": [
                    {"targetNodes": "0:1", "container": node_container()},
                    {"targetNodes": "1:2", "container": node_container()},
                ]
            },
        ),
        (
            "name the same nodes",
            {
                "ranges": [
                    {"targetNodes": "0:", "container": node_container()},
                    {"targetNodes": "0:2", "container": node_container()},
                ]
            },
        ),
        (
            "at most 5 node ranges",
            {
                "ranges": [{"targetNodes": f"{i}:{i}", "container": node_container()} for i in range(6)],
                "num_nodes": 6,
            },
        ),
        ("container must be specified", {"ranges": [{"targetNodes": ":"}]}),
        (
            "image must be specified",
            {"ranges": [{"targetNodes": ":", "container": {"vcpus": 1, "memory": 512}}]},
        ),
        (
            "whole number of vCPUs",
            {"ranges": [{"targetNodes": ":", "container": node_container(vcpus="0.5")}]},
        ),
        (
            "same instance type",
            {
                "ranges": [
                    {"targetNodes": "0:", "container": node_container(instanceType="c5.large")},
                    {"targetNodes": "1:1", "container": node_container(instanceType="c5.xlarge")},
                ]
            },
        ),
        ("containerProperties can't be specified", {"containerProperties": node_container()}),
    ]
    for message, arguments in cases:
        assert_client_exception(lambda **kw: register(batch, **kw), message, **arguments)
    assert_client_exception(
        batch.client.register_job_definition,
        "nodeProperties can only be specified for a multinode",
        jobDefinitionName="c",
        type="container",
        containerProperties=node_container(),
        nodeProperties={"numNodes": 1, "mainNode": 0, "nodeRangeProperties": []},
    )


def test_nested_ranges_are_described(batch):
    ranges = [
        {"targetNodes": "0:3", "container": node_container(("all",))},
        {"targetNodes": "1:1", "container": node_container(("one",))},  # overrides 0:3 for node 1
        {"targetNodes": ":0", "container": node_container(("main",))},
    ]
    assert register(batch, num_nodes=4, ranges=ranges)["revision"] == 1
    raw = batch.client.describe_job_definitions(jobDefinitionName="mnp")
    raw.pop("ResponseMetadata")
    assert_shape(raw, output_shape("DescribeJobDefinitions"))
    [definition] = raw["jobDefinitions"]
    assert definition["type"] == "multinode"
    assert "containerProperties" not in definition
    properties = definition["nodeProperties"]
    assert (properties["numNodes"], properties["mainNode"]) == (4, 0)
    assert [item["targetNodes"] for item in properties["nodeRangeProperties"]] == ["0:3", "1:1", ":0"]
    assert properties["nodeRangeProperties"][1]["container"]["environment"] == []  # as AWS fills containers

    ec2_queue(batch)
    job = submit(batch)
    commands = {index: batch.process(f"{job}#{index}").spec.argv for index in range(4)}
    assert commands == {0: ("main",), 1: ("one",), 2: ("all",), 3: ("all",)}


# -- SubmitJob ------------------------------------------------------------------------------------------


def test_submit_validation(batch):
    ranges = [
        {"targetNodes": "0:0", "container": node_container()},
        {"targetNodes": "1:", "container": node_container()},
    ]
    setup(batch, ranges=ranges)
    batch.definition("single", platform="EC2")
    # Observed AWS message (https://github.com/aws/aws-parallelcluster/pull/964).
    assert_client_exception(
        submit,
        "NodeOverride targets should match job definition. Non matching targets - 0:1",
        batch=batch,
        nodeOverrides={"nodePropertyOverrides": [{"targetNodes": "0:1", "containerOverrides": {}}]},
    )
    assert_client_exception(submit, "arrayProperties can't be used", batch=batch, arrayProperties={"size": 2})
    assert_client_exception(submit, "Use nodeOverrides", batch=batch, containerOverrides={"command": ["x"]})
    assert_client_exception(
        batch.submit,
        "nodeOverrides can only be used with multi-node",
        definition="single",
        nodeOverrides={"numNodes": 2},
    )
    # The conditions of API_NodeOverrides.numNodes: ranges' lower boundaries and the main node
    # index must be fewer than the nodes.
    assert_client_exception(submit, "lower boundary", batch=batch, nodeOverrides={"numNodes": 1})
    register(batch, name="late", main_node=2)
    assert_client_exception(
        batch.submit, "main node index must be fewer", definition="late", nodeOverrides={"numNodes": 2}
    )
    assert_client_exception(
        submit,
        "AWS_BATCH_ prefix is reserved",
        batch=batch,
        nodeOverrides={
            "nodePropertyOverrides": [
                {
                    "targetNodes": "1:",
                    "containerOverrides": {"environment": [{"name": "AWS_BATCH_X", "value": "1"}]},
                }
            ]
        },
    )
    # numNodes can't be overridden without an open upper boundary (API_NodeOverrides).
    register(
        batch,
        name="closed",
        num_nodes=2,
        ranges=[{"targetNodes": "0:1", "container": node_container()}],
    )
    assert_client_exception(
        batch.submit, "open upper boundary", definition="closed", nodeOverrides={"numNodes": 3}
    )


def test_node_overrides(batch):
    ranges = [
        {"targetNodes": "0:0", "container": node_container(("main",))},
        {"targetNodes": "1:", "container": node_container(("child",))},
    ]
    setup(batch, num_nodes=2, ranges=ranges)
    job = submit(
        batch,
        nodeOverrides={
            "numNodes": 4,
            "nodePropertyOverrides": [
                {
                    "targetNodes": "1:",
                    "containerOverrides": {
                        "command": ["worker", "Ref::size"],
                        "environment": [{"name": "ROLE", "value": "worker"}],
                    },
                }
            ],
        },
        parameters={"size": "big"},
    )
    processes = start_all(batch, job, 4)
    assert processes[0].spec.argv == ("main",)
    assert [p.spec.argv for p in processes[1:]] == [("worker", "big")] * 3
    assert all(p.spec.env["AWS_BATCH_JOB_NUM_NODES"] == "4" for p in processes)
    assert processes[2].spec.env["ROLE"] == "worker" and "ROLE" not in processes[0].spec.env
    [parent] = describe_checked(batch, job)
    properties = parent["nodeProperties"]
    assert properties["numNodes"] == 4
    assert properties["nodeRangeProperties"][1]["container"]["command"] == ["worker", "big"]


# -- IDs, shapes, environment ---------------------------------------------------------------------------


def test_ids_shapes_and_environment(batch):
    setup(batch, main_node=1)
    job = submit(batch)
    main = batch.process(f"{job}#1")
    children = [batch.process(f"{job}#{index}") for index in (0, 2)]
    # The main node is launched first; the children once it runs.
    assert batch.executor.launched[0] is main
    batch.wait(f"{job}#2", "RUNNING")  # events come in order: every earlier one is in too
    order = [(d["jobId"], d["status"]) for d in batch.events.details()]
    assert order.index((f"{job}#1", "RUNNING")) < order.index((f"{job}#0", "STARTING"))
    assert order.index((job, "RUNNING")) < order.index((f"{job}#2", "STARTING"))
    env = main.spec.env
    assert env["AWS_BATCH_JOB_ID"] == f"{job}#1"
    assert (env["AWS_BATCH_JOB_NODE_INDEX"], env["AWS_BATCH_JOB_NUM_NODES"]) == ("1", "3")
    assert env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "1"
    assert "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" not in env  # "isn't present on the main node"
    for child in children:
        assert child.spec.env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == "127.0.0.1"
        assert child.spec.env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "1"
        assert child.spec.env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    batch.wait(f"{job}#2", "RUNNING")

    parent, node0, node1 = describe_checked(batch, job, f"{job}#0", f"{job}#1")
    assert parent["status"] == "RUNNING"
    assert "container" not in parent and "nodeDetails" not in parent
    assert parent["nodeProperties"]["numNodes"] == 3
    assert parent["nodeProperties"]["mainNode"] == 1
    assert node0["jobId"] == f"{job}#0" and node0["jobArn"].endswith(f":job/{job}#0")
    assert node0["nodeDetails"] == {"nodeIndex": 0, "isMainNode": False}
    assert node1["nodeDetails"] == {"nodeIndex": 1, "isMainNode": True}
    assert node1["container"]["networkInterfaces"] == [{"privateIpv4Address": "127.0.0.1"}]
    assert "nodeProperties" not in node0
    assert batch.client.describe_jobs(jobs=[f"{job}#3", f"{job}:0"])["jobs"] == []

    raw = batch.client.list_jobs(multiNodeJobId=job)
    summaries = raw["jobSummaryList"]
    assert [s["jobId"] for s in summaries] == [f"{job}#{i}" for i in range(3)]
    assert summaries[1]["nodeProperties"] == {"isMainNode": True, "numNodes": 3, "nodeIndex": 1}
    [listed] = batch.client.list_jobs(jobQueue="q")["jobSummaryList"]  # nodes aren't queue jobs
    assert (listed["jobId"], listed["nodeProperties"]) == (job, {"numNodes": 3})

    for child in children:
        child.exit(0)
    batch.wait(f"{job}#0", "SUCCEEDED")
    assert batch.status_now(job) == "RUNNING"  # a child's exit doesn't end the job
    main.exit(0)
    detail = batch.wait(job, "SUCCEEDED")
    [parent, node1] = describe_checked(batch, job, f"{job}#1")
    assert parent["statusReason"] == "Essential container in task exited"
    [attempt] = parent["attempts"]  # the job's attempts are its main node's
    assert attempt["container"]["exitCode"] == 0
    assert attempt["container"]["taskArn"] == node1["container"]["taskArn"]
    assert (parent["startedAt"], parent["stoppedAt"]) == (node1["startedAt"], node1["stoppedAt"])
    assert detail["nodeProperties"]["numNodes"] == 3
    assert batch.events.statuses(job) == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    assert batch.events.statuses(f"{job}#0") == ["STARTING", "RUNNING", "SUCCEEDED"]


# -- outcomes -------------------------------------------------------------------------------------------


def test_main_node_exit_ends_the_job_and_stops_the_children(batch):
    setup(batch)
    job = submit(batch)
    main, child1, child2 = start_all(batch, job)
    batch.wait(f"{job}#2", "RUNNING")
    child1.exit(3)  # "If a child node dies, AWS Batch takes no action on the other nodes"
    assert batch.wait(f"{job}#1", "FAILED")["statusReason"] == "Essential container in task exited"
    assert batch.status_now(job) == "RUNNING" and child2.signals == [] and main.signals == []
    main.exit(5)
    detail = batch.wait(job, "FAILED")
    assert child2.signals == ["TERM"]
    assert detail["statusReason"] == "Essential container in task exited"
    assert detail["attempts"][0]["container"]["exitCode"] == 5
    [node2] = describe_checked(batch, f"{job}#2")
    assert (node2["status"], node2["statusReason"]) == ("FAILED", "Main node exited")
    assert node2["container"]["exitCode"] == 143


def test_main_node_success_decides_even_if_children_were_stopped(batch):
    setup(batch, num_nodes=2)
    job = submit(batch)
    main, child = start_all(batch, job, 2)
    batch.wait(f"{job}#1", "RUNNING")
    main.exit(0)
    assert batch.wait(job, "SUCCEEDED")["status"] == "SUCCEEDED"
    assert child.signals == ["TERM"]
    assert batch.status_now(f"{job}#1") == "FAILED"


def test_job_waits_for_stopping_children_before_it_ends(batch):
    batch.executor.ignore_term = True
    batch.engine.timeout_scale = 0.01  # the 30 s SIGKILL grace: 0.3 s
    setup(batch, num_nodes=2)
    job = submit(batch)
    main, child = start_all(batch, job, 2)
    batch.wait(f"{job}#1", "RUNNING")
    main.exit(0)
    batch.wait(f"{job}#1", "FAILED")
    assert child.signals == ["TERM", "KILL"]
    batch.wait(job, "SUCCEEDED")
    assert batch.events.statuses(f"{job}#1")[-1] == "FAILED"


def test_main_node_failure_retries_the_whole_job(batch):
    setup(batch, retryStrategy={"attempts": 2})
    job = submit(batch)
    main, child1, child2 = start_all(batch, job)
    batch.wait(f"{job}#2", "RUNNING")
    child1.exit(1)  # a child failure makes no retry
    batch.wait(f"{job}#1", "FAILED")
    main.exit(1)
    again = start_all(batch, job, attempt=2)  # every node gets a new attempt, same node IDs
    assert all(p.spec.env["AWS_BATCH_JOB_ATTEMPT"] == "2" for p in again)
    assert child2.signals == ["TERM"]
    batch.wait(f"{job}#2", "RUNNING")
    again[0].exit(0)
    detail = batch.wait(job, "SUCCEEDED")
    assert [a["container"]["exitCode"] for a in detail["attempts"]] == [1, 0]
    assert batch.events.statuses(job).count("RUNNABLE") == 2
    [node1] = describe_checked(batch, f"{job}#1")
    assert len(node1["attempts"]) == 2


def test_terminate_stops_every_node(batch):
    setup(batch)
    job = submit(batch)
    processes = start_all(batch, job)
    batch.wait(f"{job}#2", "RUNNING")
    batch.client.terminate_job(jobId=f"{job}#2", reason="stop it")  # a node stands for its job (ND)
    detail = batch.wait(job, "FAILED")
    assert all(p.signals == ["TERM"] for p in processes)
    assert detail["isTerminated"] is True
    assert detail["statusReason"] == "stop it"


def test_cancel_before_placement(batch):
    ec2_queue(batch, max_vcpus=2)
    register(batch)  # 3 vCPUs: never fits a 2-vCPU environment
    job = submit(batch)
    batch.wait(job, "RUNNABLE")
    [parent] = describe_checked(batch, job)
    assert "container" not in parent and parent["nodeProperties"]["numNodes"] == 3
    assert parent["statusReason"].startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")
    batch.client.cancel_job(jobId=job, reason="no room")
    assert batch.wait(job, "FAILED")["isCancelled"] is True
    assert batch.executor.launched == []


def test_timeout_applies_to_the_whole_job(make_batch):
    batch = make_batch(max_local_vcpus=16, timeout_scale=0.001)  # 60 s → 60 ms
    setup(batch, retryStrategy={"attempts": 2}, timeout={"attemptDurationSeconds": 60})
    job = submit(batch)
    processes = start_all(batch, job)
    detail = batch.wait(job, "FAILED")
    assert detail["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(detail["attempts"]) == 1  # a timed-out job isn't retried
    assert all(p.signals == ["TERM"] for p in processes)


def test_main_node_that_fails_to_start_fails_the_job(make_batch):
    from sluice.local.batch.testing import FakeExecutor

    executor = FakeExecutor(
        launch_error=lambda spec: "no image" if spec.env["AWS_BATCH_JOB_NODE_INDEX"] == "0" else None
    )
    batch = make_batch(executor=executor, max_local_vcpus=16)
    setup(batch)
    job = submit(batch)
    detail = batch.wait(job, "FAILED")
    assert detail["statusReason"] == "Task failed to start"
    assert detail["attempts"][0]["container"]["reason"] == "CannotStartContainerError: no image"
    assert executor.launched == []


# -- placement ------------------------------------------------------------------------------------------


def test_the_whole_job_needs_room_for_all_its_nodes(batch):
    ec2_queue(batch, max_vcpus=4)
    register(batch)  # 3 nodes × 1 vCPU
    batch.definition("single", vcpus="2", platform="EC2")
    single = batch.submit(definition="single")
    process = batch.process(single)
    job = submit(batch)
    batch.wait(job, "RUNNABLE")
    other = batch.submit(definition="single")  # FIFO: waits behind the multi-node job
    batch.wait(other, "RUNNABLE")
    assert len(batch.executor.launched) == 1  # 2 of 4 vCPUs free, the job needs 3
    process.exit(0)
    start_all(batch, job)
    assert batch.status_now(other) == "RUNNABLE"  # 1 vCPU left


@pytest.mark.parametrize("kind", ["SPOT"])
def test_not_placed_on_spot(batch, kind):
    ec2_queue(batch, kind=kind)
    register(batch)
    ec2_queue(batch, name="other", ce="ce2")
    batch.definition("single", platform="EC2")
    job = submit(batch)
    batch.wait(job, "RUNNABLE")
    single = batch.submit(queue="other", definition="single")
    batch.process(single).exit(0)
    batch.wait(single, "SUCCEEDED")
    # Multi-node parallel jobs "aren't supported on compute environments that use Spot Instances".
    assert batch.status_now(job) == "RUNNABLE"
    blocked = batch.events.wait_blocked(job)["Detail"]
    assert blocked["statusReason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ")
    assert [p.job_id for p in batch.executor.launched] == [single]


# -- node ranges (multinode.py) -------------------------------------------------------------------------


def test_node_ranges_resolve_to_the_most_specific_range():
    from sluice.local.batch.errors import ClientException
    from sluice.local.batch.multinode import check_ranges, group_of, parse_range

    ranges = [parse_range(text) for text in (":", "2:", "4:5", ":0")]
    assert [(r.start, r.end) for r in ranges] == [(0, None), (2, None), (4, 5), (0, 0)]
    check_ranges(ranges, 8)
    assert [group_of(ranges, index, 8) for index in range(8)] == [3, 0, 1, 1, 2, 2, 1, 1]
    with pytest.raises(ClientException, match="node 1 isn't"):
        check_ranges([parse_range("0:0"), parse_range("2:")], 4)
    with pytest.raises(ClientException, match="must be a node range"):
        parse_range("3")
