"""Intrinsic functions and conditions, evaluated without any AWS calls."""

from __future__ import annotations

import pytest

from sluice.local.deploy import Created, DeployError
from sluice.local.deploy.cfnyaml import loads_template
from sluice.local.deploy.intrinsics import NO_VALUE, Evaluator
from sluice.local.deploy.parameters import pseudo_parameters, resolve_parameters


def evaluator(conditions: dict | None = None, parameters: dict | None = None) -> Evaluator:
    ev = Evaluator(
        parameters=parameters or {"Stage": "dev", "Subnets": ["subnet-1", "subnet-2"]},
        pseudo=pseudo_parameters("eu-west-1", "111122223333", "stack"),
        conditions=conditions or {},
        mappings={"Sizes": {"dev": {"Memory": 128}, "prod": {"Memory": 1024}}},
        resources={"Bucket": {"Type": "AWS::S3::Bucket"}, "Queue": {"Type": "AWS::SQS::Queue"}},
        get_azs=lambda region: [f"{region}a", f"{region}b"],
    )
    ev.created["Bucket"] = Created("my-bucket", {"Arn": "arn:aws:s3:::my-bucket"})
    return ev


def test_ref_sub_join_select_split():
    ev = evaluator()
    assert ev.evaluate({"Ref": "Bucket"}, "X") == "my-bucket"
    assert ev.evaluate({"Ref": "AWS::Region"}, "X") == "eu-west-1"
    assert ev.evaluate({"Ref": "Subnets"}, "X") == ["subnet-1", "subnet-2"]
    assert ev.evaluate({"Fn::Sub": "${Bucket.Arn}/*:${AWS::AccountId}:${!Keep}"}, "X") == (
        "arn:aws:s3:::my-bucket/*:111122223333:${Keep}"
    )
    assert ev.evaluate({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Bucket"}}]}, "X") == "my-bucket-dev"
    assert ev.evaluate({"Fn::Join": ["|", {"Ref": "Subnets"}]}, "X") == "subnet-1|subnet-2"
    assert ev.evaluate({"Fn::Select": ["1", {"Fn::Split": [",", "a,b,c"]}]}, "X") == "b"
    assert ev.evaluate({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}, "X") == 128
    assert ev.evaluate({"Fn::FindInMap": ["Sizes", "qa", "Memory", {"DefaultValue": 64}]}, "X") == 64
    assert ev.evaluate({"Fn::GetAZs": ""}, "X") == ["eu-west-1a", "eu-west-1b"]
    assert ev.evaluate({"Fn::Base64": "hi"}, "X") == "aGk="
    assert ev.evaluate({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "X") == ["10.0.0.0/24", "10.0.1.0/24"]
    assert ev.evaluate({"Ref": "AWS::StackId"}, "X").startswith(
        "arn:aws:cloudformation:eu-west-1:111122223333:stack/stack/"
    )
    assert ev.evaluate({"Ref": "AWS::URLSuffix"}, "X") == "amazonaws.com"


def test_conditions_and_no_value():
    ev = evaluator(
        conditions={
            "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
            "IsProd": {"Fn::Not": [{"Condition": "IsDev"}]},
            "Either": {"Fn::Or": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]},
            "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]},
        }
    )
    assert ev.all_conditions() == {"IsDev": True, "IsProd": False, "Either": True, "Both": False}
    value = {
        "Keep": {"Fn::If": ["IsDev", "dev-value", "prod-value"]},
        "Drop": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}],
    }
    assert ev.evaluate(value, "X") == {"Keep": "dev-value", "List": ["a"]}
    assert ev.evaluate({"Ref": "AWS::NoValue"}, "X") is NO_VALUE


def test_circular_conditions_and_type_errors():
    ev = evaluator(conditions={"A": {"Condition": "B"}, "B": {"Condition": "A"}})
    with pytest.raises(DeployError) as exc:
        ev.all_conditions()
    assert "circular condition" in exc.value.reason
    ev = evaluator()
    with pytest.raises(DeployError) as exc:
        ev.evaluate({"Fn::Join": [",", "not-a-list"]}, "Res")
    assert exc.value.where == "Res"
    with pytest.raises(DeployError) as exc:
        ev.evaluate({"Fn::Select": [5, ["a"]]}, "Res")
    assert "cannot select index 5" in exc.value.reason


def test_references_follow_the_taken_branch():
    ev = evaluator(conditions={"Off": {"Fn::Equals": ["a", "b"]}})
    value = {
        "A": {"Fn::If": ["Off", {"Ref": "Queue"}, {"Fn::Sub": "${Bucket.Arn}"}]},
        "B": {"Fn::GetAtt": ["Bucket", "Arn"]},
    }
    assert ev.references(value, "X") == {"Bucket"}


def test_yaml_short_forms():
    template = loads_template(
        """
        Resources:
          R:
            Type: AWS::SQS::Queue
            Properties:
              A: !GetAtt Thing.Endpoint.Address
              B: !Sub ["${x}", {x: !Ref Other}]
              C: !If [Cond, !Ref AWS::NoValue, !Join ["", [a, !Select [0, !GetAZs ""]]]]
              Date: 2012-10-17
        """
    )
    props = template["Resources"]["R"]["Properties"]
    assert props["A"] == {"Fn::GetAtt": ["Thing", "Endpoint.Address"]}
    assert props["B"] == {"Fn::Sub": ["${x}", {"x": {"Ref": "Other"}}]}
    assert props["C"]["Fn::If"][2] == {"Fn::Join": ["", ["a", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}]]}
    assert props["Date"] == "2012-10-17"


def test_parameter_types_and_ssm_values():
    declared = {
        "Subnets": {"Type": "List<AWS::EC2::Subnet::Id>", "Default": "subnet-1, subnet-2"},
        "Image": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/images/job"},
        "Zones": {"Type": "AWS::SSM::Parameter::Value<List<String>>", "Default": "/zones"},
        "Count": {"Type": "Number", "Default": 3, "MinValue": 1},
        "Flag": {"Type": "String", "Default": True, "AllowedValues": ["true", "false"]},
    }
    ssm = {"/images/job": "repo:tag", "/zones": "a,b"}
    values = resolve_parameters(declared, {"Count": "4"}, ssm.__getitem__)
    assert values == {
        "Subnets": ["subnet-1", "subnet-2"],
        "Image": "repo:tag",
        "Zones": ["a", "b"],
        "Count": "4",
        "Flag": "true",
    }
    with pytest.raises(DeployError) as exc:
        resolve_parameters(declared, {"Count": "zero"}, ssm.__getitem__)
    assert "must be a number" in exc.value.reason
