"""One admitted message, carried through: judge, clean and store each image, reply once, keep the record.

A mail whose sender took its photos down by reply (inbox/reply_commands.py) is marked so in its
record, and a later delivery of it publishes nothing. A later delivery does not bring back an image
the operator took down either: what its record lists and storage no longer holds is not stored
again. The steps raise their own exceptions (StorageUnavailable, ReplyUnavailable, …); the webhook
turns them and the result into answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from flask import current_app, request, url_for

from .images import TINY_REASON, inspect, is_tiny_inline, without_resource_forks
from .location import LocationError, remove_location
from .message import InboundMessage
from .messages_api import ReplyRefused, send_reply, write_outbox
from .mime import referenced_content_ids
from .png_metadata import PngBudget
from .receipts import Claim, claim_record, find_record, message_identity, message_key, save_record
from .reply import Unaddressable, address, compose_reply, reply_blocker
from .senders import NotAPublisher, authenticate, from_address
from .spool import current_spool_folder
from .storage import Store, find_object, object_name, store_image

log = logging.getLogger("inbox")


@dataclass
class Published:
    stored: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    too_large: bool = False
    names: list[str] = field(default_factory=list)  # the stored objects
    deleted: list[str] | None = None  # URLs taken down by a `delete` reply
    reply: dict | None = None
    reason: str | None = None  # why a message needed nothing published (a reply without photos)


def _public_url(store: Store, name: str) -> str:
    if store.public_base is None:
        return url_for("files.serve_file", container=store.images.name, name=name, _external=True)
    return f"{store.public_base}/{quote(name)}"


def reply_domain(message: InboundMessage) -> str:
    return current_app.config.get("MAILGUN_DOMAIN") or message.recipient.rpartition("@")[2] or "localhost"


def reply_address(message: InboundMessage) -> str:
    return current_app.config.get("INBOX_REPLY_FROM") or message.recipient


def why_not_reply(message: InboundMessage) -> str | None:
    """Why this message gets no mail from us (RFC 3834, loops, an address nobody vouches for), or None.

    Where anyone may publish, the envelope sender is anyone's to write: we mail it only when
    Mailgun's SPF or DKIM vouches for it, or our domain would send our text (and the subject the
    forger chose) to whomever the forger named.
    """
    blocker = reply_blocker(message, reply_address(message))
    if blocker:
        return blocker
    try:
        authenticate(
            address(message.sender, "the envelope sender"), message.sender, message.headers, "the envelope sender"
        )
    except (NotAPublisher, Unaddressable) as error:
        return str(error)
    return None


def publisher_of(message: InboundMessage) -> str:
    try:
        return from_address(message.from_header)
    except NotAPublisher:  # anyone may publish (`*`) and the From line is odd: the envelope speaks for them
        return message.sender.lower()


def publish(store: Store, message: InboundMessage, fetch_stored: Callable[[], tuple]) -> Published:
    """Store the message's images and reply once, unless its sender took them down after an earlier delivery.

    `fetch_stored` brings the attachments of a store() notification from Mailgun, and the rejected
    entries of those it did not fetch.
    """
    identity = message_identity(message)  # before the fetch: a store() notification's attachments are its URLs
    key = message_key(store.name_key, identity, message.sender) if _replies_on() else None
    record = find_record(store, key) if key else None
    if record is not None and record.get("taken_down"):
        # A mail server sending the mail again (a new token) must not bring the photos back.
        return Published(
            reason=f"not published again: its sender took this mail's photos down ({record['taken_down']})"
        )
    not_fetched = []
    if message.stored_attachments is not None:
        fetched, not_fetched = fetch_stored()
        message = replace(message, attachments=message.attachments + fetched)
    published = store_attachments(store, message, identity, withheld=_taken_down_since(store, record))
    published.rejected += not_fetched
    if not published.stored and any(item["reason"] == TAKEN_DOWN_REASON for item in published.rejected):
        published.reason = f"not published again: {TAKEN_DOWN_REASON}"
    if published.stored or published.rejected or message.incomplete:
        # Replies off: no record either, as there is no reply to send only once.
        published.reply = _reply_once(store, message, published, key, record) if key else REPLIES_OFF
    return published


TAKEN_DOWN_REASON = "taken down since this mail was first published"
CUT_OFF_REASON = "the message ended inside this attachment: only its beginning arrived"
MAX_IMAGES = 100  # per mail: each is a write (a PUT on a cloud store) and a link in the reply
TOO_MANY_REASON = f"more than {MAX_IMAGES} images in one mail: send those after the first {MAX_IMAGES} in another"
# What the sender can do about any photo whose location could not be removed: a copy without metadata goes through.
LOCATION_ADVICE = "export the photo without its metadata and send it again"


def _taken_down_since(store: Store, record: dict | None) -> set[str]:
    """The images a delivered mail's record lists that storage no longer holds: someone took them down."""
    if record is None:
        return set()
    # A record is written only once all its images are stored, so a missing one was removed since.
    return {name for name in record.get("objects", []) if find_object(store, store.images, name) is None}


