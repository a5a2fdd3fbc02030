"""Spooling: every attachment goes to a file on disk once, hashed, measured and sniffed as it streams in.

Werkzeug's form parser is tuned here for large bodies and writes each file part straight into
a SpoolFile in the spool folder, which storage chose at start-up (inside the local store, so
the spool becomes the object by a hard link; elsewhere the temporary folder). No attachment
is ever held in memory or read twice.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import Flask, Request, current_app
from werkzeug.formparser import FormDataParser, MultiPartParser

EXTENSION = "inbox.spool"


class SpoolUnavailable(Exception):
    """The spool folder cannot take an attachment now (full, gone, not writable)."""
SNIFF_BYTES = 8192
SMALL_BODY = 1024 * 1024
# Werkzeug reads 64 KiB at a time and the server copies its buffer on every read; large
# bodies go several times faster with 1 MiB reads. Small ones keep the default.
LARGE_READ = 1024 * 1024
# A chunk this large is hashed on another core while this one reads on (hashlib lets the GIL go).
BACKGROUND_CHUNK = 256 * 1024


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
            try:
                self.file.write(chunk)
            except OSError as error:
                raise SpoolUnavailable(f"cannot write to {self.name}: {error.strerror}") from None
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
        spool = current_app.extensions[EXTENSION].new_file()
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
class SpoolFolder:
    """Where attachments are spooled, how much of each is kept, and whether it is written out at once."""

    path: str
    limit: int
    writeback: bool

    def new_file(self) -> SpoolFile:
        try:
            return SpoolFile(self.path, self.limit, self.writeback)
        except OSError as error:
            raise SpoolUnavailable(f"cannot create a spool file in {self.path}: {error.strerror}") from None


def init_app(app: Flask, path: str, *, writeback: bool) -> None:
    """Spool this app's attachments into `path`; `writeback` when the spool file becomes the object."""
    os.makedirs(path, exist_ok=True)
    app.extensions[EXTENSION] = SpoolFolder(path, app.config["INBOX_MAX_ATTACHMENT_BYTES"], writeback)
    app.request_class = InboxRequest
