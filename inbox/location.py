"""Removes location metadata (EXIF GPS, XMP GPS and place properties, IPTC place names) from an image file in place.

`remove_location(path, content_type)` walks the container with seeks and small bounded reads and
hands a JPEG's metadata segments to inbox/jpeg_metadata.py, a PNG's metadata chunks to
inbox/png_metadata.py, each EXIF block to inbox/tiff_blocks.py and each XMP packet to
inbox/xmp_location.py. They blank the location bytes without moving anything: the file keeps its
pixels, its orientation, its colour profile and every other tag. It never reads the image data
of a photo with nothing after its picture, so a 25 MiB photo costs a few small reads.

What follows a JPEG's, PNG's, WebP's or GIF's end is cut off: a phone's motion photo appends its video
there (with the place it was shot), makers append trailers of their own. Nothing reads it as part
of the picture, and nothing here can vouch for what it holds. When a JPEG's or HEIF's video is
cut off, its XMP's motion-photo flags are turned to "0" and its container directory keeps only
the images that remain (inbox/xmp_location.py).

Where it looks, per type (libmagic's MIME type):

- JPEG: the APPn segments up to the first SOS (APP1 EXIF and XMP, APP11 C2PA, APP13 Photoshop
  resources), recognised as exiftool recognises them (inbox/jpeg_metadata.py); and the same in
  every further image an APP2 `MPF` index lists (camera previews, phones' HDR gain maps, stereo
  views), which are appended after the first image and carry their own EXIF. The file ends at the
  last image's EOI, and so do the JPEGs a Pixel portrait photo appends and lists in its XMP
  container directory. An index that points beside its images, or cannot be read, leaves the
  first image alone, and is zeroed. See inbox/jpeg_segments.py.
- PNG: every chunk up to IEND (writers put eXIf before or after IDAT; the walk reads 8 bytes per
  chunk and skips the data): EXIF, XMP, the text chunks with hex raw profiles (EXIF, XMP, IPTC)
  and those named for a location (`exif:GPSLatitude`), which inbox/png_metadata.py blanks,
  compressed or not; and C2PA credentials (`caBX`), zeroed when they name a place, as a JPEG's are
  (inbox/jumbf.py). The CRC of a changed chunk is recomputed. The file ends after IEND.
- WebP: every RIFF chunk: `EXIF`, `XMP `. The file ends where the RIFF header says.
- TIFF: the whole IFD chain (every page) and the IFDs below it, each one's GPSInfo pointer, XMP tag
  and IPTC tags.
- HEIC/HEIF/AVIF: the top-level `meta` box: its `Exif` items (also `mime` items of content type
  `Exif`) and `mime` items of type application/rdf+xml (XMP), wherever iloc puts them (mdat or
  idat), and a top-level XMP `uuid` box; see inbox/heif_items.py. An image sequence whose `moov`
  names a place is refused, and so is a file whose `meta` box holds a QuickTime item list
  (`ilst`, `keys`) that names one.
  A motion photo's video is cut off: Samsung's (a top-level `mpvd` box) when it ends the file, as
  it does, elsewhere the offsets of what follows would move, so the photo is refused; Google's (an
  MP4 appended after the image's boxes) from its `ftyp` box on.
- GIF: every block, following its sub-blocks: an XMP application extension; see
  inbox/gif_blocks.py. The file ends after the trailer.
- BMP and anything else: nothing to do.

When location may be present but the structure cannot be walked safely (truncated, offsets out of
range, loops, absurd counts), it raises LocationError(reason) and the image must not be published.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact
from inbox.gif_blocks import blank_gif_xmp
from inbox.heif_items import metadata_items
from inbox.jpeg_metadata import blank_jpeg_metadata
from inbox.jpeg_segments import jpeg_segments
from inbox.jumbf import zero_c2pa_chunk_naming_a_place
from inbox.png_metadata import PngBudget, blank_png_exif, blank_png_text
from inbox.tiff_blocks import blank_exif_chunk_gps, blank_exif_gps
from inbox.xmp_location import blank_xmp_location

__all__ = ["LocationError", "remove_location"]

MAX_CHUNKS = 100_000  # PNG IDAT and animated WebP frames; each costs one 8-byte read
MAX_CHUNK_CRC_BYTES = 16 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MOVIE_BYTES = 16 * 1024 * 1024
MOVIE_LOCATION_ATOMS = (b"ISO6709", b"\xa9xyz", b"loci", b"gps ", b"GPS ", b":GPS", b"location.")
# The ISOBMFF images (HEIF and AVIF) among images.ACCEPTED: their metadata are items.
HEIF_TYPES = ("image/heic", "image/heic-sequence", "image/heif", "image/heif-sequence", "image/avif")


def remove_location(path: str, content_type: str, png_budget: PngBudget | None = None) -> bool:
    """Blank the location metadata of the image at `path` in place and cut off what follows the image.

    True when the file changed. The PNGs of one message share one `png_budget`; without it, a PNG
    has one of its own.
    """
    walk = _WALKERS.get(content_type)
    if walk is None:
        return False
    with open(path, "r+b") as file:
        size = os.fstat(file.fileno()).st_size
        return _png(file, size, png_budget or PngBudget()) if walk is _png else walk(file, size)


def _jpeg(file: BinaryIO, size: int) -> bool:
    layout = jpeg_segments(file, size)
    changed = blank_jpeg_metadata(file, layout, items_kept=layout.images if layout.end < size else None)
    return _cut_off_after(file, layout.end, size) or changed


def _cut_off_after(file: BinaryIO, end: int, size: int) -> bool:
    """Truncate the file at `end`, where its image ends; True when something followed."""
    if end < size:
        file.truncate(end)
        return True
    return False


def _png(file: BinaryIO, size: int, budget: PngBudget) -> bool:
    if read_exact(file, 0, 8) != PNG_SIGNATURE:
        raise LocationError("the PNG signature is wrong")
    changed, position = False, 8
    budget.start_png()
    for _ in range(MAX_CHUNKS):
        if position == size:
            return changed
        length, kind = struct.unpack(">I4s", read_exact(file, position, 8))
        start, end = position + 8, position + 8 + length
        if end + 4 > size:
            raise LocationError("a PNG chunk runs past the end of the file")
        if kind == b"IEND":
            return _cut_off_after(file, end + 4, size) or changed
        blanked = False
        if kind.lower() in (b"exif", b"zxif"):
            blanked = blank_png_exif(file, start, end, budget)
        elif kind == b"tXMP":
            blanked = blank_xmp_location(file, start, end)
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            blanked = blank_png_text(file, kind, start, end, budget)
        elif kind == b"caBX":
            blanked = zero_c2pa_chunk_naming_a_place(file, start, end)
        if blanked:
            _write_png_crc(file, position + 4, end)
        changed |= blanked
        position = end + 4
    raise LocationError(f"the PNG has more than {MAX_CHUNKS} chunks")


def _write_png_crc(file: BinaryIO, kind_offset: int, end: int) -> None:
    if end - kind_offset > MAX_CHUNK_CRC_BYTES:
        raise LocationError("a changed PNG chunk is too large to checksum")
    crc = zlib.crc32(read_exact(file, kind_offset, end - kind_offset))
    file.seek(end)
    file.write(struct.pack(">I", crc))


def _webp(file: BinaryIO, size: int) -> bool:
    riff, riff_size, webp = struct.unpack("<4sI4s", read_exact(file, 0, 12))
    if riff != b"RIFF" or webp != b"WEBP" or 8 + riff_size > size:
        raise LocationError("the WebP RIFF header is malformed or the file is truncated")
    changed, position, riff_end = False, 12, 8 + riff_size
    for _ in range(MAX_CHUNKS):
        if position + 8 > riff_end:
            return _cut_off_after(file, riff_end, size) or changed
        kind, length = struct.unpack("<4sI", read_exact(file, position, 8))
        start, end = position + 8, position + 8 + length
        if end > riff_end:
            raise LocationError("a WebP chunk runs past the end of the file")
        if kind == b"EXIF":
            changed |= blank_exif_chunk_gps(file, start, end)
        elif kind == b"XMP ":
            changed |= blank_xmp_location(file, start, end)
        position = end + (length & 1)
    raise LocationError(f"the WebP has more than {MAX_CHUNKS} chunks")


def _gif(file: BinaryIO, size: int) -> bool:
    changed, end = blank_gif_xmp(file, size)
    return _cut_off_after(file, end, size) or changed


def _tiff(file: BinaryIO, size: int) -> bool:
    return blank_exif_gps(file, 0, size)


def _heif(file: BinaryIO, size: int) -> bool:
    items = metadata_items(file, size)
    videos = [(start, end) for kind, start, end in items if kind == "video"]
    if any(end != size for _, end in videos):
        raise LocationError("the HEIF motion-photo video (mpvd box) is not at the end of the file")
    image_end = videos[0][0] if videos else size
    changed = False
    for kind, start, end in items:
        if kind == "xmp":
            changed |= blank_xmp_location(file, start, end, items_kept=1 if image_end < size else None)
        elif kind == "exif":
            changed |= _heif_exif(file, start, end)
        elif kind in ("movie", "item list"):
            _refuse_movie_naming_a_place(file, start, end, kind)
    return _cut_off_after(file, image_end, size) or changed


def _refuse_movie_naming_a_place(file: BinaryIO, start: int, end: int, kind: str) -> None:
    # An image sequence's moov, and a meta box's item list, keep the place as QuickTime atoms (Apple's
    # location keys, ©xyz, 3GPP loci, GPS boxes, XMP): telling them from sample tables needs a movie
    # parser, so their names are looked for in its bytes instead, and a file that names one is refused.
    what = "image sequence's movie data" if kind == "movie" else "metadata's QuickTime item list"
    if end - start > MAX_MOVIE_BYTES:
        raise LocationError(f"the HEIF {what} is larger than {MAX_MOVIE_BYTES >> 20} MiB")
    movie = read_exact(file, start, end - start)
    if named := next((atom for atom in MOVIE_LOCATION_ATOMS if atom in movie), None):
        raise LocationError(
            f"the HEIF {what} names where it was taken ({named.decode('latin-1')!r}), which is not removed here"
        )


def _heif_exif(file: BinaryIO, start: int, end: int) -> bool:
    # An Exif item starts with the offset of the TIFF header after it (past "Exif\0\0").
    if end - start < 4:
        raise LocationError("the HEIF Exif item is malformed")
    header_offset = struct.unpack(">I", read_exact(file, start, 4))[0]
    return blank_exif_gps(file, start + 4 + header_offset, end)


_WALKERS: dict[str, Callable[..., bool]] = {  # (file, size), and a PNG budget for PNGs
    "image/jpeg": _jpeg,
    "image/png": _png,
    "image/webp": _webp,
    "image/tiff": _tiff,
    "image/gif": _gif,
    **dict.fromkeys(HEIF_TYPES, _heif),
}
