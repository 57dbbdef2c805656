"""One local cloud with the real template deployed, shared by the end-to-end tests of a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.aws import Clients
from tests.helpers import ROOT
from tests.pipeline.helpers import Pipeline


# Package scope: moto's state is process-wide, so only one LocalCloud may run in a process; the
# local cloud's own tests (tests/local) start theirs after this one has stopped.
@pytest.fixture(scope="package")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from sluice.cli.localrun import start_and_deploy
    from sluice.local.cloud import LocalCloud

    state = tmp_path_factory.mktemp("local-cloud")
    with LocalCloud(project_root=ROOT, state_dir=Path(state)) as cloud:
        # The failure tests inject faults (fail_shards, hang_shards), which the stack must allow.
        outputs = start_and_deploy(cloud, {"AllowFaultInjection": "true"})
        yield Pipeline(cloud=cloud, outputs=outputs, clients=Clients(endpoint_url=cloud.endpoint_url))
