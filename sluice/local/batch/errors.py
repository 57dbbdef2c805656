"""Errors the Batch API returns, shaped as AWS returns them.

Batch has two error shapes in its service model: ``ClientException`` (HTTP 400, the caller's
fault) and ``ServerException`` (HTTP 500). https://docs.aws.amazon.com/batch/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations


class BatchError(Exception):
    """An error the API turns into a REST-JSON error response."""

    code = "ServerException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientException(BatchError):
    """The request is invalid or names something that does not exist (HTTP 400)."""

    code = "ClientException"
    status = 400


class ServerException(BatchError):
    """The engine failed while handling a valid request (HTTP 500)."""
