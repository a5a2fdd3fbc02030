"""Blanks location inside one EXIF (TIFF-structured) block or one XMP packet of an open file, in place.

The containers (JPEG, PNG, WebP, TIFF, HEIF) are walked by inbox/location.py; this module gets a
byte range of the file and rewrites only the bytes that carry location, keeping the size:

- EXIF: every GPSInfo pointer (tag 0x8825) in the IFD chain (IFD0, IFD1, further TIFF pages) is
  taken out of its IFD (the later entries move up by 12 bytes inside the same IFD), and the GPS IFD
  it pointed at is zeroed with its out-of-line values. Every other tag keeps its bytes and offsets.
- XMP: every property whose local name starts with `GPS` (`exif:GPSLatitude`, `exifEX:GPS…`) or
  names a place (`photoshop:City`, `State`, `Country`; `Iptc4xmpCore:Location`, `CountryCode`;
  `Iptc4xmpExt:LocationCreated`, `LocationShown` with everything inside), in attribute or
  element form, is overwritten with spaces of the same length; the packet stays well-formed.
  If such a name is still there afterwards (UTF-16 packets, odd syntax), it fails closed.
  When location.py has cut a motion photo's video off, the packet's flags that announce it
  (Google's `GCamera:MotionPhoto="1"`, the older `MicroVideo`) are turned to "0" as well, so
  that viewers do not look for a video that is gone.
- IPTC: an IFD's IPTC-IIM (tag 33723) and Photoshop resources (tag 34377) go to
  inbox/iptc_places.py, which blanks their place names.
- MPF: the image list of a JPEG's Multi-Picture index (also TIFF-structured) is read, so that
  location.py can walk the further images (previews, gain maps, stereo views) appended to it.

Everything read is bounded by the range given: offsets, counts, the number of IFDs, and loops.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact
from inbox.iptc_places import blank_iim_places, blank_photoshop_places

GPS_INFO_TAG = 0x8825
XMP_TAG = 700  # XMP packet inside a TIFF IFD (TIFF files, rarely EXIF)
IPTC_TAG = 33723  # IPTC-IIM datasets, likewise
PHOTOSHOP_TAG = 34377  # Photoshop resources, with IPTC-IIM among them
MP_ENTRY_TAG = 0xB002  # MPF index: 16 bytes per image (attributes, size, offset, two dependent entries)
MP_ENTRY_TYPE = 7  # UNDEFINED
MAX_MP_IMAGES = 256
MAX_IFDS = 1024  # pages of a TIFF file, IFD0 + IFD1 in EXIF
MAX_IFD_ENTRIES = 4096
MAX_XMP_BYTES = 4 * 1024 * 1024
# Bytes per value of each TIFF field type; an unknown type in a GPS IFD cannot be blanked safely.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
BYTE_ORDERS = {b"II*\0": "<", b"MM\0*": ">"}
# Local names, whatever the prefix, as for GPS: editors (Lightroom's address lookup, exiftool) write
# the place a photo was taken as these, in the photoshop, IPTC Core and IPTC Extension schemas.
_XMP_PLACE_NAMES = (
    rb"City|State|Country|CountryCode|CountryName|Location|LocationCreated|LocationShown"
    rb"|Sublocation|ProvinceState|WorldRegion"
)
_XMP_LOCATION_NAME = rb"[\w.-]+:(?:GPS[\w.-]*|(?:" + _XMP_PLACE_NAMES + rb")(?![\w.-]))"
_XMP_LOCATION_ELEMENT = re.compile(rb"<(" + _XMP_LOCATION_NAME + rb")(?=[\s/>])[^<>]*>")
_XMP_LOCATION_ATTRIBUTE = re.compile(rb"\s" + _XMP_LOCATION_NAME + rb"\s*=\s*([\"'])")
_XMP_PLACE_PROPERTY = re.compile(rb":(?:" + _XMP_PLACE_NAMES + rb")(?=[\s/>=])")
# The "1" of a motion-photo flag, attribute or element form: a video follows the picture. It starts
# at the colon, not at the namespace prefix: a prefix pattern would rescan every run of name
# characters from each of its bytes (seconds for one 64 KiB JPEG segment of letters).
_XMP_MOTION_FLAG = re.compile(rb":(?:MotionPhoto|MicroVideo)(?:\s*=\s*[\"']|>\s*)(1)(?=\s*(?:[\"']|</))")
# Google's container directory lists the files appended after the picture, in file order, the primary
# first: motion photos and Ultra HDR use the first namespace, Dynamic Depth (Pixel portraits) the second.
CONTAINER_NAMESPACES = (b"http://ns.google.com/photos/1.0/container/", b"http://ns.google.com/photos/dd/1.0/container/")
_CONTAINER_PREFIX = re.compile(
    rb"xmlns:([\w.-]+)\s*=\s*[\"'](?:" + b"|".join(map(re.escape, CONTAINER_NAMESPACES)) + rb")[\"']"
)
_RDF_ITEM = re.compile(rb"<rdf:li(?=[\s/>])[^<>]*>")


class _TiffBlock:
    """A TIFF structure occupying file[start:end]; offsets inside it are relative to `start`."""

    def __init__(self, file: BinaryIO, start: int, end: int):
        self.file, self.start, self.end = file, start, end
        header = self.read(0, 8)
        if header[:4] not in BYTE_ORDERS:
            raise LocationError("the EXIF data has no TIFF header")
        self.order = BYTE_ORDERS[header[:4]]
        self.first_ifd = self.unpack("I", header[4:])

    def unpack(self, kind: str, data: bytes) -> int:
        return struct.unpack(self.order + kind, data)[0]

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or self.start + offset + length > self.end:
            raise LocationError("an EXIF offset points past the end of its data")
        return read_exact(self.file, self.start + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.file.seek(self.start + offset)
        self.file.write(data)

    def read_ifd(self, offset: int) -> tuple[bytes, list[bytes]]:
        """The raw bytes of the IFD at `offset` (count, entries, next pointer) and its 12-byte entries."""
        count = self.unpack("H", self.read(offset, 2))
        if count > MAX_IFD_ENTRIES:
            raise LocationError(f"an EXIF IFD claims {count} entries")
        raw = self.read(offset, 2 + 12 * count + 4)
        return raw, [raw[2 + 12 * i : 14 + 12 * i] for i in range(count)]

    def value_extent(self, entry: bytes) -> tuple[int, int] | None:
        """(offset, length) of an entry's out-of-line value; None when it fits in the entry itself."""
        kind, count = self.unpack("H", entry[2:4]), self.unpack("I", entry[4:8])
        if kind not in TYPE_SIZES:
            raise LocationError(f"an EXIF tag has the unknown type {kind}")
        length = TYPE_SIZES[kind] * count
        if length <= 4:
            return None
        offset = self.unpack("I", entry[8:12])
        if self.start + offset + length > self.end:
            raise LocationError("an EXIF value runs past the end of its data")
        return offset, length


