"""The table of per-type creators: CloudFormation resource type -> function creating it."""

from __future__ import annotations

from sluice.local.deploy.creators import (
    awslambda,
    batch,
    ec2,
    ecr,
    events,
    iam,
    kms,
    logs,
    s3,
    sns,
    sqs,
    ssm,
    stepfunctions,
)
from sluice.local.deploy.creators.base import CreateContext, Creator

CREATORS: dict[str, Creator] = {
    **s3.CREATORS,
    **sns.CREATORS,
    **sqs.CREATORS,
    **kms.CREATORS,
    **iam.CREATORS,
    **logs.CREATORS,
    **awslambda.CREATORS,
    **stepfunctions.CREATORS,
    **events.CREATORS,
    **batch.CREATORS,
    **ecr.CREATORS,
    **ec2.CREATORS,
    **ssm.CREATORS,
}

__all__ = ["CREATORS", "CreateContext", "Creator"]
