"""The store step and its start-up: the libcloud driver, the two containers, object names and public URLs.

`init_app` opens the provider's driver (providers.py), makes the public image container and
the private receipts container exist, and keeps them in one `Store` that the other modules
reach through `current_store()`. Every failure of the storage service leaves this module as
`StorageUnavailable` (see `unavailable_on_failure`), so callers catch one type.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

from flask import Flask, current_app
from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.storage.base import Container, Object
from libcloud.storage.types import ContainerAlreadyExistsError, ContainerDoesNotExistError, ObjectDoesNotExistError

from . import providers
from .claims import race_caveat, upload_if_absent
from .config import ConfigError

EXTENSION = "inbox.store"
# What a failing store raises: libcloud's own errors, the HTTP errors of drivers without an
# error parser of their own (Swift, Cloud Files: BaseHTTPError is no LibcloudError), network
# errors (requests' exceptions are OSErrors) and file-system errors of the local store.
STORAGE_ERRORS = (LibcloudError, BaseHTTPError, OSError)
# Reading it proves the service answers and takes the credentials for a container, where a
# container lookup alone can pass without them (S3's driver ignores a 403 there); /healthz
# writes and removes it in the private container to prove that takes new objects.
PROBE_NAME = "healthz-probe"
NAME_KEY_OBJECT = "name-key"
# What object_name() makes: a version-4 UUID and the image's extension.
OBJECT_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.[a-z]{3,4}")


class StorageUnavailable(Exception):
    """The storage service failed or could not be reached; the message names the provider and the error."""


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
        raise StorageUnavailable(f"{store.provider}: {type(error).__name__}: {error}") from error


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
            container.driver.delete_object(container.driver.get_object(container.name, name))
        except ObjectDoesNotExistError:
            return False
    return True


def init_app(app: Flask) -> Store:
    """Open the configured store (ConfigError naming the provider, the step and the fix); keep it on the app."""
    config = app.config
    provider = providers.provider_for(config)
    with _explained(config, "sign in"):  # Swift v1 and Google service accounts authenticate here
        driver = provider.open(config)
    providers.time_out_uploads(driver)
    caveat = race_caveat(driver)
    if caveat:
        logging.getLogger("inbox").warning("%s: %s", config["STORAGE_PROVIDER"], caveat)
    images, receipts = _prepare_containers(driver, provider, config)
    if "PUBLIC_BASE_URL" in config:
        public_base = config["PUBLIC_BASE_URL"]
    elif provider.url_base is None:
        public_base = None
    else:
        with _explained(config, f"find the public URL of container {images.name!r}", "set PUBLIC_BASE_URL"):
            public_base = provider.url_base(driver, images, config)
    spool_folder = provider.spool_folder(driver)
    with _explained(config, f"keep the object name key in container {receipts.name!r}"):
        name_key = _name_key(config, receipts, spool_folder)
    store = Store(
        provider=config["STORAGE_PROVIDER"],
        images=images,
        receipts=receipts,
        public_base=public_base,
        serves_files=provider.url_base is None,
        spool_folder=spool_folder,
        links_spool=provider.links_spool,
        cache_control=f"public, max-age={config['INBOX_CACHE_MAX_AGE']}, immutable",
        name_key=name_key,
    )
    app.extensions[EXTENSION] = store
    return store


def _name_key(config, receipts, spool_folder: str) -> bytes:
    """INBOX_NAME_KEY, or the key made once (create-only, so every instance gets the same) in the private container."""
    if "INBOX_NAME_KEY" in config:
        return config["INBOX_NAME_KEY"].encode()
    driver = receipts.driver
    try:
        obj = driver.get_object(receipts.name, NAME_KEY_OBJECT)
    except ObjectDoesNotExistError:
        os.makedirs(spool_folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=spool_folder, prefix="spool-key-") as made:
            made.write(secrets.token_hex(32).encode())
            made.flush()
            upload_if_absent(receipts, NAME_KEY_OBJECT, made.name)  # another instance may have been first
        obj = driver.get_object(receipts.name, NAME_KEY_OBJECT)
    return b"".join(driver.download_object_as_stream(obj)).strip()


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


def check_writable(store: Store, probe_path: str) -> None:
    """Raise StorageUnavailable unless the private container takes (and gives up) an object now."""
    container = store.receipts
    with unavailable_on_failure(store):
        obj = container.driver.upload_object(probe_path, container, PROBE_NAME)
        container.driver.delete_object(obj)


@contextmanager
def _explained(config, doing: str, fix: str = ""):
    """Turn a storage failure at start-up into a ConfigError naming the provider, the step and the fix."""
    try:
        yield
    except (*STORAGE_ERRORS, ValueError) as error:  # ValueError: e.g. an ambiguous OpenStack catalog
        code = getattr(error, "http_code", None) or getattr(error, "code", None)
        if isinstance(error, InvalidCredsError) or code in (401, 403):
            hint = (
                "the credentials were refused: check STORAGE_KEY and STORAGE_SECRET, and that they may create "
                "containers and change their access"
            )
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


def _prepare_containers(driver, provider: providers.Provider, config):
    """Make the public image container and the private receipts container exist; return both."""
    name, receipts_name = config["STORAGE_CONTAINER"], config["STORAGE_RECEIPTS_CONTAINER"]
    with _explained(config, f"create container {name!r}"):
        images = _ensure_container(driver, name)
        check_access(images)
    with _explained(config, f"create container {receipts_name!r}"):
        receipts = _ensure_container(driver, receipts_name)
        check_access(receipts)
    if provider.make_public and config["STORAGE_MAKE_PUBLIC"]:
        fix = (
            f"{provider.public_fix}; or make its objects readable yourself (a policy, or a CDN named in "
            "PUBLIC_BASE_URL) and set STORAGE_MAKE_PUBLIC=false"
        )
        with _explained(config, f"make container {name!r} publicly readable", fix):
            provider.make_public(driver, images)
    return images, receipts


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
            extra={"content_type": content_type, "meta_data": {"filename": quote(filename)}},
            headers=headers,
        )
