"""moto's own AWS Batch tests against the local endpoint, in moto's server mode.

The tests come from moto's pinned sdist, unpacked at test time (`make peer` fetches it; the test
fetches it with pip otherwise). They run in a subprocess (`TEST_SERVER_MODE=true`, the endpoint in
`TEST_SERVER_MODE_ENDPOINT`, Docker-marked tests skipped) against a LocalCloud started with
`allow_reset=True` and moto's test key as the administrator's. Every failure must be listed in
`expected_failures.txt` with the AWS page that contradicts moto's expectation, and every listed
test must still fail, so the list stays honest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.local.cloud import LocalCloud
from tests.local.batch.peer.helpers import ROOT, expected_failures, run_suite, unpack

# moto's server-mode clients sign with the key its mock sets in the environment.
MOTO_TEST_KEY = ("FOOBARKEY", "FOOBARSECRET")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    try:
        return unpack(tmp_path)
    except Exception as error:  # no network and no cached sdist
        pytest.skip(f"moto's sdist is not available: {error}")


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    # moto's test package turns EC2's default AMIs off for its tests; in server mode the server's
    # process decides, and loading them for every reset is most of a reset's time.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with LocalCloud(project_root=ROOT, fixed_admin_key=MOTO_TEST_KEY, allow_reset=True) as cloud:
        yield cloud


# 97 tests, each after a whole reset of the cloud (moto's IAM reloads AWS's managed policies
# for the first request after each): 4-8 minutes, by the machine's load.
@pytest.mark.timeout(900)
def test_moto_batch_suite_against_the_local_endpoint(project: Path, cloud: LocalCloud) -> None:
    outcome = run_suite(project, cloud.environment, timeout=870)
    listed = expected_failures()
    assert outcome.passed or outcome.failed, "moto's suite ran no test"
    unexpected = {test: message for test, message in outcome.failed.items() if test not in listed}
    now_passing = sorted(test for test in listed if test in outcome.passed)
    missing = sorted(test for test in listed if test not in outcome.passed and test not in outcome.failed)
    assert not unexpected, "unexpected failures:\n" + "\n".join(
        f"{t}: {m}" for t, m in sorted(unexpected.items())
    )
    assert not now_passing, (
        "listed as expected failures but passing (remove them from the list):\n" + "\n".join(now_passing)
    )
    assert not missing, "listed tests that did not run:\n" + "\n".join(missing)