def blank_exif_gps(file: BinaryIO, start: int, end: int) -> bool:
    """Remove the GPS IFD(s) of the TIFF structure in file[start:end]; True when one was there."""
    block = _TiffBlock(file, start, end)
    visited: set[int] = set()
    changed = False
    offset = block.first_ifd
    for _ in range(MAX_IFDS):
        if offset == 0:
            return changed
        if offset in visited:
            raise LocationError("the EXIF IFDs form a loop")
        visited.add(offset)
        raw, entries = block.read_ifd(offset)
        tags = [block.unpack("H", entry[:2]) for entry in entries]
        for entry, tag in zip(entries, tags, strict=True):
            blank = _EMBEDDED_BLOCKS.get(tag)
            extent = block.value_extent(entry) if blank else None
            if extent:
                changed |= blank(file, start + extent[0], start + extent[0] + extent[1])
        if tags.count(GPS_INFO_TAG) > 1:
            raise LocationError("an EXIF IFD has two GPS pointers")
        if GPS_INFO_TAG in tags:
            gps_entry = entries[tags.index(GPS_INFO_TAG)]
            _zero_gps_ifd(block, block.unpack("I", gps_entry[8:12]), visited)
            kept = b"".join(entry for entry in entries if entry is not gps_entry)
            count = struct.pack(block.order + "H", len(entries) - 1)
            block.write(offset, count + kept + raw[-4:] + bytes(12))
            changed = True
        offset = block.unpack("I", raw[-4:])
    raise LocationError(f"the EXIF data has more than {MAX_IFDS} IFDs")


def _zero_gps_ifd(block: _TiffBlock, offset: int, visited: set[int]) -> None:
    if offset in visited:
        raise LocationError("the EXIF GPS IFD points back into the IFD chain")
    raw, entries = block.read_ifd(offset)
    for extent in filter(None, map(block.value_extent, entries)):
        block.write(extent[0], bytes(extent[1]))
    block.write(offset, bytes(len(raw)))


