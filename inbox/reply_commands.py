"""Answers to our replies: a `delete` from the publisher takes down what that reply listed, and is confirmed once.

The reply answered is the one In-Reply-To names (replied_key): a `delete` in a long thread
takes down the mail of the reply it answers, not every mail of the thread. The answer must come
from the publisher the record names, and pass the same checks as any mail (the webhook admitted
it); with INBOX_PUBLISHERS=*, where the webhook checks nobody, Mailgun must vouch for its From
here all the same, as for a listed publisher. The record is marked taken down, so a later
delivery of the original mail publishes nothing (publish.py). Photos attached to a `delete` are
not published but listed as rejected, saying to send them in a mail of their own, where they get
their own reply (and their own `delete`). An answer without photos needs nothing done; one with
photos, not `delete`, is published as any message. An answer of HTML alone (Outlook can send one,
and a raw-MIME route gets it as it came) is read by the text its HTML shows.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from html.parser import HTMLParser

from flask import current_app, request

from .fetch import unfetched
from .images import detect_type
from .message import InboundMessage
from .publish import Published, publisher_of, reply_address, reply_domain, send, why_not_reply
from .receipts import Claim, InProgress, claim_record, find_record, save_record
from .reply import (
    MAX_REFERENCES,
    MAX_REFERENCES_CHARS,
    MESSAGE_ID,
    RE_PREFIXES,
    Message,
    compose_deletion_confirmation,
    header,
    one_line,
    reply_key,
)
from .senders import NotAPublisher, authenticate
from .spool import current_spool_folder
from .storage import Store
from .takedown import take_down

log = logging.getLogger("inbox")
MAX_COMMAND_CHARS = 1000  # `delete` is looked for at the start of the text or subject only
# An HTML-only answer's new text comes after its <head>: Outlook's style block alone can be tens of KiB.
MAX_HTML_CHARS, HTML_CHUNK_CHARS = 256 * 1024, 16 * 1024
# A plain answer may quote our whole reply above its new text (100 links and more) before saying `delete`.
MAX_QUOTED_TEXT_CHARS = 64 * 1024
# The first of the two lines a client wrapped "On <date>, <name> wrote:" into: "On", then the date's digits.
WRAPPED_INTRODUCTION = re.compile(r"On \D*\d")
FIRST_WORD = re.compile(r"""^[\s"'«»“”‘’]*([a-z]+)""", re.IGNORECASE)
DELETE_PUBLISHES_NOTHING = "a delete reply publishes nothing: send these photos in a mail of their own"
RECORD_KEY = re.compile(r"[0-9a-f]{32}")  # receipts.message_key: a reply of ours listing photos, not a confirmation
NO_RECORD_YET = "the mail this delete answers has no record yet: its delivery is still being answered or retried"


def answer_to_a_reply(store: Store, message: InboundMessage) -> Published | None:
    """A message answering our reply: `delete` takes its photos down; without photos, nothing to do; else None."""
    key = replied_key(message, reply_domain(message))
    if key is None:
        return None
    text = new_text(message.text) if message.text.strip() else shown_text(message.html)
    if is_delete_command(text, message.subject) and not _only_the_threads_subject(store, message, key, text):
        return _take_down_by_reply(store, message, key)
    if not message.attachments and not message.stored_attachments:
        return Published(reason="a reply to our reply without photos: nothing to publish")
    return None


def replied_key(message: Message, domain: str) -> str | None:
    """The key of the reply of ours this message answers, or None.

    The one its In-Reply-To names: References lists the whole thread, and a `delete` answering
    our second reply must not reach the mail of our first. Only a message without In-Reply-To
    (or whose In-Reply-To names none of ours) is traced by References, to the latest of ours there.
    """
    parent = header(message, "In-Reply-To") or ""
    named = itertools.islice((match.group() for match in MESSAGE_ID.finditer(parent)), MAX_REFERENCES)
    key = next((key for message_id in named if (key := reply_key(message_id, domain))), None)
    if key:
        return key
    # A client appends the id it answers last: the latest ids hold it, and a cut leaves no partial id.
    latest = MESSAGE_ID.findall((header(message, "References") or "")[-MAX_REFERENCES_CHARS:])
    return next((key for message_id in reversed(latest) if (key := reply_key(message_id, domain))), None)


def is_delete_command(text: str, subject: str) -> bool:
    """Whether the first word of the text, or of the subject after its Re: prefixes, is `delete`."""
    subject = (subject or "")[:MAX_COMMAND_CHARS]
    subject = subject[RE_PREFIXES.match(subject).end() :]
    return any(
        (word := FIRST_WORD.match((part or "")[:MAX_COMMAND_CHARS])) and word.group(1).lower() == "delete"
        for part in (text, subject)
    )


def new_text(text: str) -> str:
    """The text without what it quotes: the lines after '>' and the "On … wrote:" line that introduces them
    (two lines where the client wrapped it: "On <date>, <name> <alice@" over "example.com> wrote:").

    Mailgun's stripped-text has none, but a raw-MIME route gets the body as it was sent, and Thunderbird,
    for one, puts the quote first and the new text under it. "Delete these:" over a quote is the sender's.
    """
    lines = text[:MAX_QUOTED_TEXT_CHARS].splitlines()
    quoted = [line.lstrip().startswith(">") for line in lines]
    introductions = set()
    for number in range(len(lines)):
        if quoted[number] and (number == 0 or not quoted[number - 1]):
            above = number - 1
            while above >= 0 and not lines[above].strip():
                above -= 1
            if above >= 0 and lines[above].rstrip().endswith(":") and not is_delete_command(lines[above], ""):
                introductions.add(above)
                wrapped = lines[above - 1].lstrip() if above > 0 else ""
                if WRAPPED_INTRODUCTION.match(wrapped) and not lines[above].lstrip().startswith("On "):
                    introductions.add(above - 1)
    return "\n".join(line for number, line in enumerate(lines) if not quoted[number] and number not in introductions)


