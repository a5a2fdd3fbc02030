"""Finds where the Exif and XMP items of a HEIC/HEIF/AVIF file (ISOBMFF) lie: meta → iinf + iloc → file ranges.

It also finds a motion photo's video (an MP4, which carries the place it was shot) appended
after the image's boxes: Samsung's in a top-level `mpvd` box, Google's (Motion Photo 1.0, listed
in the XMP's container directory) as the MP4 file itself, from its `ftyp` box, a second one in the
file, to the end.

Metadata is read where exiftool reads it: the top-level `meta` box (the still image's), a
top-level `uuid` box of XMP, and an image sequence's `moov` box and the QuickTime item list
(`ilst`, `keys`) a `meta` box may hold (handed over whole: their place names sit in QuickTime
atoms, which inbox/location.py looks for). In `meta`, `iinf` names the
items as exiftool names them, by a `mime` item's content type or else the item's type (`Exif`,
either way, and application/rdf+xml for XMP), `iloc` says where each
item's bytes are: in the file (construction method 0, usually in mdat) or in the meta box's
`idat` (method 1). A metadata item that is split into several extents, lives in another file, is
content-encoded or is built by item reference is refused (LocationError): it cannot be blanked
safely in place; so are two items that share bytes, which would have them checked again. Every
count, size and offset is checked against its box.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from inbox.fail_closed import LocationError, overlap, read_exact

MAX_BOXES = 65536
MAX_ITEMS = 65535
MAX_META_BYTES = 4 * 1024 * 1024
XMP_CONTENT_TYPE = b"application/rdf+xml"
METADATA_ITEM_KINDS = {b"Exif": "exif", XMP_CONTENT_TYPE: "xmp"}  # by content type (mime items) or item type
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")  # Adobe's, as in MP4
# QuickTime metadata a meta box may hold beside its items, which exiftool reads as the photo's: an item list
# (©xyz's coordinates) and the keys that name its entries (Apple's location.ISO6709, location.name).
QUICKTIME_LISTS = (b"ilst", b"keys")


class _Cursor:
    """Reads big-endian fields from data[position:end], never past `end`."""

    def __init__(self, data: bytes, position: int, end: int):
        self.data, self.position, self.end = data, position, end

    def take(self, length: int) -> bytes:
        if self.position + length > self.end:
            raise LocationError("a HEIF metadata box ends too early")
        self.position += length
        return self.data[self.position - length : self.position]

    def uint(self, length: int) -> int:
        return int.from_bytes(self.take(length), "big")

    def full_box_version(self) -> int:
        return self.uint(4) >> 24  # version (8 bits) and flags (24 bits)


def _boxes(read: Callable[[int, int], bytes], position: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of each box in [position, end)."""
    for _ in range(MAX_BOXES):
        if position == end:
            return
        if position + 8 > end:
            raise LocationError("a HEIF box header runs past its parent")
        size, kind = struct.unpack(">I4s", read(position, 8))
        header = 8
        if size == 1 and position + 16 <= end:
            size, header = struct.unpack(">Q", read(position + 8, 8))[0], 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise LocationError("a HEIF box runs past its parent")
        yield kind, position + header, position + size
        position += size
    raise LocationError(f"a HEIF box holds more than {MAX_BOXES} boxes")


def metadata_items(file: BinaryIO, size: int) -> list[tuple[str, int, int]]:
    """("exif" | "xmp", start, end) in the file for each metadata item of the top-level meta box.

    And ("item list", start, end) for the payload of each QuickTime `ilst` or `keys` box in it,
    ("xmp", start, end) for each top-level XMP `uuid` box's packet, ("movie", start, end) for
    each top-level `moov` box's payload, ("video", start, end) for each top-level `mpvd` box, header
    included, and for an MP4 appended after the image's boxes (a second `ftyp`) through the end of
    the file.
    """
    items, box_start = [], 0
    for kind, start, end in _boxes(lambda offset, length: read_exact(file, offset, length), 0, size):
        if kind == b"ftyp" and box_start > 0:  # another file begins: its boxes are none of the image's
            return [*items, ("video", box_start, size)]
        if kind == b"meta":
            if end - start > MAX_META_BYTES:
                raise LocationError("the HEIF meta box is too large")
            items += _meta_items(read_exact(file, start, end - start), start, size)
        elif kind == b"mpvd":
            items.append(("video", box_start, end))
        elif kind == b"moov":
            items.append(("movie", start, end))
        elif kind == b"uuid" and end - start >= 16 and read_exact(file, start, 16) == XMP_UUID:
            items.append(("xmp", start + 16, end))
        box_start = end  # top-level boxes follow each other
    _refuse_shared_bytes(items)
    return items


