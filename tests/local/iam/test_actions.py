"""Operation -> IAM authorizations, for every call the project makes, from botocore-built requests."""

from __future__ import annotations

import io
from typing import Any

import boto3.s3.transfer
import pytest
from botocore.awsrequest import AWSResponse

from sluice.local.iam.actions import (
    RESOLVE_BATCH_JOB_DEFINITION,
    RESOLVE_IAM_PATH,
    RESOLVE_KMS_ALIAS,
    RESOLVE_KMS_CIPHERTEXT,
    Authorization,
    UnknownOperationError,
    action_name,
    iam_prefix,
    known_condition_keys,
    required,
)
from sluice.local.iam.operations import Operation
from tests.local.iam.test_operations import capture, fake_response, make_client

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"{REGION}:{ACCOUNT}"
SM = f"arn:aws:states:{ARN}:stateMachine:pipeline"
EXECUTION = f"arn:aws:states:{ARN}:execution:pipeline:run-1"
QUEUE_URL = f"http://127.0.0.1:4566/{ACCOUNT}/jobs"
TOPIC = f"arn:aws:sns:{ARN}:alerts"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:{ARN}:key/{KEY_ID}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sluice-role"


def authorize(service: str, method: str, **kwargs: Any) -> tuple[Operation, list[Authorization]]:
    op = capture(service, method, **kwargs).identify()
    return op, required(op, region=REGION, account=ACCOUNT)


def summary(auths: list[Authorization]) -> list[tuple[str, tuple[str, ...]]]:
    return [(a.action, a.resources) for a in auths]


