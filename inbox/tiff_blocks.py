"""Blanks GPS inside one EXIF (TIFF-structured) block of an open file, in place, and reads a JPEG's MPF index.

The containers (JPEG, PNG, WebP, TIFF, HEIF) are walked by inbox/location.py; this module gets a
byte range of the file and rewrites only the bytes that carry location, keeping the size:

- EXIF: every GPSInfo pointer (tag 0x8825) in the IFD chain (IFD0, IFD1, further TIFF pages) and
  in the IFDs they point at (ExifIFD, SubIFDs, InteropIFD, GlobalParametersIFD, where exiftool reads one
  too, through a pointer of any integer type) is
  taken out of its IFD (the later entries move up by 12 bytes inside the same IFD), and the GPS IFD
  it pointed at is zeroed with its out-of-line values. So are GeoTIFF's tags, with their values.
  Every other tag keeps its bytes and offsets.
- The blocks an IFD holds go to the modules that read them: XMP (tag 700) to
  inbox/xmp_location.py, IPTC-IIM (tag 33723, and AFCP's 0x8568) and Photoshop resources (tag
  34377) to inbox/iptc_places.py, the maker note (tag 0x927C), where some GPS cameras name the
  place, Kodak's IFD (tag 0x8290) with its GPSString, and a DNG's private data (tag 0xC634) with
  the camera's original maker note, to inbox/maker_notes.py. Hasselblad's embedded file (tag
  0xC51B, a JPEG with EXIF of its own, which exiftool reads) is zeroed.
- A JPEG thumbnail (IFD1's) keeps no metadata of its own: inbox/exif_thumbnail.py zeroes it.
- MPF: the image list of a JPEG's Multi-Picture index (also TIFF-structured) is read, so that
  location.py can walk the further images (previews, gain maps, stereo views) appended to it.

Everything read is bounded by the range given: offsets, counts, the number of IFDs, and loops. A block
many tags point at is read once; two of a kind that overlap, or IFDs larger together than the data, are refused.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from inbox.exif_thumbnail import blank_thumbnail_metadata
from inbox.fail_closed import LocationError, read_exact
from inbox.iptc_places import blank_iim_places, blank_photoshop_places
from inbox.maker_notes import (
    DNG_PRIVATE_DATA_TAG,
    KODAK_IFD_TAG,
    MAKE_TAG,
    MAKER_NOTE_TAG,
    blank_dng_private_data,
    blank_kodak_gps_string,
    blank_maker_note_places,
    camera_make,
)
from inbox.tiff_structure import MAX_IFDS, TYPE_SIZES, TiffBlock
from inbox.xmp_location import blank_xmp_location

EXIF_PREFIX = b"Exif\0\0"  # before the TIFF header in a JPEG's APP1, and in some WebP and PNG
GPS_INFO_TAG = 0x8825
XMP_TAG = 700  # XMP packet inside a TIFF IFD (TIFF files, rarely EXIF)
IPTC_TAG = 33723  # IPTC-IIM datasets, likewise
AFCP_IPTC_TAG = 0x8568  # IPTC-IIM datasets as AFCP writes them, which exiftool reads as tag 33723's
HASSELBLAD_EXIF_TAG = 0xC51B  # a whole file (a Hasselblad's JPEG, with its own EXIF), which exiftool reads too
PHOTOSHOP_TAG = 34377  # Photoshop resources, with IPTC-IIM among them
# GeoTIFF's tags, which place the image on the earth: pixel scale, Intergraph matrix, tie points,
# transformation, and the GeoKey directory with its double and ASCII parameters.
GEOTIFF_TAGS = frozenset({0x830E, 0x8480, 0x8482, 0x85D8, 0x87AF, 0x87B0, 0x87B1})
# Tags that point at further IFDs (ExifIFD, SubIFDs, InteropIFD, TIFF-F's GlobalParametersIFD): exiftool reads
# a GPS pointer in any of them.
SUB_IFD_TAGS = frozenset({0x8769, 330, 0xA005, 0x190})
THUMBNAIL_TAGS = (0x0201, 0x0202)  # JPEGInterchangeFormat and its length: IFD1's thumbnail
MP_ENTRY_TAG = 0xB002  # MPF index: 16 bytes per image (attributes, size, offset, two dependent entries)
MP_ENTRY_TYPE = 7  # UNDEFINED
MAX_MP_IMAGES = 256
# What an IFD offset is written as: exiftool follows one of any integer type (BYTE, SHORT, LONG, their signed
# forms, IFD), and a single UNDEFINED byte, which it reads as a BYTE.
OFFSET_TYPES = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I"}
UNDEFINED = 7


def blank_exif_gps(file: BinaryIO, start: int, end: int, *, in_photoshop_resources: bool = False) -> bool:
    """Remove the GPS IFD(s) of the TIFF structure in file[start:end]; True when one was there.

    `in_photoshop_resources`: this EXIF is a Photoshop resource, so Photoshop resources inside it
    would nest without end, and are refused.
    """
    block = TiffBlock(file, start, end)
    visited: set[int] = set()
    changed, ifd_bytes = False, 0
    # IFDs still to read, each marked True when it is in the chain from IFD0 rather than below it. The
    # chain is read first (its next IFD is pushed last), then the IFDs its sub-IFD tags point at.
    pending = [(block.first_ifd, True)]
    makes, maker_notes = set(), []  # read once the walk is done: which maker's note it is depends on the make
    for _ in range(MAX_IFDS):
        if not pending:
            return _blank_maker_notes(block, maker_notes, makes) or changed
        offset, in_chain = pending.pop()
        if offset == 0:
            continue
        if not in_chain and (offset in visited or not block.holds(offset)):
            continue  # as exiftool does: a sub-IFD read already, or pointing outside the data, holds nothing new
        if offset in visited:
            raise LocationError("the EXIF IFDs form a loop")
        visited.add(offset)
        raw, entries = block.read_ifd(offset)
        if (ifd_bytes := ifd_bytes + len(raw)) > end - start:  # more than the data holds: some overlap
            raise LocationError("two IFDs in the EXIF data share bytes")
        tags = [block.unpack("H", entry[:2]) for entry in entries]
        for entry, tag in zip(entries, tags, strict=True):
            if tag == PHOTOSHOP_TAG and in_photoshop_resources:
                raise LocationError("the EXIF inside Photoshop resources holds Photoshop resources again")
            if tag in SUB_IFD_TAGS and len(pending) <= MAX_IFDS:  # past that, the EXIF is refused below anyway
                pending += [(sub_ifd, False) for sub_ifd in _offsets(block, entry)]
            elif tag in (MAKER_NOTE_TAG, DNG_PRIVATE_DATA_TAG):
                maker_notes.append((tag, entry))
            elif tag == MAKE_TAG:
                makes.add(camera_make(block, entry))
            elif tag == KODAK_IFD_TAG:
                changed |= blank_kodak_gps_string(block, _offsets(block, entry, once="Kodak IFD lists"))
            elif tag == HASSELBLAD_EXIF_TAG and (embedded := block.value_extent(entry)):
                changed |= block.zero(*embedded)  # its GPS and all: it is no part of this picture
            kind, blank = _EMBEDDED_BLOCKS.get(tag, ("", None))
            extent = block.value_extent(entry) if blank else None
            if extent and block.first_time(kind, *extent):
                changed |= blank(file, start + extent[0], start + extent[0] + extent[1])
        if all(tag in tags for tag in THUMBNAIL_TAGS):
            thumbnail = [_offsets(block, entries[tags.index(tag)]) for tag in THUMBNAIL_TAGS]
            if all(len(values) == 1 for values in thumbnail):
                changed |= blank_thumbnail_metadata(block, thumbnail[0][0], thumbnail[1][0])
        if tags.count(GPS_INFO_TAG) > 1:
            raise LocationError("an EXIF IFD has two GPS pointers")
        located = [index for index, tag in enumerate(tags) if tag == GPS_INFO_TAG or tag in GEOTIFF_TAGS]
        if located:
            for index in located:
                if tags[index] == GPS_INFO_TAG:
                    for gps_ifd in _offsets(block, entries[index]):  # as its type says, a big-endian SHORT too
                        _zero_gps_ifd(block, gps_ifd, visited)
                elif extent := block.value_extent(entries[index]):
                    block.zero(*extent)
            kept = [entry for index, entry in enumerate(entries) if index not in located]
            count = struct.pack(block.order + "H", len(kept))
            block.write(offset, count + b"".join(kept) + raw[-4:] + bytes(12 * len(located)))
            changed = True
        pending.append((block.unpack("I", raw[-4:]), in_chain))
    raise LocationError(f"the EXIF data has more than {MAX_IFDS} IFDs")


def _blank_maker_notes(block: TiffBlock, maker_notes: list[tuple[int, bytes]], makes: set[bytes]) -> bool:
    """Blank the place names of the maker notes (MakerNote and DNG private data entries) the walk found."""
    if not maker_notes:
        return False
    if len(makes) > 1:
        # exiftool reads a maker note by the make read last before it, in its own order: which one that is
        # here cannot be told, and a Nikon's or a Leica's note is read by its make alone.
        named = ", ".join(repr(make.decode("latin-1")) for make in sorted(makes))
        raise LocationError(f"the EXIF data names two camera makes ({named}), so its maker note cannot be read safely")
    make = makes.pop() if makes else b""
    blank = {MAKER_NOTE_TAG: blank_maker_note_places, DNG_PRIVATE_DATA_TAG: blank_dng_private_data}
    return any([blank[tag](block, entry, make) for tag, entry in maker_notes])  # a list: every one is blanked


def blank_exif_chunk_gps(file: BinaryIO, start: int, end: int) -> bool:
    """blank_exif_gps for EXIF as a PNG or WebP chunk or an ImageMagick profile holds it (maybe after "Exif\0\0")."""
    prefixed = read_exact(file, start, min(end - start, len(EXIF_PREFIX))) == EXIF_PREFIX
    return blank_exif_gps(file, start + len(EXIF_PREFIX) * prefixed, end)


def _offsets(block: TiffBlock, entry: bytes, once: str = "") -> list[int]:
    """The offsets an entry of integers (OFFSET_TYPES) holds: the IFDs a sub-IFD tag (ExifIFD, InteropIFD,
    SubIFDs) points at, the thumbnail's start and its length.

    Empty for an entry of another type or whose list lies outside the data: exiftool cannot follow it either;
    and, `once` a kind, for a list read before as one of that kind (block.first_time): its IFDs were read.
    """
    kind, count = block.unpack("H", entry[2:4]), block.unpack("I", entry[4:8])
    if kind == UNDEFINED and count == 1:
        kind = 1
    if kind not in OFFSET_TYPES or not 1 <= count <= MAX_IFDS:
        return []
    width = TYPE_SIZES[kind]
    raw, listed_at = entry[8:12], block.unpack("I", entry[8:12])
    if width * count > 4:
        if not block.holds(listed_at, width * count) or (once and not block.first_time(once, listed_at, width * count)):
            return []
        raw = block.read(listed_at, width * count)
    return [block.unpack(OFFSET_TYPES[kind], raw[at : at + width]) for at in range(0, width * count, width)]


def _zero_gps_ifd(block: TiffBlock, offset: int, visited: set[int]) -> None:
    if offset in visited:
        raise LocationError("the EXIF GPS IFD points back into the IFD chain")
    raw, entries = block.read_ifd(offset)
    block.zero_spans([*filter(None, map(block.value_extent, entries)), (offset, len(raw))])


def mpf_images(file: BinaryIO, start: int, end: int) -> list[int]:
    """Where the images after the first begin, per the MPF index in file[start:end], relative to `start`.

    `start` is the MP header's byte order mark, which the spec counts the offsets from; the first
    image's offset is 0. An MPF segment without an image list (a later image's) lists nothing.
    """
    block = TiffBlock(file, start, end)
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


# The blocks a TIFF IFD may hold that can name a place, each with what blanks it.
_EMBEDDED_BLOCKS = {XMP_TAG: ("XMP packets", blank_xmp_location), IPTC_TAG: ("IPTC blocks", blank_iim_places)}
_EMBEDDED_BLOCKS[AFCP_IPTC_TAG] = _EMBEDDED_BLOCKS[IPTC_TAG]
_EMBEDDED_BLOCKS[PHOTOSHOP_TAG] = ("Photoshop resource blocks", blank_photoshop_places)
