"""What `sluice local up` keeps between reads of template.yaml: the SAM translation on disk, the
parsed template in memory. A cached answer must be the same data as a fresh one."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.local.deploy import cfnyaml, sam

TEMPLATE = {
    "Transform": "AWS::Serverless-2016-10-31",
    "Parameters": {"Stage": {"Type": "String"}},
    "Resources": {
        "Fn": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "fn/", "Handler": "app.handler", "Runtime": "python3.11"},
        }
    },
}


def _translate(base_dir: Path, stage: str = "dev") -> dict:
    return sam.apply_transforms(
        TEMPLATE, base_dir=base_dir, region="us-east-1", parameter_values={"Stage": stage}
    )


def test_a_cached_translation_is_the_translators_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_CACHE_DIR", str(tmp_path / "cache"))
    fresh = _translate(tmp_path)
    assert len(list((tmp_path / "cache" / "sam").glob("*.json"))) == 1

    def no_translator(*args: object) -> dict:
        raise AssertionError("translated again although the cache holds the answer")

    monkeypatch.setattr(sam, "_translate", no_translator)
    cached = _translate(tmp_path)
    assert cached == fresh
    assert cached["Resources"]["Fn"]["Properties"]["Code"] == str((tmp_path / "fn").resolve())
    cached["Resources"].clear()  # callers own what they get
    assert _translate(tmp_path) == fresh


def test_other_parameters_translate_again_and_paths_come_from_this_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_CACHE_DIR", str(tmp_path / "cache"))
    _translate(tmp_path)
    _translate(tmp_path, stage="prod")
    assert len(list((tmp_path / "cache" / "sam").glob("*.json"))) == 2
    # Local paths are swapped for placeholders before the key is made and put back after.
    moved = _translate(tmp_path / "elsewhere")
    assert len(list((tmp_path / "cache" / "sam").glob("*.json"))) == 2
    assert moved["Resources"]["Fn"]["Properties"]["Code"] == str((tmp_path / "elsewhere" / "fn").resolve())


def test_the_cache_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _translate(tmp_path)
    assert not list(tmp_path.rglob("*.json"))


def test_a_damaged_cache_file_is_translated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_CACHE_DIR", str(tmp_path / "cache"))
    fresh = _translate(tmp_path)
    (entry,) = (tmp_path / "cache" / "sam").glob("*.json")
    entry.write_text("{not json")
    assert _translate(tmp_path) == fresh


def test_each_parse_of_the_same_text_is_a_new_dict():
    text = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Ref Name\n"
    first = cfnyaml.loads_template(text)
    first["Resources"]["Topic"]["Properties"]["TopicName"] = "changed"
    second = cfnyaml.loads_template(text)
    assert second["Resources"]["Topic"]["Properties"]["TopicName"] == {"Ref": "Name"}


def test_a_template_that_does_not_parse_still_fails_every_time():
    for _ in range(2):
        with pytest.raises(cfnyaml.DeployError):
            cfnyaml.loads_template("Resources: [unclosed")
