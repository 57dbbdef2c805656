"""The Batch API through boto3: resources, validation errors as AWS returns them, response shapes."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from tests.local.batch.fake.helpers import MODEL, assert_shape, output_shape

pytestmark = pytest.mark.timeout(30)


def client_error(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def assert_client_exception(call, message: str, **kwargs) -> None:
    response = client_error(call, **kwargs)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ClientException"
    assert message in response["Error"]["Message"], response["Error"]["Message"]


# -- compute environments and queues ------------------------------------------------------------------


def test_compute_environment_lifecycle(batch):
    arn = batch.environment("ce", max_vcpus=8)
    assert arn == "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"
    [ce] = batch.client.describe_compute_environments(computeEnvironments=["ce"])["computeEnvironments"]
    assert (ce["state"], ce["status"], ce["computeResources"]["maxvCpus"]) == ("ENABLED", "VALID", 8)
    batch.client.update_compute_environment(
        computeEnvironment=arn, state="DISABLED", computeResources={"maxvCpus": 4}
    )
    [ce] = batch.client.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"]
    assert (ce["state"], ce["computeResources"]["maxvCpus"]) == ("DISABLED", 4)
    batch.client.delete_compute_environment(computeEnvironment="ce")
    assert batch.client.describe_compute_environments()["computeEnvironments"] == []


def test_duplicate_names_are_rejected(batch):
    batch.environment("ce")
    assert_client_exception(
        batch.client.create_compute_environment,
        "Object already exists",
        computeEnvironmentName="ce",
        type="UNMANAGED",
        serviceRole="arn:aws:iam::123456789012:role/batch",
    )
    batch.queue("q")
    assert_client_exception(
        batch.client.create_job_queue,
        "Object already exists",
        jobQueueName="q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}],
    )


def test_delete_compute_environment_needs_disabled_and_no_queue(batch):
    batch.environment("ce")
    batch.queue("q")
    assert_client_exception(batch.client.delete_compute_environment, "DISABLED", computeEnvironment="ce")
    batch.client.update_compute_environment(computeEnvironment="ce", state="DISABLED")
    assert_client_exception(
        batch.client.delete_compute_environment, "JobQueue relationship", computeEnvironment="ce"
    )


def test_queue_lifecycle_and_rules(batch):
    batch.environment("fargate")
    batch.environment("ec2", kind="EC2")
    arn = batch.queue("q", priority=5, environments=("fargate",))
    [queue] = batch.client.describe_job_queues(jobQueues=[arn])["jobQueues"]
    assert queue["priority"] == 5
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": "arn:aws:batch:us-east-1:123456789012:compute-environment/fargate"}
    ]
    assert_client_exception(
        batch.queue, "can't mix EC2 and Fargate", name="mixed", environments=("fargate", "ec2")
    )
    assert_client_exception(batch.queue, "does not exist", name="ghost", environments=("nope",))
    for extra in ("b", "c", "d"):
        batch.environment(extra)
    assert_client_exception(batch.queue, "at most 3", name="many", environments=("fargate", "b", "c", "d"))
    batch.client.update_job_queue(jobQueue="q", priority=7)
    assert batch.client.describe_job_queues(jobQueues=["q"])["jobQueues"][0]["priority"] == 7
    assert_client_exception(batch.client.delete_job_queue, "DISABLED", jobQueue="q")
    batch.client.update_job_queue(jobQueue="q", state="DISABLED")
    batch.client.delete_job_queue(jobQueue="q")
    assert batch.client.describe_job_queues()["jobQueues"] == []


# -- job definitions ------------------------------------------------------------------------------------


def test_job_definition_revisions_and_references(batch):
    batch.basic()
    second = batch.definition("jd", command=("second",))
    assert second["revision"] == 2
    assert second["jobDefinitionArn"].endswith(":job-definition/jd:2")
    described = batch.client.describe_job_definitions(jobDefinitionName="jd")["jobDefinitions"]
    assert [(d["revision"], d["status"]) for d in described] == [(1, "ACTIVE"), (2, "ACTIVE")]

    # No revision → latest ACTIVE; deregistering revision 2 makes revision 1 the latest.
    batch.client.deregister_job_definition(jobDefinition="jd:2")
    job = batch.submit(definition="jd")
    assert batch.describe(job)["jobDefinition"].endswith("jd:1")
    by_arn = batch.submit(definition="arn:aws:batch:us-east-1:123456789012:job-definition/jd:1")
    assert batch.describe(by_arn)["jobDefinition"].endswith("jd:1")
    assert_client_exception(batch.submit, "does not exist or is not in ACTIVE status", definition="jd:2")
    assert_client_exception(batch.submit, "does not exist or is not in ACTIVE status", definition="nope")
    inactive = batch.client.describe_job_definitions(status="INACTIVE")["jobDefinitions"]
    assert [(d["jobDefinitionName"], d["revision"]) for d in inactive] == [("jd", 2)]
    # A new revision after deregistration still counts up.
    assert batch.definition("jd")["revision"] == 3


def test_describe_job_definitions_paginates(batch):
    for _ in range(5):
        batch.definition("jd")
    first = batch.client.describe_job_definitions(maxResults=2)
    second = batch.client.describe_job_definitions(maxResults=2, nextToken=first["nextToken"])
    third = batch.client.describe_job_definitions(maxResults=2, nextToken=second["nextToken"])
    revisions = [d["revision"] for page in (first, second, third) for d in page["jobDefinitions"]]
    assert revisions == [1, 2, 3, 4, 5]
    assert "nextToken" not in third


@pytest.mark.parametrize(
    ("vcpus", "memory"),
    [
        ("0.25", "512"),
        ("0.25", "2048"),
        ("0.5", "1024"),
        ("0.5", "4096"),
        ("1", "8192"),
        ("4", "30720"),
        ("8", "61440"),
        ("16", "122880"),
    ],
)
def test_valid_fargate_sizes(batch, vcpus, memory):
    assert batch.definition(vcpus=vcpus, memory=memory)["revision"] == 1


@pytest.mark.parametrize(
    ("vcpus", "memory", "message"),
    [
        ("1", "4000", "Fargate resource requirements (1.00 vCPU, 4000 MiB) not valid."),
        ("0.25", "4096", "Fargate resource requirements (0.25 vCPU, 4096 MiB) not valid."),
        ("8", "18432", "not valid"),  # 8 vCPU memory comes in 4 GiB steps
        ("3", "8192", "not valid"),
    ],
)
def test_invalid_fargate_sizes(batch, vcpus, memory, message):
    assert_client_exception(batch.definition, message, vcpus=vcpus, memory=memory)


def test_resource_rules(batch):
    assert_client_exception(batch.definition, "whole number", platform="EC2", vcpus="0.5")
    assert batch.definition("ec2", platform="EC2", vcpus="2", memory="100")["revision"] == 1
    assert_client_exception(
        batch.client.register_job_definition,
        "vCPU is not provided.",
        jobDefinitionName="x",
        type="container",
        containerProperties={"image": "i", "resourceRequirements": [{"type": "MEMORY", "value": "512"}]},
    )
    assert_client_exception(
        batch.definition,
        "GPU",
        container={
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "2048"},
                {"type": "GPU", "value": "1"},
            ]
        },
    )


def test_definition_validation(batch):
    assert_client_exception(
        batch.definition,
        "AWS_BATCH_ prefix is reserved",
        container={"environment": [{"name": "AWS_BATCH_X", "value": "1"}]},
    )
    assert_client_exception(batch.definition, "Command cannot be empty", command=("run", ""))
    assert_client_exception(batch.definition, "at least 60 seconds", timeout={"attemptDurationSeconds": 59})
    assert batch.definition(timeout={"attemptDurationSeconds": 60})["revision"] == 1
    assert_client_exception(batch.definition, "between 1 and 10", retryStrategy={"attempts": 11})
    six = [{"onExitCode": str(code), "action": "EXIT"} for code in range(6)]
    assert_client_exception(
        batch.definition, "at most 5", retryStrategy={"attempts": 2, "evaluateOnExit": six}
    )
    assert_client_exception(batch.definition, "not supported pattern", name="bad.name")
    assert_client_exception(
        batch.client.register_job_definition,
        "nodeProperties must be specified",
        jobDefinitionName="mnp",
        type="multinode",
    )


# -- SubmitJob validation ------------------------------------------------------------------------------


def test_submit_validation(batch):
    batch.basic()
    assert_client_exception(batch.submit, "JobQueue nope not found.", queue="nope")
    assert_client_exception(batch.submit, "Job name should match valid pattern", name="bad name")
    assert_client_exception(batch.submit, "Job name should match valid pattern", name="x" * 129)
    assert batch.submit(name="x" * 128)
    assert batch.submit(name="_under-score_09")
    for size in (1, 10_001):
        assert_client_exception(batch.submit, "between 2 and 10000", arrayProperties={"size": size})
    for size in (2, 10_000):
        assert batch.submit(arrayProperties={"size": size})
    assert_client_exception(batch.submit, "between 1 and 10", retryStrategy={"attempts": 0})
    assert_client_exception(batch.submit, "at least 60 seconds", timeout={"attemptDurationSeconds": 30})
    assert_client_exception(
        batch.submit,
        "AWS_BATCH_ prefix is reserved",
        containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]},
    )
    assert_client_exception(batch.submit, "Command cannot be empty", containerOverrides={"command": [""]})
    assert_client_exception(
        batch.submit,
        "Fargate resource requirements (2.00 vCPU, 2048 MiB) not valid.",
        containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": "2"}]},
    )
    assert_client_exception(
        batch.submit, "Job size must be less than 30 KiB", parameters={"big": "x" * 31_000}
    )


def test_submit_to_incompatible_or_disabled_queue(batch):
    batch.basic()
    batch.environment("ec2", kind="EC2")
    batch.queue("ec2q", environments=("ec2",))
    assert_client_exception(batch.submit, "isn't compatible", queue="ec2q")
    batch.client.update_job_queue(jobQueue="q", state="DISABLED")
    assert_client_exception(batch.submit, "not in ENABLED state", queue="q")


def test_dependency_validation(batch):
    batch.basic()
    single = batch.submit()
    array = batch.submit(arrayProperties={"size": 3})
    assert_client_exception(batch.submit, "does not exist", dependsOn=[{"jobId": "nope"}])
    assert_client_exception(batch.submit, "only allowed for array jobs", dependsOn=[{"type": "SEQUENTIAL"}])
    assert_client_exception(
        batch.submit, "same size", arrayProperties={"size": 4}, dependsOn=[{"jobId": array, "type": "N_TO_N"}]
    )
    assert_client_exception(
        batch.submit,
        "same size",
        arrayProperties={"size": 2},
        dependsOn=[{"jobId": single, "type": "N_TO_N"}],
    )
    assert_client_exception(batch.submit, "at most 20", dependsOn=[{"jobId": single}] * 21)
    assert batch.submit(dependsOn=[{"jobId": f"{array}:1"}])  # a child is a job like any other


def test_cancel_and_terminate_need_a_known_job_and_reason(batch):
    assert_client_exception(batch.client.cancel_job, "not found", jobId="nope", reason="r")
    assert_client_exception(batch.client.terminate_job, "not found", jobId="nope", reason="r")
    batch.basic()
    job = batch.submit()
    assert_client_exception(batch.client.cancel_job, "at most 1024", jobId=job, reason="r" * 1025)


def test_describe_jobs_limits_and_unknown_ids(batch):
    batch.basic()
    job = batch.submit()
    jobs = batch.client.describe_jobs(jobs=[job, "unknown"])["jobs"]
    assert [j["jobId"] for j in jobs] == [job]
    assert_client_exception(
        batch.client.describe_jobs, "Maximum number of jobs supported is 100", jobs=["x"] * 101
    )


# -- tags -------------------------------------------------------------------------------------------------


def test_tags_on_every_resource(batch):
    ce = batch.environment()
    queue = batch.queue()
    definition = batch.definition()["jobDefinitionArn"]
    job_arn = batch.client.submit_job(jobName="j", jobQueue="q", jobDefinition="jd", tags={"a": "1"})[
        "jobArn"
    ]
    for arn in (ce, queue, definition, job_arn):
        batch.client.tag_resource(resourceArn=arn, tags={"team": "data", "stage": "x"})
        batch.client.untag_resource(resourceArn=arn, tagKeys=["stage"])
        assert batch.client.list_tags_for_resource(resourceArn=arn)["tags"]["team"] == "data"
        assert "stage" not in batch.client.list_tags_for_resource(resourceArn=arn)["tags"]
    assert batch.client.list_tags_for_resource(resourceArn=job_arn)["tags"] == {"a": "1", "team": "data"}
    assert_client_exception(
        batch.client.list_tags_for_resource,
        "not found",
        resourceArn="arn:aws:batch:us-east-1:123456789012:job/nope",
    )
    assert_client_exception(batch.client.tag_resource, "reserved", resourceArn=ce, tags={"aws:x": "1"})


# -- wire format --------------------------------------------------------------------------------------------


def call(engine, operation: str, body: dict) -> tuple[int, dict]:
    http = MODEL.operation_model(operation).http
    response = Client(engine.wsgi_app).open(http["requestUri"], method=http["method"], data=json.dumps(body))
    return response.status_code, json.loads(response.data)


def test_responses_match_the_service_model(batch):
    """boto3 drops unknown keys silently, so check the raw JSON against botocore's shapes."""
    engine = batch.engine
    requests = [
        (
            "CreateComputeEnvironment",
            {
                "computeEnvironmentName": "ce",
                "type": "MANAGED",
                "computeResources": {"type": "FARGATE", "maxvCpus": 4, "subnets": ["s"]},
            },
        ),
        ("DescribeComputeEnvironments", {}),
        (
            "CreateJobQueue",
            {
                "jobQueueName": "q",
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}],
            },
        ),
        ("DescribeJobQueues", {}),
        (
            "RegisterJobDefinition",
            {
                "jobDefinitionName": "jd",
                "type": "container",
                "platformCapabilities": ["FARGATE"],
                "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]},
                "timeout": {"attemptDurationSeconds": 600},
                "parameters": {"p": "v"},
                "containerProperties": {
                    "image": "i",
                    "command": ["Ref::p"],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "0.25"},
                        {"type": "MEMORY", "value": "512"},
                    ],
                },
            },
        ),
        ("DescribeJobDefinitions", {}),
    ]
    for operation, body in requests:
        status, payload = call(engine, operation, body)
        assert status == 200, payload
        assert_shape(payload, output_shape(operation))
    status, submitted = call(
        engine,
        "SubmitJob",
        {
            "jobName": "a",
            "jobQueue": "q",
            "jobDefinition": "jd",
            "arrayProperties": {"size": 2},
            "tags": {"k": "v"},
        },
    )
    assert_shape(submitted, output_shape("SubmitJob"))
    job_id = submitted["jobId"]
    batch.wait(f"{job_id}:0", "RUNNING")
    batch.executor.running()[0].exit(1)
    batch.wait(f"{job_id}:0", "FAILED")
    for operation, body in [
        ("DescribeJobs", {"jobs": [job_id, f"{job_id}:0", f"{job_id}:1"]}),
        ("ListJobs", {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["a"]}]}),
        ("ListJobs", {"arrayJobId": job_id, "jobStatus": "FAILED"}),
        ("ListTagsForResource", {}),
    ]:
        if operation == "ListTagsForResource":
            response = Client(engine.wsgi_app).get(f"/v1/tags/{submitted['jobArn']}")
            status, payload = response.status_code, json.loads(response.data)
        else:
            status, payload = call(engine, operation, body)
        assert status == 200, payload
        assert_shape(payload, output_shape(operation))
    _, described = call(engine, "DescribeJobs", {"jobs": [f"{job_id}:0"]})
    assert described["jobs"][0]["attempts"][0]["container"]["exitCode"] == 1


def test_errors_carry_type_and_message(batch):
    response = Client(batch.engine.wsgi_app).post("/v1/submitjob", data=json.dumps({"jobName": "x"}))
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "ClientException"
    assert json.loads(response.data) == {"__type": "ClientException", "message": "jobQueue must be provided"}
    assert Client(batch.engine.wsgi_app).post("/v1/nothing", data="{}").status_code == 404
    unsupported = Client(batch.engine.wsgi_app).post("/v1/createconsumableresource", data="{}")
    assert unsupported.status_code == 400
    assert "isn't supported" in json.loads(unsupported.data)["message"]
