"""Shared fixtures: an app on a temporary local store, real image files, signed Mailgun forms."""
from __future__ import annotations

import contextlib
import io
import secrets
import time
from pathlib import Path

import pillow_heif
import pytest
import requests
from PIL import Image

from inbox import create_app
from inbox.mailgun import sign
from servers import Server, free_port  # noqa: F401  (free_port: for the test modules)

SIGNING_KEY = "test-webhook-signing-key"
pillow_heif.register_heif_opener()

# Pillow format name per stored extension: one real file of every accepted type.
IMAGE_FORMATS = {
    ".jpg": "JPEG", ".png": "PNG", ".gif": "GIF", ".bmp": "BMP", ".webp": "WEBP",
    ".heic": "HEIF", ".avif": "AVIF", ".tif": "TIFF",
}


def make_image(extension: str = ".jpg", size=(64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, IMAGE_FORMATS[extension])
    return buffer.getvalue()


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    """Real files of every accepted type, keyed by extension."""
    return {extension: make_image(extension) for extension in IMAGE_FORMATS}


def signed_fields(key: str = SIGNING_KEY, *, timestamp: str | None = None, token: str | None = None) -> dict:
    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)
    return {"timestamp": timestamp, "token": token, "signature": sign(key, timestamp, token)}


def mailgun_form(*attachments, message_id="<m1@example.com>", sender="alice@example.com", **fields) -> dict:
    """A signed forward() form for Flask's test client; attachments are (filename, bytes) pairs."""
    form = {
        "recipient": "photos@example.com", "sender": sender, "from": f"Alice <{sender}>",
        "subject": "Photos", "body-plain": "see attached", "Message-Id": message_id,
        "attachment-count": str(len(attachments)), **signed_fields(),
    }
    for number, (filename, content) in enumerate(attachments, start=1):
        form[f"attachment-{number}"] = (io.BytesIO(content), filename, "image/jpeg")
    form.update(fields)
    return form


@pytest.fixture
def settings(tmp_path) -> dict:
    return {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "STORAGE_PATH": str(tmp_path / "storage")}


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def deliver(client):
    """POST a signed Mailgun form to the webhook; returns the response."""

    def post(*attachments, **fields):
        return client.post("/webhooks/mailgun", data=mailgun_form(*attachments, **fields))

    return post



@contextlib.contextmanager
def running(command, *, port: int, logs, env=None, cwd=None, ready_path="/healthz"):
    """Start `command`, wait until it answers on 127.0.0.1:port, stop it by its PID afterwards."""
    server = Server(Path(command[0]).name, port, logs)
    try:
        server.launch("server", *command, env=env, cwd=cwd)
        server.wait_until(lambda: requests.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1))
        yield server
    finally:
        server.stop()
