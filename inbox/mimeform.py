"""Reads the form of a raw-MIME route (`body-mime` and a few small fields), streaming `body-mime` into a spool.

Werkzeug's form parser keeps every non-file field in memory and refuses one over
MAX_FORM_MEMORY_SIZE (413); `body-mime` is the whole message, 25 MB and more. Here it goes
to disk as it arrives, urlencoded or multipart; the other fields stay small and few (every
field counts, a name repeated too). As on the forward() route (form.py, whose decoder it
shares), the signature is checked the moment its three fields are in, and at the latest when
the body ends: a post without them is refused before its message is looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, NeedData

from .form import SIGNATURE_FIELDS, check_unsigned_at_end, check_when_signed
from .multipart import MailgunDecoder, PartHeadersTooLarge
from .urlencoded import MalformedUrlencoded, read_urlencoded

MIME_FIELD = "body-mime"
READ_SIZE = 256 * 1024
MAX_FIELDS = 100
MAX_FIELD_BYTES = 64 * 1024
MAX_NAME_BYTES = 256


class MalformedForm(Exception):
    """The post is not a raw-MIME form Mailgun could have sent; the message says what is wrong."""


@dataclass
class MimeForm:
    fields: dict[str, str]  # recipient, sender, from, subject, timestamp, token, signature, …
    body_mime: object  # what new_spool() returned, finished, holding the raw message


class _Fields:
    """Collects the fields: body-mime into the spool, the others bounded in memory."""

    def __init__(self, new_spool, check_signature):
        self.new_spool, self.check_signature, self.small, self.body_mime = new_spool, check_signature, {}, None
        self.name, self.value, self.count = "", bytearray(), 0

    def start(self, name: str) -> None:
        self.count += 1
        if self.count > MAX_FIELDS:
            raise MalformedForm(f"more than {MAX_FIELDS} form fields")
        if name == MIME_FIELD and self.body_mime is not None:
            raise MalformedForm(f"{MIME_FIELD} appears twice")
        self.name = name
        if name == MIME_FIELD:
            self.body_mime = self.new_spool()

    def write(self, data: bytes) -> None:
        if self.name == MIME_FIELD:
            self.body_mime.write(data)
            return
        self.value += data
        if len(self.value) > MAX_FIELD_BYTES:
            raise MalformedForm(f"form field {self.name[:40]!r} is over {MAX_FIELD_BYTES} bytes")

    def end(self) -> None:
        if self.name != MIME_FIELD:
            self.small[self.name] = self.value.decode("utf-8", errors="replace")
            if self.name in SIGNATURE_FIELDS:
                check_when_signed(self.check_signature, self.small)
        self.name, self.value = "", bytearray()

    def result(self) -> MimeForm:
        check_unsigned_at_end(self.check_signature, self.small)
        if self.body_mime is None:
            raise MalformedForm(
                f"no {MIME_FIELD} field: a raw-MIME route's URL ends in mime "
                "(routes_setup.py --mime); other routes post to /webhooks/mailgun"
            )
        self.body_mime.finish()
        return MimeForm(self.small, self.body_mime)


def _read_multipart(stream, boundary: str, fields: _Fields) -> None:
    # Each Data event empties the decoder's buffer, so this bound only stops endless part headers.
    decoder = MailgunDecoder(boundary.encode("latin-1"), max_form_memory_size=4 * READ_SIZE, max_parts=MAX_FIELDS)
    while True:
        chunk = stream.read(READ_SIZE)
        decoder.receive_data(chunk or None)
        while not isinstance(event := decoder.next_event(), NeedData):
            if isinstance(event, Epilogue):
                return
            if isinstance(event, (Field, File)):
                fields.start(event.name or "")
            elif isinstance(event, Data):
                fields.write(event.data)
                if not event.more_data:
                    fields.end()


def read_mime_form(stream, content_type: str, new_spool, check_signature=None) -> MimeForm:
    """Read the form in binary `stream` (the request body) of the given Content-Type header.

    `check_signature(timestamp, token, signature)` is called once those three fields are in.
    """
    mimetype, options = parse_options_header(content_type or "")
    fields = _Fields(new_spool, check_signature)
    try:
        if mimetype == "multipart/form-data":
            if not options.get("boundary"):
                raise MalformedForm("multipart/form-data without a boundary")
            _read_multipart(stream, options["boundary"], fields)
        elif mimetype == "application/x-www-form-urlencoded":
            read_urlencoded(stream, fields, max_fields=MAX_FIELDS, max_name_bytes=MAX_NAME_BYTES)
        else:
            raise MalformedForm(
                f"expected a form post, got {mimetype or 'no Content-Type'}: point a Mailgun "
                "route's forward() at this URL"
            )
    except RequestEntityTooLarge:
        raise MalformedForm("a form part's headers never end") from None
    except (MalformedUrlencoded, PartHeadersTooLarge) as error:
        raise MalformedForm(str(error)) from None
    except ValueError as error:  # werkzeug's word for a broken or truncated multipart body
        raise MalformedForm(f"the form could not be parsed ({error}); is it a complete multipart body?") from None
    return fields.result()