def _refuse_shared_bytes(items: list[tuple[str, int, int]]) -> None:
    # Items of any number of meta boxes may point at the same extent: 20 XMP items over one crafted
    # megabyte took 2.6 s to check, 65,535 of them would keep a worker for hours. No writer shares
    # a metadata item's bytes, so the file is refused rather than each range checked once.
    if overlap((start, end - start) for kind, start, end in items if kind in ("exif", "xmp")):
        raise LocationError("two of the HEIF file's metadata items share bytes")


def _meta_items(meta: bytes, meta_offset: int, file_size: int) -> list[tuple[str, int, int]]:
    def read(offset: int, length: int) -> bytes:
        return _Cursor(meta, offset, len(meta)).take(length)

    children: dict[bytes, tuple[int, int]] = {}
    items = []
    for kind, start, end in _boxes(read, 4, len(meta)):  # meta is a FullBox: 4 bytes before its children
        if kind in children and kind in (b"iinf", b"iloc", b"idat"):
            raise LocationError(f"the HEIF meta box has two {kind.decode()} boxes")
        children[kind] = (start, end)
        if kind in QUICKTIME_LISTS:
            items.append(("item list", meta_offset + start, meta_offset + end))
    kinds = _item_kinds(meta, children[b"iinf"], read) if b"iinf" in children else {}
    if not kinds:
        return items
    if b"iloc" not in children:
        raise LocationError("the HEIF file has metadata items but no item locations")
    locations = _item_locations(meta, children[b"iloc"], set(kinds))
    idat_start, idat_end = children.get(b"idat", (0, 0))
    for item_id, kind in kinds.items():
        if item_id not in locations:
            raise LocationError("a HEIF metadata item has no location")
        method, offset, length = locations[item_id]
        if method == 1:
            if idat_start + offset + length > idat_end:
                raise LocationError("a HEIF metadata item runs past its idat box")
            offset += meta_offset + idat_start
        if length == 0 or offset + length > file_size:
            raise LocationError("a HEIF metadata item runs past the end of the file")
        items.append((kind, offset, offset + length))
    return items


def _item_kinds(meta: bytes, iinf: tuple[int, int], read: Callable[[int, int], bytes]) -> dict[int, str]:
    """item ID → "exif" | "xmp" for the metadata items that iinf declares."""
    cursor = _Cursor(meta, *iinf)
    cursor.uint(2 if cursor.full_box_version() == 0 else 4)  # entry count: the infe boxes themselves tell
    kinds = {}
    for kind, start, end in _boxes(read, cursor.position, iinf[1]):
        if kind != b"infe":
            continue
        entry = _Cursor(meta, start, end)
        version = entry.full_box_version()
        if version < 2:
            raise LocationError("the HEIF item info uses an old version that cannot be checked")
        item_id = entry.uint(2 if version == 2 else 4)
        entry.take(2)  # protection index
        item_type = entry.take(4)
        # mime items: item name, content type, optional content encoding, each NUL-terminated.
        name_type_encoding = meta[entry.position : end].split(b"\0") if item_type == b"mime" else []
        # exiftool names an item by its content type, or else its type: a mime item of content type "Exif" is EXIF.
        content_type = name_type_encoding[1] if len(name_type_encoding) > 1 else b""
        if (kind := METADATA_ITEM_KINDS.get(content_type or item_type)) is None:
            continue
        if len(name_type_encoding) > 2 and name_type_encoding[2]:
            raise LocationError(f"a HEIF {'XMP' if kind == 'xmp' else 'Exif'} item is content-encoded")
        kinds[item_id] = kind
    return kinds


def _item_locations(meta: bytes, iloc: tuple[int, int], wanted: set[int]) -> dict[int, tuple[int, int, int]]:
    """item ID → (construction method, offset, length) for the `wanted` items, each in one extent."""
    cursor = _Cursor(meta, *iloc)
    version = cursor.full_box_version()
    if version > 2:
        raise LocationError(f"the HEIF item locations use the unknown version {version}")
    sizes = cursor.uint(2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version else 0
    if any(field not in (0, 4, 8) for field in (offset_size, length_size, base_size, index_size)):
        raise LocationError("the HEIF item locations use an invalid field size")
    count = cursor.uint(2 if version < 2 else 4)
    if count > MAX_ITEMS:
        raise LocationError(f"the HEIF item locations claim {count} items")
    extent_size = index_size + offset_size + length_size
    locations = {}
    for _ in range(count):
        item_id = cursor.uint(2 if version < 2 else 4)
        method = cursor.uint(2) & 15 if version else 0
        reference, base, extents = cursor.uint(2), cursor.uint(base_size), cursor.uint(2)
        if item_id not in wanted:
            cursor.take(extents * extent_size)
            continue
        if reference != 0 or method not in (0, 1) or extents != 1:
            raise LocationError("a HEIF metadata item is split, external or constructed: it cannot be blanked")
        cursor.take(index_size)
        locations[item_id] = (method, base + cursor.uint(offset_size), cursor.uint(length_size))
    return locations
