"""Judges an attachment by its content: libmagic on the first bytes, never the name or declared type."""
from __future__ import annotations

from dataclasses import dataclass

import magic

# libmagic's MIME type → the conventional extension of the stored object.
ACCEPTED = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/x-ms-bmp": ".bmp",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heic-sequence": ".heic",
    "image/heif": ".heif",
    "image/heif-sequence": ".heif",
    "image/avif": ".avif",
    "image/tiff": ".tif",
}
# What the local store serves each extension as (the first MIME type that maps to it).
CONTENT_TYPES = {extension: mime for mime, extension in reversed(ACCEPTED.items())}


@dataclass(frozen=True)
class Verdict:
    content_type: str
    extension: str | None = None  # set when the attachment is an accepted image
    reason: str | None = None  # set when it is not
    too_large: bool = False


def detect_type(head: bytes) -> str:
    """The MIME type libmagic reads in the first bytes of a file."""
    return magic.from_buffer(head, mime=True) if head else "application/x-empty"


def inspect(head: bytes, size: int, max_bytes: int) -> Verdict:
    """Accept an image of an ACCEPTED type within the size limit; otherwise say why not."""
    content_type = detect_type(head)
    if size == 0:
        return Verdict(content_type, reason="empty file")
    if size > max_bytes:
        return Verdict(
            content_type,
            reason=f"{size} bytes is over the limit of {max_bytes} bytes (INBOX_MAX_ATTACHMENT_BYTES)",
            too_large=True,
        )
    extension = ACCEPTED.get(content_type)
    if extension is None:
        return Verdict(content_type, reason=f"not an accepted image: the content is {content_type}")
    return Verdict(content_type, extension=extension)
