"""The reply mail: whether we may answer at all (RFC 3834), and what it says.

`compose_reply` and `compose_deletion_confirmation` build the Messages API form fields that
messages_api.py sends (or writes to the development outbox). Every reply carries a Message-Id
we choose, `<inbox.KEY@domain>`, so a reply to our reply can be traced back to the message it
answered. A sender or From field that cannot be read as an address (longer than MAX_FROM_CHARS,
or comments nested past the parser's depth) gets no reply, and says why.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Protocol

from .mime import first_header
from .senders import MAX_FROM_CHARS

MAX_REFERENCES = 20
# Our References keeps the last MAX_REFERENCES - 1 ids, of at most 252 characters each.
MAX_REFERENCES_CHARS = 8192
NAMES_PER_REASON = 3  # in the reply; the webhook answer lists every attachment
MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
KEY = re.compile(r"[A-Za-z0-9._-]{1,100}")
_PREFIX = r"\s*(?:re|aw|sv)\s*:\s*"
RE_PREFIX, RE_PREFIXES = re.compile(_PREFIX, re.IGNORECASE), re.compile(f"(?:{_PREFIX})*", re.IGNORECASE)
AUTOMATIC_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"})
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


class Message(Protocol):
    """What composing a reply reads of an inbox.message.InboundMessage."""

    sender: str
    from_header: str
    subject: str
    message_id: str
    headers: Sequence[tuple[str, str]]


def header(message: Message, name: str) -> str | None:
    """The first header `name` (any case) of the message, or None."""
    return first_header(message.headers, name)


class Unaddressable(ValueError):
    """A sender or From field that cannot be read as an address; the message says why."""


def address(value: str, what: str) -> str:
    """The address in a sender or From field ("" when it names none); Unaddressable when it cannot be read."""
    if len(value or "") > MAX_FROM_CHARS:  # as for a publisher's From: far more than any real mailbox needs
        raise Unaddressable(f"{what} is longer than {MAX_FROM_CHARS} characters")
    try:
        return parseaddr(value or "")[1]
    except RecursionError:  # the parser recurses once per nested comment, "((((..."
        raise Unaddressable(f"{what} cannot be read: its comments '(' nest too deeply") from None


def reply_blocker(message: Message, reply_from: str) -> str | None:
    """Why we must not answer this message automatically (RFC 3834, no loops, no readable address), or None."""
    try:
        return _why_not_answer(message, reply_from)
    except Unaddressable as error:
        return str(error)


def _why_not_answer(message: Message, reply_from: str) -> str | None:
    sender = address(message.sender, "the envelope sender").lower()
    local = sender.rpartition("@")[0]
    if not sender or "@" not in sender:
        return "the envelope sender is null: a bounce or notification"
    if local in AUTOMATIC_LOCAL_PARTS or local.startswith("owner-") or local.endswith("-request"):
        return f"the envelope sender {sender} is a mail system or list address"
    ours = parseaddr(reply_from)[1].lower()
    if ours in (sender, address(message.from_header, "the From header").lower()):
        return f"the mail comes from our own reply address {ours}"
    auto_submitted = (header(message, "Auto-Submitted") or "no").split(";")[0].strip().lower()
    if auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("List-Id", "List-Unsubscribe"):
        if header(message, name) is not None:
            return f"list mail ({name})"
    precedence = (header(message, "Precedence") or "").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    suppress = {word.strip().lower() for word in (header(message, "X-Auto-Response-Suppress") or "").split(",")}
    if suppress & {"all", "autoreply"}:
        return "X-Auto-Response-Suppress asks for no automatic replies"
    return None


def reply_message_id(key: str, domain: str) -> str:
    """Our Message-Id for the reply identified by `key`."""
    if not KEY.fullmatch(key):
        raise ValueError(f"reply key {key!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return f"<inbox.{key}@{domain}>"


def reply_key(message_id: str, domain: str) -> str | None:
    """The key of one of our replies named by this Message-Id, or None."""
    match = re.fullmatch(rf"<inbox\.({KEY.pattern})@{re.escape(domain)}>", message_id.strip(), re.IGNORECASE)
    return match.group(1) if match else None


def one_line(value: str) -> str:
    return " ".join((value or "").split())


def _reply_fields(message: Message, *, reply_from: str, key: str, domain: str, text: str, body_html: str) -> dict:
    """The form fields every reply has: addressing, threading (RFC 5322 3.6.4), RFC 3834, tracking off.

    For a message reply_blocker lets through (its sender is readable).
    """
    subject = one_line(message.subject) or "your photos"
    original = MESSAGE_ID.search(message.message_id or "")
    # A cut through an id leaves no "<" before its rest, so no partial id is taken.
    latest = (header(message, "References") or "")[-MAX_REFERENCES_CHARS:]
    references = MESSAGE_ID.findall(latest)[-(MAX_REFERENCES - 1) :]
    fields = {
        "from": one_line(reply_from),
        "to": address(message.sender, "the envelope sender"),
        "subject": subject if RE_PREFIX.match(subject) else f"Re: {subject}",
        "text": text,
        "html": body_html,
        "h:Message-Id": reply_message_id(key, domain),
        "h:Auto-Submitted": "auto-replied",
        "o:tracking": "no",
        "o:tracking-clicks": "no",
        "o:tracking-opens": "no",
    }
    if original:
        fields["h:In-Reply-To"] = original.group()
        fields["h:References"] = " ".join(dict.fromkeys([*references, original.group()]))
    return fields


def _page(paragraphs: Sequence[str]) -> str:
    return "<!doctype html>\n<html><body>\n" + "\n".join(paragraphs) + "\n</body></html>\n"


def compose_reply(
    message: Message,
    *,
    reply_from: str,
    key: str,
    message_id_domain: str,
    stored: Sequence[dict],
    rejected: Sequence[dict],
    not_arrived: str = "",
) -> dict:
    """The reply listing every stored URL (with a preview) and every rejection with its reason.

    `stored` and `rejected` are the webhook answer's entries (filename, url / filename, reason);
    `not_arrived` says what of the mail did not reach us, so the sender can send it again.
    """
    heading = f"Your photos are published ({len(stored)}):" if stored else "Nothing was published."
    text, markup = [heading], [f"<p>{heading}</p>"]
    if stored:
        text += ["", *(f"  {item.get('filename') or item['url']}: {item['url']}" for item in stored)]
        markup.append("<ul>")
        for item in stored:
            url = html.escape(item["url"], quote=True)
            name = html.escape(item.get("filename") or item["url"])
            markup.append(
                f'<li><a href="{url}">{name}</a><br><img src="{url}" alt="{name}" style="max-width:320px"></li>'
            )
        markup.append("</ul>")
    if rejected:
        text += ["", *_rejected_lines(rejected)]
        markup += _rejected_markup(rejected)
    if not_arrived:
        advice = f"Not everything arrived: {not_arrived}. Please send those photos again."
        text += ["", advice]
        markup.append(f"<p>{html.escape(advice)}</p>")
    if stored:
        text += ["", 'To take them down, reply to this mail with the word "delete".', ""]
        markup.append("<p>To take them down, reply to this mail with the word <b>delete</b>.</p>")
    return _reply_fields(
        message, reply_from=reply_from, key=key, domain=message_id_domain, text="\n".join(text), body_html=_page(markup)
    )


def _rejected_lines(rejected: Sequence[dict]) -> list[str]:
    return [
        f"Not published ({len(rejected)}):",
        "",
        *(f"  {names}: {reason}" for reason, names in _by_reason(rejected)),
    ]


def _rejected_markup(rejected: Sequence[dict]) -> list[str]:
    items = [f"<li>{html.escape(names)}: {html.escape(reason)}</li>" for reason, names in _by_reason(rejected)]
    return [f"<p>Not published ({len(rejected)}):</p>", "<ul>", *items, "</ul>"]


def _by_reason(rejected: Sequence[dict]) -> list[tuple[str, str]]:
    """(reason, the attachments' names) in the order the reasons first came: one line per reason, not per file.

    A mail of 150 photos, or of a folder of PDFs, would otherwise get a reply of a hundred equal lines.
    """
    names: dict[str, list[str]] = {}
    for item in rejected:
        names.setdefault(item["reason"], []).append(item.get("filename") or item.get("attachment") or "")
    return [(reason, _some(listed)) for reason, listed in names.items()]


def _some(names: list[str], shown: int = NAMES_PER_REASON) -> str:
    if len(names) <= shown + 1:  # "and 1 more" would take the place of the one name
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown:,} more"


def compose_deletion_confirmation(
    message: Message,
    *,
    reply_from: str,
    key: str,
    message_id_domain: str,
    deleted: Sequence[str],
    rejected: Sequence[dict] = (),
) -> dict:
    """The short confirmation that the objects at `deleted` (URLs) are gone, and why `rejected` was not published."""
    text = [f"Taken down ({len(deleted)}):", "", *(f"  {url}" for url in deleted), ""]
    markup = [
        f"<p>Taken down ({len(deleted)}):</p>",
        "<ul>",
        *(f"<li>{html.escape(url)}</li>" for url in deleted),
        "</ul>",
    ]
    if rejected:
        text += [*_rejected_lines(rejected), ""]
        markup += _rejected_markup(rejected)
    return _reply_fields(
        message, reply_from=reply_from, key=key, domain=message_id_domain, text="\n".join(text), body_html=_page(markup)
    )
