"""Import costs: `python -X importtime` read as a tree.

-X importtime prints each module after everything it imported (post-order), indented two
spaces per level, with its own and its cumulative microseconds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common


@dataclass
class Node:
    module: str
    cumulative_us: int
    children: list[Node] = field(default_factory=list)

    @property
    def package(self) -> str:
        return self.module.split(".")[0]


def importtime(code: str, *, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        [common.PYTHON, "-X", "importtime", "-c", code],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stderr


def parse(text: str) -> list[Node]:
    """The top-level imports, each with what it imported."""
    pending: dict[int, list[Node]] = {}
    for line in text.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        node = Node(name.strip(), int(cumulative), pending.pop(depth + 1, []))
        pending.setdefault(depth, []).append(node)
    return pending.get(0, [])


def _ranked(totals: dict[str, int], limit: int) -> list[dict[str, Any]]:
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [{"module": name, "ms": round(micros / 1000, 1)} for name, micros in ranked]


def direct_imports(text: str, roots: Collection[str], limit: int = 12) -> list[dict[str, Any]]:
    """What the `roots` imported themselves, grouped by top-level package (cumulative ms)."""
    totals: dict[str, int] = {}
    for root in parse(text):
        if root.module in roots:
            for child in root.children:
                totals[child.package] = totals.get(child.package, 0) + child.cumulative_us
    return _ranked(totals, limit)


def package_costs(text: str, own: Collection[str], limit: int = 12) -> list[dict[str, Any]]:
    """Cumulative ms of every third-party package where code outside it first imported it.

    Packages nest (boto3 imports botocore), so the numbers overlap; `own` packages (the
    job's code) are looked through.
    """
    totals: dict[str, int] = {}

    def visit(node: Node, parent: str | None) -> None:
        if node.package not in own and node.package != parent:
            totals[node.package] = totals.get(node.package, 0) + node.cumulative_us
        for child in node.children:
            visit(child, node.package)

    for root in parse(text):
        visit(root, None)
    return _ranked(totals, limit)


def total_ms(text: str, roots: Collection[str]) -> float:
    """Cumulative ms of the given top-level imports."""
    return round(sum(node.cumulative_us for node in parse(text) if node.module in roots) / 1000, 1)
