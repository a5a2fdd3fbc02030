"""The embedded default store: libcloud's Local driver, linking the spool file into place.

Two fixes that matter for a service: an upload links the spooled file into place (no second
copy, never visible half-written, durable before the answer) and the object's type and
headers are kept beside it, since the stock driver drops `extra`.
"""
from __future__ import annotations

import json
import os
import tempfile

from libcloud.storage.drivers.local import LocalStorageDriver


class LinkingLocalStorageDriver(LocalStorageDriver):
    """libcloud's Local driver, storing by hard link and keeping content type and headers."""

    def _meta_path(self, container_name: str, object_name: str) -> str:
        return os.path.join(self.base_path, ".meta", container_name, object_name + ".json")

    def upload_object(self, file_path, container, object_name, extra=None, verify_hash=True, headers=None):
        obj_path = os.path.join(self.get_container_cdn_url(container, check=True), object_name)
        if extra or headers:
            meta = {"content_type": (extra or {}).get("content_type"),
                    "meta_data": (extra or {}).get("meta_data") or {}, "headers": headers or {}}
            _write_atomically(self._meta_path(container.name, object_name), json.dumps(meta).encode())
        _fsync(file_path, drop_cache=True)  # the answer tells Mailgun it may forget the message
        os.chmod(file_path, 0o644)
        try:
            os.link(file_path, obj_path)
        except FileExistsError:
            pass  # same name, same content: a redelivery
        except OSError:  # another file system, or links not allowed: copy, then rename into place
            with open(file_path, "rb") as source:
                _write_atomically(obj_path, source)
        _fsync(os.path.dirname(obj_path))  # the new name must survive a crash too, not only the bytes
        return self._make_object(container, object_name)

    def _make_object(self, container, object_name):
        obj = super()._make_object(container, object_name)
        try:
            with open(self._meta_path(container.name, object_name), "rb") as file:
                meta = json.load(file)
        except FileNotFoundError:
            return obj
        obj.extra.update(content_type=meta["content_type"], headers=meta["headers"])
        obj.meta_data = meta["meta_data"]
        return obj


def _fsync(path: str, drop_cache: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if drop_cache and hasattr(os, "posix_fadvise"):  # Linux
            # Nothing reads a new object back soon: free its pages rather than crowd the cache.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _write_atomically(path: str, data) -> None:
    """Write bytes or a file's content to `path` via a temporary file and a rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), prefix=".tmp-", delete=False) as temporary:
        try:
            if isinstance(data, bytes):
                temporary.write(data)
            else:
                for chunk in iter(lambda: data.read(1024 * 1024), b""):
                    temporary.write(chunk)
            temporary.flush()
            os.fsync(temporary.fileno())
            os.chmod(temporary.name, 0o644)
            os.replace(temporary.name, path)
        except BaseException:
            os.unlink(temporary.name)
            raise
