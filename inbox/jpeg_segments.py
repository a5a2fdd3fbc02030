"""Walks a JPEG's structure: where each image's metadata segments (APP1, APP6, APP11, APP13) lie, and where it ends.

The images are the first and every one its APP2 `MPF` index lists (camera previews, phones' HDR
gain maps, stereo views), appended after it, each with segments of its own up to its SOS. The
picture ends at the last image's EOI. When an offset of the index does not land on a JPEG (an
editor grew the first image's metadata and left the offsets), lands inside the segments of the
image before it, or the index cannot be read, the picture is the first image alone, read through
to its EOI, and the index is reported stale. A file that ends in FF D9 is taken to end there,
as a camera writes it, unless the first image's XMP has a Google container directory: a Pixel
portrait photo is several JPEGs one after another (the depth map, the unblurred original),
listed there and not in an MPF index. Any other file is read through its image data, marker by
marker, to find its EOI. inbox/jpeg_metadata.py blanks what it finds and zeroes a stale index;
inbox/location.py cuts off what follows.

Reading every JPEG through (0.36 ms per MiB, holding the GIL) would cost a 25 MiB photo a fifth
of its delivery, so a further JPEG appended with no such listing ends the same way and passes.

One budget of MAX_SEGMENTS markers covers all the images and the walk to the end; every offset
and length is checked against the file, and it fails closed (LocationError) with a reason.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from inbox.fail_closed import LocationError, read_exact
from inbox.tiff_blocks import mpf_images
from inbox.xmp_location import CONTAINER_NAMESPACES

MAX_SEGMENTS = 4096
MAX_JUNK_BYTES = 64 * 1024  # skipped between two segments, at most, as a decoder skips them
MPF_PREFIX = b"MPF\0"
GOPRO_PREFIX = b"GoPro\0"
JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\0"
# A marker with a length in a JPEG's entropy-coded data (FF 00 is a stuffed FF, FF D0-D7 a restart, FF FF fill).
JPEG_MARKER = re.compile(rb"\xff[^\x00\x01\xd0-\xd7\xff]")
SCAN_BYTES = 1024 * 1024


class JpegLayout(NamedTuple):
    metadata: list[tuple[int, int]]  # (start, end) of every image's APP1, GoPro APP6, APP11 and APP13 payloads
    end: int  # where the picture ends: the file's size when nothing follows
    images: int  # how many it holds: the first and those its MPF index lists
    stale_index: tuple[int, int] | None  # the MPF index's payload, when it points beside the images


def jpeg_segments(file: BinaryIO, size: int) -> JpegLayout:
    """Where the metadata of every image of the JPEG is, and where its picture ends."""
    segments = iter(range(MAX_SEGMENTS))  # one budget for all the file's images, however many are listed
    metadata, index, first_marker = _image_segments(file, 0, size, segments)
    later_images = _later_images(file, size, index, first_marker, segments)
    if later_images is None:
        # The index is wrong, as when an editor grows the first image's metadata and leaves the offsets
        # (exiftool does) or when it lists an image inside another, or cannot be read: what follows cannot
        # be vouched for, so the first image alone is published.
        return JpegLayout(metadata, _image_end(_EntropyScanner(file, size), first_marker, segments), 1, index)
    payloads, marker, count = later_images
    lists_appended_files = _lists_appended_files(file, metadata)
    if read_exact(file, size - 2, 2) == b"\xff\xd9" and not lists_appended_files:
        return JpegLayout(metadata + payloads, size, 1 + count, None)
    return JpegLayout(metadata + payloads, _image_end(_EntropyScanner(file, size), marker, segments), 1 + count, None)


def _later_images(
    file: BinaryIO, size: int, index: tuple[int, int] | None, marker: int, segments: Iterator[int]
) -> tuple[list[tuple[int, int]], int, int] | None:
    """The images after the first that the MPF index whose payload is file[index] lists, walked.

    Returns their metadata payloads, where the last one's walk ended (see _image_segments) and how
    many there are; None when the index cannot be read or points beside its images. `marker` is
    where the first image's walk ended.
    """
    starts = _listed_images(file, index)
    if starts is None or not all(start + 2 <= size and read_exact(file, start, 2) == b"\xff\xd8" for start in starts):
        return None
    metadata = []
    for start in starts:  # in file order: the last one walked is the last image
        if start < marker:
            # Inside the segments of the image before, which no writer puts an image in: walking them
            # again for every such offset would cost the file's metadata hundreds of times over.
            return None
        payloads, _, marker = _image_segments(file, start, size, segments)
        metadata += payloads
    return metadata, marker, len(starts)


def _listed_images(file: BinaryIO, index: tuple[int, int] | None) -> list[int] | None:
    """Where the MPF index whose payload is file[index] puts the images after the first; None when it is unreadable."""
    if index is None:
        return []
    header_start = index[0] + len(MPF_PREFIX)  # MPF offsets count from here
    try:
        return [header_start + offset for offset in mpf_images(file, header_start, index[1])]
    except LocationError:  # no reader can follow it either (a Nintendo 3DS writes one like that)
        return None


def _lists_appended_files(file: BinaryIO, metadata: list[tuple[int, int]]) -> bool:
    """True when one of these payloads is an XMP packet with a Google container directory."""
    for start, end in metadata:
        if read_exact(file, start, min(end - start, len(JPEG_XMP))) == JPEG_XMP:
            packet = read_exact(file, start, end - start)  # at most 64 KiB: a segment's length is 16 bits
            if any(namespace in packet for namespace in CONTAINER_NAMESPACES):
                return True
    return False


def _image_segments(
    file: BinaryIO, start: int, size: int, segments: Iterator[int]
) -> tuple[list[tuple[int, int]], tuple[int, int] | None, int]:
    """One image's segments up to its image data.

    Returns its APP1, GoPro APP6, APP11 and APP13 payloads, its APP2 MPF payload (None without one), and where the
    marker that ended the walk (SOS, or EOI in an image without data) is.
    """
    if read_exact(file, start, 2) != b"\xff\xd8":
        raise LocationError("the JPEG does not start with SOI")
    metadata, position, index = [], start + 2, None
    for _ in segments:
        if position + 4 > size:
            raise LocationError("the JPEG ends before its image data")
        header = read_exact(file, position, 4)
        if header[0] != 0xFF:  # bytes between segments: decoders and exiftool skip to the next marker
            junk = read_exact(file, position, min(MAX_JUNK_BYTES, size - position)).find(b"\xff")
            if junk < 0:
                raise LocationError("the JPEG segments are malformed")
            position += junk
            continue
        marker = header[1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD9, 0xDA):  # EOI, SOS: no metadata after this point
            return metadata, index, position
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        end = position + 2 + struct.unpack(">H", header[2:])[0]
        if end < position + 4 or end > size:
            raise LocationError("a JPEG segment runs past the end of the file")
        if marker in (0xE1, 0xEB, 0xED):  # APP1: EXIF, XMP; APP11: JUMBF (C2PA); APP13: Photoshop resources
            metadata.append((position + 4, end))
        elif marker == 0xE6 and read_exact(file, position + 4, min(end - position - 4, 6)) == GOPRO_PREFIX:
            metadata.append((position + 4, end))  # a GoPro's telemetry (GPMF), which may hold GPS
        elif marker == 0xE2 and read_exact(file, position + 4, min(end - position - 4, 4)) == MPF_PREFIX:
            if index is not None:
                raise LocationError("the JPEG has two MPF indexes")
            index = (position + 4, end)
        position = end
    raise LocationError(f"the JPEG has more than {MAX_SEGMENTS} segments before its image data")


def _image_end(scanner: _EntropyScanner, position: int, segments: Iterator[int]) -> int:
    """Where the image whose SOS (or EOI) marker is at `position` ends: just past its EOI.

    Scans and the tables between them (progressive JPEGs) are skipped marker by marker. An image
    cut short before its EOI ends where the next one starts (SOI), or else at the end of the file.
    """
    file, size = scanner.file, scanner.size
    for _ in segments:
        header = read_exact(file, position, min(4, size - position))
        if header[1] == 0xD9:
            return position + 2
        if header[1] == 0xD8:  # no image holds an SOI: the next one starts here
            return position
        if len(header) < 4:
            return size
        position = scanner.next_marker(position + 2 + struct.unpack(">H", header[2:])[0])
        if position is None:
            return size
    raise LocationError(f"the JPEG has more than {MAX_SEGMENTS} segments")


class _EntropyScanner:
    """Finds markers through a JPEG's entropy-coded data, reading each byte of the file about once.

    A window of the file is kept between calls: markers close together are found in it, not
    by reading another megabyte from each one.
    """

    def __init__(self, file: BinaryIO, size: int):
        self.file, self.size = file, size
        self.start, self.window = 0, b""

    def next_marker(self, position: int) -> int | None:
        """Where the first marker at or after `position` is; None when the file has none."""
        while position + 1 < self.size:
            if not self.start <= position < self.start + len(self.window) - 1:
                self.file.seek(position)
                self.start, self.window = position, self.file.read(SCAN_BYTES)
            if (found := JPEG_MARKER.search(self.window, position - self.start)) is not None:
                return self.start + found.start()
            position = self.start + len(self.window) - 1  # the last byte again: an FF whose marker byte is next
        return None
