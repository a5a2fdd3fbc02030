"""Fetches the attachments of a message Mailgun kept with store(notify=…) into spool files.

A store() notification carries the form of a forward() without the files: `attachments` is a
JSON list of {"url", "content-type", "name", "size"}, each URL on Mailgun's storage hosts,
readable with Basic auth `api` + the private API key for three days. Only Mailgun hosts are
contacted, and only after the notification's signature was verified.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from urllib3.util.retry import Retry

from .mailgun import RETRY_STATUSES, TIMEOUT, api_session
from .message import Attachment, MalformedMessage, clean_filename

CHUNK = 1024 * 1024


class FetchError(Exception):
    """Mailgun's storage could not be read now; the notification should be retried."""


def is_mailgun_url(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "mailgun.net" or host.endswith(".mailgun.net"))


def fetch_attachments(items: list[dict], api_key: str | None, new_spool) -> list[Attachment]:
    """Download every stored attachment into a spool (at most one byte past the size limit)."""
    if not api_key:
        raise FetchError("MAILGUN_API_KEY is not set: it is needed to fetch messages Mailgun stored (store() routes)")
    attachments = []
    with api_session(api_key, Retry(total=3, backoff_factor=0.5, status_forcelist=RETRY_STATUSES)) as session:
        for number, item in enumerate(items, start=1):
            url = str(item["url"])
            if not is_mailgun_url(url):
                raise MalformedMessage(f"attachment URL {url!r} is not on a Mailgun host")
            spool = new_spool()
            try:
                with session.get(url, stream=True, timeout=TIMEOUT) as response:
                    if response.status_code in (401, 403):
                        raise FetchError(
                            f"Mailgun refused MAILGUN_API_KEY (HTTP {response.status_code}) for {url}: "
                            "it must be the account's private API key"
                        )
                    response.raise_for_status()
                    for chunk in response.iter_content(CHUNK):
                        spool.write(chunk)
                        if spool.size > spool.limit:
                            break
            except requests.RequestException as error:
                raise FetchError(f"cannot fetch {url}: {error}") from None
            declared = item.get("size")
            if spool.size > spool.limit and isinstance(declared, int):
                spool.size = max(spool.size, declared)  # stopped at the limit: report the real size
            name = clean_filename(str(item.get("name", "")))
            attachments.append(Attachment(field=f"attachment-{number}", filename=name, stream=spool))
    return attachments
