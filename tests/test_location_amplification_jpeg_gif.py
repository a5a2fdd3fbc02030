"""Crafted JPEGs and GIFs whose structure would make the location walk read the same bytes again and again.

An MPF index listing "images" inside the first image, each leading back to the same metadata, and a
GIF of many tiny blocks: each is handled in time bounded by its bytes. Real MPOs and GIFs whose
blocks run long are walked as before.
"""

from __future__ import annotations

import os
import struct
import time

from PIL import Image

from inbox.jpeg_segments import JPEG_XMP
from inbox.location import remove_location
from tests.harness import XMP, exif_with_gps, exiftool, make_image, mpf_image_list


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_listing_images_inside_itself(count: int, packets: int) -> bytes:
    """A JPEG whose MPF index lists `count` further images 6 bytes apart inside its own comment segment.

    Each of them is an SOI and a comment that skips to the first image's XMP: its location, then
    `packets` packets of 64 KiB that are slow to check.
    """
    plain = make_image(".jpg")
    filler = JPEG_XMP + b"<?xpacket " + b" a:" * ((65533 - 2 - len(JPEG_XMP) - 10) // 3)
    xmp = segment(0xE1, JPEG_XMP + XMP) + segment(0xE1, filler) * packets
    header_at = 2 + 4 + 4  # past SOI, the APP2 marker and length, "MPF\0": offsets count from here
    app2_length = 4 + 4 + 8 + 2 + 12 + 4 + 16 * (count + 1)  # marker and length, then the MPF index
    comment_at = 2 + app2_length + 4  # the comment's payload, where the listed images start
    after_comment = comment_at + 6 * count
    starts = [comment_at + 6 * k for k in range(count)]
    heads = b"".join(b"\xff\xd8\xff\xfe" + struct.pack(">H", after_comment - start - 4) for start in starts)
    image_list = struct.pack(">IIIHH", 0x20030000, 0, 0, 0, 0) + b"".join(
        struct.pack(">IIIHH", 0, 0, start - header_at, 0, 0) for start in starts
    )
    mpf = b"MPF\0MM\0*" + struct.pack(">IHHHIII", 8, 1, 0xB002, 7, len(image_list), 26, 0) + image_list
    data = plain[:2] + segment(0xE2, mpf) + segment(0xFE, heads) + xmp + plain[2:]
    assert data[starts[-1] : starts[-1] + 2] == b"\xff\xd8" and len(segment(0xE2, mpf)) == app2_length
    return data


def test_an_mpf_index_listing_images_inside_the_first_one_publishes_the_first_image_alone(tmp_path):
    path = tmp_path / "listed inside.jpg"
    path.write_bytes(jpeg_listing_images_inside_itself(255, packets=2))
    size = os.path.getsize(path)
    started = time.monotonic()

    assert remove_location(str(path), "image/jpeg") is True

    assert time.monotonic() - started < 1  # the XMP was checked 256 times over: 4 s
    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag or tag.startswith(("Doc2:", "MPF", "MPImage"))] == []
    assert tags["XMP-dc:Title"] == "Harbour" and os.path.getsize(path) == size
    with Image.open(path) as published:
        assert (published.format, getattr(published, "n_frames", 1)) == ("JPEG", 1)


def test_an_mpo_of_three_images_loses_the_location_of_each_and_keeps_them(tmp_path):
    path = tmp_path / "three.mpo"
    image = Image.new("RGB", (64, 48), (10, 120, 200))
    others = [image.transpose(Image.Transpose.ROTATE_180), image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    image.save(path, "MPO", save_all=True, append_images=others, exif=exif_with_gps().tobytes(), xmp=XMP)
    correct_last_image_size(path)
    assert "Doc3:XMP-exif:GPSLatitude" in exiftool(path), "exiftool reads the third image's location"
    size = os.path.getsize(path)

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["Doc3:XMP-dc:Title"] == "Harbour"
    assert tags["MPF0:NumberOfImages"] == 3 and os.path.getsize(path) == size
    with Image.open(path) as published:
        assert published.n_frames == 3


def correct_last_image_size(path) -> None:
    """Pillow 13 lists the third image of an MPO as long as the first two together: a camera does not."""
    data = bytearray(path.read_bytes())
    header, order, image_list = mpf_image_list(data)
    last = header + struct.unpack(order + "I", data[image_list + 8 : image_list + 12])[0] + 32
    offset = struct.unpack(order + "I", data[last + 8 : last + 12])[0]
    data[last + 4 : last + 8] = struct.pack(order + "I", len(data) - header - offset)
    path.write_bytes(data)


GIF_HEAD = b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x00\x00\x00"  # no colour table


def test_a_gif_of_many_tiny_extensions_is_walked_in_time(tmp_path):
    path = tmp_path / "tiny blocks.gif"
    gif = GIF_HEAD + b"\x21\x01\x00" * 50_000 + b"\x3b"  # extensions with no data, then the trailer
    path.write_bytes(gif + bytes(1024 * 1024))
    started = time.monotonic()

    assert remove_location(str(path), "image/gif") is True  # what follows the trailer is cut off

    assert time.monotonic() - started < 1  # a megabyte read for each block: 2.4 s
    assert path.read_bytes() == gif


def test_a_gif_whose_image_data_runs_for_megabytes_ends_at_its_trailer(tmp_path):
    # Sub-blocks of every length, across the windows they are read through, then the trailer.
    runs = b"".join(bytes((length,)) + os.urandom(length) for length in list(range(1, 256)) * 100)
    gif = GIF_HEAD + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x08" + runs + b"\x00\x3b"
    assert len(gif) > 3 * 1024 * 1024
    path = tmp_path / "long image.gif"
    path.write_bytes(gif + b"appended, with the place it was shot")

    assert remove_location(str(path), "image/gif") is True

    assert path.read_bytes() == gif
