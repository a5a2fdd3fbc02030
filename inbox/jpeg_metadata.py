"""Blanks the location in a JPEG's metadata segments, which inbox/jpeg_segments.py finds, as exiftool reads them.

What exiftool reads, a viewer's metadata panel may show, so segments are recognised as it
recognises them, broken headers included:

- APP1 EXIF after up to 4 bytes of garbage, in any case, with or without its second NUL (some
  Kodak cameras), to inbox/tiff_blocks.py; XMP, and any APP1 that looks like XMP (an `http…` or
  `XMP\\0` header, a `<?xpacket`), to inbox/xmp_location.py; so is extended XMP, its slices joined
  per GUID in the order of their offsets, as exiftool reads the packet (refused when they overlap,
  leave a gap or disagree on its length).
- APP13 Photoshop resources to inbox/iptc_places.py.
- APP11 JUMBF (C2PA content credentials) to inbox/jumbf.py.
- APP6 GoPro telemetry (GPMF) that holds GPS is zeroed.
- APP1 FLIR segments (a thermal camera's data, chunked) to inbox/flir.py, which zeroes their GPS record.
- A block too large for one segment goes on in the next segment of the same kind, and exiftool
  reads the segments joined: EXIF (the next APP1 starts `Exif\\0\\0` without a TIFF header) and
  Photoshop resources (the next APP13 starts `Photoshop 3.0\\0`). Such blocks are blanked joined,
  on a copy, and each segment gets its changed bytes back.
- An MPF index that points beside its images (the picture is then its first image alone) is
  zeroed, so readers see one plain JPEG.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from inbox.fail_closed import LocationError, blank_joined, read_exact, zero
from inbox.flir import CHUNK_HEADER, FLIR_PREFIX, blank_flir_gps
from inbox.iptc_places import PHOTOSHOP_3, blank_app13_places, photoshop_resources_start
from inbox.jpeg_segments import GOPRO_PREFIX, JPEG_XMP, JpegLayout
from inbox.jumbf import is_jumbf, zero_jumbf_naming_a_place
from inbox.tiff_blocks import EXIF_PREFIX, blank_exif_gps
from inbox.xmp_location import LENIENT_XMP_MARK, blank_xmp_location

JPEG_EXTENDED_XMP = b"http://ns.adobe.com/xmp/extension/\0"
LENIENT_EXIF_HEADER = re.compile(rb"(.{0,4})exif\0", re.DOTALL | re.IGNORECASE)
TIFF_HEADERS = (b"II*\0", b"MM\0*")
# The GPMF keys of a GoPro's GPS (exiftool's GoPro tables; GPS9 on newer cameras).
GOPRO_GPS_KEYS = (b"GPS5", b"GPS9", b"GPRI", b"GLPI", b"GPSU", b"GPSF", b"GPSP", b"GPSA")
EXTENDED_XMP_HEADER = 40  # after its name: the packet's GUID (32), its full length (4), this slice's offset (4)
SEGMENT_HEADER = 4  # the marker and the length, between one segment's payload and the next's


def blank_jpeg_metadata(file: BinaryIO, layout: JpegLayout, *, items_kept: int | None) -> bool:
    """Blank the location in every metadata segment `layout` lists; True when the file changed.

    `items_kept`: what followed the picture is cut off and that many images remain (see
    inbox/xmp_location.py), or None.
    """
    changed, jumbf, flir, blocks, extended = False, [], [], [], {}
    for start, stop in layout.metadata:
        # The segment's marker and length, then the head of its payload.
        head = read_exact(file, start - 3, 3 + min(stop - start, len(JPEG_EXTENDED_XMP)))
        kind = head[3:]
        follows = bool(blocks) and blocks[-1].payloads[-1][1] + SEGMENT_HEADER == start
        if is_jumbf(head[0], kind, stop - start):
            jumbf.append((start, stop))
        elif kind.startswith(GOPRO_PREFIX):
            changed |= _zero_gopro_gps(file, start, stop)
        elif kind.startswith(FLIR_PREFIX) and stop - start >= CHUNK_HEADER:
            flir.append((start, stop))
        elif follows and _goes_on(blocks[-1].blank, kind):
            blocks[-1].payloads.append((start, stop))
        elif (resources := photoshop_resources_start(kind)) is not None:
            blocks.append(_Block(blank_app13_places, resources, [(start, stop)]))
        elif exif := LENIENT_EXIF_HEADER.match(kind):
            blocks.append(_Block(_blank_exif, exif.end() + 1, [(start, stop)]))
        elif kind == JPEG_EXTENDED_XMP:
            _add_extended_xmp_slice(file, start, stop, extended)
        else:
            changed |= _blank_xmp(file, kind, start, stop, items_kept=items_kept)
    for block in blocks:
        changed |= block.blank(file, block.payloads, block.start)
    for slices in extended.values():
        changed |= _blank_extended_xmp(file, slices, items_kept=items_kept)
    changed |= zero_jumbf_naming_a_place(file, jumbf)
    changed |= blank_flir_gps(file, flir)
    if layout.stale_index is not None:
        # Its offsets point past the cut, or inside the first image: readers would take that for a further
        # image (Pillow opens the photo as a two-frame MPO and fails on the second). Zeroed, it is an APP2
        # segment no reader knows, and the photo is a plain JPEG.
        zero(file, *layout.stale_index)
        changed = True
    return changed


class _Block(NamedTuple):
    """An EXIF or Photoshop block, in one segment's payload or carried on over several in a row."""

    blank: Callable[[BinaryIO, list[tuple[int, int]], int], bool]
    start: int  # where the block starts in the first payload, past the header that names it
    payloads: list[tuple[int, int]]


