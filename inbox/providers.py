"""Per-provider setup that libcloud leaves to its caller: open the driver, make images public, say their URL.

One entry per STORAGE_PROVIDER other than `local`: how to open its libcloud driver from the
STORAGE_* settings, how to let anyone read the image container's objects (never list them:
an image's unguessable name is its only secret), and the public URL base of that container.
Everything else (containers, uploads, reads) goes through the drivers' common interface in
storage.py. The receipts container is never touched here, so it keeps the provider's
private default.
"""
from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree.ElementTree import SubElement, tostring

from libcloud.common.openstack_identity import OpenStackIdentity_1_0_Connection
from libcloud.common.types import LibcloudError
from libcloud.storage.drivers import azure_blobs
from libcloud.storage.drivers.azure_blobs import AzureBlobsStorageDriver
from libcloud.storage.drivers.cloudfiles import CloudFilesStorageDriver, OpenStackSwiftStorageDriver
from libcloud.storage.drivers.google_storage import GoogleStorageDriver
from libcloud.storage.drivers.s3 import REGION_TO_HOST_MAP, S3StorageDriver

from .config import ConfigError

PUBLIC_READ_SID = "InboxPublicReadObjects"
# Seconds to connect, and to wait for each answer (each read, not the whole transfer), on every
# storage request; libcloud's own default is 60. A delivery waits for storage before it answers
# Mailgun, and /healthz for its probe: a hung endpoint should cost seconds, then a 503.
DEFAULT_STORAGE_TIMEOUT = 10.0


def storage_timeout(config: Mapping) -> float:
    """STORAGE_TIMEOUT in seconds (a number or its text), validated; the default when it is absent."""
    raw = config.get("STORAGE_TIMEOUT", DEFAULT_STORAGE_TIMEOUT)
    text = str(raw).strip()
    try:
        seconds = float(text) if text.isascii() else float("nan")  # float() reads other scripts' digits too
    except ValueError:
        seconds = float("nan")
    if not 0.1 <= seconds <= 300:  # also refuses nan and inf
        raise ConfigError(f"STORAGE_TIMEOUT={raw!r}: set it to the seconds a storage request may wait, "
                          f"0.1 to 300 (default {DEFAULT_STORAGE_TIMEOUT:g})")
    return seconds


def _expect(answer, *statuses) -> None:
    """Drivers treat some 4xx answers as success; an access change must really have succeeded."""
    if answer.status not in statuses:
        body = answer.body.decode(errors="replace") if isinstance(answer.body, bytes) else str(answer.body)
        raise LibcloudError(f"HTTP {answer.status}: {body[:300]}")


def _origin(connection) -> str:
    scheme, default_port = ("https", 443) if connection.secure else ("http", 80)
    port = int(connection.port)
    return f"{scheme}://{connection.host}" + ("" if port == default_port else f":{port}")


def _open_s3(config: Mapping):
    region, host = config.get("STORAGE_REGION", "us-east-1"), config.get("STORAGE_HOST")
    if host is None and region not in REGION_TO_HOST_MAP:
        raise ConfigError(
            f"STORAGE_REGION={region!r} is not an AWS region libcloud knows ({', '.join(sorted(REGION_TO_HOST_MAP))}); "
            "for another S3-compatible service set STORAGE_HOST (and STORAGE_PORT, STORAGE_SECURE) too"
        )
    driver = S3StorageDriver(
        config["STORAGE_KEY"], config["STORAGE_SECRET"], secure=config.get("STORAGE_SECURE", True), host=host,
        port=config.get("STORAGE_PORT"), region=region if region in REGION_TO_HOST_MAP else None,
        timeout=storage_timeout(config),
    )
    # The constructor accepts AWS's region names only; S3-compatible services name their own,
    # and requests are signed with whatever region_name holds.
    driver.region_name = region
    if region != "us-east-1":
        driver.ex_location_name = region  # sent as the LocationConstraint when creating the bucket
    return driver


def _s3_make_public(driver, container) -> None:
    """Add (once) a bucket-policy statement letting anyone GET objects; other statements are kept."""
    region = driver.region_name
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    statement = {
        "Sid": PUBLIC_READ_SID, "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:{partition}:s3:::{container.name}/*",
    }
    path = "/" + container.name
    # raw: the policy is JSON (the driver would parse it as XML), and 404 means "no policy yet".
    answer = driver.connection.request(path, params={"policy": ""}, raw=True)
    _expect(answer, 200, 404)
    policy = json.loads(answer.body) if answer.status == 200 else {"Version": "2012-10-17"}
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    if statement in statements:
        return
    policy["Statement"] = [other for other in statements if other.get("Sid") != PUBLIC_READ_SID] + [statement]
    answer = driver.connection.request(
        path, params={"policy": ""}, method="PUT", data=json.dumps(policy),
        headers={"Content-Type": "application/json"}, raw=True,
    )
    _expect(answer, 200, 204)


