"""Blanks the places that GPS cameras keep in tags of their own (maker notes, Kodak's IFD), in one EXIF block, in place.

Some cameras with GPS look up where a photo was taken and write the place's name into their own
maker-note tags. exiftool reads these tags (in its Location group), and they stay after the GPS
IFD is gone:
- Panasonic: Location, Country, State, City, Landmark and City2 (the travel zooms' landmark database),
  also under Leica's name (the V-Lux and C-Lux are Lumix travel zooms; the D-Lux's "LEICA CAMERA AG");
- Nikon: LocationInfo, with the country code and the place's name (the AW and P series), also in
  the older notes without a header;
- Samsung (the EXIF-style maker notes of the NX series): LocalLocationName and LocationName;
- Kodak: the GPSString of the camera's own IFD (tag 0x8290 of an EXIF IFD, not a maker note).

A DNG keeps the camera's original maker note in Adobe's private data (tag 0xC634), with the
offset it had in the camera's file: it is read and blanked the same way, counted from there. The
private data's other records (the raw file's own metadata) are zeroed.

A maker note is recognised as exiftool recognises it (MakerNotes.pm, the first that fits): by its
header, or by the camera's make alone (a Nikon's without a header, a Leica-named Lumix's), which
is why an EXIF block naming two makes is refused; then an IFD at a fixed place after it, in the
byte order its entry count suggests, with offsets counted from the TIFF header (Nikon's from its
own header). The values of those tags are zeroed, and every other tag keeps
its bytes. When the IFD or one of those values does not lie inside the maker note, an editor
has moved the maker note without mending its offsets, and readers guess where the values went.
Then the whole maker note is zeroed: nothing in it can be found safely. So it is when two of its
place values share bytes, which no camera writes.

Each maker note, Kodak IFD and GPSString is read once per EXIF block, however many tags point at
it. Two of a kind that overlap without being the same bytes, which no camera writes either, make
the photo refused: reading each would read the same bytes again and again.
"""

from __future__ import annotations

import re
import struct

from inbox.fail_closed import LocationError, overlap

MAKER_NOTE_TAG = 0x927C
MAX_MAKER_NOTE_BYTES = 16 * 1024 * 1024
BYTE_TYPES = (1, 2, 6, 7)  # a maker note is a string of bytes, nearly always UNDEFINED (7)
PANASONIC_PLACES = frozenset({0x67, 0x69, 0x6B, 0x6D, 0x6F, 0x80})
NIKON_PLACES = frozenset({0x39})
SAMSUNG_PLACES = frozenset({0x30, 0x31})
KODAK_IFD_TAG = 0x8290
MAKE_TAG = 0x010F
MAX_MAKE_BYTES = 256
NIKON_MAKE = re.compile(rb"NIKON", re.IGNORECASE)  # matched at the start, as exiftool matches it
DNG_PRIVATE_DATA_TAG = 0xC634
ADOBE_DATA = b"Adobe\0"  # what DNG private data starts with when Adobe's converter wrote it
DNG_BYTE_ORDERS = {b"II": "<", b"MM": ">"}
MAX_ADOBE_RECORDS = 64  # the converter writes one or two
KODAK_GPS_STRING = 0x0402
# exiftool's test for Samsung's EXIF-style maker note: its first entry is the version "0100".
SAMSUNG_TYPE2 = re.compile(rb"(?:\0.\0\x01\0\x07\0{3}\x04|.\0\x01\0\x07\0\x04\0{3})0100", re.DOTALL)


def blank_maker_note_places(block, entry: bytes, make: bytes) -> bool:
    """Zero the place names in the maker note that `entry` (a MakerNote tag of `block`) points at; True if any.

    `block` is the EXIF block's inbox.tiff_structure.TiffBlock, `make` its camera's (camera_make). A
    maker note that is not a string of bytes, or that lies outside the block, is skipped: exiftool
    cannot read it either.
    """
    kind, length, offset = block.unpack("H", entry[2:4]), block.unpack("I", entry[4:8]), block.unpack("I", entry[8:12])
    if kind not in BYTE_TYPES or length <= 4 or not block.holds(offset, length):
        return False
    return _blank_note(block, offset, length, 0, block.order, make)


def camera_make(block, entry: bytes) -> bytes:
    """The value of a Make tag `entry` of `block` as exiftool keeps it: up to a NUL, without trailing white space.

    Empty when it is not text or lies outside the block, as exiftool cannot read it then.
    """
    kind, count = block.unpack("H", entry[2:4]), block.unpack("I", entry[4:8])
    offset = block.unpack("I", entry[8:12])
    if kind not in BYTE_TYPES or (count > 4 and not block.holds(offset, count)):
        return b""
    value = entry[8 : 8 + count] if count <= 4 else block.read(offset, min(count, MAX_MAKE_BYTES))
    if count > MAX_MAKE_BYTES and b"\0" not in value:
        raise LocationError(f"the camera make in the EXIF data is longer than {MAX_MAKE_BYTES} bytes")
    return value.split(b"\0", 1)[0].rstrip()


