"""Sluice's local AWS Batch: the Batch API, scheduling semantics and jobs as host processes.

moto's Batch needs Docker and has no scheduling semantics, so the local cloud serves Batch
from this engine instead (see DESIGN.md §3).
"""

from sluice.local.batch.engine import BatchEngine
from sluice.local.batch.launch import LocalImage

__all__ = ["BatchEngine", "LocalImage"]
