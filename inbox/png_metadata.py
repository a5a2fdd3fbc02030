"""Removes location from a PNG's metadata chunks, or refuses the PNG when one names a location that cannot go in place.

Chunks are recognised as exiftool recognises them, since what it reads, metadata viewers show:

- EXIF: `eXIf`, in any case (`exIf` was the draft's name), with or without an "Exif\0\0" header,
  blanked in place by inbox/tiff_blocks.py. Compressed (a NUL, 4 bytes, then zlib: the `zxIf`
  once proposed), it is refused when it holds GPS.
- XMP: iTXt, tEXt or zTXt `XML:com.adobe.xmp`, and the obsolete `tXMP` chunk: blanked in place by
  inbox/xmp_location.py when stored as text; compressed, its bytes cannot change without the
  chunk's length, so it is refused when it names a location. An XMP packet in the text of any
  other uncompressed text chunk (a comment, a keyword cut short) is blanked in place too.
- Hex raw profiles (tEXt, zTXt or iTXt `Raw profile type <name>`, usually compressed): ImageMagick
  keeps a converted image's EXIF, XMP, IPTC and Photoshop resources this way, and exiftool writes a
  PNG's IPTC so. The text is a newline, the profile's name, a newline, its length in decimal, a
  newline and the bytes in hex. They are decoded and handed, on a copy, to the parser that reads
  them in a JPEG (inbox/tiff_blocks.py, inbox/xmp_location.py, inbox/iptc_places.py): when it would
  blank anything, the profile names a location and the PNG is refused. Profiles that name none (an
  ICC profile, EXIF without GPS, IPTC with only a caption) stay as they are.
- Text chunks named for a location: ImageMagick also writes every EXIF and XMP property it read as
  a text chunk of that name (`exif:GPSLatitude`, `photoshop:City`), and exiftool shows each. A
  keyword whose parts are named as XMP's location properties are (inbox/xmp_location.py) loses its
  text to spaces; compressed, to a zlib stream of the same length that inflates to spaces.

Every chunk read is bounded by MAX_TEXT_BYTES, and so is what all of one PNG's compressed chunks
inflate to together (an InflateBudget per PNG): a file of small zlib bombs costs no more than
one. What cannot be decoded fails closed with a reason.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact
from inbox.iptc_places import IIM_MARKER, blank_iim_places, blank_photoshop_places
from inbox.jpeg_segments import JPEG_XMP
from inbox.tiff_blocks import EXIF_PREFIX, blank_exif_chunk_gps, blank_exif_gps
from inbox.xmp_location import LENIENT_XMP_MARK, blank_xmp_location, is_location_name, names_location

MAX_TEXT_BYTES = 16 * 1024 * 1024  # a text chunk's data, and what all of a PNG's compressed chunks inflate to
MAX_KEYWORD = 79  # the PNG specification's limit
XMP_KEYWORD = b"XML:com.adobe.xmp"
RAW_PROFILE = b"raw profile type "  # compared in lower case, as exiftool reads it
LOCATION_PROFILES = frozenset({b"exif", b"app1", b"xmp", b"iptc", b"8bim"})  # the others carry none
# The optional newline, the profile's name, its length (ImageMagick pads it to 8 with spaces).
_RAW_PROFILE_HEADER = re.compile(rb"\n?[^\n]{0,80}\n *(\d{1,9})\n")
# exiftool names a text chunk's tag by its keyword's letters, digits, "-" and "_" ("exif:GPSLatitude" is
# ExifGPSLatitude); the colons are kept to tell a prefix from the name.
_NOT_KEYWORD_NAME = re.compile(rb"[^\w:.-]")
# Deflate data of 2, 3 or 4 bytes that inflates to nothing: one, two or three empty fixed-Huffman blocks.
_EMPTY_DEFLATE = {2: b"\x03\x00", 3: b"\x02\x0c\x00", 4: b"\x02\x08\x30\x00"}
MAX_STORED_BLOCK = 0xFFFF


class InflateBudget:
    """What the compressed chunks of one PNG may inflate to, together."""

    def __init__(self):
        self.left = MAX_TEXT_BYTES

    def inflate(self, compressed: bytes) -> bytes:
        inflater = zlib.decompressobj()
        try:
            text = inflater.decompress(compressed, self.left + 1)  # (a limit of 0 would mean none)
        except zlib.error as error:
            raise LocationError(f"a compressed PNG text chunk cannot be read ({error})") from None
        if len(text) > self.left:
            raise LocationError(
                f"the PNG's compressed chunks inflate to more than {MAX_TEXT_BYTES >> 20} MiB, more than any "
                "photo's metadata"
            )
        self.left -= len(text)
        return text


def blank_png_exif(file: BinaryIO, start: int, end: int, budget: InflateBudget) -> bool:
    """Blank the GPS of the EXIF chunk data file[start:end]; True when the file changed."""
    if read_exact(file, start, min(end - start, 1)) != b"\0":
        return blank_exif_chunk_gps(file, start, end)
    if end - start > MAX_TEXT_BYTES:
        raise LocationError(f"the PNG's compressed EXIF chunk is larger than {MAX_TEXT_BYTES >> 20} MiB")
    exif = budget.inflate(read_exact(file, start, end - start)[5:])
    if blank_exif_gps(io.BytesIO(exif), 0, len(exif)):
        raise LocationError(
            "the PNG's compressed EXIF chunk holds where the photo was taken, which cannot be blanked in place"
        )
    return False


def blank_png_text(file: BinaryIO, kind: bytes, start: int, end: int, budget: InflateBudget) -> bool:
    """Blank the location in the tEXt, zTXt or iTXt chunk data file[start:end]; True when the file changed.

    LocationError when it names a location that cannot be blanked in place, or cannot be read.
    """
    keyword = read_exact(file, start, min(end - start, MAX_KEYWORD + 1)).split(b"\0", 1)[0]
    if any(map(is_location_name, _NOT_KEYWORD_NAME.sub(b"", keyword).split(b":"))):
        return _blank_text(file, kind, start, end, keyword)
    xmp, lowered = keyword == XMP_KEYWORD, keyword.lower()
    profile = lowered.removeprefix(RAW_PROFILE) if lowered.startswith(RAW_PROFILE) else None
    if not xmp and profile not in LOCATION_PROFILES:  # an ICC profile, say, is never decoded
        return _blank_xmp_in_text(file, kind, start, end)
    chunk = f'the PNG\'s "{keyword.decode("latin-1")}" text chunk'
    if end - start > MAX_TEXT_BYTES:
        raise LocationError(f"{chunk} is larger than {MAX_TEXT_BYTES >> 20} MiB")
    data = read_exact(file, start, end - start)
    text_start, compressed = _text_start(kind, data, len(keyword))
    if xmp and not compressed:
        return blank_xmp_location(file, start + text_start, end)
    text = budget.inflate(data[text_start:]) if compressed else data[text_start:]
    if xmp and names_location(text):
        raise LocationError(
            "the PNG's XMP names where the photo was taken (GPS or a place) and is compressed, so it cannot be "
            "blanked in place"
        )
    if profile in LOCATION_PROFILES and _profile_names_location(profile, _raw_profile_bytes(text)):
        raise LocationError(
            f"{chunk} names where the photo was taken (GPS or a place) in hex, which cannot be blanked in place"
        )
    return False


def _blank_text(file: BinaryIO, kind: bytes, start: int, end: int, keyword: bytes) -> bool:
    """Overwrite the text of a chunk whose keyword names a location with spaces, compressed or not.

    ImageMagick writes every EXIF and XMP property it read as a text chunk (`exif:GPSLatitude`,
    `photoshop:City`), and exiftool shows them.
    """
    if end - start > MAX_TEXT_BYTES:
        raise LocationError(
            f'the PNG\'s "{keyword.decode("latin-1")}" text chunk is larger than {MAX_TEXT_BYTES >> 20} MiB'
        )
    data = read_exact(file, start, end - start)
    text_start, compressed = _text_start(kind, data, len(keyword))
    method = len(keyword) + (1 if kind == b"zTXt" else 2)  # after the keyword's NUL (and an iTXt's flag)
    if compressed and data[method : method + 1] != b"\0":  # zlib's 0 is the only method: readers show the bytes
        raise LocationError("a PNG text chunk named for a location is compressed by a method no reader knows")
    length = len(data) - text_start
    blank = _zlib_of_spaces(length) if compressed else b" " * length
    file.seek(start + text_start)
    file.write(blank)
    return blank != data[text_start:]


def _zlib_of_spaces(length: int) -> bytes:
    """A zlib stream of exactly `length` bytes that inflates to spaces: stored blocks, or empty ones when too short."""
    left = length - 6  # for the deflate data, between the zlib header (2 bytes) and the Adler-32 (4)
    if left < 2:
        raise LocationError("a compressed PNG text chunk that names a location is too short to be zlib")
    if left in _EMPTY_DEFLATE:
        return b"\x78\x01" + _EMPTY_DEFLATE[left] + struct.pack(">I", zlib.adler32(b""))
    blocks, spaces = [], 0
    while left:  # each stored block: a header byte, its length and the length's complement, the bytes
        size = min(left - 5, MAX_STORED_BLOCK)
        if 0 < left - 5 - size < 5:  # what would remain could not hold a block: leave it room for one
            size = left - 10
        final = size == left - 5
        blocks.append(bytes([final]) + struct.pack("<HH", size, size ^ 0xFFFF) + b" " * size)
        left, spaces = left - 5 - size, spaces + size
    return b"\x78\x01" + b"".join(blocks) + struct.pack(">I", zlib.adler32(b" " * spaces))


def _blank_xmp_in_text(file: BinaryIO, kind: bytes, start: int, end: int) -> bool:
    """Blank an XMP packet in an uncompressed text chunk of another keyword; readers show its text, packet and all."""
    if kind == b"zTXt" or end - start > MAX_TEXT_BYTES:
        return False  # compressed (an iTXt's compressed text shows no mark either), or past what is read
    if not LENIENT_XMP_MARK.search(read_exact(file, start, end - start)):
        return False
    return blank_xmp_location(file, start, end)


def _text_start(kind: bytes, data: bytes, keyword_length: int) -> tuple[int, bool]:
    """Where the text starts in a text chunk's data, and whether it is compressed."""
    after_keyword = keyword_length + 1
    if kind == b"tEXt":
        return after_keyword, False
    if kind == b"zTXt":  # then the compression method
        return after_keyword + 1, True
    # iTXt: compression flag, compression method, language NUL, translated keyword NUL, then the text.
    parts = data[after_keyword + 2 :].split(b"\0", 2)
    if len(data) < after_keyword + 2 or len(parts) != 3:
        raise LocationError("a PNG iTXt chunk is malformed")
    return len(data) - len(parts[2]), data[after_keyword] != 0


