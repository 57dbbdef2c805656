"""Deploy a small SAM application to the local endpoint and check what exists afterwards."""

from __future__ import annotations

import json
import os
import subprocess

from moto.s3.models import s3_backends

from sluice.local.batch.images import ImageResolver
from sluice.local.deploy import deploy_template
from tests.local.deploy.helpers import APP


def test_outputs_and_not_emulated(app_stack):
    stack = app_stack
    outputs = stack.outputs
    assert outputs["InputBucketName"] == stack.resources["InputBucket"]
    assert outputs["TriggerFunctionArn"] == (
        f"arn:aws:lambda:us-east-1:123456789012:function:{stack.resources['TriggerFunction']}"
    )
    assert outputs["StateMachineArn"].startswith("arn:aws:states:us-east-1:123456789012:stateMachine:")
    assert outputs["AlertsTopicArn"] == stack.resources["AlertsTopic"]
    assert "ProdQueueUrl" not in outputs and "ProdOnlyQueue" not in stack.resources  # Condition IsProd false
    assert outputs["RepositoryUri"].endswith(
        f".dkr.ecr.us-east-1.amazonaws.com/{stack.resources['JobRepository']}"
    )
    assert outputs["AlarmArn"].startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:")
    assert outputs["AllAzs"].split(",")[0] == "us-east-1a"
    assert stack.not_emulated == [
        ("Dashboard", "AWS::CloudWatch::Dashboard"),
        ("FailedAlarm", "AWS::CloudWatch::Alarm"),
    ]
    # The SAM transform ran: generated resources are part of the stack.
    assert stack.resource_types["TriggerFunctionRole"] == "AWS::IAM::Role"
    assert stack.resource_types["TriggerFunctionObjectCreated"] == "AWS::Events::Rule"
    assert stack.template["Resources"]["TriggerFunction"]["Type"] == "AWS::Lambda::Function"
    assert stack.metadata["JobRepository"]["DockerContext"] == "containers"


def test_bucket(endpoint, app_stack):
    s3 = endpoint.client("s3")
    bucket = app_stack.resources["InputBucket"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert lifecycle["ID"] == "expire-work" and lifecycle["Expiration"] == {"Days": 7}
    assert lifecycle["Filter"] == {"Prefix": "work/"}
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # moto 5.2.5 stores EventBridgeConfiguration but leaves it out of its GET response, so
    # read the stored configuration (what makes moto emit S3 events) from its backend.
    stored = s3_backends["123456789012"]["aws"].buckets[bucket].notification_configuration
    assert stored is not None and stored.event_bridge is not None
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "app", "Value": "deploy-test"}]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    assert policy["Version"] == "2012-10-17"  # a string, not a YAML date


def test_function(endpoint, app_stack):
    stack = app_stack
    lam = endpoint.client("lambda")
    name = stack.resources["TriggerFunction"]
    config = lam.get_function_configuration(FunctionName=name)
    variables = config["Environment"]["Variables"]
    assert variables == {
        "STATE_MACHINE_ARN": stack.resources["PipelineStateMachine"],
        "TOPIC_ARN": stack.resources["AlertsTopic"],
        "STAGE_REGION": "dev-us-east-1",
        "BUCKETS": f"{stack.resources['InputBucket']},literal",
        "FIRST_AZ": "us-east-1a",
        "SECOND": "b",
        "WITH_VARS": "dev:123456789012:${Literal}",
    }
    assert config["MemorySize"] == 256 and config["Timeout"] == 10  # FindInMap, Globals
    assert config["TracingConfig"] == {"Mode": "Active"}
    assert config["Role"] == stack.attributes["TriggerFunctionRole"]["Arn"]
    assert config["DeadLetterConfig"]["TargetArn"] == stack.attributes["DeadLetters"]["Arn"]
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 5
    invoke_config = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST")
    assert invoke_config["MaximumRetryAttempts"] == 1 and invoke_config["MaximumEventAgeInSeconds"] == 600
    assert (
        invoke_config["DestinationConfig"]["OnFailure"]["Destination"]
        == stack.attributes["DeadLetters"]["Arn"]
    )
    statement = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert (
        statement["Condition"]["ArnLike"]["AWS:SourceArn"]
        == stack.attributes["TriggerFunctionObjectCreated"]["Arn"]
    )

    response = lam.invoke(FunctionName=name, Payload=json.dumps({"detail": {"k": 1}}).encode())
    assert json.loads(response["Payload"].read()) == {"stage_region": "dev-us-east-1", "detail": {"k": 1}}


