"""Reads the request body into form fields and spool files: Werkzeug's multipart decoder, driven for Mailgun.

What differs from Werkzeug's own form parser, and why:
- every `attachment-N` part is a file, with or without a file name, and a file name is read
  as browsers and Mailgun write it (a backslash is a character, not an escape);
- a part header that is not UTF-8 is read as Latin-1 instead of refusing the whole message
  (multipart.py, which also finds boundaries without compiling a regex for each request);
- each spool file is closed when its part ends (one open file at a time);
- `check_signature` is called as soon as the three signature fields are in, so an unsigned
  body is not read to its end, and at the latest when the body ends (missing fields as ""),
  so no form is handed on before its signature holds;
- only the message's text (`body-*`, `stripped-*`) may take MAX_FORM_MEMORY_SIZE: every other
  field is a mail header or a few bytes of Mailgun's, bounded as a raw message's header block
  is (FieldTooLarge, naming the field);
- url-encoded bodies are read as they arrive (urlencoded.py), each field bounded and the
  signature checked just as in a multipart body, and capped in field count as multipart ones are;
- large bodies are read a megabyte at a time into one reused buffer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

from flask import Request, current_app
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, NeedData

from .mime import MAX_HEADER_BYTES
from .multipart import MailgunDecoder
from .spool import EXTENSION, SpoolFile
from .urlencoded import TooManyFields, read_urlencoded

SMALL_BODY = 1024 * 1024
# Werkzeug reads 64 KiB at a time and the server copies its buffer on every read; large
# bodies go several times faster with 1 MiB reads. Not less: gunicorn receives up to 1 MiB
# per recv and copies back what a smaller read leaves (512 KiB reads: 25 MiB ~50% slower).
# Small bodies keep the default.
LARGE_READ = 1024 * 1024
SIGNATURE_FIELDS = ("timestamp", "token", "signature")
FILE_FIELD = re.compile(r"attachment-\d+")
# The message's text: body-plain, body-html, a body-<type> for each other text part, stripped-*.
TEXT_FIELD = re.compile(r"(?:body|stripped)-.+")
# JSON of many headers or attachments (escapes make a header up to 3 times longer); every
# other field is one header, bounded as a raw message's whole header block (mime.py).
LIST_FIELD_BYTES = {"message-headers": 4 * MAX_HEADER_BYTES, "attachments": 4 * MAX_HEADER_BYTES}
# filename="…" as browsers and Mailgun send it: no escapes inside, '"' itself sent as %22.
LITERAL_FILENAME = re.compile(r'(?i)(?:^|;)\s*filename\s*=\s*"([^"]*)"')
# A url-encoded field's name is a header's name (Mailgun posts each header as a field), percent-encoded.
MAX_NAME_BYTES = 4096


class FieldTooLarge(Exception):
    """A field that holds a mail header (or Mailgun's JSON of them) is larger than any mail's; says which."""


def check_when_signed(check_signature: Callable[[str, str, str], None] | None, fields: Mapping[str, str]) -> None:
    """Call `check_signature(timestamp, token, signature)` when all three are among `fields`."""
    if check_signature is not None and all(name in fields for name in SIGNATURE_FIELDS):
        check_signature(*(fields[name] for name in SIGNATURE_FIELDS))


def check_unsigned_at_end(check_signature: Callable[[str, str, str], None] | None, fields: Mapping[str, str]) -> None:
    """The body has ended: if the three fields never all arrived, `check_signature` refuses it now (missing as "")."""
    if check_signature is not None and not all(name in fields for name in SIGNATURE_FIELDS):
        check_signature(*(fields.get(name, "") for name in SIGNATURE_FIELDS))


def _file_name(part: Field | File) -> str:
    disposition = part.headers.get("Content-Disposition", "")
    if "filename*" in disposition.lower():
        return getattr(part, "filename", None) or ""  # RFC 5987, which Werkzeug decodes
    literal = LITERAL_FILENAME.search(disposition)
    return literal.group(1) if literal else getattr(part, "filename", None) or ""


def _chunks(read: Callable[[int], bytes], size: int) -> Iterator[bytes | None]:
    while data := read(size):
        yield data
    yield None  # tells the decoder the body has ended


class InboxFormParser(FormDataParser):
    """Parses Mailgun's posts into (fields, files); InboxRequest gives it its spool and signature check."""

    new_spool: Callable[..., SpoolFile]
    check_signature: Callable[[str, str, str], None] | None = None

    def _parse_urlencoded(self, stream, mimetype, content_length, options):
        fields = _Fields(self)
        try:
            read_urlencoded(stream, fields, max_fields=self.max_form_parts, max_name_bytes=MAX_NAME_BYTES)
        except TooManyFields:  # more fields than any message Mailgun sends
            raise RequestEntityTooLarge() from None
        check_unsigned_at_end(self.check_signature, fields.signature)
        return stream, self.cls(fields.items), self.cls()

    def _field_limit(self, name: str) -> int:
        """The most bytes field `name` may hold: MAX_FORM_MEMORY_SIZE for the message's text, far less for a header."""
        if TEXT_FIELD.fullmatch(name):
            return self.max_form_memory_size
        return min(LIST_FIELD_BYTES.get(name, MAX_HEADER_BYTES), self.max_form_memory_size)

    def _too_large(self, name: str, limit: int) -> Exception:
        if limit == self.max_form_memory_size:
            return RequestEntityTooLarge()  # answered with all of the service's limits
        return FieldTooLarge(
            f"form field {name[:40]!r} is over {limit // 1024} KiB, more than any mail's headers; only the "
            "message's text (body-*, stripped-*) may be larger"
        )

    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "").encode("ascii", "replace")
        if not boundary:
            raise ValueError("multipart/form-data without a boundary")
        size = LARGE_READ if (content_length or 0) > SMALL_BODY else 64 * 1024
        reader = _BufferReusingReader(stream, size) if hasattr(stream, "readinto") else stream
        fields, files = self._read_parts(reader, boundary, size)
        return stream, self.cls(fields), self.cls(files)

    def _read_parts(self, reader, boundary: bytes, size: int):
        decoder = MailgunDecoder(boundary, self.max_form_memory_size, max_parts=self.max_form_parts)
        fields, files, part, spool = _Fields(self), [], None, None
        for chunk in _chunks(reader.read, size):
            decoder.receive_data(chunk)
            event = decoder.next_event()
            while not isinstance(event, (Epilogue, NeedData)):
                if isinstance(event, (Field, File)):
                    if event.name is None:  # werkzeug passes it on; a form field always has one
                        raise ValueError("a part's Content-Disposition has no name")
                    part = event
                    is_file = isinstance(event, File) or FILE_FIELD.fullmatch(event.name)
                    spool = self.new_spool() if is_file else None
                    if spool is None:
                        fields.start(event.name)
                elif isinstance(event, Data):
                    if spool is None:
                        fields.write(event.data)
                        if not event.more_data:
                            fields.end()
                    else:
                        spool.write(event.data)
                        if not event.more_data:
                            spool.finish()
                            files.append(
                                (part.name, FileStorage(spool, _file_name(part), part.name, headers=part.headers))
                            )
                event = decoder.next_event()
        check_unsigned_at_end(self.check_signature, fields.signature)
        return fields.items, files


