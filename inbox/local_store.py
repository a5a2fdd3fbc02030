"""The embedded default store: libcloud's Local driver, linking the spool file into place.

Two fixes that matter for a service: an upload links the spooled file into place (no second
copy, never visible half-written, durable before the answer) and the object's type and
headers are kept with it, since the stock driver drops `extra`: in an extended attribute of
the file itself (no second file to create and fsync per image), or in a file under .meta/
where the file system keeps no user attributes.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor

from libcloud.storage.drivers.local import LocalStorageDriver
from libcloud.storage.types import ObjectDoesNotExistError

META_ATTRIBUTE = "user.inbox.meta"


class LinkingLocalStorageDriver(LocalStorageDriver):
    """libcloud's Local driver, storing by hard link and keeping content type and headers.

    Objects of `private` containers stay readable by this user only (0600 in a 0700 folder);
    the others are world-readable (0644), for a web server that serves the folder directly.
    """

    def __init__(self, key, *args, private: frozenset[str] = frozenset(), **kwargs):
        super().__init__(key, *args, **kwargs)
        self.private = private

    def create_container(self, container_name):
        container = super().create_container(container_name)
        if container_name in self.private:
            os.chmod(self.get_container_cdn_url(container), 0o700)
        return container

    def _meta_path(self, container_name: str, object_name: str) -> str:
        return os.path.join(self.base_path, ".meta", container_name, object_name + ".json")

    def upload_object(self, file_path, container, object_name, extra=None, verify_hash=True, headers=None):
        obj_path = os.path.join(self.get_container_cdn_url(container, check=True), object_name)
        meta = None
        if extra or headers:
            meta = json.dumps(
                {
                    "content_type": (extra or {}).get("content_type"),
                    "meta_data": (extra or {}).get("meta_data") or {},
                    "headers": headers or {},
                }
            ).encode()
            self._keep_meta(file_path, container.name, object_name, meta)
        mode = 0o600 if container.name in self.private else 0o644
        os.chmod(file_path, mode)
        try:
            os.link(file_path, obj_path)
        except FileExistsError:
            if not os.path.samefile(file_path, obj_path):  # an image's redelivery is the same content; a receipt is not
                replacement = f"{obj_path}.{uuid.uuid4().hex}.tmp"  # unique per thread too: gthread runs several
                os.link(file_path, replacement)
                os.replace(replacement, obj_path)
        except OSError:  # another file system, or links not allowed: copy, then rename into place
            with open(file_path, "rb") as source:
                _write_atomically(obj_path, source, mode)
            if meta is not None:  # the copy has none of the original's attributes
                self._keep_meta(obj_path, container.name, object_name, meta)
        # The answer tells Mailgun it may forget the message: the bytes, their metadata and the new
        # name must survive a crash. The object, not the spool: a copy's attributes are set after
        # the copy was made durable. Both fsyncs at once, as the file system can commit them
        # together (~0.3 ms less).
        pending = _fsync_threads(os.getpid()).submit(fsync_path, os.path.dirname(obj_path))
        try:
            fsync_path(obj_path, drop_cache=True)
        finally:
            pending.result()
        return self._make_object(container, object_name)

    def delete_object(self, obj):
        # Not libcloud's: it answers False for any failure (a file this user may not remove), the reason lost.
        try:
            os.unlink(self.get_object_cdn_url(obj))
        except FileNotFoundError:
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=obj.name) from None
        try:
            os.unlink(self._meta_path(obj.container.name, obj.name))
        except FileNotFoundError:
            pass
        return True

    def _keep_meta(self, path: str, container_name: str, object_name: str, meta: bytes) -> None:
        try:
            os.setxattr(path, META_ATTRIBUTE, meta)
        except OSError:  # no user attributes here (or too long for one): a file beside it
            _write_atomically(self._meta_path(container_name, object_name), meta)

    def _make_object(self, container, object_name):
        obj = super()._make_object(container, object_name)
        try:
            meta = os.getxattr(obj.get_cdn_url(), META_ATTRIBUTE)
        except OSError:
            try:
                with open(self._meta_path(container.name, object_name), "rb") as file:
                    meta = file.read()
            except FileNotFoundError:
                return obj
        meta = json.loads(meta)
        obj.extra.update(content_type=meta["content_type"], headers=meta["headers"])
        obj.meta_data = meta["meta_data"]
        return obj


@functools.cache
def _fsync_threads(pid: int) -> ThreadPoolExecutor:
    # One pool per process: a gunicorn worker forked from a master that used it gets its own.
    # Threads are made only as requests fsync at once (gthread runs WEB_THREADS of them): queued
    # behind one thread, their fsyncs could no longer share the file system's commits.
    return ThreadPoolExecutor(max_workers=32, thread_name_prefix="fsync")


def fsync_path(path: str, drop_cache: bool = False) -> None:
    """fsync the file or folder at `path`; `drop_cache`: then free the file's pages."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if drop_cache and hasattr(os, "posix_fadvise"):  # Linux
            # Nothing reads a new object back soon: free its pages rather than crowd the cache.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _write_atomically(path: str, data, mode: int = 0o644) -> None:
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
            os.chmod(temporary.name, mode)
            os.replace(temporary.name, path)
        except BaseException:
            os.unlink(temporary.name)
            raise
