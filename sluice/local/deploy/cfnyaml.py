"""Load CloudFormation/SAM templates written in YAML (with short-form tags) or JSON."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path
from typing import Any, cast

import yaml

from sluice.local.deploy.errors import DeployError


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic tags.

    Timestamps stay strings: CloudFormation treats ``Version: 2012-10-17`` in an IAM
    policy as the string IAM expects, whereas plain YAML would make it a ``date``.
    """


# Drop the implicit timestamp resolver (copy the table first: it is shared with SafeLoader).
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# Tags whose long form has no ``Fn::`` prefix.
_UNPREFIXED = {"Ref", "Condition"}


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in _UNPREFIXED else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            # Short form `!GetAtt Resource.Attribute`: a logical id has no dots, the
            # attribute may (e.g. `Endpoint.Address`), so split on the first one only.
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


# text -> the parsed template, pickled: `sluice local up` reads template.yaml three times (the
# CLI's check, the deploy, the stack record), and parsing YAML is 0.1-0.3 s each time.
_PARSED: dict[str, bytes] = {}
_PARSED_KEPT = 8
_PARSED_LOCK = threading.Lock()


def loads_template(text: str, *, source: str = "<template>") -> dict[str, Any]:
    """Parse template text (JSON or YAML) into a plain dict with long-form intrinsics (a new dict
    on every call: callers may change it)."""
    with _PARSED_LOCK:
        pickled = _PARSED.get(text)
    if pickled is not None:
        return cast(dict[str, Any], pickle.loads(pickled))
    data = _parse(text, source)
    with _PARSED_LOCK:
        _PARSED[text] = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        while len(_PARSED) > _PARSED_KEPT:
            del _PARSED[next(iter(_PARSED))]
    return data


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_CfnLoader)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise DeployError(None, f"cannot parse {source}: {exc}") from exc
    if not isinstance(data, dict):
        raise DeployError(None, f"{source} is not a template (top level must be a mapping)")
    if not isinstance(data.get("Resources"), dict) or not data["Resources"]:
        raise DeployError(
            None, f"{source}: Template format error: at least one Resources member must be defined."
        )
    return data


def load_template(path: Path) -> dict[str, Any]:
    """Read and parse a template file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeployError(None, f"cannot read template {path}: {exc}") from exc
    return loads_template(text, source=str(path))
