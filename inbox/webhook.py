"""The Mailgun webhook: verify, read, inspect, store, answer. The only module that knows status codes.

Mailgun treats 200 as delivered, 406 as "rejected, do not retry", anything else as "retry
for about 8 hours". So: 200 when at least one image was stored; 415/413 (or 406, if the
operator chose INBOX_REJECT_STATUS=406) when nothing was acceptable; 503 when storage
failed, so the retry completes the message; 400/403 for requests Mailgun did not send.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request, url_for

from .fetch import FetchError, fetch_attachments
from .images import inspect
from .mailgun import SignatureError, verify_signature
from .message import InboundMessage, MalformedMessage, read_message
from .receipts import find_receipt, save_receipt
from .storage import STORAGE_ERRORS, object_name, store_image

bp = Blueprint("webhook", __name__)
log = logging.getLogger("inbox")


def refuse(status: int, reason: str):
    """A JSON answer for a request we did not process."""
    log.warning("refused status=%d path=%s reason=%s", status, request.path, reason)
    return jsonify(error=status, reason=reason), status


def _storage_failed(message_id: str, error: Exception):
    log.error("storage failed message_id=%s: %s: %s", message_id, type(error).__name__, error)
    return refuse(503, "storage is unavailable; nothing was reported stored, Mailgun will retry")


def _public_url(container, name: str) -> str:
    base = current_app.config["INBOX_PUBLIC_BASE"]
    if base is None:
        return url_for("files.serve_file", container=container.name, name=name, _external=True)
    return f"{base}/{quote(name)}"


def store_attachments(message: InboundMessage) -> tuple[int, dict]:
    """Judge every attachment, store the accepted images; return the answer (status, body)."""
    config = current_app.config
    images = current_app.extensions["inbox.images"]
    stored, rejected, too_large = [], [], False
    for attachment in message.attachments:
        spool = attachment.stream
        verdict = inspect(spool.head, spool.size, config["INBOX_MAX_ATTACHMENT_BYTES"])
        entry = {"attachment": attachment.field, "filename": attachment.filename, "content_type": verdict.content_type}
        if verdict.reason:
            rejected.append({**entry, "reason": verdict.reason})
            too_large = too_large or verdict.too_large
            continue
        name = object_name(
            config["INBOX_NAME_KEY"], message.message_id, message.sender, spool.sha256.hexdigest(), verdict.extension
        )
        spool.flush()
        store_image(images, spool.name, name, verdict.content_type, attachment.filename)
        stored.append({**entry, "size": spool.size, "url": _public_url(images, name)})

    body = {"message_id": message.message_id or None, "stored": stored, "rejected": rejected}
    if stored:
        return 200, body
    body["reason"] = "no accepted image in the message" if rejected else "the message has no attachments"
    if config["INBOX_REJECT_STATUS"] == 406:
        return 406, body
    return (413 if too_large else 415), body


@bp.post("/webhooks/mailgun")
def receive_message():
    config = current_app.config
    try:
        message = read_message(request)
    except MalformedMessage as error:
        return refuse(400, str(error))
    except OSError as error:  # the spool folder is full or gone
        return _storage_failed("-", error)
    try:
        verify_signature(
            config["MAILGUN_WEBHOOK_SIGNING_KEY"], message.timestamp, message.token, message.signature,
            max_age=config["INBOX_SIGNATURE_MAX_AGE"],
        )
    except SignatureError as error:
        return refuse(403, str(error))

    receipts = current_app.extensions["inbox.receipts"]
    try:
        receipt = find_receipt(receipts, message.token)
        if receipt is not None:
            status, body = receipt
            log.info("repeat message_id=%s status=%d (answer recorded for this token)", message.message_id, status)
            return jsonify(body), status
        if message.stored_attachments is not None:
            fetched = fetch_attachments(message.stored_attachments, config.get("MAILGUN_API_KEY"), request.new_spool)
            message = replace(message, attachments=message.attachments + fetched)
        status, body = store_attachments(message)
        save_receipt(receipts, message.token, status, body, config["INBOX_SPOOL_DIR"])
    except MalformedMessage as error:
        return refuse(400, str(error))
    except FetchError as error:
        log.error("fetch failed message_id=%s: %s", message.message_id, error)
        return refuse(503, "the stored message could not be fetched from Mailgun now; Mailgun will retry")
    except STORAGE_ERRORS as error:
        return _storage_failed(message.message_id, error)
    log.info(
        "delivery message_id=%s attachments=%d stored=%d rejected=%d status=%d",
        message.message_id, len(message.attachments), len(body["stored"]), len(body["rejected"]), status,
    )
    return jsonify(body), status
