"""Removes location from a PNG's metadata chunks in place, or refuses the PNG when that cannot be done.

Chunks are recognised as exiftool recognises them, since what it reads, metadata viewers show:

- EXIF: `eXIf`, in any case (`exIf` was the draft's name), with or without an "Exif\0\0" header,
  blanked by inbox/tiff_blocks.py; also compressed (a NUL, 4 bytes, then zlib: the `zxIf` once
  proposed).
- XMP: iTXt, tEXt or zTXt `XML:com.adobe.xmp`, and the obsolete `tXMP` chunk, blanked by
  inbox/xmp_location.py; also an XMP packet in the text of any other uncompressed text chunk (a
  comment, a keyword cut short), which readers show, packet and all.
- Hex raw profiles (tEXt, zTXt or iTXt `Raw profile type <name>`, usually compressed): ImageMagick
  keeps a converted image's EXIF, XMP, IPTC and Photoshop resources this way, and exiftool writes a
  PNG's IPTC so. The text is a newline, the profile's name, a newline, its length in decimal, a
  newline and the bytes in hex. They are decoded, blanked by the parser that reads them in a JPEG
  (inbox/tiff_blocks.py, inbox/xmp_location.py, inbox/iptc_places.py) and written back as hex in
  the same lines. Other profiles (an ICC profile) are not decoded.
- Text chunks named for a location: ImageMagick also writes every EXIF and XMP property it read as
  a text chunk of that name (`exif:GPSLatitude`, `photoshop:City`), and exiftool shows each. A
  keyword whose parts are named as XMP's location properties are (inbox/xmp_location.py) loses its
  text.

Compressed text is inflated, blanked and compressed again into exactly the bytes it had
(inbox/zlib_in_place.py), so nothing after it moves; when it no longer fits there, or is
compressed by a method no reader knows, the PNG is refused. Every chunk read is bounded by
MAX_TEXT_BYTES; what compressed chunks inflate to together is too, and so is the XMP decoded from
them and from hex (one packet's bound), for all the PNGs of a message together: a file of small
zlib bombs, or a message of small PNGs each holding one, costs no more than one. What cannot be
decoded fails closed with a reason.
"""

from __future__ import annotations

import io
import re
import zlib
from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact
from inbox.iptc_places import IIM_MARKER, blank_iim_places, blank_photoshop_places
from inbox.jpeg_segments import JPEG_XMP
from inbox.tiff_blocks import EXIF_PREFIX, blank_exif_chunk_gps, blank_exif_gps
from inbox.xmp_location import LENIENT_XMP_MARK, MAX_XMP_BYTES, blank_xmp_location, is_location_name
from inbox.zlib_in_place import zlib_of_length

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
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]+")


class PngBudget:
    """The work PNG metadata may cost, together: what compressed chunks inflate to, the XMP decoded from
    them and from hex, and what is compressed to write them back. One is shared by a message's PNGs,
    since a 4 KiB PNG can hold 4 MiB of crafted XMP (0.7 s to check)."""

    FULL = (MAX_TEXT_BYTES, MAX_XMP_BYTES, 2 * MAX_TEXT_BYTES)

    def __init__(self):
        self.left, self.xmp_left, self.compress_left = self.FULL
        self.shared = False

    def start_png(self) -> None:
        """A PNG begins: if the budget runs out in it after other PNGs spent part, its reason says so."""
        self.shared = (self.left, self.xmp_left, self.compress_left) != self.FULL

    def _exceeded(self, reason: str) -> LocationError:
        if self.shared:
            reason += ", with the PNGs before it in this message: send it in a mail of its own"
        return LocationError(reason)

    def inflate(self, compressed: bytes) -> bytes:
        inflater = zlib.decompressobj()
        try:
            text = inflater.decompress(compressed, self.left + 1)  # (a limit of 0 would mean none)
        except zlib.error as error:
            raise LocationError(f"a compressed PNG text chunk cannot be read ({error})") from None
        if len(text) > self.left:
            raise self._exceeded(
                f"the PNG's compressed chunks inflate to more than {MAX_TEXT_BYTES >> 20} MiB, more than any "
                "photo's metadata"
            )
        self.left -= len(text)
        return text

    def charge_compression(self, size: int) -> None:
        """Every chunk can be compressed back once, and small ones tried again many ways (inbox/zlib_in_place.py)."""
        if size > self.compress_left:
            raise self._exceeded("the PNG's compressed chunks took more tries to compress back than any photo's")
        self.compress_left -= size

    def charge_xmp(self, size: int) -> None:
        """Checking XMP costs most per byte (up to 0.15 s per MiB): the XMP decoded from the message's PNGs is
        held to one packet's bound together. Decoded EXIF counts whole, as its tag 700 can hold XMP."""
        if size > self.xmp_left:
            raise self._exceeded(
                f"the PNG's compressed or hex XMP and EXIF are larger than {MAX_XMP_BYTES >> 20} MiB together"
            )
        self.xmp_left -= size

    def blanked_xmp(self, packet: bytes) -> bytes:
        """The decoded packet blanked."""
        self.charge_xmp(len(packet))
        copy = io.BytesIO(packet)
        blank_xmp_location(copy, 0, len(packet))
        return copy.getvalue()