class _Fields:
    """Collects the form's text fields: each bounded while it arrives, the signature checked once its three are in."""

    def __init__(self, parser: InboxFormParser):
        self.parser, self.items, self.signature = parser, [], {}
        self.name, self.pieces, self.length, self.limit = "", [], 0, 0

    def start(self, name: str) -> None:
        self.name, self.pieces, self.length, self.limit = name, [], 0, self.parser._field_limit(name)

    def write(self, data: bytes) -> None:
        self.length += len(data)
        if self.length > self.limit:
            raise self.parser._too_large(self.name, self.limit)
        self.pieces.append(data)

    def end(self) -> None:
        value = b"".join(self.pieces).decode("utf-8", "replace")
        self.items.append((self.name, value))
        self.pieces = []
        if self.name in SIGNATURE_FIELDS and self.name not in self.signature:
            self.signature[self.name] = value
            check_when_signed(self.parser.check_signature, self.signature)


class _BufferReusingReader:
    """The stream's read(), into one buffer for the whole body: the parser copies each piece.

    Werkzeug's own read() makes two fresh buffers per call; at 1 MiB each, their page
    faults cost more than the copies, and they add to the worker's peak memory.
    """

    def __init__(self, stream, size: int):
        self.stream = stream
        self.buffer = memoryview(bytearray(size))

    def read(self, size: int) -> memoryview:
        return self.buffer[: self.stream.readinto(self.buffer[:size])]


class InboxRequest(Request):
    """Flask request that spools file parts, lets the view watch the fields, and fails loudly on a broken form."""

    form_data_parser_class = InboxFormParser
    check_signature: Callable[[str, str, str], None] | None = None  # set by the view before it reads the form

    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        # Werkzeug drops an unparsable form silently; we want to say why (read_message).
        parser.silent = False
        parser.new_spool = self.new_spool
        parser.check_signature = self.check_signature
        return parser

    def new_spool(self, limit: int | None = None, *, scratch: bool = False) -> SpoolFile:
        """A spool file for one attachment (or, `scratch`, a raw message), removed with the request."""
        spool = current_app.extensions[EXTENSION].new_file(limit, scratch=scratch)
        # Parts of a form that fails half-way never reach request.files; remove them too.
        self.__dict__.setdefault("_spools", []).append(spool)
        return spool

    def close(self) -> None:
        super().close()
        for spool in self.__dict__.get("_spools", ()):
            spool.discard()
