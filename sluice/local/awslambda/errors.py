"""Lambda API errors, with the names and HTTP statuses the Lambda API uses."""

from __future__ import annotations

from typing import Any

from sluice.local.wire.restjson import ServiceError


class LambdaServiceError(ServiceError):
    """An error the Lambda API returns (``code`` is what boto3 shows as Error.Code)."""

    def body(self) -> dict[str, Any]:
        return {"Type": "User", "message": self.message, **self.fields}


def unknown_operation(method: str, path: str) -> LambdaServiceError:
    return LambdaServiceError("UnknownOperationException", f"no Lambda operation for {method} {path}", 404)


def unsupported(operation: str) -> LambdaServiceError:
    return LambdaServiceError(
        "UnsupportedOperationException", f"{operation} is not emulated by the local Lambda runtime", 501
    )


def bad_body(detail: str) -> LambdaServiceError:
    return LambdaServiceError("InvalidRequestContentException", f"Could not parse request body: {detail}")


def internal(detail: str) -> LambdaServiceError:
    return LambdaServiceError("ServiceException", f"Internal error: {detail}", 500)


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
