"""The read step: Mailgun's post, parsed (forward()) or raw (a route URL ending in mime), into an InboundMessage.

A parsed forward is a form whose file parts form.py spooled; a raw-MIME post carries the whole
message in `body-mime`, which mimeform.py spools and mime.py splits into spooled parts. Both
form readers have checked the signature by the time they return (request.check_signature):
nothing here, file names, JSON fields or MIME, is looked at for a post that is not signed.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field

from flask import Request

from .form import FieldTooLarge
from .form_json import content_ids, json_field, message_headers
from .mime import MalformedMime, decoded_words, first_header, read_mime
from .mimeform import MalformedForm, read_mime_form
from .spool import SpoolFile


class MalformedMessage(Exception):
    """The request is not a form post Mailgun could have sent; the message says what is wrong."""


class OversizedField(Exception):
    """A header field of the post is larger than any mail's headers; the message names it."""


class WrongWebhook(Exception):
    """Mailgun posted another kind of webhook here (events, tracking): a route or webhook points at the wrong URL."""


# Small: Mailgun's event webhooks are a few KiB of JSON; anything larger is no webhook of theirs.
EVENT_JSON_LIMIT = 256 * 1024
WRONG_WEBHOOK = (
    "this URL receives inbound routes (forward() or store(notify=…)); a Mailgun {what} was posted "
    "here: point event and tracking webhooks elsewhere (Mailgun → Sending → Webhooks)"
)


@dataclass(frozen=True)
class Attachment:
    field: str  # "attachment-1" …
    filename: str  # cleaned, for display only
    stream: SpoolFile
    content_id: str = ""  # without <>, for inline parts the HTML shows as cid:
    cut_off: bool = False  # the raw message ended inside it: only a beginning arrived


@dataclass(frozen=True)
class InboundMessage:
    sender: str  # envelope MAIL FROM
    recipient: str  # envelope RCPT TO: the inbox address
    from_header: str
    subject: str
    message_id: str
    headers: tuple[tuple[str, str], ...]  # every MIME header, in order, as Mailgun posted them
    text: str  # stripped-text, else body-plain
    html: str
    timestamp: str
    token: str
    signature: str
    attachments: list[Attachment] = field(default_factory=list)
    # A store(notify=…) notification lists the attachments to fetch instead of carrying them.
    stored_attachments: list[dict] | None = None
    declared_attachments: int | None = None  # Mailgun's attachment-count, which can disagree with what arrived
    cut_off: bool = False  # a raw message that ended before its closing boundary: what followed never arrived

    @property
    def missing(self) -> int:
        """How many of the attachments Mailgun counted did not arrive."""
        return max((self.declared_attachments or 0) - len(self.attachments), 0)

    @property
    def incomplete(self) -> str:
        """What of the mail did not arrive, as its sender should hear it; "" when all of it did."""
        if self.cut_off:
            return "the mail was cut off on its way here, and any attachment after the cut did not arrive"
        if not self.missing:
            return ""
        if self.missing == self.declared_attachments:
            return f"none of its {self.missing} attachments arrived"
        return f"{self.missing} of its {self.declared_attachments} attachments did not arrive"


def _header(form, headers: tuple[tuple[str, str], ...], name: str) -> str:
    """A MIME header: Mailgun posts each as a top-level field and again in message-headers."""
    return form.get(name) or first_header(headers, name) or ""


def _declared_count(form) -> int | None:
    count = (form.get("attachment-count") or "").strip()
    return int(count) if count.isascii() and count.isdigit() and len(count) <= 6 else None


def clean_filename(raw: str) -> str:
    """The original name for display only: RFC 2047 decoded, no folders, no control characters."""
    raw = decoded_words(raw)
    # A backslash is a character here (Mailgun and browsers do not escape it); only '/' separates folders.
    name = raw.rsplit("/", 1)[-1]
    # Category C is control, format (bidi overrides that disguise extensions), surrogates, private use.
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    return name.strip(" .")[:255]


def stored_attachment_list(form) -> list[dict] | None:
    """The `attachments` of a store() notification, None for a forward() post."""
    if "attachments" not in form:
        return None
    items = json_field(form, "attachments", "[]")
    if not isinstance(items, list) or not all(isinstance(item, dict) and "url" in item for item in items):
        raise MalformedMessage('"attachments" must be the JSON list Mailgun sends with store(notify=…)')
    return items


