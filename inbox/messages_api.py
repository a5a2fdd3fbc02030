"""Sends a composed reply: through Mailgun's Messages API, or into the development outbox as an .eml file.

`send_reply` posts the form fields reply.py composed to `{MAILGUN_API_URL}/{MAILGUN_DOMAIN}/messages`
and tells a transient failure (ReplyUnavailable: the webhook answers 503, Mailgun redelivers)
from a configuration error (ReplyRefused: the reason names the setting to fix). An outbox that
cannot be written fails as Mailgun being down does.
"""

from __future__ import annotations

import email.policy
import os
import re
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import requests
from urllib3.util.retry import Retry

from .mailgun import NOTHING_DONE_STATUSES, TIMEOUT, api_session, said

# Retried only where the reply cannot go out twice (NOTHING_DONE_STATUSES); otherwise the
# caller answers 503 and Mailgun redelivers. Retry-After is not obeyed: urllib3 would sleep as
# long as it says, holding the delivery; Mailgun's redelivery comes later anyway.
SEND_RETRY = Retry(
    total=2,
    connect=2,
    read=0,
    other=0,
    status=2,
    status_forcelist=NOTHING_DONE_STATUSES,
    allowed_methods={"POST"},
    backoff_factor=0.5,
    raise_on_status=False,
    respect_retry_after_header=False,
)
UNAVAILABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
# Well under the idle time after which HTTP servers and load balancers close a connection (60 s and more).
REUSE_IDLE_SECONDS = 10
_sessions = threading.local()


class ReplyError(Exception):
    """The reply was not sent."""


class ReplyUnavailable(ReplyError):
    """Mailgun could not take the reply now (no connection, timeout, 429, 5xx): answer 503 so it redelivers."""


class ReplyRefused(ReplyError):
    """Mailgun refused the reply for good; the message names the setting to fix."""


def send_reply(api_url: str, domain: str, api_key: str, fields: dict, timeout=TIMEOUT) -> str:
    """Post the reply to Mailgun's Messages API; return Mailgun's id for it."""
    url = f"{api_url.rstrip('/')}/{domain}/messages"
    try:
        response = _session(api_key).post(url, data=fields, timeout=timeout)
    except requests.RequestException as error:
        raise ReplyUnavailable(f"Mailgun's Messages API at {url} did not answer: {error}") from None
    if response.status_code in UNAVAILABLE_STATUSES:
        raise ReplyUnavailable(f"Mailgun's Messages API answered {response.status_code}: {said(response)}")
    if response.status_code == 401:
        raise ReplyRefused(
            f"Mailgun refused MAILGUN_API_KEY (401) at {api_url}: use the account's private API key, "
            "and MAILGUN_API_URL=https://api.eu.mailgun.net/v3 for a domain in the EU region"
        )
    if response.status_code == 403:
        raise ReplyRefused(
            f"Mailgun forbids sending from MAILGUN_DOMAIN={domain} with this MAILGUN_API_KEY (403): {said(response)}"
        )
    if response.status_code == 404:
        raise ReplyRefused(
            f"Mailgun knows no MAILGUN_DOMAIN={domain} at MAILGUN_API_URL={api_url} (404): check the "
            "domain name and the region (EU: https://api.eu.mailgun.net/v3)"
        )
    if response.status_code != 200:
        raise ReplyRefused(f"Mailgun refused the reply ({response.status_code}): {said(response)}")
    try:
        return str(response.json()["id"])
    except (ValueError, KeyError, TypeError):
        raise ReplyRefused(f"Mailgun answered 200 without a message id: {said(response)}") from None


def _session(api_key: str) -> requests.Session:
    # One per thread (a Session is not shared across threads): a worker's next reply reuses the
    # connection to Mailgun instead of paying a new TCP and TLS handshake. Only while it is warm:
    # Mailgun may close an idle one just as a reply goes out on it, a failed POST that costs a
    # 503 and a redelivery; a burst of replies, where the handshakes add up, still shares one.
    session, now = getattr(_sessions, "session", None), time.monotonic()
    if session is not None and (session.auth != ("api", api_key) or now - _sessions.used > REUSE_IDLE_SECONDS):
        session.close()
        session = None
    if session is None:
        session = _sessions.session = api_session(api_key, SEND_RETRY)
    _sessions.used = now
    return session


def write_outbox(folder: str | os.PathLike, fields: dict) -> Path:
    """Write the reply as an RFC 5322 .eml file (text and HTML alternatives) in `folder`; return its path."""
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"], mail["To"], mail["Subject"] = fields["from"], fields["to"], fields["subject"]
    mail["Date"] = formatdate(localtime=False)
    for name, value in fields.items():
        if name.startswith("h:"):
            mail[name[2:]] = value
    mail.set_content(fields["text"])
    mail.add_alternative(fields["html"], subtype="html")
    path = Path(folder, re.sub(r"[^A-Za-z0-9._-]", "_", fields["h:Message-Id"].strip("<>"))[:200] + ".eml")
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path.write_bytes(mail.as_bytes())
    except OSError as error:  # a full disk, a folder removed or made read-only: like Mailgun being down
        raise ReplyUnavailable(f"the reply cannot be written to INBOX_OUTBOX={str(folder)!r}: {error}") from None
    return path