def _raw_profile_bytes(text: bytes) -> bytes:
    header = _RAW_PROFILE_HEADER.match(text)
    if header is None:
        raise LocationError("a PNG raw profile's header (name and length) is malformed")
    try:
        profile = bytes.fromhex(text[header.end() :].decode("ascii"))
    except ValueError:  # UnicodeDecodeError is one
        raise LocationError("a PNG raw profile is not hex") from None
    if len(profile) != int(header.group(1)):
        raise LocationError("a PNG raw profile's length does not match its data")
    return profile


def _profile_names_location(name: bytes, profile: bytes) -> bool:
    """True when the parser that reads this profile in a JPEG would blank something in it."""
    copy = io.BytesIO(profile)
    if name == b"exif" or (name == b"app1" and profile.startswith(EXIF_PREFIX)):
        return blank_exif_chunk_gps(copy, 0, len(profile))  # ImageMagick writes exif with and without the prefix
    if name == b"xmp" or (name == b"app1" and profile.startswith(JPEG_XMP)):
        return names_location(profile)
    if name == b"iptc" and profile[:1] == bytes([IIM_MARKER]):
        return blank_iim_places(copy, 0, len(profile))
    if name in (b"iptc", b"8bim"):  # exiftool writes a PNG's IPTC as Photoshop resources
        return blank_photoshop_places(copy, 0, len(profile))
    return False
