"""Template errors name the resource (or section) at fault, before anything is created.

No endpoint is needed: every error here is found while the template is processed, so the
endpoint URL points at a closed port on purpose."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sluice.local.deploy import DeployError, deploy_template

NOWHERE = "http://127.0.0.1:9"


def deploy_text(tmp_path: Path, text: str, **kwargs) -> object:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return deploy_template(path, endpoint_url=NOWHERE, **kwargs)


def test_bad_ref_names_the_resource(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Resources:
              Queue:
                Type: AWS::SQS::Queue
                Properties:
                  QueueName: !Ref Nope
            """,
        )
    assert exc.value.where == "Queue"
    assert "Unresolved resource dependencies [Nope]" in str(exc.value)


def test_bad_sub_variable_and_getatt_target(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Resources:
              Topic:
                Type: AWS::SNS::Topic
                Properties:
                  TopicName: !Sub "${Missing.Arn}-topic"
            """,
        )
    assert exc.value.where == "Topic" and "[Missing]" in exc.value.reason


def test_missing_and_invalid_parameters(tmp_path):
    template = """
        Parameters:
          Stage: {Type: String, AllowedValues: [dev, prod]}
          Size: {Type: Number, Default: 5, MaxValue: 10}
        Resources:
          Queue: {Type: AWS::SQS::Queue}
        """
    with pytest.raises(DeployError) as exc:
        deploy_text(tmp_path, template)
    assert exc.value.where == "Parameters" and "['Stage'] must have values" in exc.value.reason
    with pytest.raises(DeployError) as exc:
        deploy_text(tmp_path, template, parameter_overrides={"Stage": "qa"})
    assert "AllowedValues" in exc.value.reason and "'qa'" in exc.value.reason
    with pytest.raises(DeployError) as exc:
        deploy_text(tmp_path, template, parameter_overrides={"Stage": "dev", "Size": "11"})
    assert "Size" in exc.value.reason
    with pytest.raises(DeployError) as exc:
        deploy_text(tmp_path, template, parameter_overrides={"Stage": "dev", "Other": "x"})
    assert "['Other'] do not exist" in exc.value.reason


def test_unsupported_intrinsic(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Resources:
              Queue:
                Type: AWS::SQS::Queue
                Properties:
                  QueueName: !ImportValue shared-queue-name
            """,
        )
    assert exc.value.where == "Queue" and "Fn::ImportValue" in exc.value.reason


def test_unknown_attribute_of_resource(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Resources:
              Board:
                Type: AWS::CloudWatch::Dashboard
                Properties: {DashboardBody: "{}"}
              Queue:
                Type: AWS::SQS::Queue
                Properties:
                  QueueName: !GetAtt Board.Nope
            """,
        )
    assert exc.value.where == "Queue"
    assert "does not support attribute type Nope" in exc.value.reason


def test_reference_to_resource_whose_condition_is_false(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Conditions:
              Never: !Equals [a, b]
            Resources:
              Hidden:
                Type: AWS::SQS::Queue
                Condition: Never
              Visible:
                Type: AWS::SQS::Queue
                Properties:
                  QueueName: !GetAtt Hidden.QueueName
            """,
        )
    assert exc.value.where == "Visible" and "Condition is false" in exc.value.reason


def test_unknown_condition_and_circular_dependency(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Resources:
              Queue:
                Type: AWS::SQS::Queue
                Properties:
                  QueueName: !If [NoSuchCondition, a, b]
            """,
        )
    assert exc.value.where == "Queue" and "NoSuchCondition" in exc.value.reason
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Resources:
              A:
                Type: Custom::Thing
                Properties: {Other: !Ref B}
              B:
                Type: Custom::Thing
                DependsOn: A
            """,
        )
    assert "circular dependency" in exc.value.reason and exc.value.where in ("A", "B")


def test_sam_transform_error_names_the_function(tmp_path):
    with pytest.raises(DeployError) as exc:
        deploy_text(
            tmp_path,
            """
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  Handler: app.handler
                  Runtime: python3.13
            """,
        )
    assert exc.value.where == "Fn" and "SAM transform" in exc.value.reason


def test_unparseable_template(tmp_path):
    with pytest.raises(DeployError):
        deploy_text(tmp_path, "Resources: [unclosed\n")
    with pytest.raises(DeployError) as exc:
        deploy_text(tmp_path, "Description: nothing\n")
    assert "at least one Resources member" in str(exc.value)


def test_not_emulated_only_template_deploys_without_calls(tmp_path):
    stack = deploy_text(
        tmp_path,
        """
        Resources:
          Board:
            Type: AWS::CloudWatch::Dashboard
            Properties: {DashboardBody: "{}"}
        Outputs:
          BoardName:
            Value: !Ref Board
          BoardArn:
            Value: !GetAtt Board.Arn
        """,
    )
    assert stack.not_emulated == [("Board", "AWS::CloudWatch::Dashboard")]
    assert stack.outputs["BoardName"] == stack.resources["Board"]
    assert (
        stack.outputs["BoardArn"] == f"arn:aws:cloudwatch::123456789012:dashboard/{stack.resources['Board']}"
    )
