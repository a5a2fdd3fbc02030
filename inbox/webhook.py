"""The Mailgun webhook: read, verify, inspect, store, answer. The only module that decides status codes.

Mailgun treats 200 as delivered, 406 as "rejected, do not retry", anything else as "retry
for about 8 hours". So: 200 when at least one image was stored; 415/413 (or 406, if the
operator chose INBOX_REJECT_STATUS=406) when nothing was acceptable; 503 when storage
failed, so the retry completes the message; 400/403 for requests Mailgun did not send.
The steps raise their own exceptions; the error handlers below turn each into its answer.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request, url_for

from .fetch import FetchError, fetch_attachments
from .images import inspect
from .mailgun import SignatureError, verify_signature
from .message import InboundMessage, MalformedMessage, WrongWebhook, read_message
from .receipts import find_receipt, save_receipt
from .spool import SpoolUnavailable
from .storage import StorageUnavailable, Store, current_store, object_name, store_image

bp = Blueprint("webhook", __name__)
log = logging.getLogger("inbox")


def refuse(status: int, reason: str):
    """A JSON answer for a request we did not process."""
    log.warning("refused status=%d path=%s reason=%s", status, request.path, reason)
    return jsonify(error=status, reason=reason), status


@bp.errorhandler(MalformedMessage)
def _malformed(error: MalformedMessage):
    return refuse(400, str(error))


@bp.errorhandler(WrongWebhook)
def _wrong_webhook(error: WrongWebhook):
    return refuse(406, str(error))  # Mailgun stops retrying what would never succeed here


@bp.errorhandler(SignatureError)
def _unsigned(error: SignatureError):
    return refuse(403, str(error))


@bp.errorhandler(StorageUnavailable)
def _storage_unavailable(error: StorageUnavailable):
    log.error("storage failed: %s", error)
    return refuse(503, "storage is unavailable; nothing was reported stored, Mailgun will retry")


@bp.errorhandler(SpoolUnavailable)
def _spool_unavailable(error: SpoolUnavailable):
    log.error("spool failed: %s", error)
    return refuse(503, "the spool folder cannot take the message now; Mailgun will retry")


@bp.errorhandler(FetchError)
def _fetch_failed(error: FetchError):
    log.error("fetch failed: %s", error)
    return refuse(503, f"the stored message could not be fetched from Mailgun now; Mailgun will retry: {error}")


def _public_url(store: Store, name: str) -> str:
    if store.public_base is None:
        return url_for("files.serve_file", container=store.images.name, name=name, _external=True)
    return f"{store.public_base}/{quote(name)}"


def store_attachments(store: Store, message: InboundMessage) -> tuple[int, dict]:
    """Judge every attachment, store the accepted images; return the answer (status, body)."""
    config = current_app.config
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
        store_image(store, spool.name, name, verdict.content_type, attachment.filename)
        stored.append({**entry, "size": spool.size, "url": _public_url(store, name)})

    body = {"message_id": message.message_id or None, "stored": stored, "rejected": rejected}
    if stored:
        return 200, body
    body["reason"] = "no accepted image in the message" if rejected else "the message has no attachments"
    if config["INBOX_REJECT_STATUS"] == 406:
        return 406, body
    return (413 if too_large else 415), body


def _verify(timestamp: str, token: str, signature: str) -> None:
    config = current_app.config
    verify_signature(config["MAILGUN_WEBHOOK_SIGNING_KEY"], timestamp, token, signature,
                     max_age=config["INBOX_SIGNATURE_MAX_AGE"])


@bp.post("/webhooks/mailgun")
def receive_message():
    """One delivery: read the form, verify its signature, then judge and store each attachment.

    Mailgun signs only timestamp and token, which it posts as form fields wherever it likes in
    the body, often after the attachments: the signature can only be verified once they have
    been read. So the form parser calls `_verify` the moment the three fields are in (an
    unsigned body is then not read on), and reading before that costs no more than spooling
    each part to disk; nothing is stored or fetched before the signature holds.
    """
    config = current_app.config
    store = current_store()
    request.check_signature = _verify
    message = read_message(request)
    _verify(message.timestamp, message.token, message.signature)  # when the form had no such fields
    receipt = find_receipt(store, message.token)
    if receipt is not None:
        status, body = receipt
        log.info("repeat message_id=%s status=%d (answer recorded for this token)", message.message_id, status)
        return jsonify(body), status
    if message.stored_attachments is not None:
        fetched = fetch_attachments(message.stored_attachments, config.get("MAILGUN_API_KEY"), request.new_spool)
        message = replace(message, attachments=message.attachments + fetched)
    status, body = store_attachments(store, message)
    save_receipt(store, message.token, status, body)
    log.info(
        "delivery message_id=%s attachments=%d stored=%d rejected=%d status=%d",
        message.message_id, len(message.attachments), len(body["stored"]), len(body["rejected"]), status,
    )
    return jsonify(body), status