def _s3_url_base(driver, container, config: Mapping) -> str:
    if "STORAGE_HOST" not in config and "." not in container.name:
        return f"https://{container.name}.{driver.connection.host}"  # AWS: virtual-hosted style
    return f"{_origin(driver.connection)}/{quote(container.name)}"  # path style: any endpoint, any port


# Azure's Put Blob takes up to 256 MiB in one request at the API version libcloud speaks.
AZURE_PUT_BLOB_LIMIT = 256 * 1024 * 1024


def _open_azure(config: Mapping):
    # Past AZURE_UPLOAD_CHUNK_SIZE (4 MiB) libcloud uploads in blocks it holds in memory, about
    # 20 MiB at a time; up to it, one PUT streamed from the file. Raise it to the attachment limit.
    limit = min(int(config.get("INBOX_MAX_ATTACHMENT_BYTES", 0)), AZURE_PUT_BLOB_LIMIT)
    azure_blobs.AZURE_UPLOAD_CHUNK_SIZE = max(azure_blobs.AZURE_UPLOAD_CHUNK_SIZE, limit)
    try:
        return AzureBlobsStorageDriver(
            config["STORAGE_KEY"], config["STORAGE_SECRET"], secure=config.get("STORAGE_SECURE", True),
            host=config.get("STORAGE_HOST"), port=config.get("STORAGE_PORT"), timeout=storage_timeout(config),
        )
    except (binascii.Error, ValueError):
        raise ConfigError(
            "STORAGE_SECRET is not a storage account access key (base64): copy key1 or key2 from the "
            "storage account's Access keys page"
        ) from None


def _azure_make_public(driver, container) -> None:
    # "blob": anyone may read a blob by name; listing the container still needs the key.
    answer = driver.connection.request(
        "/" + container.name, method="PUT", params={"restype": "container", "comp": "acl"},
        headers={"x-ms-blob-public-access": "blob"},
    )
    _expect(answer, 200)


def _azure_url_base(driver, container, config: Mapping) -> str:
    # The account is a host prefix on Azure, a path prefix on Azurite; the connection knows which.
    return _origin(driver.connection) + driver.connection.morph_action_hook("/" + quote(container.name))


