"""Zeroes the GPS record of a FLIR thermal camera's data, which a JPEG carries in APP1 "FLIR" segments.

A FLIR camera with GPS keeps the photo's position in a GPSInfo record of its FFF data, beside the
thermal image, the palette and the calibration; exiftool reads it (FLIR:GPSLatitude, in its
Location group). The segments are joined as exiftool joins them: each starts "FLIR\\0", a version,
its chunk number and the number of chunks less one, and the chunks are read in chunk-number
order. Then the FFF header's directory is followed, and only the GPSInfo records are zeroed.

When the chunks or the directory cannot be followed safely (counts that disagree, a directory
or a record outside the data, GPS records that overlap), every FLIR segment is zeroed: the photo
stays, its thermal data goes with whatever place it held. A GPS record listed twice is zeroed once.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from inbox.fail_closed import LocationError, blank_joined, overlap, read_exact, zero, zero_all

FLIR_PREFIX = b"FLIR\0"
CHUNK_HEADER = 8  # "FLIR\0", version, chunk number, number of chunks less one
FFF_TYPES = (b"FFF\0", b"AFF\0")
FFF_HEADER = 0x40
RECORD_ENTRY = 0x20  # type, subtype, version, index, offset, length, parent, object, checksum
GPS_RECORD = 0x2B
MAX_RECORDS = 4096


def blank_flir_gps(file: BinaryIO, payloads: list[tuple[int, int]]) -> bool:
    """Zero the GPS records of the FLIR data in the APP1 `payloads` ((start, end) each, in file order); True if any."""
    if not payloads:
        return False
    heads = [read_exact(file, start, CHUNK_HEADER) for start, _ in payloads]
    if {head[7] for head in heads} != {len(heads) - 1} or sorted(head[6] for head in heads) != list(range(len(heads))):
        return zero_all(file, payloads)  # exiftool reads them only when the counts agree; nothing here can vouch
    pieces = sorted(
        (head[6], start + CHUNK_HEADER, end - start - CHUNK_HEADER)
        for head, (start, end) in zip(heads, payloads, strict=True)
    )
    try:
        return blank_joined(file, [(start, length) for _, start, length in pieces], _zero_gps_records)
    except LocationError:
        return zero_all(file, payloads)


def _zero_gps_records(copy: BinaryIO, data: bytes) -> bool:
    if data[:4] not in FFF_TYPES or len(data) < FFF_HEADER:
        return False  # not FFF data: exiftool reads no record in it
    orders = [order for order in "><" if 100 <= struct.unpack_from(order + "I", data, 0x14)[0] < 200]
    if not orders:
        return False  # a version exiftool does not read
    order = orders[0]
    directory, count = struct.unpack_from(order + "II", data, 0x18)
    if count > MAX_RECORDS or directory + count * RECORD_ENTRY > len(data):
        raise LocationError("the FLIR record directory lies outside its data")
    records = set()
    for entry in range(directory, directory + count * RECORD_ENTRY, RECORD_ENTRY):
        if struct.unpack_from(order + "H", data, entry)[0] != GPS_RECORD:
            continue
        offset, length = struct.unpack_from(order + "II", data, entry + 0x0C)
        if offset + length > len(data):
            raise LocationError("a FLIR GPS record lies outside its data")
        records.add((offset, length))
    if overlap(records):
        raise LocationError("two FLIR GPS records share bytes")  # no camera writes that; each would be read again
    changed = False
    for offset, length in records:
        if data.count(0, offset, offset + length) != length:  # not any(): that goes byte by byte in Python
            zero(copy, offset, offset + length)
            changed = True
    return changed
