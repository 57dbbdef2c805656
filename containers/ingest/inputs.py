"""Many files, one run: an uploaded input manifest lists the objects a run reads together.

An input whose key ends in `.manifest.json` or `.manifest.txt` is not data but a list of the
objects to read, in order, as one input: one set of shards, one transform array, one result.

- `.manifest.json`: `{"keys": ["incoming/a.csv", ...]}` or `{"prefix": "incoming/batch-7/"}`
  (every object under the prefix, in key order, except manifests and folder markers).
- `.manifest.txt`: one key per line; blank lines and lines starting with `#` are skipped.

Keys are in the manifest's own bucket. Each listed object is read at its current version (the
manifest's version pins the list, not the objects). They must share format and columns; the
first object's column types hold for all (a later value that does not fit is a bad row, as in
one file).
"""

from __future__ import annotations

import json

from botocore.client import BaseClient
from jobkit import s3 as s3io
from jobkit.errors import BadInput
from jobkit.manifest import InputRef

MANIFEST_SUFFIXES = (".manifest.json", ".manifest.txt")
MAX_MANIFEST_OBJECT_BYTES = 1024 * 1024
MAX_LISTED_OBJECTS = 10_000


def is_input_manifest(key: str) -> bool:
    return key.endswith(MANIFEST_SUFFIXES)


def resolve_inputs(s3: BaseClient, source: InputRef) -> list[InputRef]:
    """The objects a run reads: the input itself, or the objects its manifest lists."""
    if not is_input_manifest(source.key):
        return [source]
    try:
        obj = s3io.open_object(s3, source.bucket, source.key, source.versionId)
    except s3io.NotFound:
        raise BadInput(f"input manifest {source.uri()} does not exist") from None
    with obj.body:
        if obj.size > MAX_MANIFEST_OBJECT_BYTES:
            raise BadInput(
                f"input manifest {source.uri()} is {obj.size} bytes, over {MAX_MANIFEST_OBJECT_BYTES}; "
                'list a prefix instead: {"prefix": "..."}'
            )
        data = obj.body.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"input manifest {source.uri()} is not UTF-8") from None
    listed = _objects_of(s3, source, text)
    keys = [key for key, _ in listed]
    if not keys:
        raise BadInput(f"input manifest {source.uri()} lists no objects")
    if len(keys) > MAX_LISTED_OBJECTS:
        raise BadInput(f"input manifest {source.uri()} lists {len(keys)} objects, over {MAX_LISTED_OBJECTS}")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise BadInput(f"input manifest {source.uri()} lists {duplicates[0]!r} more than once")
    for key in keys:
        if is_input_manifest(key):
            raise BadInput(
                f"input manifest {source.uri()} lists another manifest, {key!r}; list data objects only"
            )
    # A prefix's listing gives each object's size (the split planner adds them up); a list of
    # keys does not, and the planner learns the sizes from the objects' heads.
    return [InputRef(bucket=source.bucket, key=key, size=size) for key, size in listed]


def _objects_of(s3: BaseClient, source: InputRef, text: str) -> list[tuple[str, int | None]]:
    """The listed keys, each with its size when the listing gave one."""
    if source.key.endswith(".manifest.txt"):
        return [
            (line.strip(), None)
            for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"input manifest {source.uri()} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    shape = 'it must be {"keys": ["..."]} or {"prefix": "..."}'
    if not isinstance(document, dict) or len(document) != 1 or not ({"keys", "prefix"} & set(document)):
        raise BadInput(f"input manifest {source.uri()}: {shape}")
    if "keys" in document:
        keys = document["keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise BadInput(f"input manifest {source.uri()}: keys must be a list of object keys; {shape}")
        return [(key, None) for key in keys]
    prefix = document["prefix"]
    if not isinstance(prefix, str):
        raise BadInput(f"input manifest {source.uri()}: prefix must be a string; {shape}")
    return [
        (key, size)
        for key, size in sorted(s3io.list_objects(s3, source.bucket, prefix))
        if not key.endswith("/") and not is_input_manifest(key)
    ]
