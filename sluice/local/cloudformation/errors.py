"""CloudFormation's error shapes (query protocol: ``<ErrorResponse><Error><Code>...``).

Codes and messages as the CloudFormation API reference gives them
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html and each
operation's Errors section).
"""

from __future__ import annotations


class CloudFormationError(Exception):
    """An error CloudFormation answers with: code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation_error(message: str) -> CloudFormationError:
    return CloudFormationError("ValidationError", message)


def stack_not_found(name: str) -> CloudFormationError:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
    return validation_error(f"Stack with id {name} does not exist")


def already_exists(name: str) -> CloudFormationError:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
    return CloudFormationError("AlreadyExistsException", f"Stack [{name}] already exists")


def change_set_not_found(name: str) -> CloudFormationError:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html
    return CloudFormationError("ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)


def insufficient_capabilities(missing: list[str]) -> CloudFormationError:
    return CloudFormationError(
        "InsufficientCapabilitiesException", f"Requires capabilities : [{', '.join(missing)}]"
    )