def blank_dng_private_data(block, entry: bytes, make: bytes) -> bool:
    """Blank the DNG private data (tag 0xC634) `entry` points at, when it is Adobe's; True if anything changed.

    Its records follow "Adobe\0", each a 4-byte name, a big-endian length and the data, as exiftool
    reads them. The camera's original maker note (MakN: its byte order, the offset it had in the
    camera's file, and the note) loses its place names as in a JPEG, its offsets counted from where
    the camera's TIFF header would be. Every other record (the raw file's own metadata: a Kodak
    IFD with its GPS string, a Panasonic raw's JPEG with its EXIF) is zeroed.
    """
    extent = block.value_extent(entry)
    if extent is None or block.read(extent[0], min(extent[1], len(ADOBE_DATA))) != ADOBE_DATA:
        return False  # Sony's SR2 private data, a Pentax or DJI maker note: none names a place
    offset, length = extent
    if not block.first_time("DNG private data blocks", offset, length):
        return False
    position, end, spans = offset + len(ADOBE_DATA), offset + length, []
    changed = False
    for _ in range(MAX_ADOBE_RECORDS):
        if position + 8 > end:
            return block.zero_spans(spans) or changed
        name, size = struct.unpack(">4sI", block.read(position, 8))
        position += 8
        if size > end - position:
            return block.zero_spans(spans) or changed  # exiftool stops reading there
        if name == b"MakN":
            changed |= _blank_original_maker_note(block, position, size, make)
        else:
            spans.append((position, size))
        position += size
    raise LocationError(f"the DNG's private data holds more than {MAX_ADOBE_RECORDS} records")


def _blank_original_maker_note(block, start: int, size: int, make: bytes) -> bool:
    if size < 6 or (order := DNG_BYTE_ORDERS.get(block.read(start, 2))) is None:
        return False  # exiftool reads no maker note there either
    original = struct.unpack(">I", block.read(start + 2, 4))[0]
    # Adobe Camera Raw copies a JPEG's maker note 12 bytes early, after "\0\0\0\x01": exiftool skips them.
    header = 18 if size >= 18 and block.read(start + 6, 4) == b"\0\0\0\x01" else 6
    return _blank_note(block, start + header, size - header, start + header - original, order, make)


def _blank_note(block, offset: int, length: int, tiff_base: int, order: str, make: bytes) -> bool:
    """Zero the place names of the maker note block[offset:offset + length], whose offsets count from
    `tiff_base` (the TIFF header's, 0 in EXIF) unless the note has a header of its own; read in `order` first.

    Which maker's note it is, exiftool's MakerNotes.pm tells by its header and the camera's `make`,
    trying each in the order below (the first that fits wins).
    """
    head = block.read(offset, min(length, 18))
    if head.startswith(b"Nikon\0\x02"):
        ifd, base, places = offset + 18, offset + 10, NIKON_PLACES
    elif NIKON_MAKE.match(make) and not head.startswith(b"Nikon\0"):  # an older Nikon's, without a header
        ifd, base, places = offset, tiff_base, NIKON_PLACES
    elif make == b"LEICA":  # a Leica V-Lux or C-Lux: a Lumix with Leica's name, and its note
        ifd, base, places = offset + 8, tiff_base, PANASONIC_PLACES
    elif head.startswith((b"LEICA CAMERA AG\0", b"Panasonic")):
        ifd, base, places = offset + (18 if head.startswith(b"LEICA") else 12), tiff_base, PANASONIC_PLACES
    elif SAMSUNG_TYPE2.match(head):
        ifd, base, places = offset, tiff_base, SAMSUNG_PLACES
    else:
        return False
    if not block.first_time("maker notes", offset, length):
        return False  # another MakerNote tag points at it: its places are zeroed already
    try:
        spans = _place_values(block, offset, offset + length, ifd, base, places, order)
    except LocationError:
        spans = [(offset, length)]
    return block.zero_spans(spans)


def _place_values(
    block, start: int, end: int, ifd: int, base: int, places: frozenset[int], order: str
) -> list[tuple[int, int]]:
    """Where in `block` the values of the maker note's `places` tags are; the maker note spans block[start:end].

    LocationError when its IFD or one of those values is not inside it.
    """
    if end - start > MAX_MAKER_NOTE_BYTES:
        raise LocationError("the maker note is too large to read")
    count = block.unpack("H", block.read(ifd, 2))
    if count & 0xFF00 and count >> 8 > count & 0xFF:  # exiftool's test: too many entries, so the other order
        order = "<" if order == ">" else ">"
    note = block.view(base, end, order)
    _, entries = note.read_ifd(ifd - base, next_pointer=False)
    spans = []
    for at, entry in enumerate(entries):
        if note.unpack("H", entry[:2]) not in places:
            continue
        extent = note.value_extent(entry)
        if extent is None:
            spans.append(block.value_in_entry(ifd, at))
        elif base + extent[0] < start:
            raise LocationError("a maker-note value lies before the maker note")
        else:
            spans.append((base + extent[0], extent[1]))
    spans = sorted(set(spans))
    if overlap(spans):
        raise LocationError("two maker-note values share bytes")
    return spans


def blank_kodak_gps_string(block, offsets: list[int]) -> bool:
    """Zero the GPSString of the Kodak IFDs at `offsets` (where a KodakIFD tag of `block` points); True if any.

    An IFD outside the block is skipped, as exiftool skips it.
    """
    spans = []
    for ifd in filter(block.holds, set(offsets)):  # an offset listed again is the same IFD
        count = block.unpack("H", block.read(ifd, 2))
        if not block.first_time("Kodak IFDs", ifd, 2 + 12 * count):
            continue
        _, entries = block.read_ifd(ifd, next_pointer=False)
        for at, entry in enumerate(entries):
            if block.unpack("H", entry[:2]) == KODAK_GPS_STRING:
                span = block.value_extent(entry) or block.value_in_entry(ifd, at)
                if block.first_time("Kodak GPS strings", *span):
                    spans.append(span)
    return block.zero_spans(spans)
