"""OpenStack Swift and Rackspace Cloud Files: sign-in (tempauth, Keystone), container read ACL or CDN, URLs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from libcloud.common.openstack_identity import OpenStackIdentity_1_0_Connection
from libcloud.common.types import LibcloudError
from libcloud.storage.drivers.cloudfiles import CloudFilesStorageDriver, OpenStackSwiftStorageDriver

from ..config import ConfigError, absolute_url
from .common import IF_NONE_MATCH, CreateOnly, Provider, expect, origin, storage_timeout

# Swift identity API versions, by the suffix an auth URL usually carries (libcloud adds it itself).
SWIFT_AUTH_VERSIONS = {"/v1.0": "1.0", "/v2.0": "2.0_password", "/v3": "3.x_password"}


def swift_auth(config: Mapping) -> tuple[str, str]:
    """The identity URL without its version suffix, and the auth version (from the suffix, or set)."""
    url, version = absolute_url(config, "STORAGE_AUTH_URL"), None
    for suffix, suffix_version in SWIFT_AUTH_VERSIONS.items():
        if url.endswith(suffix):
            url, version = url[: -len(suffix)], suffix_version
    version = config.get("STORAGE_AUTH_VERSION", version or "3.x_password").strip()
    if version not in SWIFT_AUTH_VERSIONS.values():
        raise ConfigError(
            f"STORAGE_AUTH_VERSION={version!r}: use 1.0 (tempauth, swauth), 2.0_password or 3.x_password (Keystone)"
        )
    if version == "3.x_password" and "STORAGE_TENANT" not in config:
        raise ConfigError(
            "STORAGE_TENANT is not set: Keystone v3 needs the project (tenant) name to scope the token to"
        )
    return url, version


def _open_swift(config: Mapping):
    key, secret = config["STORAGE_KEY"], config["STORAGE_SECRET"]
    auth_url, version = swift_auth(config)
    options = {
        "ex_force_auth_url": auth_url,
        "ex_force_auth_version": version,
        "ex_tenant_name": config.get("STORAGE_TENANT"),
        "ex_domain_name": config.get("STORAGE_DOMAIN", "Default"),
        "ex_force_service_region": config.get("STORAGE_REGION"),
        "timeout": storage_timeout(config),
    }
    if version == "1.0":
        # The driver looks the storage URL up by a service name a v1 answer does not carry;
        # ask the v1 auth service (tempauth, swauth) once and pass the URL it gives.
        identity = OpenStackIdentity_1_0_Connection(auth_url, key, secret, timeout=options["timeout"]).authenticate()
        options["ex_force_base_url"] = identity.urls["cloudFiles"][0]["publicURL"]
    return OpenStackSwiftStorageDriver(key, secret, **options)


def _swift_make_public(driver, container) -> None:
    # enable_container_cdn does nothing on plain Swift. ".r:*" lets any referrer read objects;
    # without ".rlistings" the container cannot be listed.
    answer = driver.connection.request("/" + quote(container.name), method="POST", headers={"X-Container-Read": ".r:*"})
    expect(answer, 204, 202, 200)


def _swift_url_base(driver, container, config: Mapping) -> str:
    connection = driver.connection
    connection.get_service_catalog()  # authenticates and points the connection at the storage URL
    return f"{origin(connection)}{connection.request_path.rstrip('/')}/{quote(container.name)}"


def _open_cloudfiles(config: Mapping):
    options = {"region": config.get("STORAGE_REGION", "ord").lower(), "timeout": storage_timeout(config)}
    if "STORAGE_AUTH_URL" in config:
        options["ex_force_auth_url"] = absolute_url(config, "STORAGE_AUTH_URL")
    return CloudFilesStorageDriver(config["STORAGE_KEY"], config["STORAGE_SECRET"], **options)


def _cloudfiles_make_public(driver, container) -> None:
    if not driver.enable_container_cdn(container):
        raise LibcloudError("the CDN refused to enable the container", driver=driver)


def _cloudfiles_url_base(driver, container, config: Mapping) -> str:
    # The SSL CDN URI; the per-object variant is plain http and costs a HEAD per call.
    return driver.get_container_cdn_url(container, ex_ssl_uri=True)


SWIFT_CREATE_ONLY = CreateOnly(
    IF_NONE_MATCH,
    re.compile(r"Server didn't return etag"),
    # Measured on a single-node Swift 2.x: of 20 PUTs racing for one name, up to 14 succeeded.
    "Swift refuses to overwrite an existing object (If-None-Match: *) but not PUTs that race: two "
    "deliveries of one message arriving at the same moment on two workers can both be processed",
)
SWIFT = Provider(
    {
        "STORAGE_KEY": "the user name",
        "STORAGE_SECRET": "the password",
        "STORAGE_AUTH_URL": "the identity URL, e.g. https://keystone.example.com:5000/v3",
    },
    _open_swift,
    _swift_make_public,
    _swift_url_base,
    SWIFT_CREATE_ONLY,
    "the user needs a role that may set container ACLs",
)
CLOUDFILES = Provider(
    {"STORAGE_KEY": "the Rackspace user name", "STORAGE_SECRET": "the API key"},
    _open_cloudfiles,
    _cloudfiles_make_public,
    _cloudfiles_url_base,
    SWIFT_CREATE_ONLY,
    "check that the account has the CDN enabled",
)
