"""Exit codes and the exceptions that map to them (docs/contracts.md, "Exit codes")."""

from __future__ import annotations

EXIT_OK = 0
# EX_DATAERR from sysexits.h: the Batch retry strategy EXITs on it instead of retrying.
EXIT_BAD_INPUT = 65
# Anything other than 0 and 65 is retried by the retry strategy; 1 is the generic failure.
EXIT_RETRYABLE = 1
# 128 + SIGTERM, what a shell reports for a terminated process; retryable as well.
EXIT_TERMINATED = 143


class JobError(Exception):
    """A failure with a clear, one-line message; retrying may help."""

    exit_code = EXIT_RETRYABLE


class BadInput(JobError):
    """The input or the options cannot be processed: retrying cannot help."""

    exit_code = EXIT_BAD_INPUT


class Terminated(BaseException):
    """Raised from the SIGTERM handler.

    A BaseException so that broad `except Exception` blocks (ours or a library's) do not
    swallow it on the way out.
    """