def blank_png_exif(file: BinaryIO, start: int, end: int, budget: PngBudget) -> bool:
    """Blank the GPS of the EXIF chunk data file[start:end]; True when the file changed."""
    if read_exact(file, start, min(end - start, 1)) != b"\0":
        return blank_exif_chunk_gps(file, start, end)
    if end - start > MAX_TEXT_BYTES:
        raise LocationError(f"the PNG's compressed EXIF chunk is larger than {MAX_TEXT_BYTES >> 20} MiB")
    inflated = budget.inflate(read_exact(file, start, end - start)[5:])
    budget.charge_xmp(len(inflated))
    exif = io.BytesIO(inflated)
    if not blank_exif_gps(exif, 0, len(inflated)):
        return False
    return _write_compressed(file, start + 5, end, exif.getvalue(), "the PNG's compressed EXIF chunk", budget)


def blank_png_text(file: BinaryIO, kind: bytes, start: int, end: int, budget: PngBudget) -> bool:
    """Blank the location in the tEXt, zTXt or iTXt chunk data file[start:end]; True when the file changed.

    LocationError when it names a location that cannot be blanked in place, or cannot be read.
    """
    keyword = read_exact(file, start, min(end - start, MAX_KEYWORD + 1)).split(b"\0", 1)[0]
    named = any(map(is_location_name, _NOT_KEYWORD_NAME.sub(b"", keyword).split(b":")))
    xmp, lowered = keyword == XMP_KEYWORD, keyword.lower()
    profile = lowered.removeprefix(RAW_PROFILE) if lowered.startswith(RAW_PROFILE) else None
    if not named and not xmp and profile not in LOCATION_PROFILES:  # an ICC profile, say, is never decoded
        return _blank_xmp_in_text(file, kind, start, end)
    chunk = f'the PNG\'s "{keyword.decode("latin-1")}" text chunk'
    if end - start > MAX_TEXT_BYTES:
        raise LocationError(f"{chunk} is larger than {MAX_TEXT_BYTES >> 20} MiB")
    data = read_exact(file, start, end - start)
    text_start, compressed = _text_start(kind, data, len(keyword))
    if named:
        # Its text is the location: spaces, or compressed, a stream of nothing.
        method = len(keyword) + (1 if kind == b"zTXt" else 2)  # after the keyword's NUL (and an iTXt's flag)
        if compressed and data[method : method + 1] != b"\0":  # zlib's 0 is the only one: readers show the bytes
            raise LocationError(f"{chunk} names a location and is compressed by a method no reader knows")
        text, blanked = data[text_start:], b"" if compressed else b" " * (len(data) - text_start)
    elif xmp and not compressed:
        return blank_xmp_location(file, start + text_start, end)
    else:
        text = budget.inflate(data[text_start:]) if compressed else data[text_start:]
        blanked = budget.blanked_xmp(text) if xmp else _blanked_raw_profile(profile, text, budget)
    if blanked == text:
        return False
    if compressed:
        return _write_compressed(file, start + text_start, end, blanked, chunk, budget)
    file.seek(start + text_start)
    file.write(blanked)  # the same length: spaces, or the hex in its layout
    return True


def _write_compressed(file: BinaryIO, start: int, end: int, text: bytes, chunk: str, budget: PngBudget) -> bool:
    """Write `text`, compressed, over the zlib stream file[start:end], in exactly its bytes."""
    stream = zlib_of_length(end - start, text, budget.charge_compression)
    if stream is None:
        raise LocationError(
            f"{chunk} holds where the photo was taken, and without it does not compress back into the same number "
            "of bytes"
        )
    file.seek(start)
    file.write(stream)
    return True


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


def _blanked_raw_profile(name: bytes, text: bytes, budget: PngBudget) -> bytes:
    """The hex raw profile `text` with the location its parser blanks, in the same layout (lines, case aside)."""
    header = _RAW_PROFILE_HEADER.match(text)
    if header is None:
        raise LocationError("a PNG raw profile's header (name and length) is malformed")
    try:
        profile = bytes.fromhex(text[header.end() :].decode("ascii"))
    except ValueError:  # UnicodeDecodeError is one
        raise LocationError("a PNG raw profile is not hex") from None
    if len(profile) != int(header.group(1)):
        raise LocationError("a PNG raw profile's length does not match its data")
    blanked = _blanked_profile(name, profile, budget)
    if blanked == profile:
        return text
    digits, used = blanked.hex().encode(), 0

    def next_digits(run: re.Match) -> bytes:
        nonlocal used
        used += len(run.group())
        return digits[used - len(run.group()) : used]

    rewritten = text[: header.end()] + _HEX_RUN.sub(next_digits, text[header.end() :])
    if used != len(digits) or len(rewritten) != len(text):  # fromhex takes pairs alone, so this cannot happen
        raise LocationError("a PNG raw profile's hex could not be written back in its layout")
    return rewritten


def _blanked_profile(name: bytes, profile: bytes, budget: PngBudget) -> bytes:
    """The profile with what the parser that reads it in a JPEG blanks there."""
    copy = io.BytesIO(profile)
    if name == b"exif" or (name == b"app1" and profile.startswith(EXIF_PREFIX)):
        budget.charge_xmp(len(profile))
        blank_exif_chunk_gps(copy, 0, len(profile))  # ImageMagick writes exif with and without the prefix
    elif name == b"xmp" or (name == b"app1" and profile.startswith(JPEG_XMP)):
        return budget.blanked_xmp(profile)
    elif name == b"iptc" and profile[:1] == bytes([IIM_MARKER]):
        blank_iim_places(copy, 0, len(profile))
    elif name in (b"iptc", b"8bim"):  # exiftool writes a PNG's IPTC as Photoshop resources
        blank_photoshop_places(copy, 0, len(profile))
    return copy.getvalue()
