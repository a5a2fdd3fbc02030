"""The embedded local store: a folder on this machine, the app serving its images, spool files linked into place."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..config import ConfigError
from ..local_store import LinkingLocalStorageDriver
from .common import Provider


def _open_local(config: Mapping):
    path = os.path.abspath(config["STORAGE_PATH"])
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"STORAGE_PATH={path!r} cannot be created ({error.strerror}); pick a writable folder"
        ) from None
    return LinkingLocalStorageDriver(
        path, ex_use_locking=False, private=frozenset({config["STORAGE_RECEIPTS_CONTAINER"]})
    )


def _local_spool_folder(driver) -> str:
    # Inside the store: one file system, so the spool file becomes the object by a link.
    return os.path.join(driver.base_path, ".spool")


LOCAL = Provider({}, _open_local, None, None, None, spool_folder=_local_spool_folder, links_spool=True)
