"""Least privilege, measured: what each principal used, which statement allowed it, what nothing used.

The local cloud's IAM records the first use of every (principal, action, allowing statement) in
`iam-usage.jsonl` and every denial in `iam.jsonl` (sluice.local.iam.backend.AuditLog). The
policies themselves are read back through the IAM API, as on AWS, so a statement that no
recorded request needed shows up as unused: a candidate for removal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

USAGE_FILE = "iam-usage.jsonl"
DENIALS_FILE = "iam.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        document = json.loads(document)
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def _role_policies(iam: Any, role: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(policy label as the evaluator names it, statements) for each policy of a role."""
    name, arn = role["RoleName"], role["Arn"]
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy_name in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            yield f"{arn} inline policy {policy_name}", _statements(document)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for attached in page["AttachedPolicies"]:
            yield (
                f"{arn} managed policy {attached['PolicyArn']}",
                _managed_statements(iam, attached["PolicyArn"]),
            )


def _user_policies(iam: Any, user: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    name, arn = user["UserName"], user["Arn"]
    for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
        document = iam.get_user_policy(UserName=name, PolicyName=policy_name)["PolicyDocument"]
        yield f"{arn} inline policy {policy_name}", _statements(document)
    for attached in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
        yield f"{arn} managed policy {attached['PolicyArn']}", _managed_statements(iam, attached["PolicyArn"])


def _managed_statements(iam: Any, policy_arn: str) -> list[dict[str, Any]]:
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    return _statements(
        iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"]
    )


def build_iam_report(iam: Any, state_dir: Path) -> dict[str, Any]:
    usage = read_jsonl(state_dir / USAGE_FILE)
    denials = read_jsonl(state_dir / DENIALS_FILE)
    used_by: dict[str, list[dict[str, Any]]] = {}
    for record in usage:
        used_by.setdefault(record["principal"], []).append(record)

    principals: list[dict[str, Any]] = []
    holders: list[tuple[str, Iterator[tuple[str, list[dict[str, Any]]]]]] = []
    for page in iam.get_paginator("list_roles").paginate():
        holders += [(role["Arn"], _role_policies(iam, role)) for role in page["Roles"]]
    for page in iam.get_paginator("list_users").paginate():
        holders += [(user["Arn"], _user_policies(iam, user)) for user in page["Users"]]
    for arn, policies in holders:
        used = used_by.pop(arn, [])
        used_statements = {(record["policy"], record["statement"]) for record in used}
        unused = []
        for source, statements in policies:
            for index, statement in enumerate(statements):
                if statement.get("Effect") == "Allow" and (source, index) not in used_statements:
                    unused.append(
                        {
                            "policy": source,
                            "sid": statement.get("Sid"),
                            "statement": index,
                            "actions": statement.get("Action") or statement.get("NotAction"),
                        }
                    )
        if used or unused:
            principals.append({"principal": arn, "used": _sorted(used), "unused": unused})
    # Service principals (events.amazonaws.com for a rule) have no identity policies of their own.
    for arn, used in sorted(used_by.items()):
        principals.append({"principal": arn, "used": _sorted(used), "unused": []})
    return {"principals": principals, "denials": denials}


def _sorted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["action"].lower(), r["policy"], r["statement"]))


def render_iam_report(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for entry in report["principals"]:
        lines.append(entry["principal"])
        for record in entry["used"]:
            sid = f" ({record['sid']})" if record.get("sid") else ""
            lines.append(
                f"  used   {record['action']} on {record['resource']}\n"
                f"         allowed by {record['policy']}, statement {record['statement']}{sid}"
            )
        for record in entry["unused"]:
            sid = f" ({record['sid']})" if record.get("sid") else ""
            lines.append(
                f"  unused {record['policy']}, statement {record['statement']}{sid}: {record['actions']}"
            )
    denials = report["denials"]
    lines.append(f"denials: {len(denials)}")
    lines += [f"  {record['outcome']}: {record['message']}" for record in denials]
    return "\n".join(lines)