def _refuse_event_webhooks(request: Request) -> None:
    if request.mimetype != "application/json" or (request.content_length or 0) > EVENT_JSON_LIMIT:
        return
    body = bytearray()  # read here, not by get_json(): a chunked body has no Content-Length to judge it by
    while len(body) <= EVENT_JSON_LIMIT and (piece := request.stream.read(EVENT_JSON_LIMIT + 1 - len(body))):
        body += piece
    try:
        posted = json.loads(body) if len(body) <= EVENT_JSON_LIMIT else None
    except (ValueError, RecursionError):
        posted = None
    if isinstance(posted, dict) and ("event-data" in posted or isinstance(posted.get("signature"), dict)):
        raise WrongWebhook(WRONG_WEBHOOK.format(what="event webhook (JSON with event-data)"))


def read_message(request: Request) -> InboundMessage:
    """Parse the form; raise MalformedMessage for anything Mailgun would not have sent, WrongWebhook for events."""
    _refuse_event_webhooks(request)
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise MalformedMessage(
            f"expected a form post (multipart/form-data), got {request.mimetype or 'no Content-Type'}: "
            "point a Mailgun route's forward() action at this URL"
        )
    try:
        form, files = request.form, request.files
    except FieldTooLarge as error:
        raise OversizedField(str(error)) from None
    except UnicodeDecodeError:
        raise MalformedMessage(
            "a part header is not UTF-8 (a file name in another encoding?); Mailgun posts UTF-8"
        ) from None
    except ValueError as error:
        # Werkzeug raises ValueError on a broken or truncated multipart body.
        raise MalformedMessage(f"the form could not be parsed ({error}); is it a complete multipart body?") from None
    if "event" in form:  # inbound posts never carry it; Mailgun's legacy event webhooks always do
        raise WrongWebhook(WRONG_WEBHOOK.format(what=f"legacy event webhook (event={form['event'][:40]!r})"))
    content_id_of = content_ids(form)
    attachments = [
        Attachment(
            field=name,
            filename=clean_filename(upload.filename or ""),
            stream=upload.stream,
            content_id=content_id_of.get(name, ""),
        )
        for name, upload in files.items(multi=True)
    ]
    headers = message_headers(form)
    return InboundMessage(
        sender=form.get("sender", ""),  # empty for a bounce (MAIL FROM:<>): never the From header
        recipient=form.get("recipient", ""),
        from_header=form.get("from", ""),
        subject=form.get("subject", ""),
        message_id=_header(form, headers, "Message-Id").strip(),
        headers=headers,
        text=form.get("stripped-text") or form.get("body-plain", ""),
        html=form.get("body-html", ""),
        timestamp=form.get("timestamp", "").strip(),
        token=form.get("token", "").strip(),
        signature=form.get("signature", "").strip(),
        attachments=attachments,
        stored_attachments=stored_attachment_list(form),
        declared_attachments=_declared_count(form),
    )


def read_mime_message(request: Request) -> InboundMessage:
    """Read a raw-MIME route's post: `body-mime` spooled, its parts decoded into spool files."""
    _refuse_event_webhooks(request)
    try:
        form = read_mime_form(
            request.stream,
            request.headers.get("Content-Type", ""),
            lambda: request.new_spool(request.max_content_length, scratch=True),  # read once, into the parts
            request.check_signature,
        )
        with open(form.body_mime.name, "rb") as raw:
            mime = read_mime(raw, request.new_spool)
    except (MalformedForm, MalformedMime) as error:
        raise MalformedMessage(str(error)) from None
    fields = form.fields
    return InboundMessage(
        sender=fields.get("sender", ""),  # empty for a bounce (MAIL FROM:<>): never the From header
        recipient=fields.get("recipient", ""),
        from_header=mime.header("From") or fields.get("from", ""),
        subject=mime.header("Subject") or fields.get("subject", ""),
        message_id=mime.header("Message-Id").strip(),
        headers=tuple(mime.headers),
        text=mime.text,
        html=mime.html,
        timestamp=fields.get("timestamp", "").strip(),
        token=fields.get("token", "").strip(),
        signature=fields.get("signature", "").strip(),
        attachments=[
            Attachment(
                field=f"attachment-{number}",
                filename=clean_filename(part.filename),
                stream=part.spool,
                content_id=part.content_id,
                cut_off=part.cut_off,
            )
            for number, part in enumerate(mime.parts, start=1)
        ],
        cut_off=not mime.complete,
    )
