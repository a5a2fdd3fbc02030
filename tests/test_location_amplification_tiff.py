"""Crafted EXIF (TIFF-structured) blocks whose pointers would make the location walk read the same bytes
again and again: many tags at one XMP, IPTC or Photoshop block, many values over one run of zeros, many
IFDs at one thumbnail, SubIFD lists of millions of offsets, IFDs that overlap. Each is handled in time
bounded by its bytes, or refused with its reason; pages that share a block are still blanked.
"""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from inbox.location import LocationError, remove_location
from tests.harness import XMP, jpeg_with_exif, make_image, tiff_block

# The harness's packet with its GPS, then 40 KiB that are slow to check (a prefix at every third byte).
SLOW_XMP = XMP + b"<?xpacket " + b" a:" * 13000


def entries_at(tag: int, count: int, length: int, data_at: int, step: int = 0) -> list[tuple[int, int, int, int]]:
    """`count` entries of `tag`, UNDEFINED bytes, each `length` long at `data_at` (the next `step` bytes further)."""
    return [(tag, 7, length, data_at + step * index) for index in range(count)]


def tiff_with_block(tag: int, count: int, block: bytes, step: int = 0) -> bytes:
    """A TIFF whose IFD0 has `count` entries of `tag`, all pointing at `block` right after the IFD."""
    data_at = 8 + 2 + 12 * count + 4
    return tiff_block(8, (8, entries_at(tag, count, len(block) - step * (count - 1), data_at, step), 0)) + block


def timed_removal(path, content_type: str):
    started = time.monotonic()
    result = remove_location(str(path), content_type)
    return result, time.monotonic() - started


@pytest.mark.parametrize("container", ["TIFF", "JPEG"])
def test_many_tags_at_one_xmp_packet_check_it_once(tmp_path, container):
    tiff = tiff_with_block(700, 400, SLOW_XMP)
    path = tmp_path / "shared xmp"
    path.write_bytes(tiff if container == "TIFF" else jpeg_with_exif(tiff))

    result, took = timed_removal(path, f"image/{container.lower()}")

    assert result is True and took < 1  # checked 400 times over: 2.5 s
    assert b"52,31.2N" not in path.read_bytes() and b"Harbour" in path.read_bytes()


@pytest.mark.parametrize("tag", [33723, 34377], ids=["IPTC-NAA", "Photoshop resources"])
def test_many_tags_at_one_iptc_block_read_it_once(tmp_path, tag):
    iim = b"\x1c\x02\x5a\x00\x06Berlin"  # 2:90, the city
    block = b"8BIM\x04\x04\0\0" + struct.pack(">I", len(iim)) + iim if tag == 34377 else iim
    path = tmp_path / "shared iptc.tif"
    path.write_bytes(tiff_with_block(tag, 600, block + bytes(1 << 20)))  # readers stop at the zeros

    result, took = timed_removal(path, "image/tiff")

    assert result is True and took < 1  # read 600 times over: 2.5 s
    assert b"Berlin" not in path.read_bytes()


def test_many_tags_at_one_xmp_packet_in_a_png_compressed_exif_check_it_once(tmp_path):
    packet = b"<?xpacket " + b" a:" * (1 << 18)  # no location, 0.75 MiB slow to check
    exif = b"\0" + bytes(4) + zlib.compress(tiff_with_block(700, 16, packet), 9)
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    png = make_image(".png")
    path = tmp_path / "shared xmp.png"
    path.write_bytes(png[:33] + chunk + png[33:])

    result, took = timed_removal(path, "image/png")

    assert result is False and took < 1  # a 1 KiB PNG whose packet was checked 16 times over: 2 s


@pytest.mark.parametrize("where", ["GeoTIFF tags", "a GPS IFD"])
@pytest.mark.parametrize("step", [0, 1], ids=["same bytes", "each a byte further"])
def test_many_values_over_one_run_are_zeroed_reading_it_once(tmp_path, where, step):
    count, length = 200, 2 << 20
    if where == "GeoTIFF tags":
        data_at = 8 + 2 + 12 * count + 4
        tiff = tiff_block(8, (8, entries_at(0x830E, count, length, data_at, step), 0))
    else:
        gps_at, data_at = 8 + 2 + 12 + 4, 8 + 2 + 12 + 4 + 2 + 12 * count + 4
        gps = [(index + 1, *entry[1:]) for index, entry in enumerate(entries_at(0, count, length, data_at, step))]
        tiff = tiff_block(8, (8, [(0x8825, 4, 1, gps_at)], 0), (gps_at, gps, 0))
    path = tmp_path / "shared values.tif"
    path.write_bytes(tiff + b"\x01" * (length + step * (count - 1)))

    result, took = timed_removal(path, "image/tiff")

    assert result is True and took < 1  # read 200 times over: 2.5 s
    assert path.read_bytes()[data_at:] == bytes(length + step * (count - 1))


