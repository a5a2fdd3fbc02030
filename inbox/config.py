"""Reads the service's settings from a mapping (the environment by default) and validates them.

Keys are the environment variable names documented in README.md; every error names the
variable and says what to put there, so a misconfigured deploy fails at start-up, not at
the first delivery.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from email.errors import HeaderParseError
from email.headerregistry import HeaderRegistry
from urllib.parse import urlsplit

from .senders import PublishersError, parse_publishers

MiB = 1024 * 1024
# Mailgun's largest message; the request limit is derived from it so that any message
# Mailgun can deliver fits, whatever the per-attachment limit.
MAILGUN_MAX_MESSAGE = 25 * MiB

DEFAULTS = {
    "MAILGUN_API_URL": "https://api.mailgun.net/v3",
    "STORAGE_PROVIDER": "local",
    "STORAGE_CONTAINER": "images",
    "STORAGE_PATH": "./var/storage",
    "STORAGE_MAKE_PUBLIC": "true",
    "INBOX_MAX_ATTACHMENT_BYTES": str(25 * MiB),
    "INBOX_SIGNATURE_MAX_AGE": str(12 * 3600),
    "INBOX_REJECT_STATUS": "415",
    "INBOX_TRUSTED_PROXIES": "0",
    "INBOX_STRIP_LOCATION": "true",
    "INBOX_CACHE_MAX_AGE": str(24 * 3600),
}

PASSED_THROUGH = (
    "STORAGE_KEY",
    "STORAGE_SECRET",
    "STORAGE_REGION",
    "STORAGE_HOST",
    "STORAGE_RECEIPTS_CONTAINER",
    "STORAGE_TENANT",
    "STORAGE_DOMAIN",
    "STORAGE_PROJECT",
    "STORAGE_AUTH_URL",
    "STORAGE_AUTH_VERSION",
    "STORAGE_TIMEOUT",
)


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says what to put there."""


def integer(settings: Mapping, name: str, minimum: int) -> int:
    """settings[name] as a whole number >= minimum; else ConfigError."""
    raw = str(settings[name]).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set it to an integer >= {minimum}") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is too small; set it to an integer >= {minimum}")
    return value


def absolute_url(settings: Mapping, name: str) -> str:
    """The http(s) URL in settings[name], without a trailing slash; else ConfigError."""
    value = settings[name].strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={value!r} is not an absolute http(s) URL, e.g. https://cdn.example.com/images")
    return value


# Every provider's names fit, not others (S3: "photos?x=1" is bucket photos); local URLs quote any folder's.
CONTAINER_NAME, LOCAL_CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*"), re.compile(r"[^/.\0][^/\0]*")


def container_name(name: str, value: str, example: str, local: bool = False) -> str:
    """`value` of setting `name` as a container name: one path segment (the local store makes it a folder)."""
    value = value.strip()
    if not (LOCAL_CONTAINER_NAME if local else CONTAINER_NAME).fullmatch(value):
        raise ConfigError(
            f"{name}={value!r} is not a container name: use letters, digits, '.', '-' and '_', "
            f"starting with a letter or digit, e.g. {example!r}"
        )
    return value


def mailgun_api_url(value: str, name: str = "MAILGUN_API_URL") -> str:
    """The Messages/Routes API base in `value`, which ends in /v3; else ConfigError naming `name`."""
    url = absolute_url({name: value}, name)
    if not urlsplit(url).path.endswith("/v3"):
        raise ConfigError(
            f"{name}={url!r} does not end in /v3 (the API version every call needs): "
            "use https://api.mailgun.net/v3 or, for the EU region, https://api.eu.mailgun.net/v3"
        )
    return url


def _mailgun(settings: Mapping, config: dict) -> None:
    """The API settings replies, store() fetches and routes_setup.py use; pasted whitespace is dropped."""
    config["MAILGUN_API_URL"] = mailgun_api_url(settings["MAILGUN_API_URL"])
    key = settings.get("MAILGUN_API_KEY", "").strip()
    if key:
        config["MAILGUN_API_KEY"] = key
    domain = settings.get("MAILGUN_DOMAIN", "").strip()
    if domain:
        if any(character in domain for character in "/:@") or any(character.isspace() for character in domain):
            raise ConfigError(
                f"MAILGUN_DOMAIN={domain!r} is not a domain name: put the sending domain alone, "
                "as Mailgun lists it under Sending → Domains, e.g. mg.example.com"
            )
        config["MAILGUN_DOMAIN"] = domain
        if not key:  # a domain alone means replies were wanted: say so now, not in every answer
            raise ConfigError(
                "MAILGUN_DOMAIN is set but MAILGUN_API_KEY is not: replies need both; set MAILGUN_API_KEY "
                "to the account's private API key, or unset MAILGUN_DOMAIN to send no replies"
            )
    config["INBOX_REPLIES"] = bool(key and domain)


def _one_address(settings: Mapping, name: str) -> str:
    """settings[name] as one mail address, with or without a display name; else ConfigError."""
    value = settings[name].strip()
    try:
        header = HeaderRegistry()("from", value)
        addresses, defects = header.addresses, header.defects
    except (HeaderParseError, IndexError):  # IndexError: the stdlib parser on e.g. 'photos@'
        addresses, defects = (), (None,)
    if len(addresses) != 1 or defects or not (addresses[0].username and addresses[0].domain):
        raise ConfigError(
            f"{name}={value!r} is not one mail address: use e.g. photos@mg.example.com "
            "or 'Family photos <photos@mg.example.com>'"
        )
    return value


def _writable_folder(settings: Mapping, name: str) -> str:
    """settings[name], a folder made if need be, in which a file can be written; else ConfigError."""
    folder = settings[name].strip()
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"{name}={folder!r} cannot be written ({error.strerror}); pick a writable folder") from None
    return folder


