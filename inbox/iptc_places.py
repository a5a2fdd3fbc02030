"""Blanks the place names of IPTC-IIM, in Photoshop resources (a JPEG's APP13, a TIFF's tag 34377)
or on its own (a TIFF's tag 33723).

Editors that fill in where a photo was taken (Lightroom's address lookup, Photoshop, exiftool)
write it twice: into XMP (inbox/xmp_location.py) and into the IIM application record. Here the values
of the IIM datasets that name a place (content location code and name, city, sub-location,
province or state, country code and name) are overwritten with spaces of the same length: the
datasets, the resources and the segment keep their lengths. The resource that holds the MD5 of
the IIM data (IPTCDigest) is recomputed when it matched, so editors still see the IIM and the XMP
as written together. Photoshop resources may also hold EXIF (0x0422, 0x0423) and XMP (0x0424),
which exiftool reads like a JPEG's APP1: they go to inbox/tiff_blocks.py and inbox/xmp_location.py.

Resources: a signature, a 16-bit id, a padded Pascal name, a 32-bit size and the data, padded to an
even length. IIM datasets: 0x1C, record, dataset, a 16-bit length (or, with its top bit set, the
length of the length). Every length is checked against the block and every loop is bounded;
anything malformed fails closed (LocationError) with a reason.
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import BinaryIO

from inbox.fail_closed import LocationError, blank_joined, read_exact
from inbox.xmp_location import blank_xmp_location

# An APP13 payload's header: Photoshop's, or Photoshop 2.5's, whose resources start at 27. Matched as exiftool
# matches them, with each dot for any byte.
PHOTOSHOP_HEADER = re.compile(rb"Photoshop 3.0\0|Adobe_Photoshop2.5:", re.DOTALL)
PHOTOSHOP_3 = b"Photoshop 3.0\0"  # what a continuing APP13 payload starts with
# 8BIM is Photoshop's; the others are older writers' and exiftool reads them alike.
RESOURCE_SIGNATURES = (b"8BIM", b"PHUT", b"DCSR", b"AgHg", b"MeSa")
IIM_RESOURCE = 0x0404
DIGEST_RESOURCE = 0x0425
EXIF_RESOURCES = frozenset({0x0422, 0x0423})  # a TIFF structure, as in a JPEG's APP1; exiftool reads its GPS
XMP_RESOURCE = 0x0424
IIM_MARKER = 0x1C
APPLICATION_RECORD = 2
# Application record datasets: content location code (26) and name (27), city (90), sub-location
# (92), province/state (95), country code (100) and name (101).
PLACE_DATASETS = frozenset({26, 27, 90, 92, 95, 100, 101})
MAX_RESOURCES = 4096
MAX_DATASETS = 16384
MAX_BLOCK_BYTES = 16 * 1024 * 1024  # a TIFF's tag; a JPEG's segment holds at most 64 KiB


def photoshop_resources_start(head: bytes) -> int | None:
    """Where the resources start in an APP13 payload that begins with `head`; None when it is not Photoshop's."""
    if (header := PHOTOSHOP_HEADER.match(head)) is None:
        return None
    return header.end() if header.group().startswith(b"Photoshop") else 27  # 2.5's has 8 more bytes first


def blank_app13_places(file: BinaryIO, payloads: list[tuple[int, int]], resources: int) -> bool:
    """Blank the place names of the Photoshop resources in APP13 payloads in a row (file ranges); True when any.

    `resources` is where they start in the first payload (photoshop_resources_start). Photoshop
    carries a block over 64 KiB on into the next APP13 segment, after the same header, and exiftool
    reads them joined: so they are blanked joined (inbox/fail_closed.py).
    """
    first, first_end = payloads[0]
    skip = len(PHOTOSHOP_3)
    pieces = [(first, first_end - first)] + [(start + skip, stop - start - skip) for start, stop in payloads[1:]]
    return blank_joined(
        file, pieces, lambda copy, joined: _blank_resources(copy, 0, joined, min(resources, len(joined)))
    )


def blank_photoshop_places(file: BinaryIO, start: int, end: int) -> bool:
    """Blank the place names of the Photoshop resources in file[start:end]; True when there were any."""
    return _blank_resources(file, start, _read_block(file, start, end), 0)


def blank_iim_places(file: BinaryIO, start: int, end: int) -> bool:
    """Blank the place names of the IIM datasets in file[start:end]; True when there were any."""
    data = _read_block(file, start, end)
    blanked = bytearray(data)
    _blank_place_values(data, blanked, 0, len(data))
    return _write_changes(file, start, data, blanked)


