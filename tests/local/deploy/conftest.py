"""Fixtures for the deployer tests: a local endpoint (moto + the Lambda runtime)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice.local.deploy import DeployedStack, deploy_template
from tests.local.awslambda.helpers import LocalEndpoint
from tests.local.deploy.helpers import APP


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    local = LocalEndpoint(tmp_path_factory.mktemp("deploy"), retry_delays=(0.2, 0.4))
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def app_stack(endpoint: LocalEndpoint) -> DeployedStack:
    return deploy_template(APP / "template.yaml", endpoint_url=endpoint.url, stack_name="deploytest")
