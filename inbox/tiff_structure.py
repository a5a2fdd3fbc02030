"""Reads a TIFF structure (EXIF, a TIFF file, an MPF index) inside a byte range of an open file, bounded by it.

TiffBlock reads its IFDs and the extents of their values, and zeroes or rewrites bytes in place:
every offset and count is checked against the range, and what runs past it fails closed
(LocationError). inbox/tiff_blocks.py walks the IFDs; inbox/maker_notes.py reads a maker note as a view of one.
"""

from __future__ import annotations

import copy
import struct
from typing import BinaryIO

from inbox.fail_closed import LocationError, first_time, read_exact, zero_once

MAX_IFDS = 1024  # pages of a TIFF file, IFD0 + IFD1 in EXIF
MAX_IFD_ENTRIES = 4096
# Bytes per value of each TIFF field type; an unknown type in a GPS IFD cannot be blanked safely.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
BYTE_ORDERS = {b"II*\0": "<", b"MM\0*": ">"}


class TiffBlock:
    """A TIFF structure occupying file[start:end]; offsets inside it are relative to `start`."""

    def __init__(self, file: BinaryIO, start: int, end: int):
        self.file, self.start, self.end = file, start, end
        header = self.read(0, 8)
        if header[:4] in (b"II+\0", b"MM\0+"):
            raise LocationError("it is a BigTIFF, whose metadata is not read here; save it as a TIFF or a JPEG")
        if header[:4] not in BYTE_ORDERS:
            raise LocationError("the EXIF data has no TIFF header")
        self.order = BYTE_ORDERS[header[:4]]
        self.first_ifd = self.unpack("I", header[4:])
        self.zeroed, self.read_ranges = [], {}  # zero_once's file positions; first_time's offsets in this block

    def view(self, base: int, end: int, order: str) -> TiffBlock:
        """This block's bytes from `base` to `end`, read in `order` with offsets counted from `base` (a maker note)."""
        view = copy.copy(self)
        view.start, view.end, view.order = self.start + base, self.start + end, order
        return view

    def unpack(self, kind: str, data: bytes) -> int:
        return struct.unpack(self.order + kind, data)[0]

    def holds(self, offset: int, length: int = 2) -> bool:
        return offset >= 0 and self.start + offset + length <= self.end

    def read(self, offset: int, length: int) -> bytes:
        if not self.holds(offset, length):
            raise LocationError("an EXIF offset points past the end of its data")
        return read_exact(self.file, self.start + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.file.seek(self.start + offset)
        self.file.write(data)

    def zero(self, offset: int, length: int) -> bool:
        """Overwrite `length` bytes at `offset` with zeros; True when any was not zero already."""
        if not self.holds(offset, length):
            raise LocationError("an EXIF offset points past the end of its data")
        return zero_once(self.file, self.start + offset, self.start + offset + length, self.zeroed)

    def first_time(self, kind: str, offset: int, length: int) -> bool:
        """fail_closed.first_time for block[offset:offset + length], one of `kind`: at most one per IFD."""
        return first_time(self.read_ranges.setdefault(kind, []), f"{kind} in the EXIF data", offset, length, MAX_IFDS)

    def zero_spans(self, spans: list[tuple[int, int]]) -> bool:
        """Zero every (offset, length) span; True when any held a byte that was not zero."""
        return any([self.zero(offset, length) for offset, length in spans])  # a list: every one is zeroed

    def read_ifd(self, offset: int, next_pointer: bool = True) -> tuple[bytes, list[bytes]]:
        """The raw bytes of the IFD at `offset` (count, entries, next pointer) and its 12-byte entries.

        `next_pointer=False`: an IFD that may end without one (a maker note's).
        """
        count = self.unpack("H", self.read(offset, 2))
        if count > MAX_IFD_ENTRIES:
            raise LocationError(f"an EXIF IFD claims {count} entries")
        raw = self.read(offset, 2 + 12 * count + 4 * next_pointer)
        return raw, [raw[2 + 12 * i : 14 + 12 * i] for i in range(count)]

    @staticmethod
    def value_in_entry(ifd: int, index: int) -> tuple[int, int]:
        """Where the value of the IFD's entry number `index` is when it fits in the entry itself: its last 4 bytes."""
        return ifd + 2 + 12 * index + 8, 4

    def value_extent(self, entry: bytes) -> tuple[int, int] | None:
        """(offset, length) of an entry's out-of-line value; None when it fits in the entry itself."""
        kind, count = self.unpack("H", entry[2:4]), self.unpack("I", entry[4:8])
        if kind not in TYPE_SIZES:
            raise LocationError(f"an EXIF tag has the unknown type {kind}")
        length = TYPE_SIZES[kind] * count
        if length <= 4:
            return None
        offset = self.unpack("I", entry[8:12])
        if not self.holds(offset, length):
            raise LocationError("an EXIF value runs past the end of its data")
        return offset, length