def mpf_images(file: BinaryIO, start: int, end: int) -> list[int]:
    """Where the images after the first begin, per the MPF index in file[start:end], relative to `start`.

    `start` is the MP header's byte order mark, which the spec counts the offsets from; the first
    image's offset is 0. An MPF segment without an image list (a later image's) lists nothing.
    """
    block = _TiffBlock(file, start, end)
    _, entries = block.read_ifd(block.first_ifd)
    lists = [entry for entry in entries if block.unpack("H", entry[:2]) == MP_ENTRY_TAG]
    if not lists:
        return []
    kind, length = block.unpack("H", lists[0][2:4]), block.unpack("I", lists[0][4:8])
    if len(lists) > 1 or kind != MP_ENTRY_TYPE or length % 16 or not 16 <= length <= 16 * MAX_MP_IMAGES:
        raise LocationError("the JPEG's MPF image list is malformed")
    raw = block.read(block.unpack("I", lists[0][8:12]), length)
    offsets = (block.unpack("I", raw[at + 8 : at + 12]) for at in range(0, length, 16))
    return sorted({offset for offset in offsets if offset})


def blank_xmp_location(file: BinaryIO, start: int, end: int, *, items_kept: int | None = None) -> bool:
    """Overwrite the GPS and place properties of the XMP packet in file[start:end] with spaces; True if any.

    `items_kept`: what followed the picture was cut off, and only that many files of the image's
    container directory remain (the primary image and the images an MPF index lists). Then the
    motion-photo flags say "0" and the directory's later items are blanked too (and count as a
    change), so that no reader looks for the video, depth map or original that is gone, or
    counts back from the file's end past them.
    """
    if end - start > MAX_XMP_BYTES:
        raise LocationError(f"the XMP packet is larger than {MAX_XMP_BYTES} bytes")
    packet = read_exact(file, start, end - start)
    spans: list[tuple[int, int]] = []
    covered = 0
    for match in _XMP_LOCATION_ELEMENT.finditer(packet):
        if match.start() < covered:
            continue  # inside an element already blanked; skipping it keeps the scan linear
        close = match.end()
        if not match.group(0).endswith(b"/>"):
            closing = re.compile(rb"</" + re.escape(match.group(1)) + rb"\s*>").search(packet, match.end())
            if closing is None:
                raise LocationError("an XMP location element is not closed")
            close = closing.end()
        spans.append((match.start(), close))
        covered = close
    for match in _XMP_LOCATION_ATTRIBUTE.finditer(packet):
        close = packet.find(match.group(1), match.end()) + 1
        if close <= 0:
            raise LocationError("an XMP location attribute is not closed")
        spans.append((match.start(), close))
    blanked = bytearray(packet)
    for first, last in spans:
        blanked[first:last] = b" " * (last - first)
    if names_location(blanked) or b"G\0P\0S" in blanked:
        raise LocationError("the XMP packet still names a location property after blanking")
    if items_kept is not None:
        for match in _XMP_MOTION_FLAG.finditer(packet):
            blanked[match.start(1)] = ord("0")
            spans.append((match.start(1), match.end(1)))
        for first, last in _container_items(packet)[items_kept:]:
            blanked[first:last] = b" " * (last - first)
            spans.append((first, last))
    if not spans:
        return False
    first, last = min(span[0] for span in spans), max(span[1] for span in spans)
    file.seek(start + first)
    file.write(blanked[first:last])
    return True


def names_location(packet: bytes) -> bool:
    """True when the XMP packet names a GPS or place property (or seems to: `:GPS` anywhere)."""
    return b":GPS" in packet or _XMP_PLACE_PROPERTY.search(packet) is not None


# The blocks a TIFF IFD may hold that can name a place, each with what blanks it.
_EMBEDDED_BLOCKS = {XMP_TAG: blank_xmp_location, IPTC_TAG: blank_iim_places, PHOTOSHOP_TAG: blank_photoshop_places}


def _container_items(packet: bytes) -> list[tuple[int, int]]:
    """The spans of the items (`rdf:li`) of the packet's container directory, in order.

    Empty when there is no directory, or it is not a plain list of items (unclosed, nested):
    then it is left as it is.
    """
    prefixes = {match.group(1) for match in _CONTAINER_PREFIX.finditer(packet)}
    if len(prefixes) != 1:  # none, or a crafted packet: the directory stays
        return []
    prefix = prefixes.pop()
    opening = re.compile(rb"<" + re.escape(prefix) + rb":Directory(?=[\s>])[^<>]*>").search(packet)
    closing = packet.find(b"</" + prefix + b":Directory>", opening.end()) if opening else -1
    if closing < 0:
        return []
    items, position = [], opening.end()
    while (item := _RDF_ITEM.search(packet, position, closing)) is not None:
        end = item.end()
        if not item.group(0).endswith(b"/>"):
            end = packet.find(b"</rdf:li>", end, closing)
            if end < 0 or packet.find(b"<rdf:li", item.end(), end) >= 0:
                return []
            end += len(b"</rdf:li>")
        items.append((item.start(), end))
        position = end
    return items
