"""dependsOn (jobs, children, arrays, SEQUENTIAL, N_TO_N) and array parents' status summaries."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(20)


def test_dependent_waits_then_runs(batch):
    batch.basic()
    first = batch.submit("first")
    second = batch.submit("second", dependsOn=[{"jobId": first}])
    batch.wait(second, "PENDING")
    assert batch.status_now(second) == "PENDING"
    batch.process(first).exit(0)
    batch.wait(second, "RUNNING")
    assert batch.events.statuses(second) == ["PENDING", "RUNNABLE", "STARTING", "RUNNING"]
    assert batch.describe(second)["dependsOn"] == [{"jobId": first}]


def test_failed_dependency_fails_the_chain(batch):
    batch.basic()
    first = batch.submit("first")
    second = batch.submit("second", dependsOn=[{"jobId": first}])
    third = batch.submit("third", dependsOn=[{"jobId": second}])
    # Both taken in (PENDING) before first fails; a job taken in after its dependency failed
    # goes straight to FAILED (test_finished_dependencies_at_submission).
    batch.wait(third, "PENDING")
    batch.process(first).exit(1)
    for job in (second, third):
        assert batch.wait(job, "FAILED")["statusReason"] == "Dependent Job failed"
        assert batch.events.statuses(job) == ["PENDING", "FAILED"]
    assert [p.job_id for p in batch.executor.launched] == [first]


def test_finished_dependencies_at_submission(batch):
    batch.basic()
    good, bad = batch.submit("good"), batch.submit("bad")
    batch.process(good).exit(0)
    batch.process(bad).exit(2)
    batch.wait(good, "SUCCEEDED")
    batch.wait(bad, "FAILED")
    after_good = batch.submit(dependsOn=[{"jobId": good}])
    after_bad = batch.submit(dependsOn=[{"jobId": bad}])
    assert batch.events.statuses(after_good)[:1] == ["RUNNABLE"]
    assert batch.wait(after_bad, "FAILED")["statusReason"] == "Dependent Job failed"


def test_waits_for_every_dependency(batch):
    batch.basic()
    a, b = batch.submit("a"), batch.submit("b")
    c = batch.submit("c", dependsOn=[{"jobId": a}, {"jobId": b}])
    # c stays SUBMITTED until a scheduler pass takes it in; that pass may come after a's launch.
    batch.wait(c, "PENDING")
    batch.process(a).exit(0)
    batch.wait(a, "SUCCEEDED")
    assert batch.status_now(c) == "PENDING"
    batch.process(b).exit(0)
    batch.wait(c, "RUNNING")


def test_depending_on_an_array_waits_for_all_children(batch):
    batch.basic()
    array = batch.submit("array", arrayProperties={"size": 3})
    after = batch.submit("after", dependsOn=[{"jobId": array}])
    for index in range(3):
        batch.process(f"{array}:{index}").exit(0)
    batch.wait(array, "SUCCEEDED")
    batch.wait(after, "RUNNING")
    child_dependent = batch.submit("child-dependent", dependsOn=[{"jobId": f"{array}:1"}])
    batch.wait(child_dependent, "RUNNABLE")


def test_array_children_and_parent_summary(batch):
    batch.basic(max_vcpus=2)
    parent = batch.submit("array", arrayProperties={"size": 4})
    batch.executor.wait_launched(2)
    batch.wait(f"{parent}:1", "RUNNING")
    detail = batch.describe(parent)
    assert detail["status"] == "PENDING"
    assert detail["arrayProperties"]["size"] == 4
    summary = detail["arrayProperties"]["statusSummary"]
    assert (summary["RUNNING"], summary["RUNNABLE"], summary["SUCCEEDED"]) == (2, 2, 0)
    child = batch.describe(f"{parent}:3")
    assert child["arrayProperties"] == {"index": 3}
    assert child["jobId"] == f"{parent}:3"
    for index in range(4):
        batch.process(f"{parent}:{index}").exit(0)
    done = batch.wait(parent, "SUCCEEDED")
    assert done["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 4
    assert done["startedAt"] <= done["stoppedAt"]
    # Parents are only ever SUBMITTED, PENDING, SUCCEEDED or FAILED (array_jobs.html).
    assert batch.events.statuses(parent) == ["PENDING", "SUCCEEDED"]
    env = batch.executor.launched[2].spec.env
    assert (env["AWS_BATCH_JOB_ID"], env["AWS_BATCH_JOB_ARRAY_INDEX"], env["AWS_BATCH_JOB_ARRAY_SIZE"]) == (
        f"{parent}:2",
        "2",
        "4",
    )


def test_array_fails_when_any_child_fails(batch):
    batch.basic()
    parent = batch.submit("array", arrayProperties={"size": 3})
    for index, code in enumerate((0, 1, 0)):
        batch.process(f"{parent}:{index}").exit(code)
    done = batch.wait(parent, "FAILED")
    assert done["arrayProperties"]["statusSummary"]["FAILED"] == 1
    assert done["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2


def test_sequential_children_run_one_after_another(batch):
    batch.basic()
    parent = batch.submit("seq", arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    for index in range(3):
        process = batch.process(f"{parent}:{index}")
        assert len(batch.executor.running()) == 1
        if index < 2:
            assert batch.status_now(f"{parent}:{index + 1}") == "PENDING"
        process.exit(0)
    batch.wait(parent, "SUCCEEDED")
    assert [p.job_id for p in batch.executor.launched] == [f"{parent}:{i}" for i in range(3)]


def test_sequential_failure_fails_the_rest(batch):
    batch.basic()
    parent = batch.submit("seq", arrayProperties={"size": 4}, dependsOn=[{"type": "SEQUENTIAL"}])
    batch.process(f"{parent}:0").exit(0)
    batch.process(f"{parent}:1").exit(3)
    for index in (2, 3):
        assert batch.wait(f"{parent}:{index}", "FAILED")["statusReason"] == "Dependent Job failed"
    batch.wait(parent, "FAILED")
    assert len(batch.executor.launched) == 2


def test_n_to_n_children_wait_for_their_peer(batch):
    batch.basic()
    first = batch.submit("first", arrayProperties={"size": 3})
    second = batch.submit(
        "second", arrayProperties={"size": 3}, dependsOn=[{"jobId": first, "type": "N_TO_N"}]
    )
    for index in range(3):
        batch.wait(f"{second}:{index}", "PENDING")
    batch.process(f"{first}:2").exit(0)
    batch.wait(f"{second}:2", "RUNNING")
    assert batch.status_now(f"{second}:0") == "PENDING"
    batch.process(f"{first}:0").exit(1)
    assert batch.wait(f"{second}:0", "FAILED")["statusReason"] == "Dependent Job failed"
    assert batch.status_now(f"{second}:1") == "PENDING"
    batch.process(f"{first}:1").exit(0)
    batch.wait(f"{second}:1", "RUNNING")


def test_array_with_a_job_dependency_holds_all_children(batch):
    batch.basic()
    gate = batch.submit("gate")
    parent = batch.submit("array", arrayProperties={"size": 2}, dependsOn=[{"jobId": gate}])
    batch.wait(f"{parent}:1", "PENDING")
    assert batch.status_now(parent) == "PENDING"
    batch.process(gate).exit(0)
    batch.wait(f"{parent}:0", "RUNNING")
    batch.wait(f"{parent}:1", "RUNNING")


def test_array_dependency_failure_fails_children_and_parent(batch):
    batch.basic()
    gate = batch.submit("gate")
    parent = batch.submit("array", arrayProperties={"size": 2}, dependsOn=[{"jobId": gate}])
    batch.process(gate).exit(9)
    assert batch.wait(parent, "FAILED")["statusReason"] == "Dependent Job failed"
    assert batch.describe(f"{parent}:0")["statusReason"] == "Dependent Job failed"


def test_a_large_sequential_failure_does_not_recurse(batch):
    batch.basic()
    parent = batch.submit("seq", arrayProperties={"size": 5000}, dependsOn=[{"type": "SEQUENTIAL"}])
    batch.process(f"{parent}:0").exit(1)
    done = batch.wait(parent, "FAILED", timeout=15)
    assert done["arrayProperties"]["statusSummary"]["FAILED"] == 5000
