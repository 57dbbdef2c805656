"""Data the deployer produces: the deployed stack and each created resource."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Created:
    """What a per-type creator returns: the physical id (what ``Ref`` yields) and the
    attributes ``Fn::GetAtt`` may read."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployedStack:
    """The outcome of :func:`deploy_template`.

    ``resources`` maps logical id -> physical id for every resource that exists (created
    or, for ``not_emulated`` ones, the name CloudFormation would have given it);
    ``attributes`` maps logical id -> ``Fn::GetAtt`` attributes; ``template`` is the
    processed CloudFormation template (after the SAM transform, before intrinsics are
    resolved); ``metadata`` carries each resource's template ``Metadata`` (e.g. the
    ``DockerContext``/``Dockerfile`` of an ECR repository); ``project_root`` is the directory
    relative paths in the template were resolved against.
    """

    stack_name: str
    region: str
    account_id: str
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    resource_types: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_emulated: list[tuple[str, str]] = field(default_factory=list)
    template: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    project_root: Path | None = None
    # logical id -> the resource's properties with intrinsics resolved (what deleting it needs)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id]

    def of_type(self, resource_type: str) -> dict[str, str]:
        """Logical id -> physical id of every resource of one type."""
        return {
            lid: self.resources[lid]
            for lid, rtype in self.resource_types.items()
            if rtype == resource_type and lid in self.resources
        }


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _suffix(stack_name: str, logical_id: str, length: int = 12) -> str:
    # CloudFormation appends a random suffix; a hash of (stack, logical id) keeps the
    # same shape but gives the same name on every local deploy, so logs and scripts
    # can rely on it between runs.
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:length])


def generated_name(
    stack_name: str,
    logical_id: str,
    *,
    max_length: int = 64,
    lowercase: bool = False,
    separator: str = "-",
    suffix_text: str = "",
) -> str:
    """A name in CloudFormation's ``<stack>-<logicalId>-<SUFFIX>`` style, within ``max_length``.

    Like CloudFormation, the stack and logical-id parts are truncated to fit.
    ``suffix_text`` is appended after the suffix (``.fifo`` for FIFO queues).
    """
    suffix = _suffix(stack_name, logical_id)
    budget = max_length - len(suffix) - 2 * len(separator) - len(suffix_text)
    stack_part = stack_name[: max(1, budget // 2)]
    logical_part = logical_id[: max(1, budget - len(stack_part))]
    name = f"{stack_part}{separator}{logical_part}{separator}{suffix}{suffix_text}"
    if lowercase:
        name = re.sub(r"[^a-z0-9.-]", "-", name.lower())
    return name
