"""Mailgun's side of the contract: the webhook signature check, and the session its HTTP APIs take.

Mailgun signs only `timestamp + token` (HMAC-SHA256 with the HTTP webhook signing key),
never the body; the webhook therefore also keeps a receipt per token (see receipts.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .reply import one_line

# Mailgun retries a delivery for about 8 hours; the default window (INBOX_SIGNATURE_MAX_AGE,
# 12 h) covers that. Clocks drift a little, a timestamp from the far future is a forgery.
FUTURE_SKEW_SECONDS = 300
# Explicit ASCII classes: str.isdigit() and \d also accept other scripts' digits ("²", "٣").
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)
_TOKEN = re.compile(r"[0-9A-Fa-f]{32,128}", re.ASCII)  # Mailgun sends 50
_HEX_DIGEST = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)


class SignatureError(Exception):
    """The request is not signed by Mailgun with our key, or the signature is stale."""


def sign(key: str, timestamp: str, token: str) -> str:
    """Return Mailgun's signature of (timestamp, token)."""
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def verify_signature(
    key: str, timestamp: str, token: str, signature: str, *, max_age: int, now: float | None = None
) -> None:
    """Raise SignatureError unless `signature` is Mailgun's for this fresh timestamp and token."""
    if not (timestamp and token and signature):
        raise SignatureError("timestamp, token and signature fields are required (a Mailgun-signed request)")
    # Form first, so nothing below sees a non-ASCII or unbounded value: "²".isdigit() is True,
    # and hmac.compare_digest raises TypeError on non-ASCII str.
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise SignatureError("timestamp must be Unix time in whole seconds (ASCII digits)")
    if not _TOKEN.fullmatch(token):
        raise SignatureError("token must be 32 to 128 hexadecimal digits, as Mailgun sends it")
    if not _HEX_DIGEST.fullmatch(signature.strip()):
        raise SignatureError("signature must be 64 hexadecimal digits (HMAC-SHA256)")
    # Compare before judging the age, so a forger learns nothing from which error comes back.
    expected = sign(key, timestamp, token).encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().lower().encode("ascii")):
        raise SignatureError(
            "signature does not match: is MAILGUN_WEBHOOK_SIGNING_KEY the HTTP webhook signing key (not the API key)?"
        )
    age = (time.time() if now is None else now) - int(timestamp)
    if age > max_age:
        raise SignatureError(
            f"signature is stale: signed {int(age)} s ago, more than INBOX_SIGNATURE_MAX_AGE={max_age}"
        )
    if age < -FUTURE_SKEW_SECONDS:
        raise SignatureError(f"signature timestamp is {int(-age)} s in the future; check the server clock")


TIMEOUT = (5, 30)  # seconds to connect, seconds to wait for each answer
RETRY_STATUSES = (429, 500, 502, 503, 504)
# A POST Mailgun answered with one of these did nothing there; after any other failure (500,
# 502, 504, no answer) it may have acted, and sending it again could do it twice.
NOTHING_DONE_STATUSES = (429, 503)


def said(response: requests.Response) -> str:
    """What Mailgun's answer says, on one line and at most 300 characters: its JSON message, else its text."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        message = None
    return one_line(str(message or response.text))[:300] or response.reason


def api_session(api_key: str, retry: Retry) -> requests.Session:
    """A session authenticated as Mailgun's `api` user, retrying as `retry` says."""
    session = requests.Session()
    session.auth = ("api", api_key)
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session
