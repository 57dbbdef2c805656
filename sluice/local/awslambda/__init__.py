"""Sluice's local Lambda runtime: the Lambda API plus real handler execution in warm workers."""

from sluice.local.awslambda.backend import LambdaRuntime
from sluice.local.awslambda.errors import LambdaServiceError

__all__ = ["LambdaRuntime", "LambdaServiceError"]
