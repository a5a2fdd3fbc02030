"""Blanks the places that GPS cameras keep in tags of their own (maker notes, Kodak's IFD), in one EXIF block, in place.

Some cameras with GPS look up where a photo was taken and write the place's name into their own
maker-note tags. exiftool reads these tags (in its Location group), and they stay after the GPS
IFD is gone:
- Panasonic: Location, Country, State, City, Landmark and City2 (the travel zooms' landmark database);
- Nikon: LocationInfo, with the country code and the place's name (the AW and P series);
- Samsung (the EXIF-style maker notes of the NX series): LocalLocationName and LocationName;
- Kodak: the GPSString of the camera's own IFD (tag 0x8290 of an EXIF IFD, not a maker note).

A maker note is recognised as exiftool recognises it: by its header, then an IFD at a fixed place
after it, in the byte order its entry count suggests, with offsets counted from the TIFF header
(Nikon's from its own header). The values of those tags are zeroed, and every other tag keeps
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

from inbox.fail_closed import LocationError, overlap

MAKER_NOTE_TAG = 0x927C
MAX_MAKER_NOTE_BYTES = 16 * 1024 * 1024
BYTE_TYPES = (1, 2, 6, 7)  # a maker note is a string of bytes, nearly always UNDEFINED (7)
PANASONIC_PLACES = frozenset({0x67, 0x69, 0x6B, 0x6D, 0x6F, 0x80})
NIKON_PLACES = frozenset({0x39})
SAMSUNG_PLACES = frozenset({0x30, 0x31})
KODAK_IFD_TAG = 0x8290
KODAK_GPS_STRING = 0x0402
# exiftool's test for Samsung's EXIF-style maker note: its first entry is the version "0100".
SAMSUNG_TYPE2 = re.compile(rb"(?:\0.\0\x01\0\x07\0{3}\x04|.\0\x01\0\x07\0\x04\0{3})0100", re.DOTALL)


def blank_maker_note_places(block, entry: bytes) -> bool:
    """Zero the place names in the maker note that `entry` (a MakerNote tag of `block`) points at; True if any.

    `block` is the EXIF block's inbox.tiff_structure.TiffBlock. A maker note that is not a string of
    bytes, or that lies outside the block, is skipped: exiftool cannot read it either.
    """
    kind, length, offset = block.unpack("H", entry[2:4]), block.unpack("I", entry[4:8]), block.unpack("I", entry[8:12])
    if kind not in BYTE_TYPES or length <= 4 or not block.holds(offset, length):
        return False
    head = block.read(offset, min(length, 18))
    if head.startswith(b"Panasonic"):
        ifd, base, places = offset + 12, 0, PANASONIC_PLACES
    elif head.startswith(b"Nikon\0\x02"):
        ifd, base, places = offset + 18, offset + 10, NIKON_PLACES
    elif SAMSUNG_TYPE2.match(head):
        ifd, base, places = offset, 0, SAMSUNG_PLACES
    else:
        return False
    if not block.first_time("maker notes", offset, length):
        return False  # another MakerNote tag points at it: its places are zeroed already
    try:
        spans = _place_values(block, offset, offset + length, ifd, base, places)
    except LocationError:
        spans = [(offset, length)]
    return block.zero_spans(spans)


def _place_values(block, start: int, end: int, ifd: int, base: int, places: frozenset[int]) -> list[tuple[int, int]]:
    """Where in `block` the values of the maker note's `places` tags are; the maker note spans block[start:end].

    LocationError when its IFD or one of those values is not inside it.
    """
    if end - start > MAX_MAKER_NOTE_BYTES:
        raise LocationError("the maker note is too large to read")
    order = block.order
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
