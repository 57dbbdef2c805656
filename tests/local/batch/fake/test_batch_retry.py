"""evaluateOnExit and retryStrategy.attempts, as AWS documents them (retry.py)."""

from __future__ import annotations

import pytest

from sluice.local.batch.errors import ClientException
from sluice.local.batch.retry import parse_retry_strategy, pattern_matches

HOST_LOST = "Host EC2 (instance i-0123456789abcdef0) terminated."


def strategy(attempts: int, *rules: dict[str, str]):
    return parse_retry_strategy({"attempts": attempts, "evaluateOnExit": list(rules)})


def retries(
    rs, *, made: int = 1, status_reason: str | None = None, reason: str | None = None, exit_code=None
):
    return rs.should_retry(
        attempts_made=made, status_reason=status_reason, reason=reason, exit_code=exit_code
    )


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("65", "65", True),
        ("65", "650", False),  # whole-string match without '*'
        ("6*", "65", True),
        ("6*", "56", False),
        ("*", "anything", True),
        ("*", None, True),  # the documented catch-all also catches "no reason"
        ("", None, True),
        ("1*", None, False),
        ("Host EC2*", HOST_LOST, True),
        ("host ec2*", HOST_LOST, False),  # patterns are case-sensitive
        ("Essential container in task exited", "Essential container in task exited", True),
    ],
)
def test_pattern_matches_whole_string_or_prefix(pattern, value, expected):
    assert pattern_matches(pattern, value) is expected


def test_default_strategy_is_one_attempt():
    assert not retries(parse_retry_strategy(None), exit_code=1)


def test_no_rules_retry_until_attempts_are_used():
    rs = strategy(3)
    assert retries(rs, made=1, exit_code=1)
    assert retries(rs, made=2, exit_code=1)
    assert not retries(rs, made=3, exit_code=1)


def test_no_matching_rule_means_retry():
    rs = strategy(2, {"onExitCode": "65", "action": "EXIT"})
    assert retries(rs, exit_code=1)
    assert not retries(rs, exit_code=65)


def test_first_matching_rule_wins():
    retry_first = strategy(
        3, {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}
    )
    assert retries(retry_first, status_reason=HOST_LOST, reason=HOST_LOST)
    assert not retries(retry_first, status_reason="Essential container in task exited", exit_code=1)
    exit_first = strategy(
        3, {"onReason": "*", "action": "EXIT"}, {"onStatusReason": "Host EC2*", "action": "RETRY"}
    )
    assert not retries(exit_first, status_reason=HOST_LOST, reason=HOST_LOST)


def test_every_given_condition_must_match():
    rs = strategy(3, {"onExitCode": "1", "onStatusReason": "Essential*", "action": "EXIT"})
    assert not retries(rs, exit_code=1, status_reason="Essential container in task exited")
    assert retries(rs, exit_code=1, status_reason="Task failed to start")
    assert retries(rs, exit_code=2, status_reason="Essential container in task exited")


def test_on_reason_matches_the_container_reason():
    rs = strategy(3, {"onReason": "CannotStartContainerError*", "action": "EXIT"})
    assert not retries(rs, reason="CannotStartContainerError: no such file")
    assert retries(rs, reason="OutOfMemoryError: Container killed")


def test_exit_code_patterns_do_not_match_a_missing_exit_code():
    rs = strategy(3, {"onExitCode": "1*", "action": "EXIT"})
    assert retries(rs, exit_code=None, status_reason=HOST_LOST)
    assert not retries(rs, exit_code=137)


@pytest.mark.parametrize(("retry", "exit_"), [("retry", "exit"), ("Retry", "Exit"), ("RETRY", "EXIT")])
def test_actions_are_case_insensitive(retry, exit_):
    assert retries(strategy(3, {"onExitCode": "*", "action": retry}), exit_code=1)
    assert not retries(strategy(3, {"onExitCode": "*", "action": exit_}), exit_code=1)


def test_exit_wins_even_with_attempts_left():
    assert not retries(strategy(10, {"onExitCode": "65", "action": "EXIT"}), exit_code=65)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"attempts": 0}, "between 1 and 10"),
        ({"attempts": 11}, "between 1 and 10"),
        ({"evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]}, "attempts is required"),
        ({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}] * 6}, "at most 5"),
        ({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "MAYBE"}]}, "RETRY or EXIT"),
        ({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1a", "action": "EXIT"}]}, "onExitCode"),
        ({"attempts": 2, "evaluateOnExit": [{"onReason": "bad(paren)", "action": "EXIT"}]}, "onReason"),
        ({"attempts": 2, "evaluateOnExit": [{"onStatusReason": "a" * 513, "action": "EXIT"}]}, "512"),
        ({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1*2", "action": "EXIT"}]}, "onExitCode"),
    ],
)
def test_invalid_strategies_are_client_errors(request_, message):
    with pytest.raises(ClientException, match=message):
        parse_retry_strategy(request_)


def test_five_rules_are_allowed():
    rs = strategy(2, *[{"onExitCode": str(code), "action": "EXIT"} for code in range(5)])
    assert len(rs.rules) == 5