def store_attachments(store: Store, message: InboundMessage, identity: str, withheld: set[str]) -> Published:
    """Judge every attachment; remove location from the accepted images and store them, except those `withheld`.

    The images are named for the message's `identity` (receipts.message_identity), sender and content.
    """
    config = current_app.config
    published = Published()
    # Only a part with a Content-ID can be shown inline: most messages need no scan of their HTML.
    content_ids = {attachment.content_id for attachment in message.attachments if attachment.content_id}
    shown_inline = referenced_content_ids(message.html, among=content_ids) if message.html and content_ids else set()
    png_budget = PngBudget()  # one for the message: a hundred small PNGs must not cost a hundred PNGs' bound
    for attachment in without_resource_forks(message.attachments):
        spool = attachment.stream
        spool.finish()  # parts, fetched and MIME-decoded attachments alike: all on disk before it is read by path
        verdict = inspect(spool.head, spool.size, config["INBOX_MAX_ATTACHMENT_BYTES"])
        entry = {"attachment": attachment.field, "filename": attachment.filename, "content_type": verdict.content_type}
        reason = CUT_OFF_REASON if attachment.cut_off else verdict.reason
        if reason is None and attachment.content_id in shown_inline:
            reason = TINY_REASON if is_tiny_inline(spool.head, spool.size, verdict.content_type) else None
        digest = spool.sha256.hexdigest()  # of the content as sent: removing location below keeps the name
        name = None if reason else object_name(store.name_key, identity, message.sender, digest, verdict.extension)
        if name in published.names:  # a copy, past MAX_IMAGES too: one object, one link, one line in the reply
            first = published.stored[published.names.index(name)]
            reason = f"the same photo as {first['filename'] or first['attachment']}: published once"
        if reason is None and len(published.names) == MAX_IMAGES:
            reason = TOO_MANY_REASON
        if reason is None and config["INBOX_STRIP_LOCATION"]:
            try:
                remove_location(spool.name, verdict.content_type, png_budget)  # in place: the name keeps the hash
            except LocationError as error:
                reason = f"could not remove location from this image ({error.reason}); {LOCATION_ADVICE}"
        if reason or name in withheld:
            published.rejected.append({**entry, "reason": reason or TAKEN_DOWN_REASON})
            published.too_large = published.too_large or verdict.too_large
            continue
        store_image(store, spool.name, name, verdict.content_type, attachment.filename)
        published.names.append(name)
        published.stored.append({**entry, "size": os.path.getsize(spool.name), "url": _public_url(store, name)})
    return published


REPLIES_OFF = {"sent": False, "reason": "replies are off: set MAILGUN_API_KEY and MAILGUN_DOMAIN"}


def _replies_on() -> bool:
    return current_app.config["INBOX_REPLIES"] or "INBOX_OUTBOX" in current_app.config


def send(fields: dict) -> dict:
    """Send a composed reply (or, under `inbox serve`, write it to the outbox); say what happened."""
    config = current_app.config
    if not _replies_on():
        return REPLIES_OFF
    if config["INBOX_REPLIES"]:
        try:
            sent = send_reply(config["MAILGUN_API_URL"], config["MAILGUN_DOMAIN"], config["MAILGUN_API_KEY"], fields)
        except ReplyRefused as error:  # a configuration error: the photos are published all the same
            log.error("reply not sent: %s", error)
            return {"sent": False, "reason": str(error)}
        return {"sent": True, "id": sent}
    return {"sent": True, "id": fields["h:Message-Id"], "outbox": str(write_outbox(config["INBOX_OUTBOX"], fields))}


def _reply_once(store: Store, message: InboundMessage, published: Published, key: str, record: dict | None) -> dict:
    """Reply to the sender with what was published, once per message however often it is delivered."""
    if record is None:
        held = claim_record(store, request.new_spool, key)
        if isinstance(held, Claim):
            return _reply_and_record(store, message, published, key, held)
        record = held  # a delivery of it at the same time has just answered
    # A redelivery (new token): the first delivery replied (or found it must not). What it stored that the first
    # did not (an attachment that arrived only now) joins the record, so a `delete` takes it down too.
    added = [name not in record["objects"] for name in published.names]
    if any(added):
        objects = record["objects"] + [name for name, new in zip(published.names, added, strict=True) if new]
        urls = record["urls"] + [item["url"] for item, new in zip(published.stored, added, strict=True) if new]
        save_record(store, current_spool_folder(current_app), key, {**record, "objects": objects, "urls": urls})
    return record["reply"]


def _reply_and_record(store: Store, message: InboundMessage, published: Published, key: str, held: Claim) -> dict:
    """Reply, unless the mail must not be answered, and record it: a mail we never answer keeps a record too.

    Without one, a redelivery of it would bring back what the operator took down since.
    """
    blocker = why_not_reply(message)
    reply = {"sent": False, "reason": blocker} if blocker else _send_reply(message, published, key, held)
    save_record(
        store,
        current_spool_folder(current_app),
        key,
        {
            "message_id": message.message_id,
            "subject": message.subject,  # a `delete` in the thread's own subject is not a command (reply_commands)
            "sender": message.sender,
            "publisher": publisher_of(message),
            "objects": published.names,
            "urls": [item["url"] for item in published.stored],
            "reply": reply,
        },
    )
    return reply


def _send_reply(message: InboundMessage, published: Published, key: str, held: Claim) -> dict:
    fields = compose_reply(
        message,
        reply_from=reply_address(message),
        key=key,
        message_id_domain=reply_domain(message),
        stored=published.stored,
        rejected=published.rejected,
        not_arrived=message.incomplete,
    )
    try:
        return send(fields)
    except BaseException:
        held.release()  # so Mailgun's retry (after our 503) can send it
        raise
