"""Exit codes of the `sluice` command, and the error that means "exit 2 with this message"."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments or input files: exit 2 with the message."""
