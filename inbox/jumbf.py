"""Zeroes a JPEG's JUMBF boxes (APP11: C2PA content credentials), and a PNG's (its `caBX` chunk), when they name
where the photo was taken.

A C2PA manifest may carry the camera's EXIF as a `stds.exif` assertion (JSON-LD or CBOR, keyed
`exif:GPSLatitude` and so on) and IPTC places as a `stds.iptc` one; exiftool shows them. Blanking
those values would break the manifest's hashes, and removing location elsewhere in the photo has
already broken its hash of the image data, so the credentials could not be validated anyway: every
JUMBF packet is zeroed instead, and readers see APP11 segments they do not know.

An APP11 packet is "JP", a 2-byte box instance, a 4-byte sequence number, then the box's LBox and
TBox (repeated in every packet, with an XLBox when LBox is 1) and a slice of its content. The
contents of all packets together, at most MAX_JUMBF_BYTES, joined in sequence order, are searched
for the key names, in any case. Packets
that are out of sequence cannot be read as credentials, and are zeroed as well.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from inbox.fail_closed import LocationError, read_exact, zero_all

MAX_JUMBF_BYTES = 16 * 1024 * 1024
APP11 = 0xEB
# Key names as the assertions write them (JSON-LD, CBOR, XMP), in any case and after any prefix (JSON-LD lets a
# writer pick `EXIF:`): any GPS key (where the camera looked, GPSDest…, is a place too), and any key holding a
# latitude or longitude, as exiftool shows one whatever else its name says (schema.org's are lowercase).
LOCATION_KEY = re.compile(rb"(?i)gps|latitude|longitude|LocationCreated|LocationShown|photoshop:City")


def is_jumbf(marker: int, head: bytes, length: int) -> bool:
    """True when a segment's payload of `length` bytes starting with `head` is a JUMBF packet, as exiftool
    tells one: an APP11 payload of 16 bytes or more starting "JP", whatever its box type."""
    return marker == APP11 and head[:2] == b"JP" and length >= 16


def zero_jumbf_naming_a_place(file: BinaryIO, packets: list[tuple[int, int]]) -> bool:
    """Zero every JUMBF packet (file ranges of APP11 payloads) when one names a place, or when they are out
    of sequence; True when it did."""
    if sum(end - start for start, end in packets) > MAX_JUMBF_BYTES:
        raise LocationError(f"the JPEG's JUMBF boxes (C2PA) are larger than {MAX_JUMBF_BYTES >> 20} MiB")
    payloads = [read_exact(file, start, end - start) for start, end in packets]
    # Joined as a reader joins them: each box's packets in the order of their sequence numbers.
    content = b"".join(map(_content, sorted(payloads, key=lambda payload: (payload[2:4], payload[4:8]))))
    if _in_sequence(payloads) and not _names_a_place(content):
        return False
    return zero_all(file, packets)


def zero_c2pa_chunk_naming_a_place(file: BinaryIO, start: int, end: int) -> bool:
    """Zero a PNG's `caBX` chunk data file[start:end] (C2PA credentials, one JUMBF box, which exiftool reads as a
    JPEG's) when it names a place; True when it did. The caller mends the chunk's CRC."""
    if end - start > MAX_JUMBF_BYTES:
        raise LocationError(f"the PNG's C2PA chunk (caBX) is larger than {MAX_JUMBF_BYTES >> 20} MiB")
    if not _names_a_place(read_exact(file, start, end - start)):
        return False
    return zero_all(file, [(start, end)])


def _names_a_place(content: bytes) -> bool:
    return LOCATION_KEY.search(content) is not None


def _in_sequence(payloads: list[bytes]) -> bool:
    """True when each box's packets are numbered 1, 2, … (in any order), as a reader must join them.

    Packets out of sequence cannot be joined into credentials anyone can check, and exiftool sizes
    a list by the sequence number (one of 2**31 exhausts its memory).
    """
    sequences: dict[bytes, list[int]] = {}
    for payload in payloads:  # "JP", the box instance, the sequence number
        sequences.setdefault(payload[2:4], []).append(struct.unpack_from(">I", payload, 4)[0])
    return all(sorted(numbers) == list(range(1, len(numbers) + 1)) for numbers in sequences.values())


def _content(payload: bytes) -> bytes:
    """The packet's slice of its box's content: what follows "JP", the box instance, the sequence number, LBox and
    TBox (and XLBox when LBox is 1)."""
    length = 24 if len(payload) >= 12 and struct.unpack_from(">I", payload, 8)[0] == 1 else 16
    if len(payload) < length:
        raise LocationError("a JUMBF packet is shorter than its header")
    return payload[length:]