def chain_at_one_thumbnail(count: int, thumbnail: bytes) -> bytes:
    """A TIFF of `count` chained IFDs, each pointing its JPEGInterchangeFormat at the same `thumbnail`."""
    ifd_length = 2 + 2 * 12 + 4
    at = 8 + count * ifd_length
    tags = [(0x0201, 4, 1, at), (0x0202, 4, 1, len(thumbnail))]
    ifds = [(8 + k * ifd_length, tags, 8 + (k + 1) * ifd_length if k + 1 < count else 0) for k in range(count)]
    return tiff_block(8, *ifds) + thumbnail


@pytest.mark.parametrize("shape", ["a broken tail of 2 MiB", "4095 empty segments"])
def test_many_ifds_at_one_thumbnail_walk_it_once(tmp_path, shape):
    if shape == "a broken tail of 2 MiB":
        app1 = b"Exif\0\0secret place"
        thumbnail = b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + b"\x01" * (2 << 20)
        count, changed = 200, True
    else:
        thumbnail, count, changed = b"\xff\xd8" + b"\xff\xe0\x00\x02" * 4095 + b"\xff\xd9", 1000, False
    path = tmp_path / "shared thumbnail.tif"
    path.write_bytes(chain_at_one_thumbnail(count, thumbnail))

    result, took = timed_removal(path, "image/tiff")

    assert result is changed and took < 1  # walked 200 or 1000 times over: 2.5 s
    assert b"secret place" not in path.read_bytes()


# IFD0's thumbnail at 68 holds an APP0 segment; IFD1's thumbnail is in that segment, at 74.
THUMBNAIL_INSIDE_A_THUMBNAIL = tiff_block(
    8, (8, [(0x0201, 4, 1, 68), (0x0202, 4, 1, 10)], 38), (38, [(0x0201, 4, 1, 74), (0x0202, 4, 1, 4)], 0)
) + (b"\xff\xd8" + b"\xff\xe0\x00\x04" + b"\xff\xd8\xff\xd9")


@pytest.mark.parametrize(
    ("tiff", "reason"),
    [
        (tiff_with_block(700, 2, XMP, step=1), "two XMP packets in the EXIF data share bytes"),
        (tiff_with_block(33723, 3, bytes(64), step=8), "two IPTC blocks in the EXIF data share bytes"),
        (THUMBNAIL_INSIDE_A_THUMBNAIL, "two thumbnails in the EXIF data share bytes"),
    ],
    ids=["XMP packets", "IPTC blocks", "thumbnails"],
)
def test_blocks_of_a_kind_that_overlap_are_refused(tmp_path, tiff, reason):
    path = tmp_path / "overlapping.tif"
    path.write_bytes(tiff)
    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/tiff")


@pytest.mark.parametrize("shared", [True, False], ids=["one packet", "a packet each"])
def test_pages_that_point_at_one_xmp_packet_or_at_one_each_are_blanked(tmp_path, shared):
    second_at = 44 + len(XMP) * (not shared)  # after IFD0 and IFD1, of one entry each
    tiff = tiff_block(8, (8, [(700, 7, len(XMP), 44)], 26), (26, [(700, 7, len(XMP), second_at)], 0))
    path = tmp_path / "pages.tif"
    path.write_bytes(tiff + XMP + XMP * (not shared))

    assert remove_location(str(path), "image/tiff") is True

    assert b"52,31.2N" not in path.read_bytes() and path.read_bytes().count(b"Harbour") == 2 - shared


@pytest.mark.parametrize("container", ["TIFF", "JPEG"])
def test_subifd_lists_of_millions_of_offsets_are_refused_quickly(tmp_path, container):
    count = 4096  # entries of 1024 offsets each, all listing one array (of offsets outside the data)
    array_at = 8 + 2 + 12 * count + 4
    tiff = tiff_block(8, (8, [(330, 4, 1024, array_at)] * count, 0)) + struct.pack("<I", 0x7FFFFFF0) * 1024
    path = tmp_path / "subifds"
    path.write_bytes(tiff if container == "TIFF" else jpeg_with_exif(tiff))
    started = time.monotonic()

    with pytest.raises(LocationError, match="more than 1024 IFDs"):
        remove_location(str(path), f"image/{container.lower()}")

    assert time.monotonic() - started < 0.5  # 4 million offsets listed first: 2.6 s and 470 MB


def test_ifds_two_bytes_apart_are_refused(tmp_path):
    count = 1023  # SubIFDs at every second byte of one run of FF 0F: each reads as an IFD of 4095 entries
    region_at = 8 + 2 + 12 + 4 + 4 * count
    offsets = b"".join(struct.pack("<I", region_at + 2 * k) for k in range(count))
    tiff = tiff_block(8, (8, [(330, 4, count, 26)], 0)) + offsets + b"\xff\x0f" * (2 + 6 * 4095 + count)
    path = tmp_path / "overlapping ifds.tif"
    path.write_bytes(tiff)
    started = time.monotonic()

    with pytest.raises(LocationError, match="two IFDs in the EXIF data share bytes"):
        remove_location(str(path), "image/tiff")

    assert time.monotonic() - started < 0.5  # 4 million entries read: 1 s
