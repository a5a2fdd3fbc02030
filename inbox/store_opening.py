"""Opening the store: the provider's driver, the two containers and the object name key, at start-up or for a takedown.

`init_app` opens the configured store for the service, making the public image container and
the private receipts container exist, and keeps it on the app for `storage.current_store()`.
A takedown (`inbox delete`) opens only a store that is there. Every failure becomes a
ConfigError naming the provider, the step and what to fix.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from contextlib import contextmanager

from flask import Flask
from libcloud.common.types import InvalidCredsError
from libcloud.storage.types import ContainerAlreadyExistsError, ContainerDoesNotExistError, ObjectDoesNotExistError

from . import providers
from .claims import race_caveat, upload_if_absent
from .config import ConfigError
from .storage import EXTENSION, STORAGE_ERRORS, Store, check_access

NAME_KEY_OBJECT = "name-key"


def init_app(app: Flask) -> Store:
    """Open the configured store (ConfigError naming the provider, the step and the fix); keep it on the app."""
    store = open_store(app.config)
    app.extensions[EXTENSION] = store
    return store


def open_store(config, *, create: bool = True) -> Store:
    """The configured store, its containers made to exist; with `create` False only an existing one.

    A takedown opens it without `create`: run with a mistyped setting or in the wrong folder, it
    must say so, not make an empty store (or a new public bucket) and find nothing in it.
    """
    provider = providers.provider_for(config)
    if not create and provider is providers.LOCAL and not os.path.isdir(config["STORAGE_PATH"]):
        raise ConfigError(
            f"STORAGE_PATH={config['STORAGE_PATH']!r}: there is no store at {os.path.abspath(config['STORAGE_PATH'])}; "
            "run this where the service runs (inbox serve keeps it in var/storage), or set its STORAGE_PATH"
        )
    with _explained(config, "sign in"):  # Swift v1 and Google service accounts authenticate here
        driver = provider.open(config)
    providers.time_out_uploads(driver)
    caveat = race_caveat(driver)
    if caveat and create:
        logging.getLogger("inbox").warning("%s: %s", config["STORAGE_PROVIDER"], caveat)
    images, receipts = _prepare_containers(driver, provider, config, create)
    if "PUBLIC_BASE_URL" in config:
        public_base = config["PUBLIC_BASE_URL"]
    elif provider.url_base is None:
        public_base = None
    else:
        with _explained(config, f"find the public URL of container {images.name!r}", "set PUBLIC_BASE_URL"):
            public_base = provider.url_base(driver, images, config)
    spool_folder = provider.spool_folder(driver)
    with _explained(config, f"keep the object name key in container {receipts.name!r}"):
        name_key = _name_key(config, receipts, spool_folder) if create else b""  # a takedown names no object
    return Store(
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


def _prepare_containers(driver, provider: providers.Provider, config, create: bool):
    """Make the public image container and the private receipts container exist; return both.

    Without `create`, ConfigError when either is missing, and the image container's access is left as it is.
    """
    found = []
    for name in (config["STORAGE_CONTAINER"], config["STORAGE_RECEIPTS_CONTAINER"]):
        with _explained(config, f"{'create' if create else 'find'} container {name!r}"):
            try:
                found.append(_ensure_container(driver, name) if create else driver.get_container(name))
            except ContainerDoesNotExistError:
                raise ConfigError(
                    f"STORAGE_PROVIDER={config['STORAGE_PROVIDER']}: there is no container {name!r}"
                    + (f" in {driver.base_path}" if provider is providers.LOCAL else "")
                    + "; check STORAGE_CONTAINER (and STORAGE_PATH), or run this with the service's settings"
                ) from None
            check_access(found[-1])
    images, receipts = found
    if create and provider.make_public and config["STORAGE_MAKE_PUBLIC"]:
        name = images.name
        fix = (
            f"{provider.public_fix}; or make its objects readable yourself (a policy, or a CDN named in "
            "PUBLIC_BASE_URL) and set STORAGE_MAKE_PUBLIC=false"
        )
        with _explained(config, f"make container {name!r} publicly readable", fix):
            provider.make_public(driver, images)
    return images, receipts
