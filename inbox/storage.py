"""Stores images through apache-libcloud: deterministic UUID names, public containers, public URLs.

The embedded default is libcloud's Local driver with two fixes that matter for a service:
an upload links the spooled file into place (no second copy, never visible half-written)
and the object's type and headers are kept beside it, since the stock driver drops `extra`.
Every other provider's driver comes from providers.py, which also knows how to make its
image container public and where its public URLs start.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import uuid
from contextlib import contextmanager
from urllib.parse import quote

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.storage.drivers.local import LocalStorageDriver
from libcloud.storage.types import ContainerAlreadyExistsError, ContainerDoesNotExistError, ObjectDoesNotExistError

from . import providers
from .config import ConfigError

# Names are content-addressed, so an object never changes once written.
CACHE_CONTROL = "public, max-age=31536000, immutable"
# What a failing store raises: libcloud's own errors, the HTTP errors of drivers without an
# error parser of their own (Swift, Cloud Files: BaseHTTPError is no LibcloudError), network
# errors (requests' exceptions are OSErrors) and file-system errors of the local store.
STORAGE_ERRORS = (LibcloudError, BaseHTTPError, OSError)
# Never written. Reading it is what a delivery does first (looking up a receipt): "no such
# object" proves the service answers and takes the credentials for that container, where a
# container lookup alone can pass without them (S3's driver ignores a 403 there).
PROBE_NAME = "healthz-probe"


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


def open_driver(config):
    """The libcloud driver for STORAGE_PROVIDER."""
    provider = config["STORAGE_PROVIDER"]
    if provider == "local":
        path = os.path.abspath(config["STORAGE_PATH"])
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"STORAGE_PATH={path!r} cannot be created ({error.strerror}); pick a writable folder") from None
        return LinkingLocalStorageDriver(path, ex_use_locking=False)
    with _explained(config, "sign in"):  # Swift v1 and Google service accounts authenticate here
        return providers.PROVIDERS[provider].open(config)


def spool_directory(driver) -> str:
    """Where attachments are spooled: inside the local store (one file system, so a link), else $TMPDIR."""
    if isinstance(driver, LocalStorageDriver):
        directory = os.path.join(driver.base_path, ".spool")
        os.makedirs(directory, exist_ok=True)
        return directory
    return tempfile.gettempdir()


def _ensure_container(driver, name: str):
    try:
        return driver.get_container(name)
    except ContainerDoesNotExistError:
        try:
            return driver.create_container(name)
        except ContainerAlreadyExistsError:  # another worker was first
            return driver.get_container(name)


def check_access(container) -> None:
    """Raise one of STORAGE_ERRORS unless the service answers and the credentials may read `container`."""
    try:
        container.driver.get_object(container.name, PROBE_NAME)
    except ObjectDoesNotExistError:
        pass


@contextmanager
def _explained(config, doing: str, fix: str = ""):
    """Turn a storage failure at start-up into a ConfigError naming the provider, the step and the fix."""
    try:
        yield
    except (*STORAGE_ERRORS, ValueError) as error:  # ValueError: e.g. an ambiguous OpenStack catalog
        code = getattr(error, "http_code", None) or getattr(error, "code", None)
        if isinstance(error, InvalidCredsError) or code in (401, 403):
            hint = ("the credentials were refused: check STORAGE_KEY and STORAGE_SECRET, and that they may create "
                    "containers and change their access")
        elif isinstance(error, OSError):
            hint = "the service cannot be reached: check STORAGE_HOST, STORAGE_PORT, STORAGE_SECURE or STORAGE_AUTH_URL"
        elif isinstance(error, ValueError) or "endpoint" in str(error):
            hint = "the service catalog has no single storage endpoint: set STORAGE_REGION to one of its regions"
        else:
            hint = "check the STORAGE_* settings (README, Storage providers)"
        detail = getattr(error, "value", None) or error
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        raise ConfigError(
            f"STORAGE_PROVIDER={config['STORAGE_PROVIDER']}: cannot {doing} ({type(error).__name__}: {detail[:300]}). "
            f"To fix: {hint}{'; or ' + fix if fix else ''}."
        ) from error


def prepare_containers(driver, config):
    """Make the public image container and the private receipts container exist; return both."""
    name, receipts_name = config["STORAGE_CONTAINER"], config["STORAGE_RECEIPTS_CONTAINER"]
    with _explained(config, f"create container {name!r}"):
        images = _ensure_container(driver, name)
        check_access(images)
    with _explained(config, f"create container {receipts_name!r}"):
        receipts = _ensure_container(driver, receipts_name)
        check_access(receipts)
    provider = providers.PROVIDERS.get(config["STORAGE_PROVIDER"])
    if provider and config["STORAGE_MAKE_PUBLIC"]:
        fix = (f"{provider.public_fix}; or make its objects readable yourself (a policy, or a CDN named in "
               "PUBLIC_BASE_URL) and set STORAGE_MAKE_PUBLIC=false")
        with _explained(config, f"make container {name!r} publicly readable", fix):
            provider.make_public(driver, images)
    return images, receipts


def public_base_url(driver, container, config) -> str | None:
    """Prefix of the public URL of every object, or None when the app serves them (local)."""
    if "PUBLIC_BASE_URL" in config:
        return config["PUBLIC_BASE_URL"]
    provider = providers.PROVIDERS.get(config["STORAGE_PROVIDER"])
    if provider is None:
        return None
    with _explained(config, f"find the public URL of container {container.name!r}", "set PUBLIC_BASE_URL"):
        return provider.url_base(driver, container, config)


def object_name(name_key: bytes, message_id: str, sender: str, sha256: str, extension: str) -> str:
    """A UUID nobody can guess or aim at, the same for a redelivery of the same message."""
    digest = hmac.new(name_key, "\0".join((message_id, sender, sha256)).encode(), hashlib.sha256).digest()
    return f"{uuid.UUID(bytes=digest[:16], version=4)}{extension}"


def content_disposition(filename: str) -> str:
    """RFC 6266 inline disposition carrying the (already sanitised) original file name."""
    if not filename:
        return "inline"
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_").replace("\\", "_")
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def store_image(container, path: str, name: str, content_type: str, filename: str):
    """Upload the file at `path` as a public image object; return the libcloud Object."""
    return container.driver.upload_object(
        path,
        container,
        name,
        extra={"content_type": content_type, "meta_data": {"filename": quote(filename)}},
        headers=providers.upload_headers(container.driver, content_disposition(filename), CACHE_CONTROL),
    )
