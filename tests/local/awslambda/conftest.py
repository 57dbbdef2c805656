"""Fixtures for the Lambda runtime tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.local.awslambda.helpers import ROLE, LocalEndpoint, handler_zip


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    local = LocalEndpoint(tmp_path_factory.mktemp("lambda"), retry_delays=(0.2, 0.4))
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def make_function(endpoint: LocalEndpoint) -> Callable[..., str]:
    """Create a function from the fixture handlers; returns its (unique) name."""

    def make(handler: str, **config: Any) -> str:
        name = f"fn-{handler.replace('.', '-')}-{uuid.uuid4().hex[:8]}"
        endpoint.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": handler_zip()},
            **config,
        )
        return name

    return make
