"""Google Cloud Storage (XML API, HMAC keys or a service account): allUsers READ as default object ACL."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from urllib.parse import quote
from xml.etree.ElementTree import SubElement, tostring

from libcloud.storage.drivers.google_storage import GoogleStorageDriver

from ..config import ConfigError
from .common import CreateOnly, Provider, expect, origin, storage_timeout


def _open_google(config: Mapping):
    if config["STORAGE_KEY"].endswith(".gserviceaccount.com"):  # libcloud's own test for a service account
        _check_key_file(config["STORAGE_SECRET"])
    return GoogleStorageDriver(
        config["STORAGE_KEY"],
        config["STORAGE_SECRET"],
        project=config.get("STORAGE_PROJECT"),
        timeout=storage_timeout(config),
    )


PEM_PRIVATE_KEY = re.compile(rb"\A\s*-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _check_key_file(secret: str) -> None:
    """ConfigError unless STORAGE_SECRET names a readable JSON key file with a private key, or a PEM private key.

    libcloud takes a path it cannot open for the key itself and reports a PEM it cannot decode,
    and its errors about a file's content may quote it. These name neither the value nor the
    content: STORAGE_SECRET may hold a secret by mistake.
    """
    if secret.lstrip().startswith(("{", "-----BEGIN")):
        return  # the key itself, not a file: libcloud takes that too
    fix = "set STORAGE_SECRET to the path of the service account's JSON key file (IAM, Service accounts, Keys)"
    try:
        with open(os.path.expanduser(secret), "rb") as file:
            raw = file.read()
        if PEM_PRIVATE_KEY.search(raw):  # the key alone, as libcloud also reads a file: an older deployment's
            return
        content = json.loads(raw)
    except FileNotFoundError:
        problem = "does not exist"
    except OSError as error:
        problem = f"cannot be read ({error.strerror.lower()})"
    except ValueError:  # also UnicodeDecodeError
        problem = "is neither JSON nor a PEM private key"
    else:
        if isinstance(content, dict) and isinstance(content.get("private_key"), str):
            return
        problem = "has no private_key"
    raise ConfigError(f"STORAGE_SECRET: the key file it names {problem}; {fix}")


def _google_make_public(driver, container) -> None:
    """Add allUsers READ to the bucket's default object ACL (XML API: works with HMAC keys too)."""
    # The subresource goes in the path, not params: an HMAC signature covers the path only.
    path = f"/{container.name}?defaultObjectAcl"
    answer = driver.connection.request(path)
    expect(answer, 200)
    acl = answer.object
    if any(scope.get("type") == "AllUsers" for scope in acl.iter("Scope")):
        return
    entries = acl.find("Entries")
    entry = SubElement(acl if entries is None else entries, "Entry")
    SubElement(entry, "Scope", type="AllUsers")
    SubElement(entry, "Permission").text = "READ"
    answer = driver.connection.request(
        path, method="PUT", data=tostring(acl), headers={"Content-Type": "application/xml"}
    )
    expect(answer, 200)


def _google_url_base(driver, container, config: Mapping) -> str:
    return f"{origin(driver.connection)}/{quote(container.name)}"


GOOGLE = Provider(
    {
        "STORAGE_KEY": "an HMAC access id (GOOG...) or a service account e-mail",
        "STORAGE_SECRET": "the HMAC secret, or the path of the service account's JSON key file",
    },
    _open_google,
    _google_make_public,
    _google_url_base,
    CreateOnly({"x-goog-if-generation-match": "0"}, re.compile(r"Status code: 412\b")),
    "turn off the bucket's uniform bucket-level access (or grant allUsers roles/storage.legacyObjectReader)",
)
