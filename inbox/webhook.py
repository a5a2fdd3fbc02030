"""The Mailgun webhook: read, verify, inspect, store, answer. The only module that decides status codes.

Mailgun treats 200 as delivered, 406 as "rejected, do not retry", anything else as "retry
for about 8 hours". So: 200 when at least one image was stored; 415/413 (or 406, if the
operator chose INBOX_REJECT_STATUS=406) when nothing was acceptable; 503 when storage
failed, so the retry completes the message; 400/403 for requests Mailgun did not send, 413
for a header field larger than any mail's.
The steps raise their own exceptions; the error handlers below turn each into its answer.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify, request

from .fetch import FetchError, fetch_attachments
from .mailgun import SignatureError, verify_signature
from .message import (
    InboundMessage,
    MalformedMessage,
    OversizedField,
    WrongWebhook,
    read_message,
    read_mime_message,
)
from .messages_api import ReplyUnavailable
from .publish import publish
from .receipts import Answered, Claim, InProgress, TokenReused, claim_token
from .reply_commands import answer_to_a_reply
from .senders import NotAPublisher, admit
from .spool import SpoolUnavailable
from .storage import StorageUnavailable, Store, current_store

bp = Blueprint("webhook", __name__)
log = logging.getLogger("inbox")


def refuse(status: int, reason: str):
    """A JSON answer for a request we did not process."""
    log.warning("refused status=%d path=%s reason=%s", status, request.path, reason)
    return jsonify(error=status, reason=reason), status


@bp.errorhandler(MalformedMessage)
def _malformed(error: MalformedMessage):
    return refuse(400, str(error))


@bp.errorhandler(OversizedField)
def _oversized_field(error: OversizedField):
    return refuse(413, str(error))


@bp.errorhandler(WrongWebhook)
def _wrong_webhook(error: WrongWebhook):
    return refuse(406, str(error))  # Mailgun stops retrying what would never succeed here


@bp.errorhandler(InProgress)
def _in_progress(error: InProgress):
    return refuse(503, str(error))


@bp.errorhandler(TokenReused)
def _token_reused(error: TokenReused):
    return refuse(403, str(error))


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
    return refuse(503, f"the spool folder cannot take the message now: {error.kind}; Mailgun will retry")


@bp.errorhandler(ReplyUnavailable)
def _reply_unavailable(error: ReplyUnavailable):
    log.error("reply failed: %s", error)
    return refuse(503, "the reply to the sender could not be sent now; Mailgun will retry (the photos keep their URLs)")


@bp.errorhandler(FetchError)
def _fetch_failed(error: FetchError):
    log.error("fetch failed: %s", error)
    return refuse(503, f"the stored message could not be fetched from Mailgun now; Mailgun will retry: {error}")


def _verify_and_claim(timestamp: str, token: str, signature: str) -> None:
    """Check the signature, then claim its token at once: before the rest of the body is read."""
    if "claim" in g:
        return
    config = current_app.config
    verify_signature(
        config["MAILGUN_WEBHOOK_SIGNING_KEY"], timestamp, token, signature, max_age=config["INBOX_SIGNATURE_MAX_AGE"]
    )
    g.claim = claim_token(current_store(), request.new_spool, token)


@bp.post("/webhooks/mailgun")
@bp.post("/webhooks/mailgun/mime")
def receive_message():
    """One delivery: read the form, verify its signature and claim its token, then admit, publish, answer.

    Mailgun signs only timestamp and token, which it posts as form fields wherever it likes in
    the body, often after the attachments: the signature can only be verified once they have
    been read. So the form parser calls `_verify_and_claim` the moment the three fields are in
    (an unsigned body is not read on, and a replay of the token cannot overtake this request
    while its attachments are still arriving), and at the latest when the body ends, before the
    message in it is read. Reading before that costs no more than spooling each part to disk;
    no file name, JSON field or MIME is parsed, nothing stored or fetched, before it holds.
    """
    request.check_signature = _verify_and_claim
    request.environ["wsgi.input"] = _ClaimRenewingInput(request.environ["wsgi.input"])
    try:
        message = read_mime_message(request) if request.path.endswith("/mime") else read_message(request)
        _verify_and_claim(message.timestamp, message.token, message.signature)  # a no-op: the form readers have checked
        if isinstance(g.claim, Answered):
            status, body = g.claim.for_message(message)
            log.info("repeat message_id=%s status=%d (answer recorded for this token)", message.message_id, status)
            return jsonify(body), status
        status, body = _deliver(current_store(), message)
        g.claim.finish(message, status, body)
    except BaseException:
        if isinstance(g.get("claim"), Claim):
            g.claim.release()  # so Mailgun's retry (after our 503) can claim the token again
        raise
    log.info(
        "delivery message_id=%s attachments=%d stored=%d rejected=%d status=%d",
        message.message_id,
        len(message.attachments),
        len(body["stored"]),
        len(body["rejected"]),
        status,
    )
    return jsonify(body), status


class _ClaimRenewingInput:
    """The request body as the server gives it; each read renews the token's claim once a minute (Claim.keep_alive).

    A body may arrive for longer than a claim counts as abandoned (25 MiB at the slowest rate
    slow_clients.py lets through takes 400 s); a replay of its signature must still find it held.
    """

    def __init__(self, body):
        self.body = body

    def read(self, *size) -> bytes:
        self._renew()
        return self.body.read(*size)

    def readline(self, *size) -> bytes:
        self._renew()
        return self.body.readline(*size)

    @staticmethod
    def _renew() -> None:
        claim = g.get("claim")
        if isinstance(claim, Claim):
            claim.keep_alive()


def _deliver(store: Store, message: InboundMessage) -> tuple[int, dict]:
    """Admit the sender, then publish (or take down); return the answer (status, body)."""
    config = current_app.config
    try:
        admit(config["INBOX_PUBLISHERS"], message.from_header, message.sender, message.headers)
    except NotAPublisher as error:
        log.warning("not a publisher message_id=%s sender=%s: %s", message.message_id, message.sender, error)
        return 406, {
            "message_id": message.message_id or None,
            "stored": [],
            "rejected": [],
            "reason": f"not published: {error}",
        }
    published = answer_to_a_reply(store, message)
    if published is None:
        published = publish(
            store,
            message,
            lambda: fetch_attachments(message.stored_attachments, config.get("MAILGUN_API_KEY"), request.new_spool),
        )
    body = {"message_id": message.message_id or None, "stored": published.stored, "rejected": published.rejected}
    if published.reply is not None:
        body["reply"] = published.reply
    if published.deleted is not None:
        body["deleted"] = published.deleted
    if message.incomplete:  # say so, so nobody mistakes the answer for the whole mail
        body["incomplete"] = message.incomplete
        if message.missing:
            body["missing"] = message.missing
        log.warning("message incomplete message_id=%s: %s", message.message_id, message.incomplete)
    if published.stored or published.deleted is not None or published.reason:
        if published.reason:
            body["reason"] = published.reason
        return 200, body
    if published.rejected:
        body["reason"] = "no accepted image in the message"
    elif message.incomplete:
        body["reason"] = f"nothing to publish: {message.incomplete}"
    else:
        body["reason"] = "the message has no attachments"
    if config["INBOX_REJECT_STATUS"] == 406:
        return 406, body
    return (413 if published.too_large else 415), body
