"""Spooling: every attachment goes to a file on disk once, hashed, measured and sniffed as it streams in.

The spool folder is chosen by storage at start-up: inside the local store, so that the spool
file becomes the object by a hard link, elsewhere the temporary folder. No attachment is held
in memory or read twice. A spool file's descriptor is closed as soon as its part has arrived
(a message with a thousand parts holds one open file at a time); the file itself is removed
with the request, and files left by a killed worker are swept after ORPHAN_AGE seconds.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from flask import Flask

EXTENSION = "inbox.spool"
PREFIX = "spool-"
SNIFF_BYTES = 8192
# A chunk this large is hashed on another core while this one reads on (hashlib lets the GIL go).
BACKGROUND_CHUNK = 256 * 1024
# Longer than any request may last (gunicorn's timeout), so only a dead worker's files qualify.
ORPHAN_AGE = 600
SWEEP_EVERY = 60


class SpoolUnavailable(Exception):
    """The spool folder cannot take an attachment now (full, gone, not writable).

    `kind` is the file system's error alone ("no space left on device"), without the path: what /healthz shows.
    """

    def __init__(self, doing: str, error: OSError):
        super().__init__(f"{doing}: {error.strerror}")
        self.kind = (error.strerror or type(error).__name__).lower()


@functools.cache
def _background_thread() -> ThreadPoolExecutor:
    # Started on first use, so in each gunicorn worker after the fork.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")


class SpoolFile:
    """A file that hashes, measures and keeps the head of what is written to it.

    Bytes past `limit` are counted but not written: an oversized attachment costs no disk.
    With `writeback` (the local store, where the spool becomes the object) what is written
    is sent on to the disk at once, so the fsync before the answer has little left to wait
    for, and pages already on disk are dropped: a spool never fills the page cache.
    """

    def __init__(self, directory: str, limit: int, writeback: bool = False, hashed: bool = True):
        descriptor, self.name = tempfile.mkstemp(dir=directory, prefix=PREFIX)
        self.file = os.fdopen(descriptor, "wb")
        self.limit = limit
        self.size = 0
        self.head = b""
        self.writeback = writeback and hasattr(os, "posix_fadvise")  # Linux
        self._sha256 = hashlib.sha256() if hashed else None
        self._pending = None  # the background work on the last large chunk

    @property
    def sha256(self):
        """The hash of everything written so far (None for a file made without `hashed`)."""
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
                raise SpoolUnavailable(f"cannot write to {self.name}", error) from None
            self._wait()  # one chunk at a time, so the hash sees them in order
            if self._sha256 is None:  # scratch: only written (and writeback rides on the hashing)
                return len(data)
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

    def finish(self) -> None:
        """The part has arrived: write out what is buffered and close the descriptor; the file stays."""
        self._wait()  # the background thread may still use the descriptor
        if not self.file.closed:
            try:
                self.file.close()
            except OSError as error:
                raise SpoolUnavailable(f"cannot write to {self.name}", error) from None

    close = finish  # what Werkzeug's FileStorage calls

    def discard(self) -> None:
        """Close and remove the file (a linked object keeps its own name)."""
        self._wait()
        self.file.close()
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass


@dataclass
class SpoolFolder:
    """Where attachments are spooled, how much of each is kept, and whether it is written out at once."""

    path: str
    limit: int
    writeback: bool
    _last_sweep: float = field(default=0.0, repr=False)

    def new_file(self, limit: int | None = None, *, scratch: bool = False) -> SpoolFile:
        """A new spool file keeping at most `limit` bytes (default: the attachment limit).

        `scratch`: only read back within the request (a raw message): not hashed, not sent on to the disk.
        """
        limit = self.limit if limit is None else limit
        if time.monotonic() - self._last_sweep > SWEEP_EVERY:
            self.sweep()
        writeback, hashed = self.writeback and not scratch, not scratch
        try:
            try:
                return SpoolFile(self.path, limit, writeback, hashed)
            except FileNotFoundError:  # someone removed the folder: make it again rather than fail until a restart
                os.makedirs(self.path, exist_ok=True)
                return SpoolFile(self.path, limit, writeback, hashed)
        except OSError as error:
            raise SpoolUnavailable(f"cannot create a spool file in {self.path}", error) from None

    def sweep(self, max_age: float = ORPHAN_AGE) -> list[str]:
        """Remove spool files older than `max_age` seconds (a killed worker's); return their names."""
        self._last_sweep = time.monotonic()
        removed, limit = [], time.time() - max_age
        # Housekeeping never fails a request: what cannot be removed now (a file system gone
        # read-only) is tried again by the next sweep; another worker may have swept it first.
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return removed
        for entry in entries:
            try:
                if entry.name.startswith(PREFIX) and entry.stat(follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except OSError:
                pass
        return removed


def init_app(app: Flask, path: str, *, writeback: bool) -> SpoolFolder:
    """Spool this app's attachments into `path`; `writeback` when the spool file becomes the object."""
    os.makedirs(path, exist_ok=True)
    folder = SpoolFolder(path, app.config["INBOX_MAX_ATTACHMENT_BYTES"], writeback)
    folder.sweep()
    app.extensions[EXTENSION] = folder
    return folder


def current_spool_folder(app: Flask) -> SpoolFolder:
    return app.extensions[EXTENSION]
