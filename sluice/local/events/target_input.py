"""What an EventBridge target receives: Input, InputPath or InputTransformer applied to an event.

AWS references:
- https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
  (JSON path subset, reserved variables, quoting rules, "Common issues")
- https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# EventBridge's JSON path subset: dot notation, array indices, `*` wildcards; names may hold
# dashes, underscores, alphanumerics and forward slashes.
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]")
# Variable names are [A-Za-z0-9_-]+; the reserved ones contain dots.
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_\-.]+)>")


def json_path(document: Any, path: str) -> Any:
    """Evaluate an EventBridge JSON path; MISSING when nothing matches.

    A path with a wildcard yields the list of matches, as a JSON path engine would.
    """
    if not path.startswith("$"):
        raise ValueError(f"JSON path must start with '$': {path!r}")
    nodes = [document]
    wildcard = False
    position = 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            raise ValueError(f"unsupported JSON path syntax: {path!r}")
        position = step.end()
        key, index = step.group(1), step.group(2)
        found: list[Any] = []
        for node in nodes:
            if key == "*" or index == "*":
                wildcard = True
                found.extend(
                    node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
                )
            elif key is not None:
                if isinstance(node, dict) and key in node:
                    found.append(node[key])
            elif isinstance(node, list) and int(index) < len(node):
                found.append(node[int(index)])
        nodes = found
    if wildcard:
        return nodes
    return nodes[0] if nodes else MISSING


@dataclass(frozen=True)
class RuleContext:
    """What the reserved InputTransformer variables refer to."""

    rule_name: str
    rule_arn: str
    ingestion_time: str  # ISO 8601, when EventBridge accepted the event


def _reserved_values(event: dict[str, Any], context: RuleContext) -> dict[str, Any]:
    return {
        "aws.events.rule-arn": context.rule_arn,
        "aws.events.rule-name": context.rule_name,
        "aws.events.event.ingestion-time": context.ingestion_time,
        # "The original event payload as JSON (without the detail field)".
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    }


def _inside_json_string(text: str, start: int, end: int, inside: bool) -> bool:
    """Whether position `end` is inside a JSON string literal, given the state at `start`."""
    escaped = False
    for char in text[start:end]:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = inside
        elif char == '"':
            inside = not inside
    return inside


def _render_value(value: Any, *, json_template: bool, in_string: bool) -> str:
    if value is MISSING:
        # ND: the guide says a variable whose path matches nothing "isn't created". We write
        # `null` where a JSON value is expected (so a JSON template stays parseable) and
        # nothing inside strings and text templates.
        return "null" if json_template and not in_string else ""
    if isinstance(value, str):
        # Strings go in unescaped ("EventBridge doesn't escape values extracted by Input
        # Path"); outside quotes in a JSON template EventBridge adds the quotes itself.
        return json.dumps(value) if json_template and not in_string else value
    rendered = json.dumps(value, separators=(",", ":"))
    # "If a JSON path references a JSON object or array, but the variable is referenced in a
    # string, EventBridge removes any internal quotes to ensure a valid string."
    return rendered.replace('"', "") if in_string else rendered


def render_template(template: str, values: dict[str, Any]) -> str:
    """Fill an InputTemplate's <placeholders> the way EventBridge does.

    A template whose text starts with `{` or `[` is a JSON template; anything else, including
    a quoted string such as `"Job <job> failed"`, is text and is delivered as written: the
    quotes stay, which is what SNS email subscribers see on AWS
    (https://github.com/hashicorp/terraform-provider-aws/issues/43253,
    https://github.com/aws/aws-cdk/issues/5924).
    """
    json_template = template.lstrip().startswith(("{", "["))
    out: list[str] = []
    position = 0
    in_string = False
    for match in _PLACEHOLDER.finditer(template):
        in_string = _inside_json_string(template, position, match.start(), in_string)
        out.append(template[position : match.start()])
        name = match.group(1)
        if name in values:
            out.append(_render_value(values[name], json_template=json_template, in_string=in_string))
        else:
            out.append(match.group(0))  # not a variable: PutTargets would have rejected it on AWS
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def target_input(target: dict[str, Any], event: dict[str, Any], context: RuleContext) -> str | None:
    """The text a target receives for an event, or None when InputPath selects nothing."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        selected = json_path(event, target["InputPath"])
        # ND: AWS does not say what an InputPath that matches nothing delivers; we deliver
        # nothing and the caller records it as a failed delivery.
        return None if selected is MISSING else json.dumps(selected, separators=(",", ":"))
    transformer = target.get("InputTransformer")
    if transformer:
        values = {
            name: json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()
        }
        values.update(_reserved_values(event, context))
        return render_template(transformer["InputTemplate"], values)
    return json.dumps(event, separators=(",", ":"))
