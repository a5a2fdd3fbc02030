"""Judges an attachment by its content: libmagic on the first bytes, never the name or declared type."""

from __future__ import annotations

from dataclasses import dataclass

import magic

from .location import HEIF_TYPES, PNG_SIGNATURE

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
# Wrappers mail programs put photos in, which hide them from us: what the sender can do instead.
WRAPPER_ADVICE = {
    "message/rfc822": "a mail forwarded as an attachment, whose photos are not looked into: "
    "forward the photos themselves (Forward, not Forward as Attachment)",
    "application/vnd.ms-tnef": "Outlook's rich-text winmail.dat, which hides the photos in it: "
    "send them again with Outlook set to HTML or plain text",
    "application/applefile": "a Mac resource fork (a file's name and Finder details) with no photo in it: "
    "attach the photo itself again",
}
# Old Mac Mail sends a file as multipart/appledouble: this AppleDouble header (RFC 1740's application/applefile),
# then the file. libmagic 5.44 calls the header application/octet-stream, so it is known by its own magic number.
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"
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
    content_type = "application/applefile" if head.startswith(APPLEDOUBLE_MAGIC) else detect_type(head)
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
        advice = f", {WRAPPER_ADVICE[content_type]}" if content_type in WRAPPER_ADVICE else ""
        return Verdict(content_type, reason=f"not an accepted image: the content is {content_type}{advice}")
    return Verdict(content_type, extension=extension)


def without_resource_forks(attachments: list) -> list:
    """The attachments less each Mac resource fork followed by its file (named the same), which is judged instead."""
    return [
        attachment
        for index, attachment in enumerate(attachments)
        if not (
            attachment.stream.head.startswith(APPLEDOUBLE_MAGIC)
            and index + 1 < len(attachments)
            and attachments[index + 1].filename == attachment.filename
        )
    ]


# An inline image this small, that the HTML shows by cid:, is a signature logo, a spacer or a
# tracking pixel: at most 64×64 pixels in area (a 200×20 logo, a 1×1 pixel), or under 2 KiB.
TINY_AREA = 64 * 64
TINY_BYTES = 2048
TINY_REASON = "inline image too small: a signature logo or tracking pixel?"
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC


def _jpeg_dimensions(head: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(head):  # each step moves on by at least 2 bytes
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            offset += 2
        elif marker in JPEG_SOF:
            return int.from_bytes(head[offset + 7 : offset + 9], "big"), int.from_bytes(
                head[offset + 5 : offset + 7], "big"
            )
        else:
            offset += 2 + int.from_bytes(head[offset + 2 : offset + 4], "big")
    return None


def _isobmff_dimensions(head: bytes) -> tuple[int, int] | None:
    # The first `ispe` property box (size 20) of the item properties; within 8 KiB for most files.
    at = head.find(b"\x00\x00\x00\x14ispe")
    if at < 0 or at + 20 > len(head):
        return None
    return int.from_bytes(head[at + 12 : at + 16], "big"), int.from_bytes(head[at + 16 : at + 20], "big")


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def image_dimensions(head: bytes, content_type: str) -> tuple[int, int] | None:
    """(width, height) read from the first bytes of an image of `content_type`, without decoding it.

    None when the header does not say within `head` (a JPEG whose Exif block is longer, a TIFF).
    For HEIC/AVIF it is the first item's coded size: a tile of a large photo, or a small
    picture before its crop (64×64 for 64×48) — never smaller than the picture.
    """
    if content_type == "image/png" and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if content_type == "image/gif" and head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if content_type in ("image/bmp", "image/x-ms-bmp") and head[:2] == b"BM" and len(head) >= 26:
        if int.from_bytes(head[14:18], "little") == 12:  # the old OS/2 header has 16-bit sides
            return int.from_bytes(head[18:20], "little"), int.from_bytes(head[20:22], "little")
        return abs(int.from_bytes(head[18:22], "little", signed=True)), abs(
            int.from_bytes(head[22:26], "little", signed=True)
        )
    if content_type == "image/webp" and head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        return _webp_dimensions(head)
    if content_type == "image/jpeg" and head[:2] == b"\xff\xd8":
        return _jpeg_dimensions(head)
    if content_type in HEIF_TYPES:
        return _isobmff_dimensions(head)
    return None


def is_tiny_inline(head: bytes, size: int, content_type: str) -> bool:
    """Whether an inline image is too small to be a photo (see TINY_AREA, TINY_BYTES)."""
    if size < TINY_BYTES:
        return True
    dimensions = image_dimensions(head, content_type)
    return dimensions is not None and dimensions[0] * dimensions[1] <= TINY_AREA
