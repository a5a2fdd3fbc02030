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
- url-encoded bodies are capped in field count, as multipart ones are;
- large bodies are read a megabyte at a time into one reused buffer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import parse_qsl, unquote

from flask import Request, current_app
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, NeedData

from .mime import MAX_HEADER_BYTES
from .multipart import MailgunDecoder
from .spool import EXTENSION, SpoolFile

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
        body = stream.read().decode()
        fields = {}
        for match in re.finditer(r"(?:^|&)(timestamp|token|signature)=([^&]*)", body):
            fields.setdefault(match.group(1), unquote(match.group(2).replace("+", " ")))
        check_when_signed(self.check_signature, fields)
        try:
            items = parse_qsl(
                body, keep_blank_values=True, errors="werkzeug.url_quote", max_num_fields=self.max_form_parts
            )
        except ValueError:  # more fields than any message Mailgun sends
            raise RequestEntityTooLarge() from None
        for name, value in items:
            if len(value) > (limit := self._field_limit(name)):
                raise self._too_large(name, limit)
        check_unsigned_at_end(self.check_signature, fields)  # framed and bounded first, as a multipart body is
        return stream, self.cls(items), self.cls()

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
        fields, files, signature = [], [], {}
        part, spool, pieces, length, limit = None, None, [], 0, 0
        for chunk in _chunks(reader.read, size):
            decoder.receive_data(chunk)
            event = decoder.next_event()
            while not isinstance(event, (Epilogue, NeedData)):
                if isinstance(event, (Field, File)):
                    if event.name is None:  # werkzeug passes it on; a form field always has one
                        raise ValueError("a part's Content-Disposition has no name")
                    part, pieces, length = event, [], 0
                    is_file = isinstance(event, File) or FILE_FIELD.fullmatch(event.name)
                    spool = self.new_spool() if is_file else None
                    limit = self._field_limit(event.name)
                elif isinstance(event, Data):
                    if spool is not None:
                        spool.write(event.data)
                    else:
                        length += len(event.data)
                        if length > limit:
                            raise self._too_large(part.name, limit)
                        pieces.append(event.data)
                    if not event.more_data:
                        if spool is not None:
                            spool.finish()
                            files.append(
                                (part.name, FileStorage(spool, _file_name(part), part.name, headers=part.headers))
                            )
                        else:
                            value = b"".join(pieces).decode("utf-8", "replace")
                            fields.append((part.name, value))
                            if part.name in SIGNATURE_FIELDS and part.name not in signature:
                                signature[part.name] = value
                                check_when_signed(self.check_signature, signature)
                event = decoder.next_event()
        check_unsigned_at_end(self.check_signature, signature)
        return fields, files


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
