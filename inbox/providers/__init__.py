"""Everything about one storage provider that libcloud leaves to its caller: one record per STORAGE_PROVIDER.

Each record (common.Provider) says which settings the provider cannot do without, how to open
its libcloud driver, how to let anyone read the image container's objects (never list them:
an image's unguessable name is its only secret), where their public URLs start, how a PUT
creates an object only where none exists, under which header names the service keeps
Content-Disposition and Cache-Control, and where attachments are spooled. Each provider's
code is in its own module here. Everything else (containers, uploads, reads) goes through
the drivers' common interface; nothing outside this package branches on a provider's name.
The receipts container is never touched here, so it keeps the provider's private default.
"""

from __future__ import annotations

from collections.abc import Mapping

from libcloud.common.types import LibcloudError
from libcloud.storage.drivers.azure_blobs import AzureBlobsStorageDriver
from libcloud.storage.drivers.cloudfiles import CloudFilesStorageDriver
from libcloud.storage.drivers.google_storage import GoogleStorageDriver
from libcloud.storage.drivers.s3 import S3StorageDriver

from ..config import ConfigError
from ..local_store import LinkingLocalStorageDriver
from .azure import AZURE
from .common import DEFAULT_STORAGE_TIMEOUT, CreateOnly, Provider, storage_timeout, time_out_uploads
from .google import GOOGLE
from .local import LOCAL
from .s3 import MINIO, S3
from .swift import CLOUDFILES, SWIFT, swift_auth

__all__ = [
    "DEFAULT_STORAGE_TIMEOUT",
    "PROVIDERS",
    "CreateOnly",
    "Provider",
    "create_only",
    "provider_for",
    "storage_timeout",
    "swift_auth",
    "time_out_uploads",
]

PROVIDERS = {
    "local": LOCAL,
    "s3": S3,
    "minio": MINIO,
    "azure_blobs": AZURE,
    "openstack_swift": SWIFT,
    "cloudfiles": CLOUDFILES,
    "google_storage": GOOGLE,
}


def provider_for(config: Mapping) -> Provider:
    """The record for STORAGE_PROVIDER, once the settings it needs are there; else ConfigError."""
    name = config["STORAGE_PROVIDER"]
    if name not in PROVIDERS:
        raise ConfigError(f"STORAGE_PROVIDER={name!r} is not supported; use one of {', '.join(PROVIDERS)}")
    for setting, what in PROVIDERS[name].needs.items():
        if setting not in config:
            raise ConfigError(f"{setting} is not set: STORAGE_PROVIDER={name} needs {what}")
    names = PROVIDERS[name].container_names
    for setting in ("STORAGE_CONTAINER", "STORAGE_RECEIPTS_CONTAINER"):
        if names and not names.pattern.fullmatch(config[setting]):
            raise ConfigError(f"{setting}={config[setting]!r} is not a container name {name} accepts: use {names.rule}")
    if name == "openstack_swift":
        swift_auth(config)  # wrong auth settings are a start-up error, not a sign-in failure
    storage_timeout(config)
    return PROVIDERS[name]


# By driver class, most specific first (Google's and MinIO's drivers are S3's, Swift's is Cloud Files').
_BY_DRIVER = (
    (LinkingLocalStorageDriver, LOCAL),
    (GoogleStorageDriver, GOOGLE),
    (S3StorageDriver, S3),
    (AzureBlobsStorageDriver, AZURE),
    (CloudFilesStorageDriver, SWIFT),
)


def create_only(driver) -> CreateOnly | None:
    """How a PUT through `driver` creates only where nothing is; None for the local store (it links)."""
    for driver_class, provider in _BY_DRIVER:
        if isinstance(driver, driver_class):
            return provider.create_only
    raise LibcloudError(f"no create-only upload known for {type(driver).__name__}", driver=driver)
