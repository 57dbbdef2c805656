"""Errors the Batch API returns, shaped as AWS returns them.

Batch has two error shapes in its service model: ``ClientException`` (HTTP 400, the caller's
fault) and ``ServerException`` (HTTP 500). https://docs.aws.amazon.com/batch/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations

from typing import Any

from sluice.local.wire.restjson import ServiceError


class BatchError(ServiceError):
    """An error the API turns into a REST-JSON error response."""

    code = "ServerException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(type(self).code, message, type(self).status)

    def body(self) -> dict[str, Any]:
        # Batch's errors name their type in the body too.
        return {"__type": self.code, "message": self.message}


class ClientException(BatchError):
    """The request is invalid or names something that does not exist (HTTP 400)."""

    code = "ClientException"
    status = 400


class ServerException(BatchError):
    """The engine failed while handling a valid request (HTTP 500)."""


class UnknownOperationError(BatchError):
    """No Batch operation is served at the request's method and path (HTTP 404)."""

    code = "UnknownOperationException"
    status = 404


def unknown_operation(method: str, path: str) -> BatchError:
    return UnknownOperationError(f"No Batch operation at {method} {path}")


def unsupported(operation: str) -> BatchError:
    return ClientException(f"{operation} isn't supported by the local Batch engine")


def bad_body(detail: str) -> BatchError:
    return ClientException("The request body isn't valid JSON")


def internal(detail: str) -> BatchError:
    return ServerException(f"Internal error: {detail}")
