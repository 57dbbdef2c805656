"""Sluice's local AWS Batch: the Batch API, scheduling semantics and jobs as host processes.

moto's Batch needs Docker and has no scheduling semantics, so the local cloud serves Batch
from this engine instead (docs/architecture.md; behaviour: docs/aws-behaviour.md).
"""

from sluice.local.batch.backend import BatchEngine
from sluice.local.batch.container import LocalImage

__all__ = ["BatchEngine", "LocalImage"]
