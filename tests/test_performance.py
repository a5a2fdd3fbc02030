"""What keeps a delivery cheap, pinned without timing (bench/bench.py measures the time).

A 25 MiB attachment never sits in memory, is read in 1 MiB pieces, is hashed while it
streams, and is written to disk once: the spooled file itself becomes the stored object.
"""

import hashlib
import os
import tracemalloc

from flask.testing import EnvironBuilder
from werkzeug.test import run_wsgi_app
from werkzeug.wsgi import LimitedStream

from inbox.form import InboxRequest
from inbox.spool import SpoolFile
from tests.harness import large_photo, mailgun_form

MiB = 1024 * 1024


def encoded_delivery(app, content: bytes) -> dict:
    """The WSGI environ of a signed delivery, its body encoded up front (not part of what is measured)."""
    builder = EnvironBuilder(app, "/webhooks/mailgun", method="POST", data=mailgun_form(("big.jpg", content)))
    try:
        return builder.get_environ()
    finally:
        builder.close()


def deliver_environ(app, environ) -> tuple[str, bytes]:
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    return status, b"".join(body)


def test_a_25_mib_delivery_never_holds_the_attachment_in_memory(app):
    content = large_photo(25 * MiB)
    environ = encoded_delivery(app, content)

    tracemalloc.start()
    try:
        status, _ = deliver_environ(app, environ)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert status.startswith("200")
    # Four 1 MiB buffers at a time, whatever the attachment size: the read buffer, the decoder's,
    # the piece being written and the one being hashed (each piece is copied out of the decoder once).
    assert peak < 4.5 * MiB, f"peak {peak / MiB:.1f} MiB while receiving {len(content) / MiB:.0f} MiB"


def test_the_stored_object_is_the_spooled_file_written_once(client, settings, monkeypatch):
    spooled_inodes = []
    new_spool = InboxRequest.new_spool

    def recording_new_spool(self, limit=None):
        spool = new_spool(self, limit)
        if limit is None:  # an attachment's (the claim's file has a limit of its own)
            spooled_inodes.append(os.stat(spool.name).st_ino)
        return spool

    monkeypatch.setattr(InboxRequest, "new_spool", recording_new_spool)
    content = large_photo(3 * MiB)
    response = client.post("/webhooks/mailgun", data=mailgun_form(("big.jpg", content)))

    assert response.status_code == 200
    name = response.get_json()["stored"][0]["url"].rsplit("/", 1)[-1]
    stored = os.stat(os.path.join(settings["STORAGE_PATH"], "images", name))
    assert [stored.st_ino] == spooled_inodes  # linked into place, not copied
    assert stored.st_nlink == 1  # and the spool's own name is gone
    assert stored.st_size == len(content)


def test_large_bodies_are_read_a_megabyte_at_a_time_small_ones_64_kib(app, monkeypatch):
    read_sizes = []
    readinto = LimitedStream.readinto

    def recording_readinto(self, buffer):
        read_sizes.append(len(buffer))
        return readinto(self, buffer)

    monkeypatch.setattr(LimitedStream, "readinto", recording_readinto)
    for content, size in ((large_photo(3 * MiB), MiB), (large_photo(200 * 1024), 64 * 1024)):
        read_sizes.clear()
        status, _ = deliver_environ(app, encoded_delivery(app, content))
        assert status.startswith("200")
        assert set(read_sizes) == {size}


def test_a_spool_hashes_on_another_thread_in_order_and_keeps_the_head(tmp_path):
    pieces = [os.urandom(MiB), b"small piece", os.urandom(300 * 1024), os.urandom(MiB)]
    spool = SpoolFile(str(tmp_path), limit=10 * MiB, writeback=True)
    try:
        for piece in pieces:
            spool.write(piece)
        spool.finish()
        everything = b"".join(pieces)
        assert spool.sha256.hexdigest() == hashlib.sha256(everything).hexdigest()
        assert spool.size == len(everything) and spool.head == everything[:8192]
        with open(spool.name, "rb") as file:
            assert file.read() == everything
    finally:
        spool.discard()
