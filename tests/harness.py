"""Helpers the test modules import: the test signing key, real image files, signed Mailgun forms."""

from __future__ import annotations

import io
import os

import pillow_heif
from PIL import Image

from inbox.delivery import build_delivery

SIGNING_KEY = "test-webhook-signing-key"
pillow_heif.register_heif_opener()

# Pillow format name per stored extension: one real file of every accepted type.
IMAGE_FORMATS = {
    ".jpg": "JPEG",
    ".png": "PNG",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".heic": "HEIF",
    ".avif": "AVIF",
    ".tif": "TIFF",
}


def make_image(extension: str = ".jpg", size=(64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, IMAGE_FORMATS[extension])
    return buffer.getvalue()


def pasted_photo(size=(320, 240)) -> bytes:
    """A photo as a phone or Gmail pastes it inline: noisy content, a real JPEG of some KiB."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def large_photo(size: int) -> bytes:
    """A real JPEG (its segments parse, so location removal passes it) padded with random bytes to `size`."""
    head = make_image(".jpg")
    return head + os.urandom(size - len(head))


def mailgun_form(*attachments, **fields) -> dict:
    """A signed forward() form for Flask's test client; attachments are (filename, bytes) pairs, sent as JPEG."""
    return build_delivery(
        [(filename, content, "image/jpeg") for filename, content in attachments],
        key=SIGNING_KEY,
        from_header=f"Alice <{fields.get('sender', 'alice@example.com')}>",
        text="see attached",
        **fields,
    ).form()