def _goes_on(blank: Callable, kind: bytes) -> bool:
    """True when a payload starting with `kind` goes on with the block of the segment before it."""
    if blank is _blank_exif:
        return kind[:6] == EXIF_PREFIX and kind[6:10] not in TIFF_HEADERS
    return kind.startswith(PHOTOSHOP_3)


def _blank_exif(file: BinaryIO, payloads: list[tuple[int, int]], header: int) -> bool:
    first, first_end = payloads[0]
    if len(payloads) == 1:
        return blank_exif_gps(file, first + header, first_end)
    skip = len(EXIF_PREFIX)
    pieces = [(first, first_end - first)] + [(start + skip, stop - start - skip) for start, stop in payloads[1:]]
    return blank_joined(file, pieces, lambda copy, joined: blank_exif_gps(copy, header, len(joined)))


def _add_extended_xmp_slice(file: BinaryIO, start: int, end: int, extended: dict) -> None:
    """Note the slice of extended XMP in the payload file[start:end] under its packet's GUID: (offset, full
    length, where its bytes start, how many). A payload too short for its header holds none, as exiftool reads it."""
    header = start + len(JPEG_EXTENDED_XMP)
    if end - header < EXTENDED_XMP_HEADER:
        return
    guid, full_length, offset = struct.unpack(">32sII", read_exact(file, header, EXTENDED_XMP_HEADER))
    data = header + EXTENDED_XMP_HEADER
    extended.setdefault(guid, []).append((offset, full_length, data, end - data))


def _blank_extended_xmp(file: BinaryIO, slices: list[tuple[int, int, int, int]], *, items_kept: int | None) -> bool:
    """Blank one extended XMP packet, whose slices exiftool joins in the order of their offsets and reads whole.

    A property's name may be cut between two slices: read one by one, neither would show it. Slices
    that overlap, leave a gap or disagree on the packet's length cannot be joined as every reader would.
    """
    slices.sort()
    joined = 0
    for offset, full_length, _, length in slices:
        if offset != joined or full_length != slices[0][1]:
            raise LocationError("the JPEG's extended XMP slices overlap, leave a gap or disagree on its length")
        joined += length
    if joined != slices[0][1]:
        raise LocationError("the JPEG's extended XMP slices do not add up to the length they give")
    pieces = [(start, length) for _, _, start, length in slices]
    return blank_joined(
        file, pieces, lambda copy, packet: blank_xmp_location(copy, 0, len(packet), items_kept=items_kept)
    )


def _zero_gopro_gps(file: BinaryIO, start: int, end: int) -> bool:
    # GPMF is nested key-length-value telemetry; a segment that holds a GPS key anywhere is zeroed
    # whole (the camera's settings with it) rather than walked.
    telemetry = read_exact(file, start, end - start)  # at most 64 KiB: a segment's length is 16 bits
    if not any(key in telemetry for key in GOPRO_GPS_KEYS):
        return False
    zero(file, start, end)
    return True


def _blank_xmp(file: BinaryIO, kind: bytes, start: int, end: int, *, items_kept: int | None) -> bool:
    if kind.startswith(JPEG_XMP):
        return blank_xmp_location(file, start + len(JPEG_XMP), end, items_kept=items_kept)
    if kind.startswith((b"http", b"XMP\0")) or LENIENT_XMP_MARK.search(read_exact(file, start, end - start)):
        return blank_xmp_location(file, start, end, items_kept=items_kept)
    return False
