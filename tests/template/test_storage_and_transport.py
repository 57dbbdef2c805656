"""Template guarantees about what is kept and how it is reached (production safety)."""

from __future__ import annotations

from typing import Any

from tests.helpers import load_template

TEMPLATE = load_template()


def resource(logical_id: str) -> dict[str, Any]:
    return dict(TEMPLATE["Resources"][logical_id])


def test_replaced_input_versions_expire_but_current_uploads_never_do():
    rules = resource("InputBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [rule for rule in rules if "NoncurrentVersionExpiration" in rule]
    assert len(expiring) == 1 and expiring[0]["Status"] == "Enabled"
    assert expiring[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == {
        "Ref": "InputNoncurrentVersionDays"
    }
    # Nothing expires current versions: what a user uploaded and still sees is never removed.
    assert not any("ExpirationInDays" in rule or "ExpirationDate" in rule for rule in rules)
    assert TEMPLATE["Parameters"]["InputNoncurrentVersionDays"]["MinValue"] >= 1


def test_the_alerts_topic_refuses_publishing_without_tls():
    statements = resource("AlertsTopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_ec2_mode_instances_in_the_stack_built_vpc_can_reach_ecs_and_ecr():
    # No NAT gateway in the minimal VPC: EC2 container instances need a public IP to reach the
    # ECS/ECR endpoints, Fargate tasks get theirs from the job definitions' AssignPublicIp.
    for subnet in ("PublicSubnetA", "PublicSubnetB"):
        mapping = resource(subnet)["Properties"]["MapPublicIpOnLaunch"]
        assert mapping == {"Fn::If": ["UseEc2", True, False]}
    assert TEMPLATE["Conditions"]["UseEc2"] == {"Fn::Equals": [{"Ref": "ComputeMode"}, "EC2"]}
