"""Errors raised while deploying a template to the local cloud."""

from __future__ import annotations


class DeployError(Exception):
    """A template or deployment error, naming where it happened.

    ``where`` is the resource's logical id (or ``Parameters``, ``Conditions.<name>``,
    ``Outputs.<name>``) so the message points at the line of template to fix, the way
    CloudFormation's own errors do.
    """

    def __init__(self, where: str | None, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)
