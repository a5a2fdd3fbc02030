"""Azure Blob Storage (and Azurite): container ACL "blob", headers under Azure's names, 4 MiB blocks raised."""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from urllib.parse import quote

from libcloud.storage.drivers import azure_blobs
from libcloud.storage.drivers.azure_blobs import AzureBlobsStorageDriver

from ..config import ConfigError
from .common import IF_NONE_MATCH, ContainerNames, CreateOnly, Provider, expect, origin, storage_timeout

# Azure's Put Blob takes up to 256 MiB in one request at the API version libcloud speaks.
AZURE_PUT_BLOB_LIMIT = 256 * 1024 * 1024
# Azure answers a bare 400 to any other name ("Naming and Referencing Containers, Blobs, and Metadata").
AZURE_CONTAINER_NAMES = ContainerNames(
    re.compile(r"(?=.{3,63}\Z)[a-z0-9]+(-[a-z0-9]+)*"),
    "3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
)


def _open_azure(config: Mapping):
    # Past AZURE_UPLOAD_CHUNK_SIZE (4 MiB) libcloud uploads in blocks it holds in memory, about
    # 20 MiB at a time; up to it, one PUT streamed from the file. Raise it to the attachment limit.
    limit = min(int(config.get("INBOX_MAX_ATTACHMENT_BYTES", 0)), AZURE_PUT_BLOB_LIMIT)
    azure_blobs.AZURE_UPLOAD_CHUNK_SIZE = max(azure_blobs.AZURE_UPLOAD_CHUNK_SIZE, limit)
    try:
        return AzureBlobsStorageDriver(
            config["STORAGE_KEY"],
            config["STORAGE_SECRET"],
            secure=config.get("STORAGE_SECURE", True),
            host=config.get("STORAGE_HOST"),
            port=config.get("STORAGE_PORT"),
            timeout=storage_timeout(config),
        )
    except (binascii.Error, ValueError):
        raise ConfigError(
            "STORAGE_SECRET is not a storage account access key (base64): copy key1 or key2 from the "
            "storage account's Access keys page"
        ) from None


def _azure_make_public(driver, container) -> None:
    # "blob": anyone may read a blob by name; listing the container still needs the key.
    answer = driver.connection.request(
        "/" + container.name,
        method="PUT",
        params={"restype": "container", "comp": "acl"},
        headers={"x-ms-blob-public-access": "blob"},
    )
    expect(answer, 200)


def _azure_url_base(driver, container, config: Mapping) -> str:
    # The account is a host prefix on Azure, a path prefix on Azurite; the connection knows which.
    return origin(driver.connection) + driver.connection.morph_action_hook("/" + quote(container.name))


def _azure_headers(disposition: str, cache_control: str) -> dict:
    # libcloud renames Cache-Control only for block uploads (> 4 MiB), Content-Disposition never.
    return {"x-ms-blob-content-disposition": disposition, "x-ms-blob-cache-control": cache_control}


AZURE = Provider(
    {"STORAGE_KEY": "the storage account name", "STORAGE_SECRET": "the account's access key"},
    _open_azure,
    _azure_make_public,
    _azure_url_base,
    CreateOnly(IF_NONE_MATCH, re.compile(r"status_code=(409|412)\b")),  # 409 BlobAlreadyExists
    "turn on 'Allow Blob anonymous access' for the storage account",
    upload_headers=_azure_headers,
    container_names=AZURE_CONTAINER_NAMES,
)