class _ShownText(HTMLParser):
    """Collects the text an HTML body shows, up to `limit` characters; blocks are apart, style and script unseen."""

    HIDDEN = frozenset({"style", "script", "title"})
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "td", "th", "blockquote", "table", "h1", "h2", "h3", "hr"})

    def __init__(self, limit: int):
        super().__init__(convert_charrefs=True)
        self.limit, self.hidden, self.parts, self.length = limit, 0, [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(self.hidden - 1, 0)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)
            self.length += len(data)


def shown_text(markup: str) -> str:
    """The beginning of the text an HTML body shows: what a mail of HTML alone (Outlook, raw MIME) says first."""
    parser = _ShownText(MAX_COMMAND_CHARS)
    markup = (markup or "")[:MAX_HTML_CHARS]
    for start in range(0, len(markup), HTML_CHUNK_CHARS):
        try:
            parser.feed(markup[start : start + HTML_CHUNK_CHARS])
        except AssertionError:  # how html.parser refuses a broken `<![` section: what it showed before stands
            break
        if parser.length >= parser.limit:
            break
    return "".join(parser.parts)


def _only_the_threads_subject(store: Store, message: InboundMessage, key: str, text: str) -> bool:
    """Whether `delete` is only in the subject, and that subject is the mail's own ("Re: Delete after the party?").

    Every answer in such a thread carries it: a "thanks!" must not take the photos down.
    """
    if is_delete_command(text, ""):
        return False
    record = find_record(store, key) or {}
    return record.get("subject") is not None and _topic(record["subject"]) == _topic(message.subject)


def _topic(subject: str) -> str:
    subject = one_line(subject[:MAX_COMMAND_CHARS])
    return subject[RE_PREFIXES.match(subject).end() :].casefold()


def _take_down_by_reply(store: Store, message: InboundMessage, key: str) -> Published:
    try:
        # The webhook authenticated listed publishers only: with INBOX_PUBLISHERS=* a From is anyone's to write.
        authenticate(publisher_of(message), message.sender, message.headers)
    except NotAPublisher as error:
        log.warning("delete refused message_id=%s sender=%s: %s", message.message_id, message.sender, error)
        return Published(deleted=[], rejected=_not_published(message), reason=f"nothing taken down: {error}")
    # Two deliveries of one `delete` at once would both confirm: the second waits (503) for the first.
    held = claim_record(store, request.new_spool, f"{key}.takedown")
    try:
        return _take_down(store, message, key, _not_published(message))
    finally:
        if isinstance(held, Claim):
            held.release()


def _not_published(message: InboundMessage) -> list[dict]:
    """The `rejected` entries of the attachments of a `delete`: each is told to come in a mail of its own."""
    posted = [
        {
            "attachment": attachment.field,
            "filename": attachment.filename,
            "content_type": detect_type(attachment.stream.head),
            "reason": DELETE_PUBLISHES_NOTHING,
        }
        for attachment in message.attachments
    ]
    return posted + unfetched(message.stored_attachments or [], DELETE_PUBLISHES_NOTHING, first=len(posted) + 1)


def _take_down(store: Store, message: InboundMessage, key: str, rejected: list[dict]) -> Published:
    record = find_record(store, key)
    if record is None and RECORD_KEY.fullmatch(key):
        # Our reply went out but its mail's record is not written yet: still being answered, or Mailgun
        # took the reply while we gave up waiting (503) and will deliver the mail again. Answering
        # "nothing to take down" now would lose the `delete` once the record comes.
        raise InProgress(f"{NO_RECORD_YET}; Mailgun will retry")
    # Already taken down, or somebody else's photos: nothing happens to either.
    if record is None or record.get("publisher") != publisher_of(message) or record.get("taken_down"):
        reason = "nothing to take down: no photos of yours are published from that mail"
        return Published(deleted=[], rejected=rejected, reason=reason)
    if not record["objects"]:  # the reply said "Nothing was published": no confirmation of nothing either
        return Published(deleted=[], rejected=rejected, reason="nothing to take down: that mail published no photos")
    take_down(store, record["objects"])  # a retry finds them gone already, which is fine
    deleted = record["urls"]
    reply = _confirm_deletion(message, key, deleted, rejected)
    # Only now: if the confirmation could not be sent (503), Mailgun's retry finds the record and confirms.
    taken_down = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    save_record(
        store,
        current_spool_folder(current_app),
        key,
        {**record, "objects": [], "urls": [], "taken_down": taken_down},
    )
    return Published(deleted=deleted, rejected=rejected, reply=reply)


def _confirm_deletion(message: InboundMessage, key: str, deleted: list[str], rejected: list[dict]) -> dict:
    blocker = why_not_reply(message)
    if blocker:  # an automatic answer (a vacation notice) still takes down, but gets no mail back
        return {"sent": False, "reason": blocker}
    fields = compose_deletion_confirmation(
        message,
        reply_from=reply_address(message),
        key=f"{key}.deleted",
        message_id_domain=reply_domain(message),
        deleted=deleted,
        rejected=rejected,
    )
    return send(fields)
