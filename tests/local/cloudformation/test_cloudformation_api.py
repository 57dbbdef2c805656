"""The local CloudFormation API through boto3: response shapes, errors, stack and change-set life cycles.

AWS references: API_CreateStack, API_DescribeStacks, API_CreateChangeSet, API_DescribeChangeSet,
API_ExecuteChangeSet, API_UpdateStack and API_DeleteStack in
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local.helpers import Local

pytestmark = pytest.mark.timeout(120)

FAST = {"Delay": 0.2, "MaxAttempts": 300}

TOPIC_AND_BUCKET = {
    "Description": "two resources",
    "Parameters": {
        "Label": {"Type": "String", "Default": "first"},
        "Secret": {"Type": "String", "NoEcho": True, "Default": "x"},
    },
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "Label"}}},
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Bucket"}, "Description": "the bucket"},
        "TopicArn": {"Value": {"Ref": "Topic"}, "Export": {"Name": "shared-topic"}},
    },
}
ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    },
}


def cfn(local: Local) -> Any:
    return local.client("cloudformation")


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return dict(caught.value.response["Error"]) | {
        "Status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    }


def create(local: Local, name: str, template: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    client = cfn(local)
    client.create_stack(StackName=name, TemplateBody=json.dumps(template), **kwargs)
    client.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=FAST)
    stack: dict[str, Any] = client.describe_stacks(StackName=name)["Stacks"][0]
    return stack


def test_create_stack_builds_the_resources_and_reports_them(local: Local) -> None:
    client = cfn(local)
    stack = create(local, "two", TOPIC_AND_BUCKET, Tags=[{"Key": "team", "Value": "data"}])
    assert stack["StackId"].startswith("arn:aws:cloudformation:us-east-1:")
    assert stack["StackId"].split(":stack/")[1].startswith("two/")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Description"] == "two resources"
    assert stack["Tags"] == [{"Key": "team", "Value": "data"}]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Label": "first",
        "Secret": "****",
    }
    outputs = {o["OutputKey"]: o for o in stack["Outputs"]}
    assert outputs["BucketName"]["Description"] == "the bucket"
    assert outputs["TopicArn"]["ExportName"] == "shared-topic"
    # The resources exist in the services, under the names the stack reports.
    bucket = outputs["BucketName"]["OutputValue"]
    local.client("s3").head_bucket(Bucket=bucket)
    topic = outputs["TopicArn"]["OutputValue"]
    assert local.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "first"

    summaries = client.list_stack_resources(StackName="two")["StackResourceSummaries"]
    assert [(s["LogicalResourceId"], s["ResourceStatus"]) for s in summaries] == [
        ("Bucket", "CREATE_COMPLETE"),
        ("Topic", "CREATE_COMPLETE"),
    ]
    detail = client.describe_stack_resource(StackName="two", LogicalResourceId="Topic")["StackResourceDetail"]
    assert detail["PhysicalResourceId"] == topic and detail["ResourceType"] == "AWS::SNS::Topic"
    by_physical = client.describe_stack_resources(PhysicalResourceId=bucket)["StackResources"]
    assert [r["LogicalResourceId"] for r in by_physical] == ["Bucket"]

    events = client.describe_stack_events(StackName="two")["StackEvents"]
    # Newest first; the stack's own events bracket the resources'.
    assert (events[0]["LogicalResourceId"], events[0]["ResourceStatus"]) == ("two", "CREATE_COMPLETE")
    assert (events[-1]["ResourceType"], events[-1]["ResourceStatus"]) == (
        "AWS::CloudFormation::Stack",
        "CREATE_IN_PROGRESS",
    )
    assert [e["Timestamp"] for e in events] == sorted((e["Timestamp"] for e in events), reverse=True)

    # boto3 parses a JSON TemplateBody itself.
    assert client.get_template(StackName="two")["TemplateBody"] == TOPIC_AND_BUCKET


def test_errors_have_aws_codes_and_messages(local: Local) -> None:
    client = cfn(local)
    missing = error_of(client.describe_stacks, StackName="nope")
    assert (missing["Code"], missing["Message"], missing["Status"]) == (
        "ValidationError",
        "Stack with id nope does not exist",
        400,
    )
    create(local, "dup", TOPIC_AND_BUCKET)
    duplicate = error_of(client.create_stack, StackName="dup", TemplateBody=json.dumps(TOPIC_AND_BUCKET))
    assert (duplicate["Code"], duplicate["Message"]) == (
        "AlreadyExistsException",
        "Stack [dup] already exists",
    )
    unknown = error_of(
        client.create_stack,
        StackName="bad-params",
        TemplateBody=json.dumps(TOPIC_AND_BUCKET),
        Parameters=[{"ParameterKey": "Nope", "ParameterValue": "x"}],
    )
    assert unknown["Code"] == "ValidationError" and "Nope" in unknown["Message"]
    no_resources = error_of(client.create_stack, StackName="empty", TemplateBody="{}")
    assert no_resources["Code"] == "ValidationError" and "Template format error" in no_resources["Message"]
    no_change_set = error_of(client.describe_change_set, ChangeSetName="none", StackName="dup")
    assert (no_change_set["Code"], no_change_set["Status"]) == ("ChangeSetNotFound", 404)
    assert client.delete_stack(StackName="never-existed")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_iam_resources_need_the_capability_aws_requires(local: Local) -> None:
    client = cfn(local)
    template = {"Resources": {"Role": ROLE}}
    plain = error_of(client.create_stack, StackName="iam", TemplateBody=json.dumps(template))
    assert (plain["Code"], plain["Message"]) == (
        "InsufficientCapabilitiesException",
        "Requires capabilities : [CAPABILITY_IAM]",
    )
    named = {"Resources": {"Role": {**ROLE, "Properties": {**ROLE["Properties"], "RoleName": "fixed"}}}}
    needs_named = error_of(
        client.create_stack, StackName="iam", TemplateBody=json.dumps(named), Capabilities=["CAPABILITY_IAM"]
    )
    assert needs_named["Message"] == "Requires capabilities : [CAPABILITY_NAMED_IAM]"
    sam = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    expand = error_of(client.create_stack, StackName="sam", TemplateBody=json.dumps(sam))
    assert expand["Message"] == "Requires capabilities : [CAPABILITY_AUTO_EXPAND]"
    stack = create(local, "iam", template, Capabilities=["CAPABILITY_IAM"])
    role = client.describe_stack_resource(StackName="iam", LogicalResourceId="Role")["StackResourceDetail"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    local.client("iam").get_role(RoleName=role["PhysicalResourceId"])


def test_change_set_create_execute_and_empty_update(local: Local) -> None:
    client = cfn(local)
    created = client.create_change_set(
        StackName="cs",
        ChangeSetName="first",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(TOPIC_AND_BUCKET),
    )
    assert (
        created["Id"].startswith("arn:aws:cloudformation:us-east-1:") and ":changeSet/first/" in created["Id"]
    )
    # A CREATE change set makes the stack exist, empty, in REVIEW_IN_PROGRESS.
    assert client.describe_stacks(StackName="cs")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    client.get_waiter("change_set_create_complete").wait(
        ChangeSetName="first", StackName="cs", WaiterConfig=FAST
    )
    described = client.describe_change_set(ChangeSetName=created["Id"])
    assert (described["Status"], described["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    assert sorted(
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
        for c in described["Changes"]
    ) == [("Add", "Bucket"), ("Add", "Topic")]
    assert [s["ChangeSetName"] for s in client.list_change_sets(StackName="cs")["Summaries"]] == ["first"]

    client.execute_change_set(ChangeSetName="first", StackName="cs")
    client.get_waiter("stack_create_complete").wait(StackName="cs", WaiterConfig=FAST)
    assert client.describe_change_set(ChangeSetName=created["Id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    executed_again = error_of(client.execute_change_set, ChangeSetName=created["Id"])
    assert executed_again["Code"] == "InvalidChangeSetStatus"

    # The same template again: the change set FAILS with the reason SAM CLI and the AWS CLI look for.
    client.create_change_set(
        StackName="cs",
        ChangeSetName="same",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(TOPIC_AND_BUCKET),
    )
    with pytest.raises(Exception, match='matched expected path: "FAILED"'):
        client.get_waiter("change_set_create_complete").wait(
            ChangeSetName="same", StackName="cs", WaiterConfig=FAST
        )
    failed = client.describe_change_set(ChangeSetName="same", StackName="cs")
    assert (failed["Status"], failed["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert failed["StatusReason"] == (
        "The submitted information didn't contain changes. Submit different information to create a change set."
    )
    client.delete_change_set(ChangeSetName="same", StackName="cs")
    assert (
        error_of(client.describe_change_set, ChangeSetName="same", StackName="cs")["Code"]
        == "ChangeSetNotFound"
    )

    # A parameter change is an update: Modify for the resources, executed as UPDATE_COMPLETE; the
    # bucket, whose properties do not change, is kept with what it holds.
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in client.describe_stacks(StackName="cs")["Stacks"][0]["Outputs"]
    }
    local.client("s3").put_object(Bucket=outputs["BucketName"], Key="kept.txt", Body=b"kept")
    client.create_change_set(
        StackName="cs",
        ChangeSetName="relabel",
        ChangeSetType="UPDATE",
        UsePreviousTemplate=True,
        Parameters=[
            {"ParameterKey": "Label", "ParameterValue": "second"},
            {"ParameterKey": "Secret", "UsePreviousValue": True},
        ],
    )
    client.get_waiter("change_set_create_complete").wait(
        ChangeSetName="relabel", StackName="cs", WaiterConfig=FAST
    )
    changes = client.describe_change_set(ChangeSetName="relabel", StackName="cs")["Changes"]
    assert {c["ResourceChange"]["Action"] for c in changes} == {"Modify"}
    client.execute_change_set(ChangeSetName="relabel", StackName="cs")
    client.get_waiter("stack_update_complete").wait(StackName="cs", WaiterConfig=FAST)
    stack = client.describe_stacks(StackName="cs")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE" and "LastUpdatedTime" in stack
    topic = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["TopicArn"]
    assert local.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "second"
    assert (
        local.client("s3").get_object(Bucket=outputs["BucketName"], Key="kept.txt")["Body"].read() == b"kept"
    )
    events = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in client.describe_stack_events(StackName="cs")["StackEvents"]
    ]
    assert ("Topic", "UPDATE_COMPLETE") in events
    assert events[:3] == [
        ("cs", "UPDATE_COMPLETE"),
        ("cs", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        ("Topic", "UPDATE_COMPLETE"),
    ]


def test_an_update_drops_removed_resources_and_a_failed_update_rolls_back(local: Local) -> None:
    client = cfn(local)
    stack = create(local, "upd", TOPIC_AND_BUCKET)
    bucket = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["BucketName"]
    only_topic = {
        "Resources": {"Topic": TOPIC_AND_BUCKET["Resources"]["Topic"]},
        "Parameters": TOPIC_AND_BUCKET["Parameters"],
    }
    client.update_stack(StackName="upd", TemplateBody=json.dumps(only_topic))
    client.get_waiter("stack_update_complete").wait(StackName="upd", WaiterConfig=FAST)
    assert bucket not in {b["Name"] for b in local.client("s3").list_buckets()["Buckets"]}
    resources = client.list_stack_resources(StackName="upd")["StackResourceSummaries"]
    assert [r["LogicalResourceId"] for r in resources] == ["Topic"]

    broken = {
        "Parameters": TOPIC_AND_BUCKET["Parameters"],
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "changed"}},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "DependsOn": "Topic",
                "Properties": {
                    "Bucket": "no-such-bucket-anywhere",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": []},
                },
            },
        },
    }
    client.update_stack(StackName="upd", TemplateBody=json.dumps(broken))
    with pytest.raises(Exception, match="UPDATE_ROLLBACK_COMPLETE"):
        client.get_waiter("stack_update_complete").wait(StackName="upd", WaiterConfig=FAST)
    [topic] = [r for r in client.list_stack_resources(StackName="upd")["StackResourceSummaries"]]
    attributes = local.client("sns").get_topic_attributes(TopicArn=topic["PhysicalResourceId"])["Attributes"]
    assert attributes["DisplayName"] == "first"
    assert client.get_template(StackName="upd")["TemplateBody"] == only_topic


def test_update_stack_without_changes_is_refused(local: Local) -> None:
    client = cfn(local)
    create(local, "same", TOPIC_AND_BUCKET)
    refused = error_of(client.update_stack, StackName="same", TemplateBody=json.dumps(TOPIC_AND_BUCKET))
    assert (refused["Code"], refused["Message"]) == ("ValidationError", "No updates are to be performed.")
    bad = error_of(
        client.update_stack,
        StackName="same",
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "Other", "UsePreviousValue": True}],
    )
    assert bad["Code"] == "ValidationError"


def test_a_failed_create_rolls_back_what_it_made(local: Local) -> None:
    client = cfn(local)
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "DependsOn": "Bucket",
                "Properties": {
                    "Bucket": "no-such-bucket-anywhere",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": []},
                },
            },
        }
    }
    client.create_stack(StackName="fails", TemplateBody=json.dumps(template))
    with pytest.raises(Exception, match="ROLLBACK_COMPLETE"):
        client.get_waiter("stack_create_complete").wait(StackName="fails", WaiterConfig=FAST)
    stack = client.describe_stacks(StackName="fails")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = client.describe_stack_events(StackName="fails")["StackEvents"]
    [rollback] = [e for e in events if e["ResourceStatus"] == "ROLLBACK_IN_PROGRESS"]
    assert rollback["ResourceStatusReason"] == (
        "The following resource(s) failed to create: [Policy]. Rollback requested by user."
    )
    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events)]
    assert ("Policy", "CREATE_FAILED") in statuses
    assert statuses.index(("Bucket", "CREATE_COMPLETE")) < statuses.index(("Bucket", "DELETE_COMPLETE"))
    bucket = next(e["PhysicalResourceId"] for e in events if e["LogicalResourceId"] == "Bucket")
    assert bucket not in {b["Name"] for b in local.client("s3").list_buckets()["Buckets"]}
    # A stack in ROLLBACK_COMPLETE can only be deleted.
    assert (
        "can not be updated"
        in error_of(client.update_stack, StackName="fails", UsePreviousTemplate=True)["Message"]
    )


def test_delete_stack_removes_the_resources(local: Local) -> None:
    client = cfn(local)
    stack = create(local, "gone", TOPIC_AND_BUCKET)
    bucket = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["BucketName"]
    local.client("s3").put_object(Bucket=bucket, Key="left/behind.txt", Body=b"x")
    client.delete_stack(StackName="gone")
    client.get_waiter("stack_delete_complete").wait(StackName="gone", WaiterConfig=FAST)
    assert bucket not in {b["Name"] for b in local.client("s3").list_buckets()["Buckets"]}
    assert local.client("sns").list_topics()["Topics"] == []
    # Gone by name; still described by id, as DELETE_COMPLETE; listed by ListStacks.
    assert error_of(client.describe_stacks, StackName="gone")["Code"] == "ValidationError"
    by_id = client.describe_stacks(StackName=stack["StackId"])["Stacks"][0]
    assert by_id["StackStatus"] == "DELETE_COMPLETE" and "DeletionTime" in by_id
    deleted = client.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert [s["StackName"] for s in deleted] == ["gone"]
    # The name is free again.
    assert create(local, "gone", TOPIC_AND_BUCKET)["StackId"] != stack["StackId"]


def test_template_url_reads_the_local_s3_and_summaries_describe_it(local: Local) -> None:
    s3 = local.client("s3")
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="t/two.json", Body=json.dumps(TOPIC_AND_BUCKET).encode())
    url = f"{local.cloud.endpoint_url}/templates/t/two.json"
    client = cfn(local)
    summary = client.get_template_summary(TemplateURL=url)
    assert summary["ResourceTypes"] == ["AWS::S3::Bucket", "AWS::SNS::Topic"]
    assert {p["ParameterKey"]: p.get("DefaultValue") for p in summary["Parameters"]} == {
        "Label": "first",
        "Secret": "x",
    }
    validated = client.validate_template(TemplateBody=json.dumps({"Resources": {"Role": ROLE}}))
    assert validated["Capabilities"] == ["CAPABILITY_IAM"]
    client.create_stack(StackName="from-url", TemplateURL=url)
    client.get_waiter("stack_create_complete").wait(StackName="from-url", WaiterConfig=FAST)
    missing = error_of(
        client.create_stack, StackName="x", TemplateURL=f"{local.cloud.endpoint_url}/templates/none"
    )
    assert missing["Code"] == "ValidationError" and "S3 error" in missing["Message"]


def test_cloudformation_calls_are_authorized_like_any_other(local: Local) -> None:
    iam = local.client("iam")
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    import boto3

    reader = boto3.client(
        "cloudformation",
        endpoint_url=local.cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    denied = error_of(reader.create_stack, StackName="no", TemplateBody=json.dumps(TOPIC_AND_BUCKET))
    assert denied["Code"] == "AccessDenied" and "cloudformation:CreateStack" in denied["Message"]
    iam.put_user_policy(
        UserName="reader",
        PolicyName="describe",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": "*"}
                ],
            }
        ),
    )
    assert reader.describe_stacks()["Stacks"] == []
