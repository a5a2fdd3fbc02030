"""The route this tool asks Mailgun for (expression, actions, marker), and the refusals of one that would lose mail.

Our routes carry a marker in their description, "inbox:" + the address, so a run finds its
own route among hundreds and never touches anyone else's. Each refusal says why and which
flag of routes_setup.py overrides it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MARKER = "inbox:"
REGEX_METACHARACTERS = re.compile(r"([\\.^$*+?{}\[\]|()])")
ADDRESS = re.compile(r'[^@\s"\\]+@[^@\s"\\]+')
FORWARD_PATH = "/webhooks/mailgun"
MIME_PATH = "/webhooks/mailgun/mime"
# Local parts nobody would use for photos: a pattern matching all of them matches the whole domain.
PROBE_LOCAL_PARTS = ("x7q4k2", "postmaster", "abuse", "no-such-user.9z", "a+b")


class RouteSpecError(ValueError):
    """The route asked for cannot be expressed: a bad address, pattern or URL."""


def recipient_pattern(address: str) -> str:
    """A regular expression matching exactly `address`, in any letter case.

    Mailgun's patterns are Python-style regexes. Only Python's metacharacters are escaped
    ('.', '+', ...): '-', '@' and '_' stay bare, as every flavour reads them literally.
    ^...$ keep xphotos@example.com.evil out. Whether Mailgun folds the recipient's case is
    not documented; addresses are case-insensitive in practice, so `(?i)` (leading, where
    Python requires global flags) lets mail to Photos@Example.com arrive as well.
    """
    return "(?i)^" + REGEX_METACHARACTERS.sub(r"\\\1", address.lower()) + "$"


def route_marker(address: str) -> str:
    return MARKER + address.lower()


def is_ours(route: dict, address: str | None = None) -> bool:
    """Whether `route` was made by this tool (for `address`, when given)."""
    description = route.get("description") or ""
    if address is None:
        return description.startswith(MARKER)
    marker = route_marker(address)
    return description == marker or description.startswith(marker + " ")


def route_spec(
    address: str,
    url: str,
    *,
    priority: int = 0,
    description: str = "",
    store: bool = False,
    pattern: str | None = None,
) -> dict:
    """The route sending mail for `address` (or `pattern`) to `url`, as Mailgun stores it."""
    if not ADDRESS.fullmatch(address or ""):
        raise RouteSpecError(f"recipient {address!r} is not an e-mail address like photos@example.com")
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r'[\s"\\]', url):
        raise RouteSpecError(f"webhook URL {url!r} is not an absolute http(s) URL like https://host/webhooks/mailgun")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as error:
            raise RouteSpecError(f"--pattern {pattern!r} is not a regular expression: {error}") from None
        if '"' in pattern:
            raise RouteSpecError("--pattern cannot contain '\"'; Mailgun reads the pattern inside double quotes")
    target = f'store(notify="{url}")' if store else f'forward("{url}")'
    return {
        "priority": priority,
        "description": f"{route_marker(address)} {description}".strip(),
        "expression": f'match_recipient("{recipient_pattern(address) if pattern is None else pattern}")',
        "actions": [target, "stop()"],
    }


def describe(route: dict) -> str:
    return f"{route['expression']} -> {', '.join(route['actions'])}"


def is_current(route: dict, spec: dict) -> bool:
    return (
        int(route.get("priority") or 0) == spec["priority"]
        and route.get("description") == spec["description"]
        and route.get("expression") == spec["expression"]
        and list(route.get("actions") or []) == spec["actions"]
    )


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
