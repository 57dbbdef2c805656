"""Botocore's data files parsed once for every boto3 session while a local cloud runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import session as botocore_session
from botocore.loaders import JSONFileLoader
from moto.core import utils as moto_utils

from sluice.local.wire import botodata


@pytest.fixture
def shared() -> Iterator[None]:
    botodata.install()
    yield
    botodata.uninstall()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every data file botocore parses from disk."""
    seen: list[str] = []
    original = JSONFileLoader._load_file

    def counted(self: Any, full_path: str, open_method: Any) -> Any:
        seen.append(full_path)
        return original(self, full_path, open_method)

    monkeypatch.setattr(JSONFileLoader, "_load_file", counted)
    return seen


def _loader(session: boto3.session.Session) -> Any:
    return session._session.get_component("data_loader")


def test_a_second_session_parses_nothing_and_gets_its_own_copy(shared, parses):
    first, second = boto3.session.Session(), boto3.session.Session()
    model = _loader(first).load_service_model("sqs", "service-2")
    assert any("sqs" in path for path in parses)
    parses.clear()
    model["operations"]["SendMessage"]["http"]["requestUri"] = "/changed"
    again = _loader(second).load_service_model("sqs", "service-2")
    assert parses == []
    assert again["operations"]["SendMessage"]["http"]["requestUri"] == "/"
    assert _loader(first) is not _loader(second), "each session keeps its own loader and cache"


def test_an_s3_client_leaves_the_model_others_read_untouched(shared):
    # botocore strips "/{Bucket}" from S3's request URIs in place when it makes the client class.
    boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    model = botocore_session.get_session().get_service_model("s3")
    assert model.operation_model("PutObject").http["requestUri"] == "/{Bucket}/{Key+}"


def test_moto_shares_one_loader(shared):
    assert moto_utils.create_loader() is moto_utils.create_loader()


def test_uninstall_restores_botocore_and_moto(parses):
    botodata.install()
    botodata.uninstall()
    _loader(boto3.session.Session()).load_service_model("sqs", "service-2")
    parses.clear()
    _loader(boto3.session.Session()).load_service_model("sqs", "service-2")
    assert any("sqs" in path for path in parses), "a new session parses again without the sharing"
    assert moto_utils.create_loader() is not moto_utils.create_loader()
