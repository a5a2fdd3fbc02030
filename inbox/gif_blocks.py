"""Walks a GIF's blocks: blanks the location in its XMP and finds where it ends.

A GIF is a header, a colour table, then blocks: images and extensions, each extension's data in
sub-blocks of at most 255 bytes that end with an empty one, and a trailer. exiftool writes XMP
(GPS, place names) into an application extension "XMP DataXMP", which inbox/xmp_location.py
blanks. Every block is followed to find the trailer, through the image data too (about 0.7 ms per
MiB), so that inbox/location.py can cut off what follows. Reads are bounded by the file and the
number of blocks.
"""

from __future__ import annotations

from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact
from inbox.xmp_location import blank_xmp_location

MAX_BLOCKS = 100_000  # images and extensions: an animated GIF has two per frame
GIF_XMP = b"\xff\x0bXMP DataXMP"  # an application extension's label, identifier length and identifier
SCAN_BYTES = 1024 * 1024  # sub-blocks are followed through windows of up to this size
FIRST_WINDOW = 256  # a sub-block, at most, and the next one's length


def blank_gif_xmp(file: BinaryIO, size: int) -> tuple[bool, int]:
    """Blank the location in the GIF's XMP; return whether it changed and where the GIF ends.

    It ends after its trailer, or where a byte no decoder reads past stands instead of a block,
    or at the file's end when it is cut short (decoders show what came).
    """
    header = read_exact(file, 0, min(size, 13))
    if len(header) < 13 or header[:6] not in (b"GIF87a", b"GIF89a"):
        raise LocationError("the GIF header is malformed")
    changed, position = False, 13 + _colour_table(header[10])
    for _ in range(MAX_BLOCKS):
        if position >= size:
            return changed, size
        kind = read_exact(file, position, 1)[0]
        if kind == 0x2C:  # an image: its descriptor, colour table, LZW code size, then its data
            flags = read_exact(file, position + 9, 1)[0] if position + 10 <= size else 0
            position = _sub_blocks_end(file, position + 10 + _colour_table(flags) + 1, size)
        elif kind == 0x21:  # an extension: its label, then its data as sub-blocks
            if read_exact(file, position + 1, min(13, size - position - 1)) == GIF_XMP:
                changed |= _blank_xmp(file, position + 1 + len(GIF_XMP), size)
            position = _sub_blocks_end(file, position + 2, size)
        else:  # the trailer (0x3B), or a byte no decoder reads past
            return changed, position + (kind == 0x3B)
    raise LocationError(f"the GIF has more than {MAX_BLOCKS} blocks")


def _colour_table(flags: int) -> int:
    return 3 * (2 << (flags & 7)) if flags & 0x80 else 0


def _sub_blocks_end(file: BinaryIO, position: int, size: int) -> int:
    """Where the sub-blocks starting at `position` end: just past their zero-length terminator, or
    the file's size when it ends first."""
    # Most extensions are a few bytes, image data may be megabytes: the window starts at one sub-block
    # and doubles, so a long run is read about once and a tiny block costs a small read, not a megabyte.
    window, at, wanted = b"", 0, FIRST_WINDOW
    while position + at < size:
        if at >= len(window):  # the next length byte lies past this window
            position, at = position + at, 0
            file.seek(position)
            window, wanted = file.read(wanted), min(2 * wanted, SCAN_BYTES)
        length = window[at]
        at += 1 + length
        if length == 0:
            return position + at
    return size


def _blank_xmp(file: BinaryIO, start: int, size: int) -> bool:
    # XMP is written raw after its header, its bytes doubling as sub-block lengths that lead any
    # reader through it to a "landing zone" and the terminator: exiftool reads it all, lengths
    # included. Blanked, the bytes must still lead to the same terminator, or the GIF would break.
    end = _sub_blocks_end(file, start, size) - 1
    if end == size - 1 and read_exact(file, end, 1) != b"\0":
        raise LocationError("the GIF's XMP runs past the end of the file")
    if not blank_xmp_location(file, start, end):
        return False
    if _sub_blocks_end(file, start, size) - 1 != end:
        raise LocationError("the GIF's XMP cannot be blanked without breaking the blocks around it")
    return True