def _open_swift(config: Mapping):
    key, secret, auth_url = config["STORAGE_KEY"], config["STORAGE_SECRET"], config["STORAGE_AUTH_URL"]
    version = config["STORAGE_AUTH_VERSION"]
    options = {
        "ex_force_auth_url": auth_url, "ex_force_auth_version": version, "ex_tenant_name": config.get("STORAGE_TENANT"),
        "ex_domain_name": config.get("STORAGE_DOMAIN", "Default"), "ex_force_service_region": config.get("STORAGE_REGION"),
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
    _expect(answer, 204, 202, 200)


def _swift_url_base(driver, container, config: Mapping) -> str:
    connection = driver.connection
    connection.get_service_catalog()  # authenticates and points the connection at the storage URL
    return f"{_origin(connection)}{connection.request_path.rstrip('/')}/{quote(container.name)}"


def _open_cloudfiles(config: Mapping):
    options = {"region": config.get("STORAGE_REGION", "ord").lower(), "timeout": storage_timeout(config)}
    if "STORAGE_AUTH_URL" in config:
        options["ex_force_auth_url"] = config["STORAGE_AUTH_URL"]
    return CloudFilesStorageDriver(config["STORAGE_KEY"], config["STORAGE_SECRET"], **options)


def _cloudfiles_make_public(driver, container) -> None:
    if not driver.enable_container_cdn(container):
        raise LibcloudError("the CDN refused to enable the container", driver=driver)


def _cloudfiles_url_base(driver, container, config: Mapping) -> str:
    # The SSL CDN URI; the per-object variant is plain http and costs a HEAD per call.
    return driver.get_container_cdn_url(container, ex_ssl_uri=True)


def _open_google(config: Mapping):
    return GoogleStorageDriver(
        config["STORAGE_KEY"], config["STORAGE_SECRET"], project=config.get("STORAGE_PROJECT"), timeout=storage_timeout(config)
    )


def _google_make_public(driver, container) -> None:
    """Add allUsers READ to the bucket's default object ACL (XML API: works with HMAC keys too)."""
    # The subresource goes in the path, not params: an HMAC signature covers the path only.
    path = f"/{container.name}?defaultObjectAcl"
    answer = driver.connection.request(path)
    _expect(answer, 200)
    acl = answer.object
    if any(scope.get("type") == "AllUsers" for scope in acl.iter("Scope")):
        return
    entries = acl.find("Entries")
    entry = SubElement(acl if entries is None else entries, "Entry")
    SubElement(entry, "Scope", type="AllUsers")
    SubElement(entry, "Permission").text = "READ"
    answer = driver.connection.request(path, method="PUT", data=tostring(acl), headers={"Content-Type": "application/xml"})
    _expect(answer, 200)


def _google_url_base(driver, container, config: Mapping) -> str:
    return f"{_origin(driver.connection)}/{quote(container.name)}"


@dataclass(frozen=True)
class CreateOnly:
    """How a provider's PUT creates an object only where none exists, and how its driver reports a refusal."""

    headers: Mapping[str, str]
    # The service answers 412 (or Azure 409) when the object exists; libcloud reports it only as a
    # LibcloudError whose text names the status, or for Swift the missing etag of that answer.
    refusal: re.Pattern
    # Empty where the service decides between racing PUTs atomically; else what to tell the operator.
    race_caveat: str = ""


@dataclass(frozen=True)
class Provider:
    open: Callable
    make_public: Callable
    url_base: Callable
    public_fix: str  # what the operator can do when making the container public is refused
    create_only: CreateOnly


IF_NONE_MATCH = {"If-None-Match": "*"}
S3_CREATE_ONLY = CreateOnly(IF_NONE_MATCH, re.compile(r"Status code: 412\b"))
SWIFT_CREATE_ONLY = CreateOnly(
    IF_NONE_MATCH, re.compile(r"Server didn't return etag"),
    # Measured on a single-node Swift 2.x: of 20 PUTs racing for one name, up to 14 succeeded.
    "Swift refuses to overwrite an existing object (If-None-Match: *) but not PUTs that race: two "
    "deliveries of one message arriving at the same moment on two workers can both be processed",
)


S3_FIX = "turn off the bucket's Block Public Access settings for bucket policies"
PROVIDERS = {
    "s3": Provider(_open_s3, _s3_make_public, _s3_url_base, S3_FIX, S3_CREATE_ONLY),
    "minio": Provider(_open_s3, _s3_make_public, _s3_url_base, S3_FIX, S3_CREATE_ONLY),
    "azure_blobs": Provider(
        _open_azure, _azure_make_public, _azure_url_base, "turn on 'Allow Blob anonymous access' for the storage account",
        CreateOnly(IF_NONE_MATCH, re.compile(r"status_code=(409|412)\b")),  # 409 BlobAlreadyExists
    ),
    "openstack_swift": Provider(
        _open_swift, _swift_make_public, _swift_url_base, "the user needs a role that may set container ACLs",
        SWIFT_CREATE_ONLY,
    ),
    "cloudfiles": Provider(
        _open_cloudfiles, _cloudfiles_make_public, _cloudfiles_url_base, "check that the account has the CDN enabled",
        SWIFT_CREATE_ONLY,
    ),
    "google_storage": Provider(
        _open_google, _google_make_public, _google_url_base,
        "turn off the bucket's uniform bucket-level access (or grant allUsers roles/storage.legacyObjectReader)",
        CreateOnly({"x-goog-if-generation-match": "0"}, re.compile(r"Status code: 412\b")),
    ),
}


def upload_headers(driver, disposition: str, cache_control: str) -> dict:
    """Content-Disposition and Cache-Control under the names the driver's service stores them by."""
    if isinstance(driver, AzureBlobsStorageDriver):
        # libcloud renames Cache-Control only for block uploads (> 4 MiB), Content-Disposition never.
        return {"x-ms-blob-content-disposition": disposition, "x-ms-blob-cache-control": cache_control}
    return {"Content-Disposition": disposition, "Cache-Control": cache_control}


def create_only(driver) -> CreateOnly:
    """The create-only PUT of the provider `driver` speaks to (by its class: MinIO's is S3's)."""
    for driver_class, name in ((GoogleStorageDriver, "google_storage"), (S3StorageDriver, "s3"),
                               (AzureBlobsStorageDriver, "azure_blobs"), (CloudFilesStorageDriver, "cloudfiles")):
        if isinstance(driver, driver_class):
            return PROVIDERS[name].create_only
    raise LibcloudError(f"no create-only upload known for {type(driver).__name__}", driver=driver)
