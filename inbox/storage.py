"""The store step: the opened store (`Store`), object names, public images, and storage failures as one type.

store_opening.py opens the store at start-up; the other modules reach it through
`current_store()`. Every failure of the storage service leaves this module as
`StorageUnavailable` (see `unavailable_on_failure`), so callers catch one type.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import requests
from flask import Flask, current_app
from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.storage.base import Container, Object
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

from . import providers

EXTENSION = "inbox.store"
# What a failing store raises: libcloud's own errors, the HTTP errors of drivers without an
# error parser of their own (Swift, Cloud Files: BaseHTTPError is no LibcloudError), network
# errors (requests' exceptions are OSErrors) and file-system errors of the local store.
STORAGE_ERRORS = (LibcloudError, BaseHTTPError, OSError)
# Reading it proves the service answers and takes the credentials for a container, where a
# container lookup alone can pass without them (S3's driver ignores a 403 there); /healthz
# writes and removes it in the private container to prove that takes new objects.
PROBE_NAME = "healthz-probe"
# What object_name() makes: a version-4 UUID and the image's extension.
OBJECT_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.[a-z]{3,4}")


class StorageUnavailable(Exception):
    """The storage service failed or could not be reached; the message names the provider and the error.

    `kind` says what went wrong in a few words, without paths, hosts or object reprs: what /healthz shows.
    """

    def __init__(self, message: str, kind: str = "the service failed"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Store:
    provider: str  # STORAGE_PROVIDER, for messages
    images: Container  # public: anyone may read an object by its name
    receipts: Container  # private: receipts and records
    public_base: str | None  # prefix of every public URL; None: the app's own /files/ on the host asked
    serves_files: bool  # the app serves the image objects at /files/ (the local store)
    spool_folder: str
    links_spool: bool  # the spool file becomes the object
    # An object never changes once written, but it may be taken down: INBOX_CACHE_MAX_AGE bounds
    # how long caches may serve a copy after that.
    cache_control: str
    name_key: bytes  # keys object names and message records; unlike the signing key, it never rotates


def current_store(app: Flask | None = None) -> Store:
    """The Store of `app`, by default the app handling the request."""
    return (app or current_app).extensions[EXTENSION]


@contextmanager
def unavailable_on_failure(store: Store) -> Iterator[None]:
    """Translate the storage service's own errors into StorageUnavailable."""
    try:
        yield
    except STORAGE_ERRORS as error:
        raise StorageUnavailable(f"{store.provider}: {type(error).__name__}: {error}", failure_kind(error)) from error


def failure_kind(error: Exception) -> str:
    """One of STORAGE_ERRORS in a few words that name no path, host, driver or credential."""
    if isinstance(error, (TimeoutError, requests.Timeout)):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "cannot connect"
    if isinstance(error, ContainerDoesNotExistError):
        return f"container {error.container_name} does not exist"
    status = getattr(error, "http_code", None) or getattr(error, "code", None)
    if isinstance(error, InvalidCredsError) or status in (401, 403):
        return "credentials refused"
    if isinstance(status, int):
        return f"HTTP {status}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return type(error).__name__


def find_object(store: Store, container: Container, name: str) -> Object | None:
    """The object `name` in `container`, None when there is none (StorageUnavailable when the service fails)."""
    with unavailable_on_failure(store):
        try:
            return container.driver.get_object(container.name, name)
        except ObjectDoesNotExistError:
            return None


def delete_if_present(store: Store, container: Container, name: str) -> bool:
    """Delete the object `name` from `container`; False when there was none."""
    with unavailable_on_failure(store):
        try:
            deleted = container.driver.delete_object(container.driver.get_object(container.name, name))
        except ObjectDoesNotExistError:
            return False
    if not deleted:  # S3's and Azure's drivers answer False for an unexpected status, raising nothing
        raise StorageUnavailable(
            f"{store.provider}: the service did not delete {name} in container {container.name}", "a delete failed"
        )
    return True


def check_access(container) -> None:
    """Raise one of STORAGE_ERRORS unless the service answers and the credentials may read `container`."""
    try:
        container.driver.get_object(container.name, PROBE_NAME)
    except ObjectDoesNotExistError:
        pass


def check_writable(store: Store, probe_path: str) -> None:
    """Raise StorageUnavailable unless the private container takes (and gives up) an object now."""
    container = store.receipts
    with unavailable_on_failure(store):
        obj = container.driver.upload_object(probe_path, container, PROBE_NAME)
        container.driver.delete_object(obj)


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


def store_image(store: Store, path: str, name: str, content_type: str, filename: str):
    """Upload the file at `path` as a public image object; return the libcloud Object."""
    headers = providers.PROVIDERS[store.provider].upload_headers(content_disposition(filename), store.cache_control)
    with unavailable_on_failure(store):
        return store.images.driver.upload_object(
            path,
            store.images,
            name,
            # The name travels in Content-Disposition only: Swift refuses a metadata value over 256 bytes
            # (a 30-character Japanese name, percent-encoded), AWS all user metadata over 2 KB.
            extra={"content_type": content_type},
            headers=headers,
        )
