"""Reads Mailgun's forward() POST into an InboundMessage, spooling each attachment once.

Every file part is written straight to a spool file beside the store (so the local store
can link it in place instead of copying it), hashed and measured while it streams in, and
its first bytes are kept for libmagic: no attachment is ever held in memory or read twice.
"""
from __future__ import annotations

import email.header
import functools
import hashlib
import json
import os
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from flask import Request, current_app
from werkzeug.formparser import FormDataParser, MultiPartParser

SNIFF_BYTES = 8192
SMALL_BODY = 1024 * 1024
# Werkzeug reads 64 KiB at a time and the server copies its buffer on every read; large
# bodies go several times faster with 1 MiB reads. Small ones keep the default.
LARGE_READ = 1024 * 1024
# A chunk this large is hashed on another core while this one reads on (hashlib lets the GIL go).
BACKGROUND_CHUNK = 256 * 1024


class MalformedMessage(Exception):
    """The request is not a form post Mailgun could have sent; the message says what is wrong."""


@functools.cache
def _background_thread() -> ThreadPoolExecutor:
    # Started on first use, so in each gunicorn worker after the fork.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")


class SpoolFile:
    """A temporary file that hashes, measures and keeps the head of what is written to it.

    Bytes past `limit` are counted but not written: an oversized attachment costs no disk.
    With `writeback` (the local store, where the spool becomes the object) what is written
    is sent on to the disk at once, so the fsync before the answer has little left to wait
    for, and pages already on disk are dropped: a spool never fills the page cache.
    """

    def __init__(self, directory: str, limit: int, writeback: bool = False):
        self.file = tempfile.NamedTemporaryFile(dir=directory, prefix="spool-")
        self.limit = limit
        self.size = 0
        self.head = b""
        self.writeback = writeback and hasattr(os, "posix_fadvise")  # Linux
        self._sha256 = hashlib.sha256()
        self._pending = None  # the background work on the last large chunk

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def sha256(self):
        """The hash of everything written so far."""
        self._wait()
        return self._sha256

    def write(self, data: bytes) -> int:
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        room = self.limit - self.size
        self.size += len(data)
        if room > 0:
            chunk = data[:room] if len(data) > room else data
            self.file.write(chunk)
            self._wait()  # one chunk at a time, so the hash sees them in order
            if len(chunk) >= BACKGROUND_CHUNK and isinstance(chunk, bytes):  # immutable: safe to share
                self._pending = _background_thread().submit(self._hash_and_send, chunk)
            else:
                self._sha256.update(chunk)
        return len(data)

    def _hash_and_send(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        if self.writeback:
            # Starts writing the dirty pages out and drops the clean ones (what sync_file_range
            # would do; the os module does not have it).
            os.posix_fadvise(self.file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self._wait()  # the background thread may still use the file
        self.file.close()


class _AdaptiveFormDataParser(FormDataParser):
    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "").encode("ascii", "replace")
        if not boundary:
            raise ValueError("multipart/form-data without a boundary")
        parser = MultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
            buffer_size=LARGE_READ if (content_length or 0) > SMALL_BODY else 64 * 1024,
        )
        reader = _BufferReusingReader(stream, parser.buffer_size) if hasattr(stream, "readinto") else stream
        form, files = parser.parse(reader, boundary, content_length)
        return stream, form, files


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
    """Flask request that spools file parts into SpoolFiles and fails loudly on a broken form."""

    form_data_parser_class = _AdaptiveFormDataParser

    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        # Werkzeug drops an unparsable form silently; we want to say why (read_message).
        parser.silent = False
        return parser

    def new_spool(self) -> SpoolFile:
        """A spool file for one attachment, closed (and so deleted) with the request."""
        config = current_app.config
        # With the local store the spool becomes the object; other providers read it back.
        spool = SpoolFile(config["INBOX_SPOOL_DIR"], config["INBOX_MAX_ATTACHMENT_BYTES"],
                          writeback=config["STORAGE_PROVIDER"] == "local")
        # Parts of a form that fails half-way never reach request.files; close them too.
        self.__dict__.setdefault("_spools", []).append(spool)
        return spool

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return self.new_spool()

    def close(self) -> None:
        super().close()
        for spool in self.__dict__.get("_spools", ()):
            spool.close()


@dataclass(frozen=True)
class Attachment:
    field: str
    filename: str
    stream: SpoolFile

    @property
    def size(self) -> int:
        return self.stream.size


@dataclass(frozen=True)
class InboundMessage:
    sender: str
    recipient: str
    message_id: str
    timestamp: str
    token: str
    signature: str
    attachments: list[Attachment] = field(default_factory=list)
    # A store(notify=…) notification lists the attachments to fetch instead of carrying them.
    stored_attachments: list[dict] | None = None


def _header(form, name: str) -> str:
    """A MIME header: Mailgun posts each as a top-level field and again in message-headers."""
    if form.get(name):
        return form[name]
    try:
        headers = json.loads(form.get("message-headers") or "[]")
        return next(str(v) for k, v in headers if str(k).lower() == name.lower())
    except (ValueError, TypeError, StopIteration):
        return ""


def clean_filename(raw: str) -> str:
    """The original name for display only: RFC 2047 decoded, no folders, no control characters."""
    if "=?" in raw:
        try:
            raw = str(email.header.make_header(email.header.decode_header(raw)))
        except (ValueError, LookupError):
            pass  # not a valid encoded word: keep it as it came
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    # Category C is control, format (bidi overrides that disguise extensions), surrogates, private use.
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    return name.strip(" .")[:255]


def stored_attachment_list(form) -> list[dict] | None:
    """The `attachments` of a store() notification, None for a forward() post."""
    if "attachments" not in form:
        return None
    try:
        items = json.loads(form["attachments"] or "[]")
        if not isinstance(items, list) or not all(isinstance(item, dict) and "url" in item for item in items):
            raise ValueError
    except ValueError:
        raise MalformedMessage('"attachments" must be the JSON list Mailgun sends with store(notify=…)') from None
    return items


def read_message(request: InboxRequest) -> InboundMessage:
    """Parse the form; raise MalformedMessage for anything Mailgun would not have sent."""
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise MalformedMessage(
            f"expected a form post (multipart/form-data), got {request.mimetype or 'no Content-Type'}: "
            "point a Mailgun route's forward() action at this URL"
        )
    try:
        form, files = request.form, request.files
    except UnicodeDecodeError:
        raise MalformedMessage(
            "a part header is not UTF-8 (a file name in another encoding?); Mailgun posts UTF-8"
        ) from None
    except ValueError as error:
        # Werkzeug raises ValueError on a broken or truncated multipart body.
        raise MalformedMessage(f"the form could not be parsed ({error}); is it a complete multipart body?") from None
    attachments = [
        Attachment(field=name, filename=clean_filename(upload.filename or ""), stream=upload.stream)
        for name, upload in files.items(multi=True)
    ]
    return InboundMessage(
        sender=form.get("sender") or form.get("from", ""),
        recipient=form.get("recipient", ""),
        message_id=_header(form, "Message-Id").strip(),
        timestamp=form.get("timestamp", "").strip(),
        token=form.get("token", "").strip(),
        signature=form.get("signature", "").strip(),
        attachments=attachments,
        stored_attachments=stored_attachment_list(form),
    )

