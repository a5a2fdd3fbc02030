"""Crafted maker notes, Kodak IFDs and FLIR data whose tags all point at the same bytes.

Many MakerNote tags at one maker note whose place tags share one value, a KodakIFD listing one IFD
again and again with its GPSStrings over one value, a FLIR directory of GPS records over one
region: each is read once, in time bounded by the photo's bytes, and its place is blanked. Maker
notes, Kodak IFDs or GPSStrings that overlap without being the same bytes are refused; overlapping
place values in one maker note zero it whole, overlapping FLIR GPS records zero the FLIR data.
Distinct maker notes and a FLIR GPS record listed twice are blanked as before.
"""

from __future__ import annotations

import struct
import time

import pytest

from inbox.location import LocationError, remove_location
from tests.harness import jpeg_with_exif, jpeg_with_segment

PANASONIC = b"Panasonic\0\0\0"
CITY = 0x6D  # Panasonic:City
KODAK_IFD, GPS_STRING = 0x8290, 0x0402


def ifd(entries: list[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    """A little-endian IFD: its count, each (tag, type, count, value or offset) entry, the next IFD's offset."""
    packed = b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return struct.pack("<H", len(entries)) + packed + struct.pack("<I", next_ifd)


def panasonic_note(at: int, places: list[tuple[int, int]], value: bytes) -> bytes:
    """A Panasonic maker note at `at` of the EXIF: a City tag per (offset after the IFD, length), then `value`."""
    values_at = at + len(PANASONIC) + len(ifd([(0, 0, 0, 0)] * len(places)))
    return PANASONIC + ifd([(CITY, 7, length, values_at + offset) for offset, length in places]) + value


def exif_with_maker_notes(tags: int, places: int, value: bytes, shorter: bool = False) -> bytes:
    """EXIF whose IFD0 has `tags` MakerNote tags at one maker note, of `places` City tags all over `value`.

    `shorter`: the last tag gives the maker note one byte fewer.
    """
    at = 8 + len(ifd([(0, 0, 0, 0)] * tags))
    note = panasonic_note(at, [(0, len(value))] * places, value)
    entries = [(0x927C, 7, len(note), at)] * tags
    entries[-1] = (0x927C, 7, len(note) - shorter, at)
    return b"II*\0" + struct.pack("<I", 8) + ifd(entries) + note


def published(tmp_path, data: bytes) -> tuple[bool, bytes, float]:
    """remove_location on `data`: what it returned, the bytes it left, the seconds it took."""
    path = tmp_path / "crafted"
    path.write_bytes(data)
    started = time.monotonic()
    changed = remove_location(str(path), "image/jpeg")
    return changed, path.read_bytes(), time.monotonic() - started


def test_many_maker_note_tags_at_one_maker_note_whose_places_share_a_value_are_read_once(tmp_path):
    value = bytes(16 * 1024 - 6) + b"Paris\0"
    # 500 places, not 512: a count of 0x0200 would have the maker note's IFD read in the other byte order
    changed, after, seconds = published(tmp_path, jpeg_with_exif(exif_with_maker_notes(1024, 500, value)))

    assert changed is True and b"Paris" not in after and PANASONIC in after
    assert seconds < 1  # the value was read 1024 x 500 times over: 3 s


def test_two_maker_notes_that_overlap_are_refused(tmp_path):
    with pytest.raises(LocationError, match="^two maker notes in the EXIF data share bytes$"):
        published(tmp_path, jpeg_with_exif(exif_with_maker_notes(2, 1, b"Paris\0", shorter=True)))


def test_a_maker_note_whose_place_values_overlap_is_zeroed_whole(tmp_path):
    at = 8 + len(ifd([(0, 0, 0, 0)]))
    note = panasonic_note(at, [(0, 16), (8, 16)], b"Paris, Tour Eiffel\0".ljust(24, b"\0"))
    exif = b"II*\0" + struct.pack("<I", 8) + ifd([(0x927C, 7, len(note), at)]) + note
    changed, after, _ = published(tmp_path, jpeg_with_exif(exif))

    assert changed is True and PANASONIC not in after and b"Paris" not in after


def test_maker_notes_of_two_ifds_both_lose_their_places(tmp_path):
    first_at = 8 + len(ifd([(0, 0, 0, 0)]))
    first = panasonic_note(first_at, [(0, 8)], b"Paris\0\0\0")
    second_ifd = first_at + len(first)
    second_at = second_ifd + len(ifd([(0, 0, 0, 0)]))
    second = panasonic_note(second_at, [(0, 8)], b"Lyon\0\0\0\0")
    exif = b"II*\0" + struct.pack("<I", 8) + ifd([(0x927C, 7, len(first), first_at)], second_ifd) + first
    exif += ifd([(0x927C, 7, len(second), second_at)]) + second
    changed, after, _ = published(tmp_path, jpeg_with_exif(exif))

    assert changed is True and b"Paris" not in after and b"Lyon" not in after and after.count(PANASONIC) == 2


def exif_with_kodak_ifds(offsets: list[int], strings: list[tuple[int, int]], value: bytes, tags: int = 1) -> bytes:
    """EXIF whose IFD0 has `tags` KodakIFD tags, each listing the Kodak IFD at each of `offsets` (relative to its
    own), that IFD of a GPSString per (offset after the IFD, length), then `value`."""
    listed_at = 8 + len(ifd([(0, 0, 0, 0)] * tags))
    kodak_at = listed_at + 4 * len(offsets) * (len(offsets) > 1)  # one offset is held in the tag itself
    values_at = kodak_at + len(ifd([(0, 0, 0, 0)] * len(strings)))
    kodak = ifd([(GPS_STRING, 2, length, values_at + offset) for offset, length in strings])
    if len(offsets) == 1:
        pointer, listed = kodak_at + offsets[0], b""
    else:
        pointer, listed = listed_at, struct.pack(f"<{len(offsets)}I", *(kodak_at + offset for offset in offsets))
    entries = [(KODAK_IFD, 4, len(offsets), pointer)] * tags
    return b"II*\0" + struct.pack("<I", 8) + ifd(entries) + listed + kodak + value


def test_a_kodak_ifd_listed_many_times_whose_gps_strings_share_a_value_is_read_once(tmp_path):
    value = bytes(4096 - 19) + b"N 48.8584 E 2.2945\0"
    exif = exif_with_kodak_ifds([0] * 1024, [(0, len(value))] * 1000, value)
    changed, after, seconds = published(tmp_path, jpeg_with_exif(exif))

    assert changed is True and b"48.8584" not in after
    assert seconds < 1  # the value was read 1024 x 1000 times over: 5 s


def test_many_kodak_ifd_tags_sharing_one_list_read_it_once(tmp_path):
    exif = exif_with_kodak_ifds([0] * 1024, [(0, 19)], b"N 48.8584 E 2.2945\0", tags=4096)
    changed, after, seconds = published(tmp_path, jpeg_with_exif(exif))

    assert changed is True and b"48.8584" not in after
    assert seconds < 0.5  # each tag's 1024 offsets were unpacked again: 2 s for this 53 KB, per IFD


@pytest.mark.parametrize(
    "offsets, strings, reason",
    [
        pytest.param([0, 12], [(0, 19)], "two Kodak IFDs in the EXIF data share bytes", id="IFDs"),
        pytest.param([0], [(0, 19), (1, 18)], "two Kodak GPS strings in the EXIF data share bytes", id="strings"),
    ],
)
def test_kodak_ifds_or_gps_strings_that_overlap_are_refused(tmp_path, offsets, strings, reason):
    with pytest.raises(LocationError, match=f"^{reason}$"):
        published(tmp_path, jpeg_with_exif(exif_with_kodak_ifds(offsets, strings, b"N 48.8584 E 2.2945\0")))


def flir_jpeg(records: list[tuple[int, int]], region: bytes) -> bytes:
    """A JPEG of FLIR FFF data (a big-endian header naming its camera "TestCam") whose directory holds a
    GPS record per (offset in `region`, length), in APP1 chunks of at most 64 KiB."""
    directory = 0x40
    region_at = directory + 32 * len(records)
    header = b"FFF\0" + b"TestCam".ljust(16, b"\0") + struct.pack(">III", 100, directory, len(records))
    entries = b"".join(
        struct.pack(">HHIIII", 0x2B, 1, 0x64, 1, region_at + offset, length).ljust(32, b"\0")
        for offset, length in records
    )
    data = header.ljust(directory, b"\0") + entries + region
    size = 65533 - 2 - 8
    chunks = [data[at : at + size] for at in range(0, len(data), size)]
    return jpeg_with_segment(0xE1, *(b"FLIR\0\x01" + bytes((n, len(chunks) - 1)) + c for n, c in enumerate(chunks)))


def test_many_flir_gps_records_over_one_region_are_read_once(tmp_path):
    region = bytes(512 * 1024 - 10) + b"N 48.8584\0"
    changed, after, seconds = published(tmp_path, flir_jpeg([(0, len(region))] * 2048, region))

    assert changed is True and b"48.8584" not in after and b"TestCam" in after
    assert seconds < 1  # the region was copied and read 2048 times over: 6 s


def test_a_flir_gps_record_listed_twice_is_zeroed_and_the_thermal_data_stays(tmp_path):
    changed, after, _ = published(tmp_path, flir_jpeg([(0, 24)] * 2, b"N 48.8584 E 2.2945\0".ljust(24, b"\0")))

    assert changed is True and b"48.8584" not in after and b"TestCam" in after


def test_flir_gps_records_that_overlap_zero_the_flir_data(tmp_path):
    changed, after, _ = published(tmp_path, flir_jpeg([(0, 24), (8, 16)], b"N 48.8584 E 2.2945\0".ljust(24, b"\0")))

    assert changed is True and b"48.8584" not in after and b"TestCam" not in after
