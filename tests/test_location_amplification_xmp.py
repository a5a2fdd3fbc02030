"""Crafted XMP packets whose names would make the location check compile and try patterns without end.

A packet binding the location namespaces to thousands of prefixes, or to one very long prefix, is
refused; thousands of distinct location elements, and a container directory under a very long
prefix, are blanked in time bounded by their bytes. Packets binding a few prefixes, the same one
often, and closing tags with whitespace or look-alikes before them are blanked as before.
"""

from __future__ import annotations

import time

import pytest

from inbox.fail_closed import LocationError
from inbox.jpeg_segments import JPEG_XMP
from inbox.location import remove_location
from tests.harness import jpeg_with_segment, motion_video, tiff_block

CELL = b"http://developer.sonyericsson.com/cell/1.0/"
EARTH_POSE = b"http://ns.google.com/photos/dd/1.0/earthpose/"


def xmp_jpeg(tmp_path, *packets: bytes):
    path = tmp_path / "xmp.jpg"
    path.write_bytes(jpeg_with_segment(0xE1, *(JPEG_XMP + packet for packet in packets)))
    return path


def description(attributes: bytes, content: bytes = b"") -> bytes:
    return (
        b'<?xpacket begin=""?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description'
        + attributes
        + b">"
        + (content + b"</rdf:Description></x:xmpmeta>")
    )


@pytest.mark.parametrize(
    ("bindings", "reason"),
    [
        pytest.param(
            b"".join(b' xmlns:p%d="%s"' % (number, EARTH_POSE) for number in range(1000)),
            "binds the location namespaces to more than 8 prefixes",
            id="a thousand prefixes",
        ),
        pytest.param(b' xmlns:%s="%s"' % (b"p" * 60000, CELL), "to a prefix longer than 128 bytes", id="a long prefix"),
    ],
)
def test_a_packet_binding_a_location_namespace_to_many_or_long_prefixes_is_refused(tmp_path, bindings, reason):
    path = xmp_jpeg(tmp_path, description(bindings))
    started = time.monotonic()

    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/jpeg")

    assert time.monotonic() - started < 1


def test_a_location_namespace_bound_to_a_few_prefixes_or_to_one_often_is_blanked(tmp_path):
    bindings = b"".join(b' xmlns:p%d="%s" p%d:mcc="26%d"' % (number, CELL, number, number) for number in range(8))
    repeated = b'<rdf:Description xmlns:EarthPose="%s" EarthPose:Latitude="52.52"/>' % EARTH_POSE * 500
    path = xmp_jpeg(tmp_path, description(bindings, b"<p7:cellid>31337</p7:cellid>" + repeated))
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    data = path.read_bytes()
    assert path.stat().st_size == size and b"mcc" not in data and b"31337" not in data and b"52.52" not in data
    assert data.count(b"xmlns:p7=") == 1


def test_thousands_of_distinct_location_elements_are_blanked_in_time(tmp_path):
    packet = b"<?xpacket ?>" + b"".join(b"<a:GPS%d>52</a:GPS%d>" % (number, number) for number in range(60000))
    path = tmp_path / "elements.tif"
    path.write_bytes(tiff_block(8, (8, [(700, 7, len(packet), 26)], 0)) + packet)
    started = time.monotonic()

    assert remove_location(str(path), "image/tiff") is True

    assert time.monotonic() - started < 1
    assert b"GPS" not in path.read_bytes()


def test_closing_tags_with_whitespace_or_look_alikes_before_them_are_found_as_before(tmp_path):
    packet = description(
        b' xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"',
        b"<exif:GPSArea>52,31N</exif:GPSAreaName></exif:GPSArea x>13,24E</exif:GPSArea \r\n>"
        b"<dc:title>Harbour</dc:title><exif:GPSAltitude>34/1</exif:GPSAltitude\t>",
    )
    path = xmp_jpeg(tmp_path, packet)

    assert remove_location(str(path), "image/jpeg") is True

    data = path.read_bytes()
    assert not any(value in data for value in (b"GPS", b"52,31N", b"13,24E", b"34/1"))
    assert b"<dc:title>Harbour</dc:title>" in data and b"</rdf:Description></x:xmpmeta>" in data


def test_a_motion_photo_directory_under_a_long_prefix_costs_no_time(tmp_path):
    # A prefix of its own in each XMP segment the JPEG can hold, and a video to cut.
    prefixes = [b"C%d" % number + b".-" * 16000 for number in range(30)]
    container = b'<x xmlns:%s="http://ns.google.com/photos/1.0/container/"><%s:Directory>'
    path = tmp_path / "motion.jpg"
    path.write_bytes(jpeg_with_segment(0xE1, *[JPEG_XMP + container % (prefix, prefix) for prefix in prefixes]))
    path.write_bytes(path.read_bytes() + motion_video())
    started = time.monotonic()

    assert remove_location(str(path), "image/jpeg") is True

    assert time.monotonic() - started < 1
