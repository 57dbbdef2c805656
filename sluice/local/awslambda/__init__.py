"""Sluice's local Lambda runtime: the Lambda API plus real handler execution in warm workers."""

from .errors import LambdaServiceError
from .runtime import LambdaRuntime

__all__ = ["LambdaRuntime", "LambdaServiceError"]