def test_state_machine(endpoint, app_stack):
    sfn = endpoint.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=app_stack.resources["PipelineStateMachine"])
    definition = json.loads(described["definition"])
    bucket = app_stack.resources["InputBucket"]
    assert definition["Comment"] == f"Reads from {bucket} in dev"
    assert definition["States"]["Done"]["Result"] == {"bucket": bucket}
    assert described["roleArn"] == app_stack.attributes["PipelineStateMachineRole"]["Arn"]
    logging_config = described["loggingConfiguration"]
    assert logging_config["level"] == "ERROR"
    assert logging_config["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"] == (
        f"arn:aws:logs:us-east-1:123456789012:log-group:{app_stack.resources['PipelineLogs']}:*"
    )
    assert described["tracingConfiguration"] == {"enabled": True}
    logs = endpoint.client("logs")
    group = logs.describe_log_groups(logGroupNamePrefix=app_stack.resources["PipelineLogs"])["logGroups"][0]
    assert group["retentionInDays"] == 7


def test_rules_topic_and_key(endpoint, app_stack):
    events = endpoint.client("events")
    stack = app_stack
    sam_rule = stack.resources["TriggerFunctionObjectCreated"]
    pattern = json.loads(events.describe_rule(Name=sam_rule)["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [stack.resources["InputBucket"]]
    assert (
        events.list_targets_by_rule(Rule=sam_rule)["Targets"][0]["Arn"] == stack.outputs["TriggerFunctionArn"]
    )

    target = events.list_targets_by_rule(Rule=stack.resources["ExecutionFailedRule"])["Targets"][0]
    assert target["Arn"] == stack.resources["AlertsTopic"]
    assert target["InputTransformer"] == {
        "InputPathsMap": {"name": "$.detail.name", "status": "$.detail.status"},
        "InputTemplate": '"Execution <name> ended <status>"',
    }
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": stack.attributes["DeadLetters"]["Arn"]}
    rule_pattern = json.loads(
        events.describe_rule(Name=stack.resources["ExecutionFailedRule"])["EventPattern"]
    )
    assert rule_pattern["detail"]["stateMachineArn"] == [stack.resources["PipelineStateMachine"]]

    sns = endpoint.client("sns")
    attributes = sns.get_topic_attributes(TopicArn=stack.resources["AlertsTopic"])["Attributes"]
    assert attributes["KmsMasterKeyId"] == stack.resources["AlertsKey"]
    assert attributes["DisplayName"] == "deploytest alerts"
    assert json.loads(attributes["Policy"])["Statement"][0]["Principal"] == {
        "Service": "events.amazonaws.com"
    }
    kms = endpoint.client("kms")
    assert kms.get_key_rotation_status(KeyId=stack.resources["AlertsKey"])["KeyRotationEnabled"] is True
    sqs = endpoint.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=stack.resources["DeadLetters"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert queue["MessageRetentionPeriod"] == "1209600"


def test_batch_and_network(endpoint, app_stack):
    stack = app_stack
    batch = endpoint.client("batch")
    ce = batch.describe_compute_environments(computeEnvironments=[stack.resources["ComputeEnvironment"]])[
        "computeEnvironments"
    ][0]
    assert ce["computeResources"]["type"] == "FARGATE_SPOT" and ce["computeResources"]["maxvCpus"] == 8
    assert ce["computeResources"]["subnets"] == [stack.resources["NetworkSubnet"]]
    assert ce["computeResources"]["securityGroupIds"] == [stack.resources["JobSecurityGroup"]]
    queue = batch.describe_job_queues(jobQueues=[stack.resources["JobQueue"]])["jobQueues"][0]
    assert queue["priority"] == 10
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": stack.resources["ComputeEnvironment"]}
    ]
    definition = batch.describe_job_definitions(jobDefinitions=[stack.resources["JobDefinition"]])[
        "jobDefinitions"
    ][0]
    assert definition["platformCapabilities"] == ["FARGATE"]
    assert definition["timeout"] == {"attemptDurationSeconds": 600}  # Number parameter -> integer
    assert definition["retryStrategy"]["attempts"] == 3
    assert [e["action"].upper() for e in definition["retryStrategy"]["evaluateOnExit"]] == [
        "EXIT",
        "RETRY",
        "EXIT",
    ]
    assert definition["retryStrategy"]["evaluateOnExit"][1]["onStatusReason"] == "Host EC2*"
    container = definition["containerProperties"]
    assert container["image"] == stack.outputs["RepositoryUri"] + ":latest"
    assert container["command"] == ["--input", "Ref::input"]
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {
        "VCPU": "0.25",
        "MEMORY": "512",
    }
    assert container["environment"] == [{"name": "BUCKET", "value": stack.resources["InputBucket"]}]
    assert container["logConfiguration"]["options"] == {"awslogs-group": stack.resources["PipelineLogs"]}
    assert definition["parameters"] == {"input": "s3://nowhere/none"}

    ec2 = endpoint.client("ec2")
    vpc_id = stack.resources["Network"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"][
        "Value"
    ]
    subnet = ec2.describe_subnets(SubnetIds=[stack.resources["NetworkSubnet"]])["Subnets"][0]
    assert subnet["CidrBlock"] == "10.42.0.0/24" and subnet["MapPublicIpOnLaunch"] is True
    group = ec2.describe_security_groups(GroupIds=[stack.resources["JobSecurityGroup"]])["SecurityGroups"][0]
    assert [(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"]] == [("tcp", 443)]
    tags = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Tags"]
    assert {"Key": "Name", "Value": "deploytest-vpc"} in tags


def test_job_image_resolves_after_deploy(app_stack):
    # The Batch engine's resolver is built with the project root only, before the deploy.
    resolver = ImageResolver(APP)
    try:
        image = resolver(app_stack.outputs["RepositoryUri"] + ":latest")
        assert image is not None
        env = {"PATH": os.environ["PATH"], **image.env}
        done = subprocess.run(
            image.entrypoint + image.cmd,
            cwd=image.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "jobkit ready local --default"
    finally:
        resolver.close()


def test_parameter_overrides_and_conditions(endpoint):
    stack = deploy_template(
        APP / "template.yaml",
        endpoint_url=endpoint.url,
        stack_name="deployprod",
        parameter_overrides={"Stage": "prod", "EnableAlerts": "false"},
    )
    assert (
        "ProdQueueUrl" in stack.outputs and stack.outputs["ProdQueueUrl"] == stack.resources["ProdOnlyQueue"]
    )
    assert "AlertsTopic" not in stack.resources and "AlertsTopicArn" not in stack.outputs
    assert stack.not_emulated == [("Dashboard", "AWS::CloudWatch::Dashboard")]
    config = endpoint.client("lambda").get_function_configuration(
        FunctionName=stack.resources["TriggerFunction"]
    )
    assert "TOPIC_ARN" not in config["Environment"]["Variables"]  # Fn::If -> AWS::NoValue
    assert config["MemorySize"] == 1024
    assert config["Environment"]["Variables"]["STAGE_REGION"] == "prod-us-east-1"


def test_inline_code_versions_and_aliases(endpoint, tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      AutoPublishAlias: live
      InlineCode: |
        def handler(event, context):
            return {"version": context.function_version, "arn": context.invoked_function_arn}
Outputs:
  AliasArn:
    Value: !Ref HelloAliaslive
"""
    )
    stack = deploy_template(template, endpoint_url=endpoint.url, stack_name="inline")
    version_ids = [lid for lid, rtype in stack.resource_types.items() if rtype == "AWS::Lambda::Version"]
    assert len(version_ids) == 1 and stack.attributes[version_ids[0]]["Version"] == "1"
    alias_arn = stack.outputs["AliasArn"]
    assert alias_arn.endswith(f"function:{stack.resources['Hello']}:live")
    response = endpoint.client("lambda").invoke(FunctionName=alias_arn, Payload=b"{}")
    assert json.loads(response["Payload"].read()) == {"version": "1", "arn": alias_arn}
