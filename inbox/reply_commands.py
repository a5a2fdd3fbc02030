"""Answers to our replies: a `delete` from the publisher takes down what that reply listed, and is confirmed once.

The answer must come from the publisher the record names, and pass the same checks as any mail
(the webhook admitted it). The records it names are marked taken down, so a later delivery of the
original mail publishes nothing (publish.py). An answer without photos needs nothing done; one with
photos is published as any message.
"""

from __future__ import annotations

import time

from flask import current_app, request

from .message import InboundMessage
from .publish import Published, publisher_of, reply_address, reply_domain, send
from .receipts import Claim, claim_record, find_record, save_record
from .reply import compose_deletion_confirmation, is_delete_command, replied_keys, reply_blocker
from .spool import current_spool_folder
from .storage import Store
from .takedown import take_down


def answer_to_a_reply(store: Store, message: InboundMessage) -> Published | None:
    """A message answering our reply: `delete` takes its photos down; without photos, nothing to do; else None."""
    keys = replied_keys(message, reply_domain(message))
    if not keys:
        return None
    if is_delete_command(message.text, message.subject):
        return _take_down_by_reply(store, message, keys)
    if not message.attachments and not message.stored_attachments:
        return Published(reason="a reply to our reply without photos: nothing to publish")
    return None


def _take_down_by_reply(store: Store, message: InboundMessage, keys: list[str]) -> Published:
    # Two deliveries of one `delete` at once would both confirm: the second waits (503) for the first.
    held = claim_record(store, request.new_spool, f"{keys[0]}.takedown")
    try:
        return _take_down(store, message, keys)
    finally:
        if isinstance(held, Claim):
            held.release()


def _take_down(store: Store, message: InboundMessage, keys: list[str]) -> Published:
    publisher = publisher_of(message)
    # Already taken down, or somebody else's photos: nothing happens to either.
    records = {
        key: record
        for key in keys
        if (record := find_record(store, key)) is not None
        and record.get("publisher") == publisher
        and not record.get("taken_down")
    }
    if not records:
        return Published(deleted=[], reason="nothing to take down: no photos of yours are published from that mail")
    deleted = []
    for record in records.values():
        take_down(store, record["objects"])  # a retry finds them gone already, which is fine
        deleted += record["urls"]
    reply = _confirm_deletion(message, next(iter(records)), deleted)
    # Only now: if the confirmation could not be sent (503), Mailgun's retry finds the records and confirms.
    taken_down = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    spool = current_spool_folder(current_app)
    for key, record in records.items():
        save_record(store, spool, key, {**record, "objects": [], "urls": [], "taken_down": taken_down})
    return Published(deleted=deleted, reply=reply)


def _confirm_deletion(message: InboundMessage, key: str, deleted: list[str]) -> dict:
    blocker = reply_blocker(message, reply_address(message))
    if blocker:  # an automatic answer (a vacation notice) still takes down, but gets no mail back
        return {"sent": False, "reason": blocker}
    fields = compose_deletion_confirmation(
        message,
        reply_from=reply_address(message),
        key=f"{key}.deleted",
        message_id_domain=reply_domain(message),
        deleted=deleted,
    )
    return send(fields)
