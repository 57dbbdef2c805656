"""Helpers shared by test modules: sample events, the template, function modules."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def sample_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files README points people to)."""
    return json.loads((EVENTS / name).read_text())


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (every Lambda has an app.py)."""
    module_name = f"sluice_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = ROOT / "functions" / name / "app.py"
    # Lambda puts the function's folder on sys.path, so app.py imports its sibling modules
    # (notify's notices.py) by plain name; do the same here.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_template() -> dict[str, Any]:
    """template.yaml with its CloudFormation short tags expanded (!Ref -> {"Ref": ...})."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(ROOT / "template.yaml"))
