"""Automated job retries: ``retryStrategy.attempts`` and ``evaluateOnExit``.

As AWS documents them:
- https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html (no rule matches → retried)
- https://docs.aws.amazon.com/batch/latest/APIReference/API_EvaluateOnExit.html (matching)
- https://docs.aws.amazon.com/batch/latest/APIReference/API_RetryStrategy.html (1..10 attempts, ≤5 rules)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sluice.local.batch.errors import ClientException

MAX_ATTEMPTS = 10
MAX_RULES = 5
MAX_PATTERN = 512
RETRY = "RETRY"
EXIT = "EXIT"

# onExitCode: digits, optionally ending in '*'. onStatusReason / onReason: letters, digits,
# periods, colons and white space, optionally ending in '*' (API_EvaluateOnExit).
_EXIT_CODE_PATTERN = re.compile(r"[0-9]*\*?")
_REASON_PATTERN = re.compile(r"[A-Za-z0-9.:\s]*\*?")


@dataclass(frozen=True, slots=True)
class ExitRule:
    action: str  # RETRY | EXIT, normalised to upper case
    on_status_reason: str | None
    on_reason: str | None
    on_exit_code: str | None

    def matches(self, *, status_reason: str | None, reason: str | None, exit_code: int | None) -> bool:
        """An entry matches only if every condition it gives matches (API_EvaluateOnExit)."""
        checks = (
            (self.on_status_reason, status_reason),
            (self.on_reason, reason),
            (self.on_exit_code, None if exit_code is None else str(exit_code)),
        )
        return all(pattern is None or pattern_matches(pattern, value) for pattern, value in checks)


@dataclass(frozen=True, slots=True)
class RetryStrategy:
    attempts: int = 1
    rules: tuple[ExitRule, ...] = ()

    def should_retry(
        self, *, attempts_made: int, status_reason: str | None, reason: str | None, exit_code: int | None
    ) -> bool:
        """Whether a failed attempt goes back to RUNNABLE.

        The first matching rule decides; with no match the job is retried while attempts remain
        ("If none of the conditions match, the job is retried", job_retries.html). EXIT never retries.
        """
        if attempts_made >= self.attempts:
            return False
        for rule in self.rules:
            if rule.matches(status_reason=status_reason, reason=reason, exit_code=exit_code):
                return rule.action == RETRY
        return True


def pattern_matches(pattern: str, value: str | None) -> bool:
    """Whole-string match; a trailing '*' makes the rest a prefix match.

    A value AWS does not report (no container reason, no exit code after a lost host) is
    matched as the empty string, so the documented catch-all ``{"onReason": "*"}`` still
    catches failures without a container reason.
    """
    text = value or ""
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    return text == pattern


def parse_retry_strategy(request: dict[str, Any] | None) -> RetryStrategy:
    """Validate a RetryStrategy request object the way the API does and return its rules."""
    if not request:
        return RetryStrategy()
    attempts = request.get("attempts")
    rules_request = request.get("evaluateOnExit") or []
    if attempts is None:
        if rules_request:
            raise ClientException("retryStrategy.attempts is required when evaluateOnExit is specified")
        return RetryStrategy()
    if not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        raise ClientException(f"retryStrategy.attempts must be between 1 and {MAX_ATTEMPTS}, got {attempts}")
    if len(rules_request) > MAX_RULES:
        raise ClientException(f"retryStrategy.evaluateOnExit can contain at most {MAX_RULES} entries")
    return RetryStrategy(attempts=attempts, rules=tuple(_parse_rule(rule) for rule in rules_request))


def _parse_rule(rule: dict[str, Any]) -> ExitRule:
    action = str(rule.get("action", "")).upper()  # RETRY / EXIT are case-insensitive
    if action not in (RETRY, EXIT):
        raise ClientException(f"evaluateOnExit action must be RETRY or EXIT, got {rule.get('action')!r}")
    patterns = {
        "onStatusReason": (rule.get("onStatusReason"), _REASON_PATTERN),
        "onReason": (rule.get("onReason"), _REASON_PATTERN),
        "onExitCode": (rule.get("onExitCode"), _EXIT_CODE_PATTERN),
    }
    for key, (value, allowed) in patterns.items():
        if value is None:
            continue
        if len(value) > MAX_PATTERN:
            raise ClientException(f"evaluateOnExit.{key} can be at most {MAX_PATTERN} characters")
        if not allowed.fullmatch(value):
            raise ClientException(f"evaluateOnExit.{key} {value!r} contains characters that aren't allowed")
    return ExitRule(
        action=action,
        on_status_reason=rule.get("onStatusReason"),
        on_reason=rule.get("onReason"),
        on_exit_code=rule.get("onExitCode"),
    )
