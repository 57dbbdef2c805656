"""The SAM transform, run offline.

Like ``sam validate``, local ``CodeUri``/``DefinitionUri``/``ContentUri`` paths are swapped
for placeholder S3 locations before the translator runs (it only accepts S3 locations)
and mapped back afterwards. The result carries each local artifact the way
``aws cloudformation package`` accepts it before packaging: an absolute path string in
``AWS::Lambda::Function`` ``Code``, ``AWS::StepFunctions::StateMachine``
``DefinitionS3Location`` and ``AWS::Lambda::LayerVersion`` ``Content``.
The translator never calls AWS: managed-policy names come from the map bundled with
aws-sam-translator, and the session only supplies the region.

The translation is a pure function of the template (local paths already swapped for
placeholders), the parameter values, the region and the translator's version, so its result
is kept on disk under that key (``$SLUICE_CACHE_DIR`` or ``$XDG_CACHE_HOME/sluice``, else
``~/.cache/sluice``; ``SLUICE_CACHE_DIR=off`` disables it). A hit skips importing the
translator (~0.8 s with jsonschema) and running it (0.1-0.4 s) on every `sluice local up`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from sluice.local.deploy.errors import DeployError

if TYPE_CHECKING:
    from samtranslator.model.exceptions import ExceptionWithMessage

log = logging.getLogger(__name__)
_CACHE_FILES_KEPT = 32

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# Transforms whose effect the deployer provides itself (Fn::Length, Fn::ToJsonString,
# Fn::FindInMap defaults); Fn::ForEach is not expanded.
_NATIVE_TRANSFORMS = {"AWS::LanguageExtensions"}

PLACEHOLDER_BUCKET = "sluice-local-artifacts"

# (SAM resource type, property holding a local path)
_LOCAL_PATH_PROPS = [
    ("AWS::Serverless::Function", "CodeUri"),
    ("AWS::Serverless::StateMachine", "DefinitionUri"),
    ("AWS::Serverless::LayerVersion", "ContentUri"),
]
# (CloudFormation type, property the translator fills from the local path, bucket key, object key)
_TRANSLATED_LOCATIONS = [
    ("AWS::Lambda::Function", "Code", "S3Bucket", "S3Key"),
    ("AWS::StepFunctions::StateMachine", "DefinitionS3Location", "Bucket", "Key"),
    ("AWS::Lambda::LayerVersion", "Content", "S3Bucket", "S3Key"),
]


def transforms_of(template: dict[str, Any]) -> list[str]:
    declared = template.get("Transform") or []
    return [declared] if isinstance(declared, str) else list(declared)


def _is_local(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and not value.startswith("s3://")


def _swap_local_paths(template: dict[str, Any], base_dir: Path) -> dict[str, str]:
    """Replace local paths with placeholder S3 URIs in place; return key -> absolute path."""
    local: dict[str, str] = {}

    def swap(holder: dict[str, Any], prop: str) -> None:
        value = holder.get(prop)
        if not _is_local(value):
            return
        key = f"local/{len(local)}"
        local[key] = str((base_dir / value).resolve())
        holder[prop] = f"s3://{PLACEHOLDER_BUCKET}/{key}"

    globals_ = template.get("Globals") or {}
    if isinstance(globals_.get("Function"), dict):
        swap(globals_["Function"], "CodeUri")
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict):
            continue
        for rtype, prop in _LOCAL_PATH_PROPS:
            if resource.get("Type") == rtype and isinstance(resource.get("Properties"), dict):
                swap(resource["Properties"], prop)
    return local


def _restore_local_paths(template: dict[str, Any], local: dict[str, str]) -> None:
    for resource in (template.get("Resources") or {}).values():
        for rtype, prop, bucket_key, object_key in _TRANSLATED_LOCATIONS:
            if resource.get("Type") != rtype:
                continue
            location = (resource.get("Properties") or {}).get(prop)
            if isinstance(location, dict) and location.get(bucket_key) == PLACEHOLDER_BUCKET:
                resource["Properties"][prop] = local[location[object_key]]


def _cause_to_error(cause: ExceptionWithMessage) -> DeployError:
    logical_id = getattr(cause, "_logical_id", None)
    where = ",".join(logical_id) if isinstance(logical_id, list) else logical_id
    return DeployError(where, f"SAM transform: {cause.message}")


def apply_transforms(
    template: dict[str, Any], *, base_dir: Path, region: str, parameter_values: dict[str, Any]
) -> dict[str, Any]:
    """Return the CloudFormation template for ``template`` (a deep copy; input untouched)."""
    transforms = transforms_of(template)
    unsupported = [t for t in transforms if t != SAM_TRANSFORM and t not in _NATIVE_TRANSFORMS]
    if unsupported:
        raise DeployError("Transform", f"transforms {unsupported} are not supported by the local cloud")
    template = copy.deepcopy(template)
    if SAM_TRANSFORM not in transforms:
        return template
    local = _swap_local_paths(template, base_dir)
    key = _cache_key(template, parameter_values, region)
    translated = _cached(key)
    if translated is None:
        # Through JSON either way, so a cached and a fresh translation are the same data.
        text = json.dumps(_translate(template, region, parameter_values))
        translated = json.loads(text)
        _store(key, text)
    translated["Transform"] = [t for t in transforms if t != SAM_TRANSFORM] or None
    if translated["Transform"] is None:
        del translated["Transform"]
    _restore_local_paths(translated, local)
    return translated


def _translate(template: dict[str, Any], region: str, parameter_values: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import ExceptionWithMessage, InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # Metrics go nowhere (the translator would otherwise warn that they were never published).
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        None, Parser(), boto_session=boto3.session.Session(region_name=region), metrics=metrics
    )
    try:
        translated: dict[str, Any] = translator.translate(
            template,
            parameter_values=dict(parameter_values),
            passthrough_metadata=True,
            get_managed_policy_map=lambda: get_bundled_managed_policy_map("aws") or {},
        )
    except InvalidDocumentException as exc:
        errors = [_cause_to_error(c) for c in exc.causes]
        if len(errors) == 1:
            raise errors[0] from exc
        raise DeployError(None, "; ".join(str(e) for e in errors)) from exc
    except ExceptionWithMessage as exc:
        raise _cause_to_error(exc) from exc
    finally:
        metrics.publish()
    return translated


def _cache_dir() -> Path | None:
    chosen = os.environ.get("SLUICE_CACHE_DIR")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen) / "sam"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sluice" / "sam"


def _cache_key(template: dict[str, Any], parameter_values: dict[str, Any], region: str) -> str | None:
    try:
        version = metadata.version("aws-sam-translator")
        text = json.dumps([version, region, template, parameter_values], sort_keys=True, default=repr)
    except (metadata.PackageNotFoundError, TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(key: str | None) -> dict[str, Any] | None:
    directory = _cache_dir()
    if key is None or directory is None:
        return None
    try:
        found = json.loads((directory / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _store(key: str | None, text: str) -> None:
    """Write atomically (concurrent deploys may race) and keep the newest few; never fail a deploy."""
    directory = _cache_dir()
    if key is None or directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, directory / f"{key}.json")
        files = sorted(directory.glob("*.json"), key=lambda path: path.stat().st_mtime, reverse=True)
        for stale in files[_CACHE_FILES_KEPT:]:
            stale.unlink(missing_ok=True)
    except OSError as error:
        log.debug("SAM translation not cached: %s", error)