# (service, client method, kwargs, operation, [(action, resources)...])
CASES: list[tuple[str, str, dict[str, Any], str, list[tuple[str, tuple[str, ...]]]]] = [
    # ------------------------------------------------------------------ s3
    ("s3", "put_object", {"Bucket": "in", "Key": "a/b.csv", "Body": b"x"}, "PutObject",
     [("s3:PutObject", ("arn:aws:s3:::in/a/b.csv",))]),
    ("s3", "create_multipart_upload", {"Bucket": "in", "Key": "big"}, "CreateMultipartUpload",
     [("s3:PutObject", ("arn:aws:s3:::in/big",))]),
    ("s3", "upload_part", {"Bucket": "in", "Key": "big", "UploadId": "u", "PartNumber": 3, "Body": b"x"},
     "UploadPart", [("s3:PutObject", ("arn:aws:s3:::in/big",))]),
    ("s3", "complete_multipart_upload",
     {"Bucket": "in", "Key": "big", "UploadId": "u", "MultipartUpload": {"Parts": [{"ETag": "e", "PartNumber": 1}]}},
     "CompleteMultipartUpload", [("s3:PutObject", ("arn:aws:s3:::in/big",))]),
    ("s3", "abort_multipart_upload", {"Bucket": "in", "Key": "big", "UploadId": "u"}, "AbortMultipartUpload",
     [("s3:AbortMultipartUpload", ("arn:aws:s3:::in/big",))]),
    ("s3", "list_parts", {"Bucket": "in", "Key": "big", "UploadId": "u"}, "ListParts",
     [("s3:ListMultipartUploadParts", ("arn:aws:s3:::in/big",))]),
    ("s3", "get_object", {"Bucket": "in", "Key": "k"}, "GetObject", [("s3:GetObject", ("arn:aws:s3:::in/k",))]),
    ("s3", "get_object", {"Bucket": "in", "Key": "k", "Range": "bytes=0-99"}, "GetObject",
     [("s3:GetObject", ("arn:aws:s3:::in/k",))]),
    ("s3", "get_object", {"Bucket": "in", "Key": "k", "VersionId": "v1"}, "GetObject",
     [("s3:GetObjectVersion", ("arn:aws:s3:::in/k",))]),
    ("s3", "head_object", {"Bucket": "in", "Key": "k"}, "HeadObject", [("s3:GetObject", ("arn:aws:s3:::in/k",))]),
    ("s3", "list_objects_v2", {"Bucket": "in", "Prefix": "p/", "Delimiter": "/"}, "ListObjectsV2",
     [("s3:ListBucket", ("arn:aws:s3:::in",))]),
    ("s3", "delete_object", {"Bucket": "in", "Key": "k"}, "DeleteObject",
     [("s3:DeleteObject", ("arn:aws:s3:::in/k",))]),
    ("s3", "delete_object", {"Bucket": "in", "Key": "k", "VersionId": "v1"}, "DeleteObject",
     [("s3:DeleteObject", ("arn:aws:s3:::in/k",)), ("s3:DeleteObjectVersion", ("arn:aws:s3:::in/k",))]),
    ("s3", "delete_objects", {"Bucket": "in", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b"}]}}, "DeleteObjects",
     [("s3:DeleteObject", ("arn:aws:s3:::in/a",)), ("s3:DeleteObject", ("arn:aws:s3:::in/b",))]),
    ("s3", "copy_object", {"Bucket": "out", "Key": "dst", "CopySource": {"Bucket": "in", "Key": "src/x"}},
     "CopyObject", [("s3:GetObject", ("arn:aws:s3:::in/src/x",)), ("s3:PutObject", ("arn:aws:s3:::out/dst",))]),
    ("s3", "copy_object",
     {"Bucket": "out", "Key": "dst", "CopySource": {"Bucket": "in", "Key": "a b", "VersionId": "v9"}},
     "CopyObject", [("s3:GetObjectVersion", ("arn:aws:s3:::in/a b",)), ("s3:PutObject", ("arn:aws:s3:::out/dst",))]),
    ("s3", "create_bucket", {"Bucket": "in"}, "CreateBucket", [("s3:CreateBucket", ("arn:aws:s3:::in",))]),
    ("s3", "head_bucket", {"Bucket": "in"}, "HeadBucket", [("s3:ListBucket", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_policy", {"Bucket": "in", "Policy": "{}"}, "PutBucketPolicy",
     [("s3:PutBucketPolicy", ("arn:aws:s3:::in",))]),
    ("s3", "get_bucket_policy", {"Bucket": "in"}, "GetBucketPolicy", [("s3:GetBucketPolicy", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_notification_configuration",
     {"Bucket": "in", "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
     "PutBucketNotificationConfiguration", [("s3:PutBucketNotification", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_encryption",
     {"Bucket": "in", "ServerSideEncryptionConfiguration": {
         "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
     "PutBucketEncryption", [("s3:PutEncryptionConfiguration", ("arn:aws:s3:::in",))]),
    ("s3", "put_public_access_block",
     {"Bucket": "in", "PublicAccessBlockConfiguration": {"BlockPublicAcls": True}}, "PutPublicAccessBlock",
     [("s3:PutBucketPublicAccessBlock", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_versioning", {"Bucket": "in", "VersioningConfiguration": {"Status": "Enabled"}},
     "PutBucketVersioning", [("s3:PutBucketVersioning", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_lifecycle_configuration",
     {"Bucket": "in", "LifecycleConfiguration": {"Rules": [
         {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}},
     "PutBucketLifecycleConfiguration", [("s3:PutLifecycleConfiguration", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_logging",
     {"Bucket": "in", "BucketLoggingStatus": {"LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "in/"}}},
     "PutBucketLogging", [("s3:PutBucketLogging", ("arn:aws:s3:::in",))]),
    ("s3", "put_bucket_tagging", {"Bucket": "in", "Tagging": {"TagSet": [{"Key": "a", "Value": "1"}]}},
     "PutBucketTagging", [("s3:PutBucketTagging", ("arn:aws:s3:::in",))]),
    ("s3", "list_buckets", {}, "ListBuckets", [("s3:ListAllMyBuckets", ("*",))]),
    # ------------------------------------------------------------------ stepfunctions
    ("stepfunctions", "start_execution", {"stateMachineArn": SM, "input": "{}"}, "StartExecution",
     [("states:StartExecution", (SM,))]),
    ("stepfunctions", "describe_execution", {"executionArn": EXECUTION}, "DescribeExecution",
     [("states:DescribeExecution", (EXECUTION,))]),
    ("stepfunctions", "get_execution_history", {"executionArn": EXECUTION}, "GetExecutionHistory",
     [("states:GetExecutionHistory", (EXECUTION,))]),
    ("stepfunctions", "list_executions", {"stateMachineArn": SM}, "ListExecutions",
     [("states:ListExecutions", (SM,))]),
    ("stepfunctions", "stop_execution", {"executionArn": EXECUTION}, "StopExecution",
     [("states:StopExecution", (EXECUTION,))]),
    ("stepfunctions", "redrive_execution", {"executionArn": EXECUTION}, "RedriveExecution",
     [("states:RedriveExecution", (EXECUTION,))]),
    ("stepfunctions", "create_state_machine", {"name": "pipeline", "definition": "{}", "roleArn": ROLE},
     "CreateStateMachine", [("states:CreateStateMachine", (SM,)), ("iam:PassRole", (ROLE,))]),
    ("stepfunctions", "describe_state_machine", {"stateMachineArn": SM}, "DescribeStateMachine",
     [("states:DescribeStateMachine", (SM,))]),
    ("stepfunctions", "list_state_machines", {}, "ListStateMachines", [("states:ListStateMachines", ("*",))]),
    ("stepfunctions", "tag_resource", {"resourceArn": SM, "tags": [{"key": "a", "value": "1"}]}, "TagResource",
     [("states:TagResource", (SM,))]),
    # ------------------------------------------------------------------ batch
    ("batch", "submit_job", {"jobName": "j", "jobQueue": "q", "jobDefinition": "ingest:3"}, "SubmitJob",
     [("batch:SubmitJob", (f"arn:aws:batch:{ARN}:job-definition/ingest:3", f"arn:aws:batch:{ARN}:job-queue/q"))]),
    ("batch", "submit_job",
     {"jobName": "j", "jobQueue": f"arn:aws:batch:{ARN}:job-queue/q",
      "jobDefinition": f"arn:aws:batch:{ARN}:job-definition/ingest:3"}, "SubmitJob",
     [("batch:SubmitJob", (f"arn:aws:batch:{ARN}:job-definition/ingest:3", f"arn:aws:batch:{ARN}:job-queue/q"))]),
    ("batch", "submit_job", {"jobName": "j", "jobQueue": "q", "jobDefinition": "ingest"}, "SubmitJob",
     [("batch:SubmitJob", (f"arn:aws:batch:{ARN}:job-definition/ingest:*", f"arn:aws:batch:{ARN}:job-queue/q"))]),
    ("batch", "describe_jobs", {"jobs": ["id-1"]}, "DescribeJobs", [("batch:DescribeJobs", ("*",))]),
    ("batch", "list_jobs", {"jobQueue": "q"}, "ListJobs", [("batch:ListJobs", ("*",))]),
    ("batch", "terminate_job", {"jobId": "id-1", "reason": "r"}, "TerminateJob",
     [("batch:TerminateJob", (f"arn:aws:batch:{ARN}:job/id-1",))]),
    ("batch", "cancel_job", {"jobId": "id-1", "reason": "r"}, "CancelJob",
     [("batch:CancelJob", (f"arn:aws:batch:{ARN}:job/id-1",))]),
    ("batch", "create_compute_environment",
     {"computeEnvironmentName": "ce", "type": "MANAGED", "serviceRole": ROLE}, "CreateComputeEnvironment",
     [("batch:CreateComputeEnvironment", (f"arn:aws:batch:{ARN}:compute-environment/ce",)),
      ("iam:PassRole", (ROLE,))]),
    ("batch", "create_job_queue",
     {"jobQueueName": "q", "priority": 1, "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}]},
     "CreateJobQueue",
     [("batch:CreateJobQueue", (f"arn:aws:batch:{ARN}:compute-environment/ce", f"arn:aws:batch:{ARN}:job-queue/q"))]),
    ("batch", "register_job_definition", {"jobDefinitionName": "ingest", "type": "container"},
     "RegisterJobDefinition", [("batch:RegisterJobDefinition", (f"arn:aws:batch:{ARN}:job-definition/ingest",))]),
    ("batch", "describe_job_queues", {}, "DescribeJobQueues", [("batch:DescribeJobQueues", ("*",))]),
    ("batch", "describe_job_definitions", {}, "DescribeJobDefinitions", [("batch:DescribeJobDefinitions", ("*",))]),
    ("batch", "describe_compute_environments", {}, "DescribeComputeEnvironments",
     [("batch:DescribeComputeEnvironments", ("*",))]),
    ("batch", "update_compute_environment", {"computeEnvironment": "ce", "state": "DISABLED"},
     "UpdateComputeEnvironment",
     [("batch:UpdateComputeEnvironment", (f"arn:aws:batch:{ARN}:compute-environment/ce",))]),
    ("batch", "delete_job_queue", {"jobQueue": "q"}, "DeleteJobQueue",
     [("batch:DeleteJobQueue", (f"arn:aws:batch:{ARN}:job-queue/q",))]),
    ("batch", "tag_resource", {"resourceArn": f"arn:aws:batch:{ARN}:job-queue/q", "tags": {"a": "1"}},
     "TagResource", [("batch:TagResource", (f"arn:aws:batch:{ARN}:job-queue/q",))]),
    # ------------------------------------------------------------------ lambda
    ("lambda", "invoke", {"FunctionName": "fn"}, "Invoke",
     [("lambda:InvokeFunction", (f"arn:aws:lambda:{ARN}:function:fn",))]),
    ("lambda", "invoke", {"FunctionName": "arn:aws:lambda:eu-west-1:210987654321:function:fn"}, "Invoke",
     [("lambda:InvokeFunction", ("arn:aws:lambda:eu-west-1:210987654321:function:fn",))]),
    ("lambda", "invoke", {"FunctionName": "fn", "Qualifier": "live"}, "Invoke",
     [("lambda:InvokeFunction", (f"arn:aws:lambda:{ARN}:function:fn:live",))]),
    ("lambda", "invoke", {"FunctionName": "fn:7"}, "Invoke",
     [("lambda:InvokeFunction", (f"arn:aws:lambda:{ARN}:function:fn:7",))]),
    ("lambda", "invoke", {"FunctionName": f"{ACCOUNT}:function:fn"}, "Invoke",
     [("lambda:InvokeFunction", (f"arn:aws:lambda:{ARN}:function:fn",))]),
    ("lambda", "invoke", {"FunctionName": f"arn:aws:lambda:{ARN}:function:fn:live"}, "Invoke",
     [("lambda:InvokeFunction", (f"arn:aws:lambda:{ARN}:function:fn:live",))]),
    ("lambda", "create_function",
     {"FunctionName": "fn", "Runtime": "python3.12", "Role": ROLE, "Handler": "app.h", "Code": {"ZipFile": b"z"}},
     "CreateFunction",
     [("lambda:CreateFunction", (f"arn:aws:lambda:{ARN}:function:fn",)), ("iam:PassRole", (ROLE,))]),
    ("lambda", "add_permission",
     {"FunctionName": "fn", "StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com",
      "SourceArn": "arn:aws:s3:::in"}, "AddPermission",
     [("lambda:AddPermission", (f"arn:aws:lambda:{ARN}:function:fn",))]),
    ("lambda", "get_function", {"FunctionName": "fn"}, "GetFunction",
     [("lambda:GetFunction", (f"arn:aws:lambda:{ARN}:function:fn",))]),
    ("lambda", "put_function_event_invoke_config", {"FunctionName": "fn", "MaximumRetryAttempts": 0},
     "PutFunctionEventInvokeConfig",
     [("lambda:PutFunctionEventInvokeConfig", (f"arn:aws:lambda:{ARN}:function:fn",))]),
    ("lambda", "get_policy", {"FunctionName": "fn"}, "GetPolicy",
     [("lambda:GetPolicy", (f"arn:aws:lambda:{ARN}:function:fn",))]),
    # ------------------------------------------------------------------ sns
    ("sns", "publish", {"TopicArn": TOPIC, "Message": "m"}, "Publish", [("sns:Publish", (TOPIC,))]),
    ("sns", "create_topic", {"Name": "alerts"}, "CreateTopic", [("sns:CreateTopic", (TOPIC,))]),
    ("sns", "subscribe", {"TopicArn": TOPIC, "Protocol": "sqs", "Endpoint": f"arn:aws:sqs:{ARN}:jobs"},
     "Subscribe", [("sns:Subscribe", (TOPIC,))]),
    ("sns", "set_topic_attributes", {"TopicArn": TOPIC, "AttributeName": "Policy", "AttributeValue": "{}"},
     "SetTopicAttributes", [("sns:SetTopicAttributes", (TOPIC,))]),
    ("sns", "get_topic_attributes", {"TopicArn": TOPIC}, "GetTopicAttributes",
     [("sns:GetTopicAttributes", (TOPIC,))]),
    ("sns", "list_topics", {}, "ListTopics", [("sns:ListTopics", ("*",))]),
    # ------------------------------------------------------------------ sqs
    ("sqs", "send_message", {"QueueUrl": QUEUE_URL, "MessageBody": "m"}, "SendMessage",
     [("sqs:SendMessage", (f"arn:aws:sqs:{ARN}:jobs",))]),
    ("sqs", "receive_message", {"QueueUrl": QUEUE_URL}, "ReceiveMessage",
     [("sqs:ReceiveMessage", (f"arn:aws:sqs:{ARN}:jobs",))]),
    ("sqs", "create_queue", {"QueueName": "jobs"}, "CreateQueue", [("sqs:CreateQueue", (f"arn:aws:sqs:{ARN}:jobs",))]),
    ("sqs", "get_queue_attributes", {"QueueUrl": QUEUE_URL, "AttributeNames": ["All"]}, "GetQueueAttributes",
     [("sqs:GetQueueAttributes", (f"arn:aws:sqs:{ARN}:jobs",))]),
    ("sqs", "set_queue_attributes", {"QueueUrl": QUEUE_URL, "Attributes": {"Policy": "{}"}}, "SetQueueAttributes",
     [("sqs:SetQueueAttributes", (f"arn:aws:sqs:{ARN}:jobs",))]),
    ("sqs", "get_queue_url", {"QueueName": "jobs"}, "GetQueueUrl", [("sqs:GetQueueUrl", (f"arn:aws:sqs:{ARN}:jobs",))]),
    ("sqs", "send_message",
     {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/210987654321/other", "MessageBody": "m"}, "SendMessage",
     [("sqs:SendMessage", ("arn:aws:sqs:eu-west-1:210987654321:other",))]),
    # ------------------------------------------------------------------ logs
    ("logs", "create_log_group", {"logGroupName": "/aws/batch/job"}, "CreateLogGroup",
     [("logs:CreateLogGroup", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:",))]),
    ("logs", "create_log_stream", {"logGroupName": "/aws/batch/job", "logStreamName": "s/1"}, "CreateLogStream",
     [("logs:CreateLogStream", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:s/1",))]),
    ("logs", "put_log_events",
     {"logGroupName": "/aws/batch/job", "logStreamName": "s/1", "logEvents": [{"timestamp": 1, "message": "m"}]},
     "PutLogEvents", [("logs:PutLogEvents", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:s/1",))]),
    ("logs", "get_log_events", {"logGroupName": "/aws/batch/job", "logStreamName": "s/1"}, "GetLogEvents",
     [("logs:GetLogEvents", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:s/1",))]),
    ("logs", "filter_log_events", {"logGroupName": "/aws/batch/job"}, "FilterLogEvents",
     [("logs:FilterLogEvents", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:",))]),
    ("logs", "describe_log_streams", {"logGroupName": "/aws/batch/job"}, "DescribeLogStreams",
     [("logs:DescribeLogStreams", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:",))]),
    ("logs", "describe_log_streams",
     {"logGroupIdentifier": f"arn:aws:logs:{ARN}:log-group:/aws/batch/job"}, "DescribeLogStreams",
     [("logs:DescribeLogStreams", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:",))]),
    ("logs", "put_retention_policy", {"logGroupName": "/aws/batch/job", "retentionInDays": 7},
     "PutRetentionPolicy",
     [("logs:PutRetentionPolicy", (f"arn:aws:logs:{ARN}:log-group:/aws/batch/job:log-stream:",))]),
    # ------------------------------------------------------------------ events
    ("events", "put_events", {"Entries": [{"Source": "sluice", "DetailType": "d", "Detail": "{}"}]}, "PutEvents",
     [("events:PutEvents", (f"arn:aws:events:{ARN}:event-bus/default",))]),
    ("events", "put_events",
     {"Entries": [{"Source": "sluice", "DetailType": "d", "Detail": "{}", "EventBusName": "pipeline"}]},
     "PutEvents", [("events:PutEvents", (f"arn:aws:events:{ARN}:event-bus/pipeline",))]),
    ("events", "put_events",
     {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}",
                   "EventBusName": f"arn:aws:events:{ARN}:event-bus/pipeline"}]},
     "PutEvents", [("events:PutEvents", (f"arn:aws:events:{ARN}:event-bus/pipeline",))]),
    ("events", "put_rule", {"Name": "StepFunctionsGetEventsForBatchJobsRule", "EventPattern": "{}"}, "PutRule",
     [("events:PutRule", (f"arn:aws:events:{ARN}:rule/StepFunctionsGetEventsForBatchJobsRule",))]),
    ("events", "put_rule", {"Name": "r", "EventBusName": "pipeline", "ScheduleExpression": "rate(1 hour)"},
     "PutRule", [("events:PutRule", (f"arn:aws:events:{ARN}:rule/pipeline/r",))]),
    ("events", "put_targets", {"Rule": "r", "Targets": [{"Id": "1", "Arn": TOPIC}]}, "PutTargets",
     [("events:PutTargets", (f"arn:aws:events:{ARN}:rule/r",))]),
    ("events", "describe_rule", {"Name": "r"}, "DescribeRule", [("events:DescribeRule", (f"arn:aws:events:{ARN}:rule/r",))]),
    ("events", "list_rules", {}, "ListRules", [("events:ListRules", ("*",))]),
    ("events", "list_targets_by_rule", {"Rule": "r"}, "ListTargetsByRule",
     [("events:ListTargetsByRule", (f"arn:aws:events:{ARN}:rule/r",))]),
    # ------------------------------------------------------------------ kms
    ("kms", "create_key", {"Description": "d"}, "CreateKey", [("kms:CreateKey", ("*",))]),
    ("kms", "generate_data_key", {"KeyId": KEY_ID, "KeySpec": "AES_256"}, "GenerateDataKey",
     [("kms:GenerateDataKey", (KEY,))]),
    ("kms", "decrypt", {"CiphertextBlob": b"blob", "KeyId": KEY}, "Decrypt", [("kms:Decrypt", (KEY,))]),
    ("kms", "encrypt", {"KeyId": KEY_ID, "Plaintext": b"p"}, "Encrypt", [("kms:Encrypt", (KEY,))]),
    ("kms", "describe_key", {"KeyId": KEY}, "DescribeKey", [("kms:DescribeKey", (KEY,))]),
    ("kms", "describe_key", {"KeyId": "alias/sluice-alerts"}, "DescribeKey",
     [("kms:DescribeKey", (f"arn:aws:kms:{ARN}:alias/sluice-alerts",))]),
    ("kms", "create_alias", {"AliasName": "alias/sluice-alerts", "TargetKeyId": KEY_ID}, "CreateAlias",
     [("kms:CreateAlias", (f"arn:aws:kms:{ARN}:alias/sluice-alerts", KEY))]),
    ("kms", "put_key_policy", {"KeyId": KEY_ID, "PolicyName": "default", "Policy": "{}"}, "PutKeyPolicy",
     [("kms:PutKeyPolicy", (KEY,))]),
    # ------------------------------------------------------------------ iam / sts
    ("iam", "create_role", {"RoleName": "sluice-role", "AssumeRolePolicyDocument": "{}"}, "CreateRole",
     [("iam:CreateRole", (ROLE,))]),
    ("iam", "create_role", {"RoleName": "r", "Path": "/service-role/", "AssumeRolePolicyDocument": "{}"},
     "CreateRole", [("iam:CreateRole", (f"arn:aws:iam::{ACCOUNT}:role/service-role/r",))]),
    ("iam", "put_role_policy", {"RoleName": "sluice-role", "PolicyName": "p", "PolicyDocument": "{}"},
     "PutRolePolicy", [("iam:PutRolePolicy", (ROLE,))]),
    ("iam", "attach_role_policy",
     {"RoleName": "sluice-role", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, "AttachRolePolicy",
     [("iam:AttachRolePolicy", (ROLE,))]),
    ("iam", "get_role", {"RoleName": "sluice-role"}, "GetRole", [("iam:GetRole", (ROLE,))]),
    ("iam", "create_policy", {"PolicyName": "p", "PolicyDocument": "{}"}, "CreatePolicy",
     [("iam:CreatePolicy", (f"arn:aws:iam::{ACCOUNT}:policy/p",))]),
    ("iam", "create_instance_profile", {"InstanceProfileName": "ip"}, "CreateInstanceProfile",
     [("iam:CreateInstanceProfile", (f"arn:aws:iam::{ACCOUNT}:instance-profile/ip",))]),
    ("iam", "add_role_to_instance_profile", {"InstanceProfileName": "ip", "RoleName": "sluice-role"},
     "AddRoleToInstanceProfile",
     [("iam:AddRoleToInstanceProfile", (f"arn:aws:iam::{ACCOUNT}:instance-profile/ip",)),
      ("iam:PassRole", (ROLE,))]),
    ("sts", "get_caller_identity", {}, "GetCallerIdentity", []),
    ("sts", "assume_role", {"RoleArn": ROLE, "RoleSessionName": "sess"}, "AssumeRole",
     [("sts:AssumeRole", (ROLE,))]),
    # ------------------------------------------------------------------ ec2 / ecr / ssm / cloudformation / cloudwatch
    ("ec2", "describe_subnets", {}, "DescribeSubnets", [("ec2:DescribeSubnets", ("*",))]),
    ("ec2", "describe_security_groups", {"GroupIds": ["sg-1"]}, "DescribeSecurityGroups",
     [("ec2:DescribeSecurityGroups", ("*",))]),
    ("ec2", "create_vpc", {"CidrBlock": "10.0.0.0/16"}, "CreateVpc", [("ec2:CreateVpc", (f"arn:aws:ec2:{ARN}:vpc/*",))]),
    ("ec2", "create_subnet", {"VpcId": "vpc-1", "CidrBlock": "10.0.1.0/24"}, "CreateSubnet",
     [("ec2:CreateSubnet", (f"arn:aws:ec2:{ARN}:subnet/*", f"arn:aws:ec2:{ARN}:vpc/vpc-1"))]),
    ("ec2", "create_security_group", {"GroupName": "g", "Description": "d", "VpcId": "vpc-1"},
     "CreateSecurityGroup",
     [("ec2:CreateSecurityGroup", (f"arn:aws:ec2:{ARN}:security-group/*", f"arn:aws:ec2:{ARN}:vpc/vpc-1"))]),
    ("ecr", "create_repository", {"repositoryName": "sluice/job"}, "CreateRepository",
     [("ecr:CreateRepository", (f"arn:aws:ecr:{ARN}:repository/sluice/job",))]),
    ("ecr", "describe_repositories", {"repositoryNames": ["sluice/job", "other"]}, "DescribeRepositories",
     [("ecr:DescribeRepositories",
       (f"arn:aws:ecr:{ARN}:repository/sluice/job", f"arn:aws:ecr:{ARN}:repository/other"))]),
    ("ssm", "put_parameter", {"Name": "/sluice/config", "Value": "v", "Type": "String"}, "PutParameter",
     [("ssm:PutParameter", (f"arn:aws:ssm:{ARN}:parameter/sluice/config",))]),
    ("ssm", "get_parameter", {"Name": "/sluice/config"}, "GetParameter",
     [("ssm:GetParameter", (f"arn:aws:ssm:{ARN}:parameter/sluice/config",))]),
    ("cloudformation", "describe_stacks", {"StackName": "sluice"}, "DescribeStacks",
     [("cloudformation:DescribeStacks", (f"arn:aws:cloudformation:{ARN}:stack/sluice/*",))]),
    ("cloudformation", "describe_stacks", {}, "DescribeStacks", [("cloudformation:DescribeStacks", ("*",))]),
    ("cloudformation", "list_stacks", {}, "ListStacks", [("cloudformation:ListStacks", ("*",))]),
    ("cloudformation", "describe_stack_resources", {"StackName": "sluice"}, "DescribeStackResources",
     [("cloudformation:DescribeStackResources", (f"arn:aws:cloudformation:{ARN}:stack/sluice/*",))]),
    ("cloudwatch", "put_metric_alarm",
     {"AlarmName": "a", "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 1.0,
      "MetricName": "m", "Namespace": "N", "Period": 60, "Statistic": "Sum"},
     "PutMetricAlarm", [("cloudwatch:PutMetricAlarm", (f"arn:aws:cloudwatch:{ARN}:alarm:a",))]),
    ("cloudwatch", "put_metric_data", {"Namespace": "N", "MetricData": [{"MetricName": "m", "Value": 1.0}]},
     "PutMetricData", [("cloudwatch:PutMetricData", ("*",))]),
    ("cloudwatch", "put_dashboard", {"DashboardName": "sluice", "DashboardBody": "{}"}, "PutDashboard",
     [("cloudwatch:PutDashboard", (f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/sluice",))]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("service", "method", "kwargs", "operation", "expected"),
    CASES,
    ids=[f"{c[0]}.{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_project_operations(
    service: str,
    method: str,
    kwargs: dict[str, Any],
    operation: str,
    expected: list[tuple[str, tuple[str, ...]]],
) -> None:
    op, auths = authorize(service, method, **kwargs)
    assert op.name == operation
    assert summary(auths) == expected


# ---------------------------------------------------------------------------------------- multipart


def test_upload_file_multipart_round() -> None:
    def responder(request: Any) -> AWSResponse:
        url = request.url
        if request.method == "POST" and url.endswith("?uploads"):
            body = b"<InitiateMultipartUploadResult><Bucket>in</Bucket><Key>big.bin</Key><UploadId>u-1</UploadId></InitiateMultipartUploadResult>"
            return fake_response(request, body=body)
        if request.method == "PUT":
            return fake_response(request, headers={"ETag": '"etag"'})
        body = b"<CompleteMultipartUploadResult><Bucket>in</Bucket><Key>big.bin</Key><ETag>e</ETag></CompleteMultipartUploadResult>"
        return fake_response(request, body=body)

    client = make_client("s3", responder)
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, use_threads=False
    )
    client.upload_fileobj(io.BytesIO(b"x" * (11 * 1024 * 1024)), "in", "big.bin", Config=config)
    ops = [raw.identify() for raw in client.sent]
    assert [op.name for op in ops] == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    assert [op.params.get("PartNumber") for op in ops[1:4]] == [1, 2, 3]
    for op in ops:
        assert summary(required(op, region=REGION, account=ACCOUNT)) == [
            ("s3:PutObject", ("arn:aws:s3:::in/big.bin",))
        ]


# ---------------------------------------------------------------------------------------- context


def test_s3_list_context() -> None:
    _, auths = authorize("s3", "list_objects_v2", Bucket="in", Prefix="p/", Delimiter="/", MaxKeys=10)
    assert auths[0].context == {"s3:prefix": "p/", "s3:delimiter": "/", "s3:max-keys": 10}
    _, auths = authorize("s3", "head_bucket", Bucket="in")
    assert auths[0].context == {}


def test_s3_object_context() -> None:
    _, auths = authorize(
        "s3",
        "put_object",
        Bucket="in",
        Key="k",
        ACL="bucket-owner-full-control",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=KEY,
        Tagging="team=data&tier=hot",
    )
    context = auths[0].context
    assert context["s3:x-amz-acl"] == "bucket-owner-full-control"
    assert context["s3:x-amz-server-side-encryption"] == "aws:kms"
    assert context["s3:x-amz-server-side-encryption-aws-kms-key-id"] == KEY
    assert context["s3:RequestObjectTag/team"] == "data"
    assert context["s3:RequestObjectTagKeys"] == ["team", "tier"]
    _, auths = authorize("s3", "get_object", Bucket="in", Key="k", VersionId="v1")
    assert auths[0].context == {"s3:versionid": "v1"}
    _, auths = authorize(
        "s3", "copy_object", Bucket="out", Key="k", CopySource="in/src", MetadataDirective="COPY"
    )
    assert auths[1].context["s3:x-amz-copy-source"] == "in/src"
    assert auths[1].context["s3:x-amz-metadata-directive"] == "COPY"


def test_s3_create_bucket_extras() -> None:
    _, auths = authorize(
        "s3",
        "create_bucket",
        Bucket="in",
        ACL="public-read",
        ObjectOwnership="ObjectWriter",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )
    assert [a.action for a in auths] == [
        "s3:CreateBucket",
        "s3:PutBucketAcl",
        "s3:PutBucketOwnershipControls",
    ]
    assert auths[0].context["s3:locationconstraint"] == "eu-west-1"
    assert auths[0].context["s3:x-amz-acl"] == "public-read"
    assert all(a.resources == ("arn:aws:s3:::in",) for a in auths)


def test_s3_access_point_arn_as_bucket() -> None:
    access_point = f"arn:aws:s3:{ARN}:accesspoint/ap"
    op = Operation("s3", "GetObject", {"Bucket": access_point, "Key": "k"})
    assert summary(required(op, region=REGION, account=ACCOUNT)) == [
        ("s3:GetObject", (f"{access_point}/object/k",))
    ]


def test_batch_share_identifier_and_job_definition_resolver() -> None:
    _, auths = authorize(
        "batch", "submit_job", jobName="j", jobQueue="q", jobDefinition="ingest", shareIdentifier="hi"
    )
    assert auths[0].context == {"batch:ShareIdentifier": "hi"}
    op = capture("batch", "submit_job", jobName="j", jobQueue="q", jobDefinition="ingest").identify()

    def resolver(kind: str, value: str) -> str | None:
        assert (kind, value) == (RESOLVE_BATCH_JOB_DEFINITION, f"arn:aws:batch:{ARN}:job-definition/ingest")
        return f"{value}:4"

    auths = required(op, region=REGION, account=ACCOUNT, resolver=resolver)
    assert auths[0].resources[0] == f"arn:aws:batch:{ARN}:job-definition/ingest:4"


def test_stepfunctions_qualified_state_machine() -> None:
    _, auths = authorize("stepfunctions", "start_execution", stateMachineArn=f"{SM}:prod")
    assert summary(auths) == [("states:StartExecution", (f"{SM}:prod",))]
    assert auths[0].context == {"states:StateMachineQualifier": "prod"}


def test_events_context() -> None:
    _, auths = authorize(
        "events",
        "put_events",
        Entries=[
            {"Source": "sluice", "DetailType": "Run Finished", "Detail": "{}"},
            {"Source": "sluice", "DetailType": "Run Finished", "Detail": "{}"},
            {"Source": "other", "DetailType": "x", "Detail": "{}"},
        ],
    )
    assert [a.context for a in auths] == [
        {"events:source": "sluice", "events:detail-type": "Run Finished"},
        {"events:source": "other", "events:detail-type": "x"},
    ]
    _, auths = authorize(
        "events",
        "put_rule",
        Name="r",
        EventPattern='{"source": ["aws.batch"], "detail-type": ["Batch Job State Change"]}',
    )
    assert auths[0].context == {
        "events:source": ["aws.batch"],
        "events:detail-type": ["Batch Job State Change"],
    }
    _, auths = authorize("events", "put_targets", Rule="r", Targets=[{"Id": "1", "Arn": SM, "RoleArn": ROLE}])
    assert summary(auths) == [
        ("events:PutTargets", (f"arn:aws:events:{ARN}:rule/r",)),
        ("iam:PassRole", (ROLE,)),
    ]
    assert auths[0].context == {"events:TargetArn": [SM]}
    assert auths[1].context == {"iam:PassedToService": "events.amazonaws.com"}


def test_kms_aliases_and_context() -> None:
    op = capture(
        "kms", "encrypt", KeyId="alias/alerts", Plaintext=b"p", EncryptionContext={"app": "sluice"}
    ).identify()
    auths = required(op, region=REGION, account=ACCOUNT)
    assert auths[0].resources == (f"arn:aws:kms:{ARN}:alias/alerts",)
    assert auths[0].context == {
        "kms:RequestAlias": "alias/alerts",
        "kms:EncryptionContextKeys": ["app"],
        "kms:EncryptionContext:app": "sluice",
    }
    calls: list[tuple[str, str]] = []

    def resolver(kind: str, value: str) -> str | None:
        calls.append((kind, value))
        return KEY

    auths = required(op, region=REGION, account=ACCOUNT, resolver=resolver)
    assert calls == [(RESOLVE_KMS_ALIAS, f"arn:aws:kms:{ARN}:alias/alerts")]
    assert auths[0].resources == (KEY,)
    assert auths[0].context["kms:RequestAlias"] == "alias/alerts"


def test_kms_decrypt_without_key_id() -> None:
    op = capture("kms", "decrypt", CiphertextBlob=b"blob").identify()
    auths = required(op, region=REGION, account=ACCOUNT)
    assert summary(auths) == [("kms:Decrypt", ("*",))]
    assert auths[0].unresolved == ("key",)
    auths = required(
        op,
        region=REGION,
        account=ACCOUNT,
        resolver=lambda kind, value: KEY if kind == RESOLVE_KMS_CIPHERTEXT else None,
    )
    assert summary(auths) == [("kms:Decrypt", (KEY,))]


def test_kms_create_key_context() -> None:
    _, auths = authorize(
        "kms",
        "create_key",
        KeySpec="SYMMETRIC_DEFAULT",
        KeyUsage="ENCRYPT_DECRYPT",
        Tags=[{"TagKey": "a", "TagValue": "b"}],
    )
    assert auths[0].context["kms:KeySpec"] == "SYMMETRIC_DEFAULT"
    assert auths[0].context["kms:KeyUsage"] == "ENCRYPT_DECRYPT"
    assert auths[0].context["aws:RequestTag/a"] == "b"


def test_iam_paths_resolver_and_tags() -> None:
    op = capture("iam", "get_role", RoleName="r").identify()

    def resolver(kind: str, value: str) -> str | None:
        assert kind == RESOLVE_IAM_PATH
        return value.replace("role/", "role/service-role/")

    assert required(op, region=REGION, account=ACCOUNT, resolver=resolver)[0].resources == (
        f"arn:aws:iam::{ACCOUNT}:role/service-role/r",
    )
    _, auths = authorize(
        "iam",
        "create_role",
        RoleName="r",
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": "team", "Value": "data"}],
    )
    assert auths[0].context == {"aws:RequestTag/team": "data", "aws:TagKeys": ["team"]}
    _, auths = authorize(
        "iam", "attach_role_policy", RoleName="r", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess"
    )
    assert auths[0].context == {"iam:PolicyARN": "arn:aws:iam::aws:policy/ReadOnlyAccess"}


def test_sts_assume_role_with_session_tags() -> None:
    _, auths = authorize(
        "sts",
        "assume_role",
        RoleArn=ROLE,
        RoleSessionName="sess",
        ExternalId="ext-1",
        Tags=[{"Key": "k", "Value": "v"}],
    )
    assert summary(auths) == [("sts:AssumeRole", (ROLE,)), ("sts:TagSession", (ROLE,))]
    assert auths[0].context["sts:ExternalId"] == "ext-1"
    assert auths[0].context["sts:RoleSessionName"] == "sess"


def test_service_specific_context_from_parameters() -> None:
    _, auths = authorize(
        "sns", "subscribe", TopicArn=TOPIC, Protocol="sqs", Endpoint=f"arn:aws:sqs:{ARN}:jobs"
    )
    assert auths[0].context == {"sns:Endpoint": f"arn:aws:sqs:{ARN}:jobs", "sns:Protocol": "sqs"}
    _, auths = authorize(
        "cloudwatch", "put_metric_data", Namespace="Sluice", MetricData=[{"MetricName": "m", "Value": 1.0}]
    )
    assert auths[0].context == {"cloudwatch:namespace": "Sluice"}
    _, auths = authorize("ssm", "put_parameter", Name="/p", Value="v", Type="String", Overwrite=True)
    assert auths[0].context == {"ssm:Overwrite": True}
    _, auths = authorize("ec2", "describe_subnets")
    assert auths[0].context == {"ec2:Region": REGION}


# ---------------------------------------------------------------------------------------- SAR plumbing


def test_iam_prefixes_come_from_the_dataset() -> None:
    assert iam_prefix("stepfunctions") == "states"
    assert iam_prefix("cloudwatch") == "cloudwatch"
    assert iam_prefix("logs") == "logs"
    assert iam_prefix("efs") == "elasticfilesystem"
    assert iam_prefix("s3") == "s3"


def test_known_condition_keys() -> None:
    keys = known_condition_keys("s3:ListBucket")
    assert {"s3:prefix", "s3:delimiter", "s3:max-keys"} <= keys
    assert "batch:shareidentifier" in known_condition_keys("batch:SubmitJob")
    assert "aws:requesttag/${tagkey}" in known_condition_keys("iam:CreateRole")
    assert known_condition_keys("s3:NoSuchAction") == frozenset()
    assert known_condition_keys("nosuchservice:Foo") == frozenset()
    assert all(k == k.lower() for k in known_condition_keys("kms:Encrypt"))


def test_action_name_and_unknown_actions() -> None:
    assert action_name(Operation("s3", "HeadObject", {"VersionId": "v"})) == "s3:GetObjectVersion"
    assert action_name(Operation("sqs", "SendMessageBatch", {})) == "sqs:SendMessage"
    assert action_name(Operation("sns", "PublishBatch", {})) == "sns:Publish"
    assert action_name(Operation("lambda", "InvokeWithResponseStream", {})) == "lambda:InvokeFunction"
    # An operation the SAR does not know is evaluated under its own name on "*".
    auths = required(Operation("batch", "CancelJobs", {}), region=REGION, account=ACCOUNT)
    assert summary(auths) == [("batch:CancelJobs", ("*",))]


def test_unresolvable_required_resource_is_star() -> None:
    auths = required(Operation("lambda", "Invoke", {}), region=REGION, account=ACCOUNT)
    assert summary(auths) == [("lambda:InvokeFunction", ("*",))]
    assert auths[0].unresolved == ("function",)


def test_partition_and_unknown_operation_error_are_exported() -> None:
    op = capture("sns", "publish", TopicArn="arn:aws-cn:sns:cn-north-1:1:t", Message="m").identify()
    assert required(op, region="cn-north-1", account="1", partition="aws-cn")[0].resources == (
        "arn:aws-cn:sns:cn-north-1:1:t",
    )
    op = capture("sns", "create_topic", Name="t").identify()
    assert required(op, region="cn-north-1", account="1", partition="aws-cn")[0].resources == (
        "arn:aws-cn:sns:cn-north-1:1:t",
    )
    assert issubclass(UnknownOperationError, LookupError)
    with pytest.raises(UnknownOperationError):
        required(Operation("s3", "NoSuchOperation", {}), region=REGION, account=ACCOUNT)
    with pytest.raises(UnknownOperationError):
        required(Operation("no-such-service", "Foo", {}), region=REGION, account=ACCOUNT)