def _read_block(file: BinaryIO, start: int, end: int) -> bytes:
    if end - start > MAX_BLOCK_BYTES:
        raise LocationError(f"the IPTC or Photoshop data is larger than {MAX_BLOCK_BYTES} bytes")
    return read_exact(file, start, end - start)


def _blank_resources(file: BinaryIO, start: int, data: bytes, position: int) -> bool:
    blanked = bytearray(data)
    iim_blocks, digests, embedded = [], [], []
    for resource, first, last in _resources(data, position):
        if resource == IIM_RESOURCE:
            iim_blocks.append((first, last))
            _blank_place_values(data, blanked, first, last)
        elif resource == DIGEST_RESOURCE and last - first == 16:
            digests.append(first)
        elif resource in EXIF_RESOURCES or resource == XMP_RESOURCE:
            embedded.append((resource, start + first, start + last))
    if len(iim_blocks) == 1 and len(digests) == 1 and blanked != data:
        (first, last), digest = iim_blocks[0], digests[0]
        if data[digest : digest + 16] == hashlib.md5(data[first:last]).digest():
            blanked[digest : digest + 16] = hashlib.md5(blanked[first:last]).digest()
    changed = _write_changes(file, start, data, blanked)  # before the embedded blocks: it rewrites them as read
    for resource, first, last in embedded:
        changed |= _blank_embedded(file, resource, first, last)
    return changed


def _blank_embedded(file: BinaryIO, resource: int, start: int, end: int) -> bool:
    # A TIFF's IFD holds Photoshop resources (inbox/tiff_blocks.py imports this module), and these hold EXIF,
    # a TIFF structure: imported when called, the circle closes without an import cycle.
    from inbox.tiff_blocks import blank_exif_gps

    if resource == XMP_RESOURCE:
        return blank_xmp_location(file, start, end)
    return blank_exif_gps(file, start, end, in_photoshop_resources=True)


def _write_changes(file: BinaryIO, start: int, data: bytes, blanked: bytearray) -> bool:
    if blanked == data:
        return False
    file.seek(start)
    file.write(blanked)
    return True


def _resources(data: bytes, position: int):
    """(id, data start, data end) of each resource from `position` to the end of `data`."""
    for _ in range(MAX_RESOURCES):
        if position == len(data) or (data[position] == 0 and not data[position:].strip(b"\0")):
            return  # writers pad the segment with zeros
        if position + 7 > len(data) or data[position : position + 4] not in RESOURCE_SIGNATURES:
            raise LocationError("the Photoshop resources are malformed")
        resource = struct.unpack(">H", data[position + 4 : position + 6])[0]
        name_length = data[position + 6]
        size_at = position + 6 + name_length + 1 + (name_length + 1) % 2  # the name is padded to even
        if size_at + 4 > len(data):
            raise LocationError("a Photoshop resource runs past its block")
        first = size_at + 4
        last = first + struct.unpack(">I", data[size_at:first])[0]
        if last > len(data):
            raise LocationError("a Photoshop resource runs past its block")
        yield resource, first, last
        position = min(last + last % 2, len(data))
    raise LocationError(f"there are more than {MAX_RESOURCES} Photoshop resources")


def _blank_place_values(data: bytes, blanked: bytearray, position: int, end: int) -> None:
    """Overwrite in `blanked` the values of the place datasets of the IIM block data[position:end] with spaces."""
    for _ in range(MAX_DATASETS):
        if position == end or (data[position] == 0 and not data[position:end].strip(b"\0")):
            return
        if data[position] != IIM_MARKER or position + 5 > end:
            raise LocationError("the IPTC data is malformed")
        record, dataset, length = struct.unpack(">BBH", data[position + 1 : position + 5])
        position += 5
        if length & 0x8000:  # extended dataset: the next (length & 0x7FFF) bytes hold the length
            width = length & 0x7FFF
            if not 1 <= width <= 4 or position + width > end:
                raise LocationError("an IPTC dataset's length is malformed")
            length, position = int.from_bytes(data[position : position + width], "big"), position + width
        if position + length > end:
            raise LocationError("an IPTC dataset runs past the end of its data")
        if record == APPLICATION_RECORD and dataset in PLACE_DATASETS:
            blanked[position : position + length] = b" " * length
        position += length
    raise LocationError(f"the IPTC data has more than {MAX_DATASETS} datasets")
