"""Fetches the attachments of a message Mailgun kept with store(notify=…) into spool files.

A store() notification carries the form of a forward() without the files: `attachments` is a
JSON list of {"url", "content-type", "name", "size"}, each URL on Mailgun's storage hosts,
readable with Basic auth `api` + the private API key for three days. Only URLs on Mailgun hosts
are fetched, and only after the notification's signature was verified. A redirect from there is
followed (Mailgun does not say where its storage may send us), without the key once it leaves
the host: requests drops the Authorization header then.

A mail can list thousands of tiny parts, and each is a round trip to Mailgun: at most
MAX_FETCHES are fetched, and past FETCH_DEADLINE seconds (looked at before each fetch and after
each piece that arrives, however small) the notification is left for Mailgun's retry. With the
last fetch's own timeouts and retries (under 3 minutes), fetching ends before the age at which
its token's claim counts as abandoned (receipts.ABANDONED_AFTER, 5 minutes).
"""

from __future__ import annotations

import re
import time

import requests
import urllib3
from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url
from urllib3.util.retry import Retry

from .mailgun import RETRY_STATUSES, TIMEOUT, api_session
from .message import Attachment, MalformedMessage, clean_filename

CHUNK = 1024 * 1024  # the most one read returns; it returns as soon as anything has arrived
MAX_FETCHES = 100  # publish.MAX_IMAGES: a mail of more images than that cannot be published whole anyway
NOT_FETCHED_REASON = (
    f"more than {MAX_FETCHES} attachments in one mail: send those after the first {MAX_FETCHES} in another"
)
FETCH_DEADLINE = 60  # seconds for all of a notification's fetches: past it, Mailgun is slow now
GONE_STATUSES = (404, 410)  # Mailgun no longer keeps it (3 days): no retry can fetch it
GONE_REASON = "Mailgun no longer keeps this attachment (HTTP {status}; a stored mail is kept 3 days): send it again"
MAILGUN_HOST = re.compile(r"(?:[a-z0-9-]+\.)*mailgun\.net")


class FetchError(Exception):
    """Mailgun's storage could not be read now; the notification should be retried."""


def mailgun_url(url: str) -> str | None:
    """`url` rebuilt from its parts when it is plainly an https URL on a Mailgun host; None otherwise.

    Parsed as requests parses it (urllib3), not with urllib: the two disagree on a backslash,
    and `https://evil.example\\@storage.mailgun.net/` would pass urllib's check while requests
    sends the API key to evil.example. Anything the parsers might read differently is refused.
    """
    if not url.isascii() or any(not character.isprintable() or character in " \\" for character in url):
        return None
    try:
        parts = parse_url(url)
    except LocationParseError:
        return None
    host = (parts.host or "").lower()
    if parts.scheme != "https" or parts.auth is not None or parts.port not in (None, 443):
        return None
    if not MAILGUN_HOST.fullmatch(host):
        return None
    return Url(scheme="https", host=host, path=parts.path, query=parts.query).url


def fetch_attachments(items: list[dict], api_key: str | None, new_spool) -> tuple[list[Attachment], list[dict]]:
    """Download the first MAX_FETCHES stored attachments into spools (at most one byte past the size limit).

    Returns them, and the webhook answer's `rejected` entries of those not fetched: past MAX_FETCHES,
    or gone from Mailgun's storage (404, 410), which no retry of the notification would change.
    """
    if not api_key:
        raise FetchError("MAILGUN_API_KEY is not set: it is needed to fetch messages Mailgun stored (store() routes)")
    urls = [mailgun_url(str(item["url"])) for item in items]
    for item, url in zip(items, urls, strict=True):  # all before the first fetch: a bad one refuses them all
        if url is None:
            raise MalformedMessage(
                f"attachment URL {str(item['url'])[:200]!r} is not on a Mailgun host: only https://….mailgun.net/… "
                "URLs without a user, port, backslash or blank are fetched"
            )
    deadline = time.monotonic() + FETCH_DEADLINE
    attachments, gone = [], []
    # Retry-After not obeyed: it could hold the delivery past FETCH_DEADLINE (see messages_api.SEND_RETRY).
    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=RETRY_STATUSES, respect_retry_after_header=False)
    with api_session(api_key, retry) as session:
        for number, (item, url) in enumerate(zip(items[:MAX_FETCHES], urls, strict=False), start=1):
            spool = None
            try:
                with session.get(url, stream=True, timeout=TIMEOUT) as response:
                    if response.status_code in (401, 403):
                        raise FetchError(
                            f"Mailgun refused MAILGUN_API_KEY (HTTP {response.status_code}) for {url}: "
                            "it must be the account's private API key"
                        )
                    if response.status_code in GONE_STATUSES:
                        gone += unfetched([item], GONE_REASON.format(status=response.status_code), first=number)
                    else:
                        response.raise_for_status()
                        spool = new_spool()
                        if _download(response, spool, deadline) and _cut_off(response, spool, item.get("size")):
                            raise FetchError(
                                f"Mailgun's storage closed the connection after {spool.size} of the "
                                f"{item['size']} bytes of {url}"
                            )
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                raise FetchError(f"cannot fetch {url}: {error}") from None
            if time.monotonic() > deadline:
                raise FetchError(f"fetching {number} of {len(items)} attachments took over {FETCH_DEADLINE} s")
            if spool is None:
                continue
            declared = item.get("size")
            if spool.size > spool.limit and isinstance(declared, int):
                spool.size = max(spool.size, declared)  # stopped at the limit: report the real size
            attachments.append(Attachment(field=f"attachment-{number}", filename=_name(item), stream=spool))
    return attachments, gone + unfetched(items[MAX_FETCHES:], NOT_FETCHED_REASON, first=MAX_FETCHES + 1)


def _download(response: requests.Response, spool, deadline: float) -> bool:
    """The answer's body into `spool`, up to one piece past its limit or the deadline; whether it ended."""
    # read1 returns what has arrived: a server dribbling a byte at a time cannot outlast the deadline.
    while piece := response.raw.read1(CHUNK, decode_content=True):
        spool.write(piece)
        if spool.size > spool.limit or time.monotonic() > deadline:
            return False
    return True


def _cut_off(response: requests.Response, spool, declared) -> bool:
    """Whether a body without Content-Length or chunks, which ends where the connection does, ended early.

    urllib3 refuses a framed body cut short; an unframed one would be published as a truncated photo.
    """
    unframed = response.raw.length_remaining is None and not response.raw.chunked
    return unframed and type(declared) is int and spool.size < declared


def unfetched(items: list[dict], reason: str, first: int = 1) -> list[dict]:
    """The `rejected` entries of stored attachments left on Mailgun's storage, numbered from `first`."""
    return [
        {
            "attachment": f"attachment-{number}",
            "filename": _name(item),
            "content_type": _listed_type(item),  # not looked at: as Mailgun listed it
            "reason": reason,
        }
        for number, item in enumerate(items, start=first)
    ]


def _name(item: dict) -> str:
    return clean_filename(str(item.get("name", "")))


def _listed_type(item: dict) -> str | None:
    listed = item.get("content-type")
    return listed if isinstance(listed, str) else None
