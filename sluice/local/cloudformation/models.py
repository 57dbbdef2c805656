"""Stacks, their resources, events and change sets, and the store that holds them."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.local.deploy.model import DeployedStack

# Statuses in which a stack is still working; anything else is settled.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html
IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
STACK_TYPE = "AWS::CloudFormation::Stack"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StackEvent:
    event_id: str
    stack_id: str
    stack_name: str
    logical_id: str
    physical_id: str
    resource_type: str
    timestamp: datetime
    status: str
    reason: str | None = None
    properties: str | None = None


@dataclass
class StackResource:
    logical_id: str
    resource_type: str
    physical_id: str = ""
    status: str = "CREATE_IN_PROGRESS"
    reason: str | None = None
    updated: datetime = field(default_factory=now)
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)  # what Fn::GetAtt reads


@dataclass
class ChangeSet:
    change_set_id: str
    name: str
    stack_id: str
    stack_name: str
    change_set_type: str  # CREATE | UPDATE | IMPORT
    template_body: str
    template: dict[str, Any]
    parameters: dict[str, str]
    capabilities: list[str]
    tags: list[dict[str, str]]
    description: str | None
    created: datetime = field(default_factory=now)
    status: str = "CREATE_PENDING"
    status_reason: str | None = None
    execution_status: str = "UNAVAILABLE"
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stack:
    stack_id: str
    name: str
    status: str
    created: datetime = field(default_factory=now)
    status_reason: str | None = None
    updated: datetime | None = None
    deleted: datetime | None = None
    description: str | None = None
    template_body: str = ""
    template: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    disable_rollback: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    output_descriptions: dict[str, str] = field(default_factory=dict)
    output_exports: dict[str, str] = field(default_factory=dict)
    resources: dict[str, StackResource] = field(default_factory=dict)  # creation order
    events: list[StackEvent] = field(default_factory=list)  # oldest first
    change_sets: dict[str, ChangeSet] = field(default_factory=dict)
    deployed: DeployedStack | None = None
    # The transformed template (after SAM), what GetTemplate's Processed stage returns.
    processed: dict[str, Any] | None = None

    @property
    def in_progress(self) -> bool:
        return self.status.endswith(IN_PROGRESS_SUFFIX) and self.status != "REVIEW_IN_PROGRESS"

    def add_event(
        self,
        logical_id: str,
        resource_type: str,
        status: str,
        physical_id: str = "",
        reason: str | None = None,
    ) -> StackEvent:
        event = StackEvent(
            event_id=str(uuid.uuid4()),
            stack_id=self.stack_id,
            stack_name=self.name,
            logical_id=logical_id,
            physical_id=physical_id,
            resource_type=resource_type,
            timestamp=now(),
            status=status,
            reason=reason,
        )
        self.events.append(event)
        return event

    def set_status(self, status: str, reason: str | None = None) -> None:
        """The stack's own status, recorded as an AWS::CloudFormation::Stack event too."""
        self.status = status
        self.status_reason = reason
        self.add_event(self.name, STACK_TYPE, status, self.stack_id, reason)


class StackStore:
    """Every stack of the account and region, deleted ones included (ListStacks shows them)."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.lock = threading.RLock()
        self.stacks: list[Stack] = []

    def new_stack_id(self, name: str) -> str:
        return f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{name}/{uuid.uuid4()}"

    def new_change_set_id(self, name: str) -> str:
        return f"arn:aws:cloudformation:{self.region}:{self.account_id}:changeSet/{name}/{uuid.uuid4()}"

    def find(self, name_or_id: str, *, deleted: bool = False) -> Stack | None:
        """The live stack with this name, or the stack with this id (deleted too, when asked)."""
        with self.lock:
            for stack in reversed(self.stacks):
                if stack.stack_id == name_or_id and (deleted or stack.status != "DELETE_COMPLETE"):
                    return stack
                if stack.name == name_or_id and stack.status != "DELETE_COMPLETE":
                    return stack
        return None

    def add(self, stack: Stack) -> None:
        with self.lock:
            self.stacks.append(stack)
