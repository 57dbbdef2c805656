"""Parse botocore's data files once for every boto3 session the local cloud's process makes.

Each `boto3.session.Session()` gets its own loader, which lists botocore's ~400 service
directories and reads and parses endpoints.json, partitions.json and each service's model
again (botocore caches per loader only): the deploy alone made 13 sessions, 1-4 s of a
`sluice local up` depending on the load (bench/startup.py). Here every session still gets its
own loader, with its own cache, as before; what they share is each file's parsed content, kept
pickled (a session unpickles its own copy, ~5x faster than parsing the JSON: botocore edits
models in place, e.g. it strips ``/{Bucket}`` from S3's request URIs when it makes a client
class, and local IAM reads the untouched model) and the directory listings. moto's own model
loading (its request parsing) shares one loader. Installed by `moto_config.configure` while a
local cloud runs, removed by `unconfigure`.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from typing import Any

from botocore import session as botocore_session
from botocore.loaders import JSONFileLoader, Loader, create_loader
from moto.core import loaders as moto_loaders
from moto.core import utils as moto_utils

_lock = threading.Lock()
_original: Callable[[botocore_session.Session], None] | None = None
_moto_loader: list[moto_loaders.Loader] = []
_files: dict[str, bytes | None] = {}  # file path (without extension) -> pickled content
_listings: dict[tuple[Any, ...], list[str]] = {}


class _SharedFileLoader(JSONFileLoader):  # type: ignore[misc,unused-ignore]  # botocore is untyped
    """Reads each data file once per process; every caller gets a private copy."""

    def load_file(self, file_path: str) -> Any:
        with _lock:
            pickled = _files.get(file_path, b"")
        if pickled == b"":
            pickled = pickle.dumps(super().load_file(file_path), protocol=pickle.HIGHEST_PROTOCOL)
            with _lock:
                _files[file_path] = pickled
        return None if pickled is None else pickle.loads(pickled)


class _SessionLoader(Loader):  # type: ignore[misc,unused-ignore]
    """One session's loader (its own cache, as botocore's), over the process's parsed files and
    directory listings."""

    FILE_LOADER_CLASS = _SharedFileLoader

    def _listed(self, key: tuple[Any, ...], list_them: Callable[[], list[str]]) -> list[str]:
        key = (tuple(self.search_paths), *key)
        with _lock:
            found = _listings.get(key)
        if found is None:
            found = list_them()
            with _lock:
                _listings[key] = list(found)
        return list(found)

    def list_available_services(self, type_name: str) -> list[str]:
        parent = super().list_available_services
        return self._listed(("services", type_name), lambda: parent(type_name))

    def list_api_versions(self, service_name: str, type_name: str) -> list[str]:
        parent = super().list_api_versions
        return self._listed(("versions", service_name, type_name), lambda: parent(service_name, type_name))


def _session_loader(data_path: Any) -> Loader:
    template = create_loader(data_path)  # botocore's search paths for this data path
    return _SessionLoader(extra_search_paths=list(template.search_paths), include_default_search_paths=False)


def _shared_moto_loader() -> moto_loaders.Loader:
    """moto loads each service's model once (and caches it) but through a new loader each time,
    which lists every service directory again and parses the model the clients parsed already."""
    with _lock:
        if not _moto_loader:
            # moto's search paths, over the same parsed files as the sessions'.
            search = list(moto_loaders.create_loader().search_paths)
            _moto_loader.append(
                moto_loaders.Loader(
                    extra_search_paths=search,
                    include_default_search_paths=False,
                    file_loader=_SharedFileLoader(),
                )
            )
        return _moto_loader[0]


def _register_data_loader(self: botocore_session.Session) -> None:
    self._components.lazy_register_component(
        "data_loader", lambda: _session_loader(self.get_config_variable("data_path"))
    )


def install() -> None:
    global _original
    with _lock:
        if _original is None:
            _original = botocore_session.Session._register_data_loader
            botocore_session.Session._register_data_loader = _register_data_loader
            moto_utils.create_loader = _shared_moto_loader  # type: ignore[attr-defined,unused-ignore]  # get_service_model's


def uninstall() -> None:
    global _original
    with _lock:
        if _original is not None:
            botocore_session.Session._register_data_loader = _original
            moto_utils.create_loader = moto_loaders.create_loader  # type: ignore[attr-defined,unused-ignore]
            _original = None
        _files.clear()
        _listings.clear()
        _moto_loader.clear()
