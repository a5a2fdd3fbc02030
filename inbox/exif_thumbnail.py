"""Zeroes the metadata segments of an EXIF thumbnail (IFD1's JPEG), in place.

A camera writes its thumbnail bare, but one made from a tagged photo may keep that photo's own
segments: APP1 (EXIF with its GPS, XMP), APP11 (C2PA) and APP13 (Photoshop resources, IPTC).
exiftool does not show them, but anyone who extracts the thumbnail can read them. Their payloads
are zeroed; the thumbnail keeps its size, its tables and its picture. Photoshop's `Adobe_CM`
APP13 is colour management and stays. The walk is bounded by the thumbnail and MAX_SEGMENTS, and
a thumbnail that several IFDs point at is walked once; two that overlap are refused.
"""

from __future__ import annotations

import struct

MAX_SEGMENTS = 4096
METADATA_MARKERS = (0xE1, 0xEB, 0xED)  # APP1, APP11, APP13
ADOBE_CM = b"Adobe_CM"  # an APP13 Photoshop puts in its thumbnails: colour management, not metadata


def blank_thumbnail_metadata(block, offset: int, length: int) -> bool:
    """Zero the metadata segments of the JPEG thumbnail at block[offset:offset + length]; True if any held bytes.

    `block` is the EXIF block's inbox.tiff_structure.TiffBlock. Where the thumbnail's header cannot be
    walked, the rest of it is zeroed.
    """
    if not block.holds(offset, length) or length < 4:
        return False  # not a thumbnail anyone can extract
    if block.read(offset, 2) != b"\xff\xd8" or not block.first_time("thumbnails", offset, length):
        return False  # not a JPEG, or one that another IFD points at too: blanked already
    position, end, blanks = offset + 2, offset + length, []
    for _ in range(MAX_SEGMENTS):
        if position + 4 > end:
            break
        marker, size = struct.unpack(">2sH", block.read(position, 4))
        if marker in (b"\xff\xda", b"\xff\xd9"):  # the image data: no metadata after it
            break
        if marker[0] != 0xFF or size < 2 or position + 2 + size > end:
            blanks.append((position, end - position))
            break
        if marker[1] in METADATA_MARKERS and block.read(position + 4, min(size - 2, 8)) != ADOBE_CM:
            blanks.append((position + 4, size - 2))
        position += 2 + size
    else:
        blanks.append((position, end - position))
    return block.zero_spans(blanks)
