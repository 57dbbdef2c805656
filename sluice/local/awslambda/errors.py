"""Lambda API errors, with the names and HTTP statuses the Lambda API uses."""

from __future__ import annotations

from typing import Any


class LambdaServiceError(Exception):
    """An error the Lambda API returns (``code`` is what boto3 shows as Error.Code)."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def not_found(message: str) -> LambdaServiceError:
    return LambdaServiceError("ResourceNotFoundException", message, 404)


def function_not_found(arn: str) -> LambdaServiceError:
    return not_found(f"Function not found: {arn}")


def conflict(message: str) -> LambdaServiceError:
    return LambdaServiceError("ResourceConflictException", message, 409)


def invalid(message: str) -> LambdaServiceError:
    return LambdaServiceError("InvalidParameterValueException", message, 400)


def throttled(reason: str) -> LambdaServiceError:
    # https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors
    return LambdaServiceError("TooManyRequestsException", "Rate Exceeded.", 429, Reason=reason)
