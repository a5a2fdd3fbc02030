"""Refuses a route that would lose mail: a webhook Mailgun cannot reach safely, or a pattern that takes a domain.

Each refusal says why and which flag of routes_setup.py overrides it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .routes import RouteSpecError

FORWARD_PATH = "/webhooks/mailgun"
MIME_PATH = "/webhooks/mailgun/mime"
# Local parts nobody would use for photos: a pattern matching all of them matches the whole domain.
PROBE_LOCAL_PARTS = ("x7q4k2", "postmaster", "abuse", "no-such-user.9z", "a+b")


def check_webhook_url(url: str, *, mime: bool = False, allow_http: bool = False, force: bool = False) -> None:
    """Raise RouteSpecError unless Mailgun can post to `url` and the service answers there.

    A prefix before the service's path is fine (a proxy mounting the service under /inbox).
    """
    parts = urlsplit(url)
    if parts.scheme != "https" and not allow_http:
        raise RouteSpecError(
            f"webhook URL {url!r} is not https: Mailgun would post the mail and its signature "
            "unencrypted (--allow-http to register it all the same)"
        )
    if not force and _is_local(parts.hostname or ""):
        raise RouteSpecError(
            f"webhook URL {url!r} names a local or private host that Mailgun cannot reach; "
            "give the public address (--force to register it all the same)"
        )
    path = parts.path
    if mime and not path.endswith(MIME_PATH):
        raise RouteSpecError(
            f"--mime needs the URL that ends in {MIME_PATH} (Mailgun posts the raw message "
            f"to a URL ending in 'mime'), not {path or '/'!r}"
        )
    if not mime and path.endswith("mime") and not force:
        raise RouteSpecError(
            f"a URL ending in 'mime' makes Mailgun post the raw message: add --mime to mean "
            f"that (--force to register {path!r} all the same)"
        )
    if not force and not path.endswith((FORWARD_PATH, MIME_PATH)):
        raise RouteSpecError(
            f"the service does not answer at {path or '/'!r}: the webhook path ends in "
            f"{FORWARD_PATH} (or {MIME_PATH} with --mime) (--force to register it all the same)"
        )


def _is_local(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: whether it resolves to a private address is not known here
    return not address.is_global


def check_pattern(pattern: str, address: str, *, force: bool = False) -> None:
    """Raise RouteSpecError when `pattern` would take every address of `address`'s domain."""
    if force:
        return
    domain = address.rpartition("@")[2]
    probes = [f"{local}@{domain}" for local in PROBE_LOCAL_PARTS]
    # Mailgun reads the pattern as a Python regex; `search` also covers a pattern without anchors.
    if all(re.search(pattern, probe) for probe in probes):
        raise RouteSpecError(
            f"--pattern {pattern!r} matches every address of {domain} ({', '.join(probes[:2])}, …): with stop() "
            "no other route would see that mail; anchor it to the inbox address (--force to register it all the same)"
        )