def _boolean(settings: Mapping, name: str, meaning: str) -> bool:
    value = str(settings[name]).strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name}={value!r}: use {meaning}")
    return value in ("true", "1", "yes")


def _storage_provider(settings: Mapping, config: dict) -> None:
    # Which settings each provider needs is checked by its record (providers.provider_for).
    config["STORAGE_PROVIDER"] = settings["STORAGE_PROVIDER"].strip().lower()
    config["STORAGE_MAKE_PUBLIC"] = _boolean(
        settings,
        "STORAGE_MAKE_PUBLIC",
        "true (the app makes the image container publicly readable) or false "
        "(you did, e.g. through a CDN; set PUBLIC_BASE_URL then)",
    )


def _people(settings: Mapping, config: dict) -> None:
    """Who may publish, and how they hear back."""
    try:
        config["INBOX_PUBLISHERS"] = parse_publishers(settings.get("INBOX_PUBLISHERS", ""))
    except PublishersError as error:
        raise ConfigError(str(error)) from None
    if settings.get("INBOX_REPLY_FROM", "").strip():
        config["INBOX_REPLY_FROM"] = _one_address(settings, "INBOX_REPLY_FROM")
    # Development only (inbox serve sets it): replies are written here as .eml files instead of sent.
    if settings.get("INBOX_OUTBOX", "").strip():
        config["INBOX_OUTBOX"] = _writable_folder(settings, "INBOX_OUTBOX")


def load_config(source: Mapping[str, str]) -> dict:
    """Return the typed settings for Flask's config, or raise ConfigError."""
    settings = {**DEFAULTS, **{k: v for k, v in source.items() if v not in (None, "")}}
    key = settings.get("MAILGUN_WEBHOOK_SIGNING_KEY", "").strip()
    if not key:
        raise ConfigError(
            "MAILGUN_WEBHOOK_SIGNING_KEY is not set: copy the HTTP webhook signing key from "
            "Mailgun (Settings → Webhooks → HTTP webhook signing key; not the API key). "
            "For a local try-out run `inbox serve`, which makes a development key."
        )
    config = {name: settings[name] for name in PASSED_THROUGH if name in settings}
    config["MAILGUN_WEBHOOK_SIGNING_KEY"] = key
    _mailgun(settings, config)
    if "INBOX_NAME_KEY" in settings:  # else storage makes one, once, in the private container
        name_key = settings["INBOX_NAME_KEY"].strip()
        if len(name_key) < 32:
            raise ConfigError(
                "INBOX_NAME_KEY is shorter than 32 characters: use a long random secret, "
                "e.g. the output of `python3 -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        config["INBOX_NAME_KEY"] = name_key

    _storage_provider(settings, config)
    local = config["STORAGE_PROVIDER"] == "local"
    container = container_name("STORAGE_CONTAINER", settings["STORAGE_CONTAINER"], "images", local)
    config["STORAGE_CONTAINER"] = container
    receipts = settings.get("STORAGE_RECEIPTS_CONTAINER", f"{container}-receipts")
    receipts = container_name("STORAGE_RECEIPTS_CONTAINER", receipts, f"{container}-receipts", local)
    if receipts == container:
        raise ConfigError("STORAGE_RECEIPTS_CONTAINER must differ from STORAGE_CONTAINER: receipts are private")
    config["STORAGE_RECEIPTS_CONTAINER"] = receipts
    config["STORAGE_PATH"] = settings["STORAGE_PATH"]
    if "STORAGE_PORT" in settings:
        config["STORAGE_PORT"] = integer(settings, "STORAGE_PORT", 1)
    if "STORAGE_SECURE" in settings:
        config["STORAGE_SECURE"] = _boolean(settings, "STORAGE_SECURE", "true (https) or false (http)")
    if "PUBLIC_BASE_URL" in settings:
        config["PUBLIC_BASE_URL"] = absolute_url(settings, "PUBLIC_BASE_URL")

    max_bytes = integer(settings, "INBOX_MAX_ATTACHMENT_BYTES", 1)
    config["INBOX_MAX_ATTACHMENT_BYTES"] = max_bytes
    config["INBOX_SIGNATURE_MAX_AGE"] = integer(settings, "INBOX_SIGNATURE_MAX_AGE", 60)
    reject = settings["INBOX_REJECT_STATUS"].strip()
    if reject not in ("415", "406"):
        raise ConfigError(
            f"INBOX_REJECT_STATUS={reject!r}: use 415 (Mailgun retries for 8 h) or 406 (Mailgun stops retrying)"
        )
    config["INBOX_REJECT_STATUS"] = int(reject)
    config["INBOX_TRUSTED_PROXIES"] = integer(settings, "INBOX_TRUSTED_PROXIES", 0)
    config["INBOX_STRIP_LOCATION"] = _boolean(
        settings,
        "INBOX_STRIP_LOCATION",
        "true (remove GPS and location metadata before publishing) or false (publish originals, location included)",
    )
    config["INBOX_CACHE_MAX_AGE"] = integer(settings, "INBOX_CACHE_MAX_AGE", 0)
    _people(settings, config)

    # Text fields (a long quoted HTML thread, several MB) must never be refused, yet the
    # whole request stays bounded: Mailgun posts the body up to four times (plain,
    # stripped plain, html, stripped html), so four times the largest message covers it.
    largest = max(max_bytes, MAILGUN_MAX_MESSAGE)
    config["MAX_FORM_MEMORY_SIZE"] = largest
    config["MAX_CONTENT_LENGTH"] = 4 * largest
    config["MAX_FORM_PARTS"] = 5000
    return config
