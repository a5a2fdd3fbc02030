"""remove_location: photos of every format lose their GPS (checked by exiftool and Pillow); bad metadata is refused."""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from inbox import location
from inbox.images import detect_type
from inbox.jpeg_segments import JPEG_XMP
from inbox.location import LocationError, remove_location
from tests.harness import (
    ICC,
    IIM_PLACES,
    LOCATION_FORMATS,
    MAKE,
    MALFORMED_EXIF,
    VIDEO_PLACE,
    XMP,
    XMP_PLACES,
    assert_location_gone,
    box,
    container_directory,
    exif_with_gps,
    exiftool,
    grow_first_image,
    jpeg_with_exif,
    jpeg_with_segment,
    large_photo,
    make_image,
    motion_video,
    mpf_image_list,
    photo_with_gps,
    tiff_block,
    write_caption,
    write_place_names,
)

# The harness's packet with its GPS properties renamed to names that say nothing of a place.
XMP_WITHOUT_LOCATION = (
    XMP.replace(b"GPSLatitude", b"GaugeNorth").replace(b"GPSLongitude", b"GaugeEast").replace(b"GPS", b"Gauge")
)


def remove_location_from(path) -> bool:
    with open(path, "rb") as file:
        return remove_location(str(path), detect_type(file.read(8192)))


@pytest.mark.parametrize("extension", LOCATION_FORMATS)
def test_gps_is_gone_and_everything_else_is_kept(tmp_path, extension):
    original, cleaned = tmp_path / f"original.{extension}", tmp_path / f"cleaned.{extension}"
    photo_with_gps(extension, original)
    shutil.copy(original, cleaned)
    before = exiftool(original)
    assert "GPS:GPSLatitude" in before and "XMP-exif:GPSLatitude" in before, "the test photo carries GPS"

    assert remove_location_from(cleaned) is True

    after = assert_location_gone(original, cleaned)
    assert after["XMP-dc:Title"] == "Harbour" and after["XMP-exif:ExposureProgram"] == 2
    with Image.open(original) as old:
        assert old.info["icc_profile"] == ICC


def test_every_image_an_mpf_index_lists_loses_its_location(tmp_path):
    # Cameras append previews, phones HDR gain maps: each a JPEG with its own EXIF and XMP.
    original, cleaned = tmp_path / "original.mpo", tmp_path / "cleaned.mpo"
    photo_with_gps("mpo", original)
    shutil.copy(original, cleaned)
    assert "Doc2:GPS:GPSLatitude" in exiftool(original) and "Doc2:XMP-exif:GPSLatitude" in exiftool(original)

    assert remove_location_from(cleaned) is True

    after = assert_location_gone(original, cleaned)
    assert after["Doc2:IFD0:Orientation"] == 6 and after["Doc2:XMP-dc:Title"] == "Harbour"
    assert after["MPF0:NumberOfImages"] == 2


def mpf_photo(tmp_path, case: str) -> str:
    """An MPO whose MPF index is broken as `case` says: its second image moved, or its list made huge."""
    path = tmp_path / "photo.mpo"
    photo_with_gps("mpo", path)
    data = bytearray(path.read_bytes())
    header, order, image_list = mpf_image_list(data)
    second_image_offset = header + struct.unpack(order + "I", data[image_list + 8 : image_list + 12])[0] + 24
    changes = {
        "past the end": (second_image_offset, len(data)),
        "not a JPEG": (second_image_offset, 8),  # the index itself
        "absurd count": (image_list + 4, 16 * 10**6),
        "no TIFF header": (header, int.from_bytes(b"JUNK", "big" if order == ">" else "little")),  # as a 3DS writes it
    }
    at, value = changes[case]
    data[at : at + 4] = struct.pack(order + "I", value)
    path.write_bytes(data)
    return str(path)


@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO")  # Pillow, opening the broken original
@pytest.mark.filterwarnings("ignore:Tag data larger than file")
def test_an_mpf_index_no_reader_can_follow_publishes_the_first_image_alone(tmp_path):
    original, cleaned = tmp_path / "original.mpo", tmp_path / "cleaned.mpo"
    shutil.copy(mpf_photo(tmp_path, "absurd count"), original)
    shutil.copy(original, cleaned)

    assert remove_location_from(cleaned) is True

    pristine = tmp_path / "pristine.mpo"
    photo_with_gps("mpo", pristine)
    assert_first_image_alone_without_location(original, cleaned, second_image(pristine))


def second_image(path) -> bytes:
    """The bytes of the second image of an MPO as Pillow wrote it (where its index says)."""
    with Image.open(path) as photo:
        first_image_length = photo.mpinfo[0xB002][0]["Size"]
    return path.read_bytes()[first_image_length:]


def assert_first_image_alone_without_location(original, published, appended: bytes) -> None:
    """`published` is `original` up to where the `appended` image starts, without GPS; same pixels."""
    assert os.path.getsize(published) == original.read_bytes().index(appended)
    tags = exiftool(published)
    # The stale index is gone, so nothing reads a further image where it pointed.
    assert [tag for tag in tags if "GPS" in tag or tag.startswith(("Doc2:", "MPF", "MPImage"))] == []
    assert tags["IFD0:Orientation"] == 6 and tags["XMP-dc:Title"] == "Harbour"
    with Image.open(original) as old, Image.open(published) as new:
        assert (new.format, getattr(new, "n_frames", 1)) == ("JPEG", 1)
        assert new.tobytes() == old.tobytes()


@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO")  # Pillow, opening the broken original
@pytest.mark.parametrize("case", ["past the end", "not a JPEG", "no TIFF header"])
def test_an_mpf_index_pointing_beside_its_images_publishes_the_first_image_alone(tmp_path, case):
    original, cleaned = tmp_path / "original.mpo", tmp_path / "cleaned.mpo"
    shutil.copy(mpf_photo(tmp_path, case), original)
    shutil.copy(original, cleaned)

    assert remove_location_from(cleaned) is True

    pristine = tmp_path / "pristine.mpo"
    photo_with_gps("mpo", pristine)
    assert_first_image_alone_without_location(original, cleaned, second_image(pristine))


def test_a_first_image_cut_short_before_its_end_marker_ends_where_the_next_image_starts(tmp_path):
    original, cleaned = tmp_path / "original.mpo", tmp_path / "cleaned.mpo"
    data = bytearray(Path(mpf_photo(tmp_path, "not a JPEG")).read_bytes())
    pristine = tmp_path / "pristine.mpo"
    photo_with_gps("mpo", pristine)
    appended = second_image(pristine)
    at = data.index(appended)
    assert data[at - 2 : at] == b"\xff\xd9"
    data[at - 2 : at] = b"\0\0"  # the first image's EOI, gone: its image data runs into the second image's SOI
    original.write_bytes(data)
    cleaned.write_bytes(data)

    assert remove_location_from(cleaned) is True

    assert os.path.getsize(cleaned) == at
    assert [tag for tag in exiftool(cleaned) if "GPS" in tag or tag.startswith("Doc2:")] == []


def test_an_mpo_an_editor_grew_without_moving_its_index_publishes_its_first_image(tmp_path):
    original, cleaned = tmp_path / "original.mpo", tmp_path / "cleaned.mpo"
    photo_with_gps("mpo", original)
    appended = second_image(original)
    grow_first_image(original, b"A long caption. " * 200)
    shutil.copy(original, cleaned)

    assert remove_location_from(cleaned) is True

    assert_first_image_alone_without_location(original, cleaned, appended)


def test_many_listed_images_share_one_segment_budget(tmp_path):
    # 256 listed images of 20 empty comments each: within the limit one by one, not together.
    image, count = b"\xff\xd8" + b"\xff\xfe\x00\x02" * 20 + b"\xff\xd9", 256
    plain = make_image(".jpg")
    app2_length = 4 + 8 + 2 + 12 + 4 + 16 * count  # "MPF\0", MP header, one IFD entry, next IFD, the list
    header_at = 2 + 4 + 4  # past SOI, the APP2 marker and length, "MPF\0": offsets count from here
    appended = 2 + 4 + app2_length + len(plain) - 2 - header_at
    image_list = b"".join(struct.pack(">IIIHH", 0, len(image), appended + k * len(image), 0, 0) for k in range(count))
    app2 = b"MPF\0MM\0*" + struct.pack(">IHHHIII", 8, 1, 0xB002, 7, 16 * count, 26, 0) + image_list
    path = tmp_path / "many.jpg"
    path.write_bytes(jpeg_with_segment(0xE2, app2) + image * count)
    started = time.monotonic()
    with pytest.raises(LocationError, match="more than"):
        remove_location(str(path), "image/jpeg")
    assert time.monotonic() - started < 1


def count_reads(monkeypatch) -> list[int]:
    """The sizes of the reads remove_location makes from the file it opens, from now on."""
    read = []

    class CountingFile(io.FileIO):
        def readinto(self, buffer):
            read.append(super().readinto(buffer))
            return read[-1]

    monkeypatch.setattr(
        location, "open", lambda name, mode: io.BufferedRandom(CountingFile(name, mode.replace("b", ""))), raising=False
    )
    return read


def still_with_gps(tmp_path, kind: str):
    """A photo with GPS of `kind` (a LOCATION_FORMATS extension, or "progressive" for a progressive JPEG)."""
    if kind != "progressive":
        path = tmp_path / f"still.{kind}"
        photo_with_gps(kind, path)
        return path
    path = tmp_path / "still.jpg"
    image = Image.frombytes("RGB", (96, 64), os.urandom(96 * 64 * 3))
    image.save(path, "JPEG", progressive=True, exif=exif_with_gps().tobytes(), xmp=XMP)
    return path


@pytest.mark.parametrize(
    "kind, trailer",
    [
        pytest.param("jpg", motion_video(), id="a phone's motion photo: its video appended to the still"),
        pytest.param("progressive", motion_video(), id="progressive: scans and tables up to the EOI"),
        pytest.param("mpo", motion_video(), id="an HDR gain map, then a video: cut after the last image"),
        pytest.param("jpg", bytes(1000), id="a maker's padding"),
        pytest.param("png", motion_video(), id="png"),
        pytest.param("heic", motion_video(), id="heic: Google's motion photo, its MP4 after the image's boxes"),
        pytest.param("avif", motion_video(), id="avif: the same"),
        pytest.param("webp", b"PK\x03\x04" + bytes(26), id="webp and a zip archive: a polyglot"),
    ],
)
def test_what_follows_the_image_is_cut_off_and_the_still_is_kept_exactly(tmp_path, kind, trailer):
    still = still_with_gps(tmp_path, kind)
    appended = tmp_path / f"appended{still.suffix}"
    appended.write_bytes(still.read_bytes() + trailer)

    assert remove_location_from(appended) is True

    assert remove_location_from(still) is True  # the still alone, its location removed: what must be published
    assert appended.read_bytes() == still.read_bytes()
    assert VIDEO_PLACE not in appended.read_bytes()


def container_xmp(namespace: str, semantics: list[str], extra: str = "") -> bytes:
    """XMP with a Google container directory listing these files, the primary image first, and GPS."""
    items = "".join(
        f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="{semantic}" Item:Mime="image/jpeg"/></rdf:li>'
        for semantic in semantics
    )
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:Container="{namespace}" xmlns:Item="{namespace}item/"'
        f' xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="52,31.2N"{extra}>'
        f"<Container:Directory><rdf:Seq>{items}</rdf:Seq></Container:Directory>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


@pytest.mark.parametrize(
    "namespace",
    [
        pytest.param("http://ns.google.com/photos/dd/1.0/container/", id="Dynamic Depth, as Pixel portraits"),
        pytest.param("http://ns.google.com/photos/1.0/container/", id="the motion photo and Ultra HDR container"),
    ],
)
def test_the_jpegs_a_portrait_photo_appends_go_with_their_location(tmp_path, namespace):
    # Primary and appended JPEGs end in FF D9 alike: the XMP's directory says more follows the picture.
    primary, original = tmp_path / "primary.jpg", tmp_path / "original.jpg"
    image = Image.frombytes("RGB", (96, 64), os.urandom(96 * 64 * 3))
    image.save(
        primary, "JPEG", exif=exif_with_gps().tobytes(), xmp=container_xmp(namespace, ["Primary", "Depth", "Original"])
    )
    photo_with_gps("jpg", original)  # the unblurred original, with a location of its own
    depth = make_image(".jpg", (24, 16), (90, 90, 90))
    portrait = tmp_path / "portrait.jpg"
    portrait.write_bytes(primary.read_bytes() + depth + original.read_bytes())

    assert remove_location_from(portrait) is True

    assert os.path.getsize(portrait) == os.path.getsize(primary)
    assert [tag for tag in exiftool(portrait) if "GPS" in tag] == []
    with Image.open(primary) as published_alone, Image.open(portrait) as published:
        assert published.tobytes() == published_alone.tobytes()
    assert container_directory(portrait) == ["Primary"]  # nothing points at the files that are gone
    assert container_directory(primary) == ["Primary", "Depth", "Original"]


def test_a_photo_ending_in_its_end_marker_costs_a_few_small_reads(tmp_path, monkeypatch):
    path = tmp_path / "large.jpg"
    path.write_bytes(large_photo(8 * 1024 * 1024))
    read = count_reads(monkeypatch)

    assert remove_location(str(path), "image/jpeg") is False

    assert sum(read) < 64 * 1024  # its segments, not 8 MiB of image data


def test_a_jpeg_cut_short_before_its_end_marker_loses_nothing_more(tmp_path):
    still = still_with_gps(tmp_path, "progressive")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(still.read_bytes()[:-100])

    assert remove_location_from(cut) is True  # its EXIF GPS

    assert os.path.getsize(cut) == os.path.getsize(still) - 100
    assert "GPS:GPSLatitude" not in exiftool(cut)


def test_endless_segments_after_the_image_data_are_refused(tmp_path):
    path = tmp_path / "endless.jpg"
    path.write_bytes(make_image(".jpg")[:-2] + b"\xff\xfe\x00\x02" * 5000 + motion_video())
    with pytest.raises(LocationError, match="more than 4096 segments"):
        remove_location(str(path), "image/jpeg")


def test_markers_close_together_after_the_image_data_are_not_each_read_a_megabyte_at_a_time(tmp_path, monkeypatch):
    # 4000 comments of 200 bytes after the scan, then a video: within the segment budget.
    comment = b"\xff\xfe" + struct.pack(">H", 200) + bytes(198)
    path = tmp_path / "comments.jpg"
    path.write_bytes(make_image(".jpg")[:-2] + comment * 4000 + bytes(8 * 1024 * 1024) + b"\xff\xd9" + motion_video())
    size = os.path.getsize(path)
    read = count_reads(monkeypatch)

    assert remove_location(str(path), "image/jpeg") is True

    assert os.path.getsize(path) == size - len(motion_video())
    assert sum(read) < 2 * size  # about once through, not a megabyte per comment


def test_orientation_survives_in_jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    photo_with_gps("jpg", path)
    remove_location_from(path)
    assert exiftool(path)["IFD0:Orientation"] == 6


def test_second_pass_finds_nothing_and_changes_nothing(tmp_path):
    path = tmp_path / "photo.jpg"
    photo_with_gps("jpg", path)
    remove_location_from(path)
    cleaned = path.read_bytes()
    assert remove_location_from(path) is False
    assert path.read_bytes() == cleaned


@pytest.mark.parametrize("extension", [".jpg", ".png", ".gif", ".bmp", ".webp", ".heic", ".avif", ".tif"])
def test_images_without_location_are_left_alone(tmp_path, extension):
    path = tmp_path / f"plain{extension}"
    path.write_bytes(make_image(extension))
    assert remove_location_from(path) is False
    assert path.read_bytes() == make_image(extension)


@pytest.mark.parametrize("case", MALFORMED_EXIF)
def test_malformed_exif_is_refused_quickly(tmp_path, case):
    path = tmp_path / "bad.jpg"
    tiff, reason = MALFORMED_EXIF[case]
    path.write_bytes(jpeg_with_exif(tiff))
    started = time.monotonic()
    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/jpeg")
    assert time.monotonic() - started < 1


def test_malformed_exif_in_png_and_webp_is_refused(tmp_path):
    loop = tiff_block(8, (8, [MAKE], 8))
    png = make_image(".png")
    chunk = struct.pack(">I", len(loop)) + b"eXIf" + loop + struct.pack(">I", zlib.crc32(b"eXIf" + loop))
    (tmp_path / "bad.png").write_bytes(png[:33] + chunk + png[33:])
    with pytest.raises(LocationError):
        remove_location(str(tmp_path / "bad.png"), "image/png")
    webp = bytearray(make_image(".webp") + b"EXIF" + struct.pack("<I", len(loop)) + loop)
    webp[4:8] = struct.pack("<I", len(webp) - 8)
    (tmp_path / "bad.webp").write_bytes(webp)
    with pytest.raises(LocationError):
        remove_location(str(tmp_path / "bad.webp"), "image/webp")


@pytest.mark.parametrize("extension", ["heic", "avif"])
def test_truncated_heif_is_refused(tmp_path, extension):
    path = tmp_path / f"photo.{extension}"
    photo_with_gps(extension, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(LocationError, match="runs past"):
        remove_location_from(path)


def test_heif_item_locations_with_an_absurd_count_are_refused(tmp_path):
    path = tmp_path / "photo.heic"
    photo_with_gps("heic", path)
    data = bytearray(path.read_bytes())
    iloc = data.index(b"iloc") + 4
    assert data[iloc] < 2, "a version 0/1 iloc: version, flags, field sizes, then a 16-bit item count"
    count_at = iloc + 6
    data[count_at : count_at + 2] = b"\xff\xff"
    path.write_bytes(data)
    started = time.monotonic()
    with pytest.raises(LocationError):
        remove_location(str(path), "image/heic")
    assert time.monotonic() - started < 1


def heif_of_xmp_items(extents: list[tuple[int, int]], mdat: bytes) -> bytes:
    """A HEIF of XMP items only, each at its (offset, length) in the `mdat` box's payload."""
    infe = b"".join(
        box(b"infe", struct.pack(">HH4s", item, 0, b"mime") + b"\0application/rdf+xml\0", version=2)
        for item in range(1, len(extents) + 1)
    )

    def head(payload_at: int) -> bytes:
        # version 1: offset and length 4 bytes, no base offset; construction method 0 (the file), one extent
        iloc = b"".join(
            struct.pack(">HHHHII", item, 0, 0, 1, payload_at + offset, length)
            for item, (offset, length) in enumerate(extents, 1)
        )
        meta = box(
            b"meta",
            box(b"hdlr", bytes(4) + b"pict" + bytes(13), version=0)
            + box(b"iinf", struct.pack(">H", len(extents)) + infe, version=0)
            + box(b"iloc", struct.pack(">HH", 0x4400, len(extents)) + iloc, version=1),
            version=0,
        )
        return box(b"ftyp", b"heic" + bytes(4) + b"mif1heic") + meta

    return head(len(head(0)) + 8) + box(b"mdat", mdat)


# Each item would be checked on its own: this crafted packet takes ~15 ms to check, 200 times.
CRAFTED = XMP_WITHOUT_LOCATION.replace(b"<rdf:Description", b" a:" * 30_000 + b"<rdf:Description")


@pytest.mark.parametrize(
    "extents",
    [[(0, len(CRAFTED))] * 200, [(at, len(CRAFTED) - at) for at in range(200)]],
    ids=["the same bytes", "overlapping"],
)
def test_heif_metadata_items_sharing_bytes_are_refused_before_any_is_checked(tmp_path, extents):
    path = tmp_path / "shared.heic"
    path.write_bytes(heif_of_xmp_items(extents, CRAFTED))
    started = time.monotonic()

    with pytest.raises(LocationError, match="two of the HEIF file's metadata items share bytes"):
        remove_location(str(path), "image/heic")

    assert time.monotonic() - started < 0.5


def test_heif_xmp_items_side_by_side_are_each_blanked(tmp_path):
    path = tmp_path / "two.heic"
    path.write_bytes(heif_of_xmp_items([(0, len(XMP)), (len(XMP), len(XMP))], XMP + XMP))
    size = path.stat().st_size

    assert remove_location(str(path), "image/heic") is True

    published = path.read_bytes()
    assert b"52,31.2N" not in published and published.count(b"Harbour") == 2 and len(published) == size


def xmp_jpeg(tmp_path, packet: bytes):
    path = tmp_path / "xmp.jpg"
    path.write_bytes(jpeg_with_segment(0xE1, JPEG_XMP + packet))
    return path


def test_unclosed_xmp_gps_element_is_refused(tmp_path):
    path = xmp_jpeg(tmp_path, b"<x:xmpmeta><exif:GPSLatitude>52,31N</x:xmpmeta>")
    with pytest.raises(LocationError, match="not closed"):
        remove_location(str(path), "image/jpeg")


def test_many_nested_xmp_gps_elements_do_not_hang(tmp_path):
    path = xmp_jpeg(tmp_path, b"<a:GPSx>" * 7000 + b"</a:GPSx>")
    started = time.monotonic()
    assert remove_location(str(path), "image/jpeg") is True
    assert time.monotonic() - started < 1
    assert b"GPS" not in path.read_bytes()


CELL_XMP = XMP_WITHOUT_LOCATION.replace(  # what a Sony Ericsson phone notes: its cell tower
    b'exif:ExposureProgram="2">',
    b'exif:ExposureProgram="2" xmlns:cell="http://developer.sonyericsson.com/cell/1.0/" cell:mcc="262">'
    b"<cell:mnc>01</cell:mnc><cell:lac>4242</cell:lac><cell:cellid>31337</cell:cellid>",
)
EARTH_POSE_XMP = XMP_WITHOUT_LOCATION.replace(  # a Dynamic Depth photo's device on the earth
    b'exif:ExposureProgram="2">',
    b'exif:ExposureProgram="2" xmlns:Device="http://ns.google.com/photos/dd/1.0/device/"'
    b' xmlns:EarthPose="http://ns.google.com/photos/dd/1.0/earthpose/"><Device:EarthPos'
    b' EarthPose:Latitude="52.52" EarthPose:Longitude="13.405"/>',
)
LOCATION_NAMESPACE_XMP = {  # case: (packet, exiftool's tags of it)
    "cell tower": (CELL_XMP, ("XMP-cell:MobileCountryCode", "XMP-cell:CellTowerID", "XMP-cell:LocationAreaCode")),
    "EarthPose": (EARTH_POSE_XMP, ("XMP-Device:EarthPosLatitude", "XMP-Device:EarthPosLongitude")),
}


@pytest.mark.parametrize("case", LOCATION_NAMESPACE_XMP)
def test_every_property_of_a_location_namespace_is_blanked(tmp_path, case):
    packet, tags = LOCATION_NAMESPACE_XMP[case]
    path = xmp_jpeg(tmp_path, packet)
    before = exiftool(path)
    assert all(before.get(tag) for tag in tags), "exiftool reads where the photo was taken"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert [tag for tag in tags if tag in after] == [] and after["XMP-dc:Title"] == "Harbour"
    assert path.stat().st_size == size and not any(value in path.read_bytes() for value in (b"31337", b"52.52"))


# Schemas that name the place in a property of their own, as exiftool writes them: a video's (Adobe's
# Dynamic Media, which Premiere and Bridge fill in) and a naturalist's (Darwin Core's location struct).
SCHEMA_PLACE_XMP = XMP_WITHOUT_LOCATION.replace(
    b"<dc:title>",
    b'<xmpDM:shotLocation xmlns:xmpDM="http://ns.adobe.com/xmp/1.0/DynamicMedia/">Eiffel Tower</xmpDM:shotLocation>'
    b'<dwc:dctermsLocation xmlns:dwc="http://rs.tdwg.org/dwc/index.htm" rdf:parseType="Resource">'
    b"<dwc:locality>Champ de Mars</dwc:locality><dwc:decimalLatitude>48.858</dwc:decimalLatitude>"
    b"</dwc:dctermsLocation><dc:title>",
)


def test_a_video_shot_location_and_a_darwin_core_location_are_blanked(tmp_path):
    path = xmp_jpeg(tmp_path, SCHEMA_PLACE_XMP)
    tags = ("XMP-xmpDM:ShotLocation", "XMP-dwc:DCLocality", "XMP-dwc:DCDecimalLatitude")
    before = exiftool(path)
    assert [before.get(tag) for tag in tags] == ["Eiffel Tower", "Champ de Mars", 48.858]

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert [tag for tag in tags if tag in after] == [] and after["XMP-dc:Title"] == "Harbour"
    assert not any(value in path.read_bytes() for value in (b"Eiffel", b"Champ", b"48.858"))


# Darwin Core's terms written on their own, as biodiversity tools write them (its own namespace, not
# exiftool's struct), and a mapping drone's latitude: exiftool reads every one of them by name. Beside
# them, a film's ISO speed latitude.
FLAT_PLACE_XMP = XMP_WITHOUT_LOCATION.replace(
    b"<dc:title>",
    b'<rdf:Description xmlns:dwc="http://rs.tdwg.org/dwc/terms/" dwc:decimalLatitude="48.8584"'
    b' dwc:verbatimLongitude="2 17 40 E" xmlns:exifEX="http://cipa.jp/exif/1.0/" exifEX:ISOSpeedLatitudeyyy="200">'
    b"<dwc:locality>Champ de Mars</dwc:locality>"
    b"<dwc:stateProvince>Ile-de-France</dwc:stateProvince><dwc:county>Paris</dwc:county>"
    b"<dwc:verbatimCoordinates>48.8584 2.2945</dwc:verbatimCoordinates><dwc:waterBody>Seine</dwc:waterBody>"
    b"<dwc:scientificName>Passer domesticus</dwc:scientificName></rdf:Description>"
    b'<Camera:Latitude xmlns:Camera="http://pix4d.com/camera/1.0/">48.85</Camera:Latitude><dc:title>',
)


def test_darwin_core_terms_outside_its_struct_and_a_vendor_latitude_are_blanked(tmp_path):
    path = xmp_jpeg(tmp_path, FLAT_PLACE_XMP)
    places = ("DecimalLatitude", "VerbatimLongitude", "Locality", "StateProvince", "County", "VerbatimCoordinates")
    before = {tag.split(":")[1]: value for tag, value in exiftool(path).items()}
    assert [before.get(name) for name in (*places, "WaterBody", "Latitude")] == [
        48.8584,
        "2 17 40 E",
        "Champ de Mars",
        "Ile-de-France",
        "Paris",
        "48.8584 2.2945",
        "Seine",
        48.85,
    ]

    assert remove_location(str(path), "image/jpeg") is True

    after = {tag.split(":")[1]: value for tag, value in exiftool(path).items() if ":" in tag}
    assert [name for name in (*places, "WaterBody", "Latitude") if name in after] == []
    assert after["ScientificName"] == "Passer domesticus" and after["Title"] == "Harbour"
    assert after["ISOSpeedLatitudeyyy"] == 200, "a film's latitude is no place"
    assert not any(value in path.read_bytes() for value in (b"48.85", b"Champ", b"Paris", b"Seine", b"2 17"))


# The short coordinate names: W3C geo's, and what web and mapping tools write. exiftool reads each by
# name. Beside them, a name with "lat" inside it.
SHORT_COORDINATES_XMP = XMP_WITHOUT_LOCATION.replace(
    b"<dc:title>",
    b'<rdf:Description xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#" geo:lat="48.8584" geo:long="2.2945"'
    b' xmlns:tool="http://example.com/tool/" tool:Template="square"/>'
    b'<rdf:Description xmlns:map="http://example.com/map/"><map:Lng>2.29</map:Lng><map:lat_long>48.8,2.2</map:lat_long>'
    b"<map:coordinates>48.6 2.0</map:coordinates></rdf:Description><dc:title>",
)


def test_short_coordinate_names_are_blanked(tmp_path):
    path = xmp_jpeg(tmp_path, SHORT_COORDINATES_XMP)
    tags = ("XMP-geo:Lat", "XMP-geo:Long", "XMP-map:Lng", "XMP-map:Lat_long", "XMP-map:Coordinates")
    before = exiftool(path)
    assert [before.get(tag) for tag in tags] == [48.8584, 2.2945, 2.29, "48.8,2.2", "48.6 2.0"]

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert [tag for tag in tags if tag in after] == [] and after["XMP-tool:Template"] == "square"
    assert not any(value in path.read_bytes() for value in (b"48.", b"2.29", b"2.0<"))


def test_a_location_namespace_without_a_prefix_is_refused(tmp_path):
    packet = XMP_WITHOUT_LOCATION.replace(
        b"<dc:title>", b'<cellid xmlns="http://developer.sonyericsson.com/cell/1.0/">31337</cellid><dc:title>'
    )
    path = xmp_jpeg(tmp_path, packet)
    assert exiftool(path).get("XMP:Cellid") == 31337, "exiftool reads the tower, without its namespace"

    with pytest.raises(LocationError, match="location namespace"):
        remove_location(str(path), "image/jpeg")


@pytest.mark.parametrize(
    "element",
    [
        b'<City xmlns="http://ns.adobe.com/photoshop/1.0/">Berlin</City>',  # a default namespace
        b"<Location>Unter den Linden 1</Location>",  # none at all
    ],
    ids=["in a default namespace", "in no namespace"],
)
def test_a_place_name_without_a_prefix_is_refused(tmp_path, element):
    path = xmp_jpeg(tmp_path, XMP_WITHOUT_LOCATION.replace(b"<dc:title>", element + b"<dc:title>"))
    assert {"XMP:City", "XMP:Location"} & set(exiftool(path)), "exiftool reads the place, without a prefix"

    with pytest.raises(LocationError, match="still names a location property"):
        remove_location(str(path), "image/jpeg")


# exiftool reads a location namespace's own prefix as that namespace even where nothing binds it
# (its table of standard prefixes), and names a property by its letters and digits alone.
UNBOUND_CELL_XMP = CELL_XMP.replace(b'xmlns:cell="http://developer.sonyericsson.com/cell/1.0/"', b"")
REBOUND_CELL_XMP = CELL_XMP.replace(b"xmlns:cell=", b"xmlns:c=")
HIDDEN_NAME_XMP = {
    "GPS": (XMP.replace(b"exif:GPSLatitude", b"exif:G\xebPSLatitude"), "XMP-exif:GPSLatitude"),
    "cell tower": (CELL_XMP.replace(b"cell:mcc", b"cell:\x93mcc"), "XMP-cell:Mcc"),
    "latitude": (
        FLAT_PLACE_XMP.replace(b"dwc:decimalLatitude", b"dwc:decimal\x93Latitude"),
        "XMP-tmp0:DecimalLatitude",
    ),
    "darwin core place": (FLAT_PLACE_XMP.replace(b"dwc:county>", b"dwc:co\x93unty>"), "XMP-tmp0:County"),
    "short coordinate name": (SHORT_COORDINATES_XMP.replace(b"geo:lat=", b"geo:l\x93at="), "XMP-geo:Lat"),
}


@pytest.mark.parametrize("packet", [UNBOUND_CELL_XMP, REBOUND_CELL_XMP], ids=["unbound", "bound to another prefix"])
def test_a_location_namespace_prefix_exiftool_knows_is_blanked_however_the_packet_binds_it(tmp_path, packet):
    path = xmp_jpeg(tmp_path, packet)
    assert exiftool(path)["XMP-cell:CellTowerID"] == 31337, "exiftool reads the tower by the prefix alone"

    assert remove_location(str(path), "image/jpeg") is True

    assert not [tag for tag in exiftool(path) if tag.startswith("XMP-cell:")] and b"31337" not in path.read_bytes()


@pytest.mark.parametrize("case", HIDDEN_NAME_XMP)
def test_a_location_property_name_with_a_byte_exiftool_drops_is_refused(tmp_path, case):
    packet, tag = HIDDEN_NAME_XMP[case]
    path = xmp_jpeg(tmp_path, packet)
    assert tag in exiftool(path), "exiftool drops the byte and reads the property"

    with pytest.raises(LocationError, match="still names a location"):
        remove_location(str(path), "image/jpeg")


PLACE_XMP = XMP_WITHOUT_LOCATION.replace(b"exif:ExposureProgram", b'photoshop:City="Berlin" exif:ExposureProgram')


LOCATION_TAG = re.compile("GPS|latitude|longitude|city|cell", re.IGNORECASE)


def location_read(path) -> dict:
    """The tags exiftool reads with a value that says where: GPS, a latitude or longitude, a city, a cell tower."""
    tags = exiftool(path).items()
    return {tag: value for tag, value in tags if LOCATION_TAG.search(tag) and str(value).strip(" \0") not in ("", "0")}


def zipped_xmp_png(path, packet: bytes) -> None:
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode(), zip=True)
    Image.new("RGB", (8, 8), "teal").save(path, "PNG", pnginfo=info)


@pytest.mark.parametrize("packet", [XMP, PLACE_XMP, CELL_XMP], ids=["gps", "place name", "cell tower"])
def test_compressed_png_xmp_loses_its_location_and_compresses_into_its_place(tmp_path, packet):
    path = tmp_path / "zipped.png"
    zipped_xmp_png(path, packet)
    size = path.stat().st_size
    assert location_read(path), "exiftool reads the location in the compressed packet"

    assert remove_location(str(path), "image/png") is True

    assert location_read(path) == {} and exiftool(path)["XMP-dc:Title"] == "Harbour"
    assert path.stat().st_size == size
    with Image.open(path) as image:
        image.load()  # the CRC is right and the packet inflates
        assert image.getpixel((0, 0)) == (0, 128, 128) and b"Harbour" in image.info["XML:com.adobe.xmp"].encode()


def test_compressed_png_xmp_naming_no_location_is_published_as_it_is(tmp_path):
    path = tmp_path / "zipped.png"
    zipped_xmp_png(path, XMP_WITHOUT_LOCATION)
    original = path.read_bytes()
    assert remove_location(str(path), "image/png") is False
    assert path.read_bytes() == original


def test_a_25_mib_jpeg_costs_a_few_small_reads(tmp_path):
    path = tmp_path / "big.jpg"
    noise = Image.frombytes("RGB", (3640, 3640), os.urandom(3640 * 3640 * 3))
    noise.save(path, "JPEG", quality=100, exif=exif_with_gps().tobytes())
    assert os.path.getsize(path) > 24 * 1024 * 1024
    started = time.perf_counter()
    assert remove_location(str(path), "image/jpeg") is True
    elapsed = time.perf_counter() - started
    print(f"remove_location on a {os.path.getsize(path) / 2**20:.1f} MiB JPEG: {elapsed * 1000:.2f} ms")
    assert elapsed < 0.02  # measured ~0.1 ms; the bound leaves room for a busy machine
    assert "GPS:GPSLatitude" not in exiftool(path)


def test_an_xmp_property_with_gps_inside_its_name_is_blanked(tmp_path):
    # A vendor's or a damaged name: exiftool shows it, with its coordinate, as an unknown tag.
    path = xmp_jpeg(tmp_path, XMP.replace(b"exif:GPSLatitude", b"exif:CamGPSLatitude"))
    assert exiftool(path)["XMP-exif:CamGPSLatitude"] == "52,31.2N"

    assert remove_location(str(path), "image/jpeg") is True

    assert [tag for tag in exiftool(path) if "GPS" in tag] == [] and b"52,31.2N" not in path.read_bytes()


def test_xmp_gps_in_element_and_attribute_form_keeps_packet_size(tmp_path):
    path = xmp_jpeg(tmp_path, XMP)
    size = os.path.getsize(path)
    assert remove_location(str(path), "image/jpeg") is True
    assert os.path.getsize(path) == size
    blanked = path.read_bytes()
    assert b"GPS" not in blanked and b"Harbour" in blanked and b'exif:ExposureProgram="2"' in blanked


# Not mpo: exiftool 12.57 grows the first image's XMP without moving the MPF offsets, which breaks the photo.
@pytest.mark.parametrize("extension", [extension for extension in LOCATION_FORMATS if extension != "mpo"])
def test_the_place_names_an_editor_filled_in_are_gone_and_the_rest_is_kept(tmp_path, extension):
    original, cleaned = tmp_path / f"original.{extension}", tmp_path / f"cleaned.{extension}"
    photo_with_gps(extension, original)
    iim, digest = extension in ("jpg", "tif"), extension == "jpg"  # IPTC-IIM: a JPEG's APP13, a TIFF's tag
    write_place_names(original, iim=iim, digest=digest)
    shutil.copy(original, cleaned)
    places = {**XMP_PLACES, **(IIM_PLACES if iim else {})}
    before = exiftool(original)
    assert {tag: before.get(tag) for tag in places} == places, "the test photo names the place"

    assert remove_location_from(cleaned) is True

    after = exiftool(cleaned)
    assert [tag for tag in XMP_PLACES if tag in after] == []
    assert {tag: after[tag].strip() for tag in IIM_PLACES if iim} == dict.fromkeys(IIM_PLACES if iim else (), "")
    digests = {"Photoshop:IPTCDigest", "File:CurrentIPTCDigest"}  # Photoshop's MD5 of the IIM, and exiftool's
    if digest:
        assert after["Photoshop:IPTCDigest"] == after["File:CurrentIPTCDigest"] != before["Photoshop:IPTCDigest"]
    kept = {tag: value for tag, value in before.items() if tag not in places.keys() | digests and "GPS" not in tag}
    assert {tag: value for tag, value in after.items() if tag in kept} == kept
    assert after["XMP-iptcCore:CreatorCity"] == "Hamburg" and after["XMP-dc:Title"] == "Harbour"
    assert os.path.getsize(cleaned) == os.path.getsize(original)
    with Image.open(original) as old, Image.open(cleaned) as new:
        assert new.tobytes() == old.tobytes()


def iim(*datasets: tuple[int, int, bytes]) -> bytes:
    """IPTC-IIM datasets (record, dataset, value); a value over 32767 bytes gets an extended length."""
    data = b""
    for record, number, value in datasets:
        length = struct.pack(">H", len(value)) if len(value) < 0x8000 else b"\x80\x04" + struct.pack(">I", len(value))
        data += bytes((0x1C, record, number)) + length + value
    return data


def photoshop_resources(*resources: tuple[int, bytes]) -> bytes:
    """An APP13 payload: `Photoshop 3.0` and each (id, data) as an 8BIM resource with an empty name."""
    payload = b"Photoshop 3.0\0"
    for resource, data in resources:
        payload += b"8BIM" + struct.pack(">H", resource) + b"\0\0" + struct.pack(">I", len(data)) + data
        payload += bytes(len(data) % 2)
    return payload


def test_iptc_place_names_are_blanked_in_place_and_nothing_else_is(tmp_path):
    caption = b"Cake " * 7000  # 35000 bytes: an extended dataset length
    block = iim((2, 0, b"\0\4"), (2, 120, caption), (2, 90, b"Berlin"), (2, 25, b"Berlin"), (1, 90, b"\x1b%G"))
    path = tmp_path / "iptc.jpg"
    path.write_bytes(jpeg_with_segment(0xED, photoshop_resources((0x0404, block), (0x0425, b"\0" * 16))))

    assert remove_location(str(path), "image/jpeg") is True

    blanked = iim((2, 0, b"\0\4"), (2, 120, caption), (2, 90, b"      "), (2, 25, b"Berlin"), (1, 90, b"\x1b%G"))
    # The city (2:90) only: a keyword (2:25) or the envelope's character set (1:90) is no place. A digest
    # that did not match the IIM before is not Photoshop's: it is left as it was.
    assert path.read_bytes() == jpeg_with_segment(0xED, photoshop_resources((0x0404, blanked), (0x0425, b"\0" * 16)))


@pytest.mark.parametrize("tag", [33723, 34377], ids=["IPTC-NAA", "Photoshop resources"])
def test_iptc_place_names_in_a_tiff_tag_are_blanked(tmp_path, tag):
    block = iim((2, 90, b"Berlin"), (2, 120, b"Cake"))
    data = photoshop_resources((0x0404, block)) if tag == 34377 else block
    data = data.removeprefix(b"Photoshop 3.0\0")  # a TIFF's tag holds the resources alone
    tiff = tiff_block(8, (8, [MAKE, (tag, 7, len(data), 38)], 0)) + data  # IFD0: 8 + 2 + 2 x 12 + 4 = 38
    path = tmp_path / "iptc.tif"
    path.write_bytes(tiff)

    assert remove_location(str(path), "image/tiff") is True

    assert path.read_bytes() == tiff.replace(b"Berlin", b"      ")


MALFORMED_IPTC = {  # case: (APP13 payload, what the reason says)
    "resource past the segment": (b"Photoshop 3.0\0" + b"8BIM\4\4\0\0" + struct.pack(">I", 1 << 30), "past its block"),
    "unknown resource signature": (b"Photoshop 3.0\0" + b"8BIX\4\4\0\0\0\0\0\0", "malformed"),
    "dataset past its block": (photoshop_resources((0x0404, b"\x1c\x02\x5a\x7f\xff" + b"x" * 8)), "runs past"),
    "dataset without its marker": (photoshop_resources((0x0404, iim((2, 90, b"Berlin")) + b"garbage")), "malformed"),
    "extended length of 9 bytes": (photoshop_resources((0x0404, b"\x1c\x02\x5a\x80\x09" + bytes(9))), "length"),
    "endless empty resources": (photoshop_resources(*[(0x0400, b"")] * 5000), "more than 4096"),
}


@pytest.mark.parametrize("case", MALFORMED_IPTC)
def test_malformed_iptc_is_refused_quickly(tmp_path, case):
    payload, reason = MALFORMED_IPTC[case]
    path = tmp_path / "bad.jpg"
    path.write_bytes(jpeg_with_segment(0xED, payload))
    started = time.monotonic()
    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/jpeg")
    assert time.monotonic() - started < 1


def test_a_png_of_endless_empty_chunks_is_refused_quickly(tmp_path):
    empty = struct.pack(">I4sI", 0, b"tEXt", zlib.crc32(b"tEXt"))
    path = tmp_path / "chunks.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + empty * 200_000)
    started = time.monotonic()
    with pytest.raises(LocationError, match="more than"):
        remove_location(str(path), "image/png")
    assert time.monotonic() - started < 1


BOMBS = {  # case: (what each of 60 chunks holds, once inflated: 4 MiB; what the reason says)
    # 60 of them, 4 KiB each, in a 250 KiB PNG: checking each would keep a worker for half a minute and more
    "xmp": (b"XML:com.adobe.xmp\0\0", b" " * (4 * 1024 * 1024 - 1024), "XMP and EXIF are larger than 4 MiB together"),
    # cheap to check each, but no photo's metadata inflates to that much
    "raw profile": (
        b"Raw profile type exif\0\0",
        b"\nexif\n      %d\n%s\n" % (len(Image.Exif().tobytes()), Image.Exif().tobytes().hex().encode())
        + b"\n" * (4 * 1024 * 1024 - 1024),
        "inflate to more than 16 MiB",
    ),
}


@pytest.mark.parametrize("case", BOMBS)
def test_a_png_of_many_compressed_text_bombs_is_refused_quickly(tmp_path, case):
    head, text, reason = BOMBS[case]
    path = tmp_path / "bombs.png"
    plain = make_image(".png")
    chunk = png_with_chunk(b"zTXt", head + zlib.compress(text, 9))[len(plain) - 12 : -12]
    path.write_bytes(plain[:-12] + chunk * 60 + plain[-12:])
    started = time.monotonic()

    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/png")

    assert time.monotonic() - started < 1.5


def test_a_samsung_heic_motion_photo_loses_its_video_box_at_the_end(tmp_path):
    still = still_with_gps(tmp_path, "heic")
    motion = tmp_path / "motion.heic"
    motion.write_bytes(still.read_bytes() + box(b"mpvd", motion_video()))

    assert remove_location_from(motion) is True

    assert remove_location_from(still) is True
    assert motion.read_bytes() == still.read_bytes()


# Google's motion-photo flags, as Pixel phones write them (and MicroVideo, their older form).
MOTION_XMP = XMP.replace(
    b'xmlns:dc="http://purl.org/dc/elements/1.1/"',
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/"'
    b' GCamera:MotionPhoto="1" GCamera:MotionPhotoVersion="1" GCamera:MotionPhotoPresentationTimestampUs="1"',
).replace(b"<exif:GPSAltitude>", b"<GCamera:MicroVideo>1</GCamera:MicroVideo><exif:GPSAltitude>")


@pytest.mark.parametrize(
    "kind, kept",
    [
        pytest.param("jpg", ["Primary"], id="a motion photo"),
        pytest.param("mpo", ["Primary", "GainMap"], id="an Ultra HDR motion photo: its gain map stays"),
    ],
)
def test_a_cut_motion_photo_lists_only_what_it_still_holds(tmp_path, kind, kept):
    xmp = container_xmp(
        "http://ns.google.com/photos/1.0/container/",
        [*kept, "MotionPhoto"],
        ' xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MotionPhoto="1"',
    )
    still = tmp_path / f"still.{kind}"
    image = Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3))
    extra = {"save_all": True, "append_images": [image.convert("L")]} if kind == "mpo" else {}
    image.save(still, LOCATION_FORMATS[kind], exif=exif_with_gps().tobytes(), xmp=xmp, **extra)
    motion = tmp_path / f"motion.{kind}"
    motion.write_bytes(still.read_bytes() + motion_video())

    assert remove_location_from(motion) is True

    assert os.path.getsize(motion) == os.path.getsize(still)
    assert container_directory(motion) == kept
    assert exiftool(motion)["XMP-GCamera:MotionPhoto"] == 0


@pytest.mark.parametrize(
    "kind, samsung",
    [
        pytest.param("jpg", False, id="jpg"),
        pytest.param("heic", True, id="Samsung's heic: the video in an mpvd box"),
        pytest.param("heic", False, id="Google's heic: the MP4 appended as it is"),
    ],
)
def test_a_motion_photo_whose_video_is_cut_off_no_longer_says_it_has_one(tmp_path, kind, samsung):
    still = tmp_path / f"still.{kind}"
    Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3)).save(
        still, LOCATION_FORMATS[kind], exif=exif_with_gps().tobytes(), xmp=MOTION_XMP
    )
    video = box(b"mpvd", motion_video()) if samsung else motion_video()
    motion = tmp_path / f"motion.{kind}"
    motion.write_bytes(still.read_bytes() + video)

    assert remove_location_from(motion) is True
    assert remove_location_from(still) is True  # nothing cut: the flags stay as they were

    flags = ("XMP-GCamera:MotionPhoto", "XMP-GCamera:MicroVideo", "XMP-GCamera:MotionPhotoVersion")
    assert [exiftool(still)[flag] for flag in flags] == [1, 1, 1]
    assert [exiftool(motion)[flag] for flag in flags] == [0, 0, 1]
    assert os.path.getsize(motion) == os.path.getsize(still)
    assert "XMP-exif:GPSLatitude" not in exiftool(motion)


CRAFTED_DIRECTORY = b'<x xmlns:C="http://ns.google.com/photos/1.0/container/"><C:Directory>'


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(b"a" * 65000, id="letters without a colon"),
        pytest.param(CRAFTED_DIRECTORY + b"<rdf:li>" * 8000 + b"</C:Directory>", id="directory items never closed"),
        pytest.param(CRAFTED_DIRECTORY + b"<rdf:li/>" * 7000 + b"</C:Directory>", id="thousands of directory items"),
    ],
)
def test_a_motion_photo_with_a_crafted_xmp_costs_no_time(tmp_path, packet):
    # The packet in every XMP segment the JPEG can hold, and a video to cut.
    path = tmp_path / "crafted.jpg"
    path.write_bytes(jpeg_with_segment(0xE1, *[JPEG_XMP + packet] * 30) + motion_video())
    started = time.monotonic()

    assert remove_location_from(path) is True

    assert time.monotonic() - started < 1
    assert path.read_bytes().endswith(b"\xff\xd9")


def test_a_heic_video_box_with_boxes_after_it_is_refused(tmp_path):
    # Cutting it would move what follows, and the offsets pointing there.
    motion = still_with_gps(tmp_path, "heic")
    motion.write_bytes(motion.read_bytes() + box(b"mpvd", motion_video()) + box(b"free", bytes(8)))

    with pytest.raises(LocationError, match="mpvd box"):
        remove_location_from(motion)


def test_heif_exif_item_stored_in_idat_is_blanked(tmp_path):
    exif = exif_with_gps().tobytes()
    assert exif.startswith(b"Exif\0\0")
    item = struct.pack(">I", 6) + exif  # offset of the TIFF header, past "Exif\0\0"
    infe = box(b"infe", struct.pack(">HH4s", 1, 0, b"Exif") + b"\0", version=2)
    # version 1: offset and length 4 bytes, no base offset; item 1, construction method 1 (idat), one extent
    iloc = box(b"iloc", struct.pack(">HHHHHHII", 0x4400, 1, 1, 1, 0, 1, 0, len(item)), version=1)
    meta = box(
        b"meta",
        box(b"hdlr", bytes(4) + b"pict" + bytes(13), version=0)
        + box(b"iinf", struct.pack(">H", 1) + infe, version=0)
        + iloc
        + box(b"idat", item),
        version=0,
    )
    path = tmp_path / "idat.heic"
    path.write_bytes(box(b"ftyp", b"heic" + bytes(4) + b"mif1heic") + meta)
    assert remove_location(str(path), "image/heic") is True
    # exiftool 12.57 cannot read Exif from idat ("construction method 1"): Pillow's EXIF reader checks instead.
    blanked = Image.Exif()
    blanked.load(path.read_bytes()[-len(item) + 4 :])
    assert 0x8825 not in blanked and blanked[0x0112] == 6 and blanked[0x010F] == "TestCam"
    assert len(path.read_bytes()) == 8 + 16 + len(meta)


def heic_of_one_item(infe_payload: bytes, item: bytes) -> bytes:
    """A HEIC whose meta box declares one item (infe version 2), located in an mdat box after it."""
    ftyp = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")

    def meta(offset: int) -> bytes:
        # version 0: offset and length 4 bytes, no base offset; item 1, this file, one extent
        iloc = box(b"iloc", struct.pack(">HHHHHII", 0x4400, 1, 1, 0, 1, offset, len(item)), version=0)
        infe = box(b"infe", infe_payload, version=2)
        iinf = box(b"iinf", struct.pack(">H", 1) + infe, version=0)
        return box(b"meta", box(b"hdlr", bytes(4) + b"pict" + bytes(13), version=0) + iinf + iloc, version=0)

    return ftyp + meta(len(ftyp) + len(meta(0)) + 8) + box(b"mdat", item)


def test_a_heif_mime_item_of_content_type_exif_loses_its_gps(tmp_path):
    # exiftool names an item by its content type, or else its type: this mime item is EXIF to it.
    item = struct.pack(">I", 6) + exif_with_gps().tobytes()  # offset of the TIFF header, past "Exif\0\0"
    path = tmp_path / "mime.heic"
    path.write_bytes(heic_of_one_item(struct.pack(">HH4s", 1, 0, b"mime") + b"\0Exif\0", item))
    assert exiftool(path)["GPS:GPSLatitude"], "exiftool reads it as EXIF"
    size = path.stat().st_size

    assert remove_location(str(path), "image/heic") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["IFD0:Make"] == "TestCam"
    assert path.stat().st_size == size


def png_with_raw_profile(path, name: str, profile: bytes, compressed: bool = True) -> None:
    """A PNG carrying `profile` as ImageMagick does: hex in a "Raw profile type <name>" text chunk."""
    digits = profile.hex()
    lines = "\n".join(digits[at : at + 72] for at in range(0, len(digits), 72))
    info = PngInfo()
    info.add_text(f"Raw profile type {name}", f"\n{name}\n{len(profile):8d}\n{lines}\n", zip=compressed)
    Image.new("RGB", (8, 8)).save(path, "PNG", pnginfo=info)


CAPTION, CITY = (2, 120, b"Birthday"), (2, 90, b"Berlin")


def resources_alone(*resources: tuple[int, bytes]) -> bytes:
    """Photoshop resources without the APP13 prefix: as exiftool keeps them in a PNG."""
    return photoshop_resources(*resources).removeprefix(b"Photoshop 3.0\0")


def photoshop_iim(block: bytes) -> bytes:
    return resources_alone((0x0404, block))


RAW_PROFILES_NAMING_A_LOCATION = {
    "exif GPS": ("exif", exif_with_gps().tobytes()),
    "exif GPS without the APP1 prefix": ("exif", exif_with_gps().tobytes()[6:]),
    "APP1 EXIF GPS": ("APP1", exif_with_gps().tobytes()),
    "APP1 XMP GPS": ("APP1", JPEG_XMP + XMP),
    "xmp GPS": ("xmp", XMP),
    "xmp place": ("xmp", PLACE_XMP),
    "iptc city": ("iptc", iim(CAPTION, CITY)),
    "iptc resources city": ("iptc", photoshop_iim(iim(CAPTION, CITY))),
    "8bim city": ("8bim", photoshop_iim(iim(CITY))),
    "8bim EXIF GPS": ("8bim", resources_alone((0x0422, exif_with_gps().tobytes()[6:]))),
}
RAW_PROFILES_NAMING_NO_LOCATION = {
    "exif": ("exif", Image.Exif().tobytes()),
    "APP1 XMP": ("APP1", JPEG_XMP + XMP_WITHOUT_LOCATION),
    "iptc caption": ("iptc", iim(CAPTION)),
    "8bim caption": ("8bim", photoshop_iim(iim(CAPTION))),
    "icc": ("icc", ICC),
}


def exif_in_photoshop_resources(depth: int) -> bytes:
    """A TIFF whose only tag holds Photoshop resources whose EXIF resource is such a TIFF again, `depth` times."""
    resources = photoshop_iim(iim(CITY))
    for _ in range(depth):
        tiff = tiff_block(8, (8, [(34377, 7, len(resources), 26)], 0)) + resources
        resources = resources_alone((0x0422, tiff))
    return resources


@pytest.mark.parametrize(
    "resource, data",
    [(0x0422, exif_with_gps().tobytes()[6:]), (0x0424, XMP)],
    ids=["EXIF", "XMP"],
)
def test_exif_and_xmp_inside_photoshop_resources_lose_their_gps(tmp_path, resource, data):
    path = tmp_path / "resources.jpg"
    path.write_bytes(jpeg_with_segment(0xED, photoshop_resources((resource, data), (0x0404, iim(CAPTION)))))
    assert [tag for tag in exiftool(path) if "GPS" in tag], "exiftool reads the GPS there"

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["IPTC:Caption-Abstract"] == "Birthday"


def test_photoshop_resources_nested_in_their_own_exif_are_refused(tmp_path):
    path = tmp_path / "nested.jpg"
    path.write_bytes(jpeg_with_segment(0xED, b"Photoshop 3.0\0" + exif_in_photoshop_resources(2)))
    with pytest.raises(LocationError, match="holds Photoshop resources again"):
        remove_location(str(path), "image/jpeg")


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """A small PNG with one more chunk before IEND."""
    plain = make_image(".png")
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return plain[:-12] + chunk + plain[-12:]


GPS_TIFF = exif_with_gps().tobytes()[6:]
PNG_CHUNKS_EXIFTOOL_READS = {  # each holds GPS where exiftool finds it
    "exIf, the draft's name": (b"exIf", GPS_TIFF),
    "eXIf after an Exif header": (b"eXIf", b"Exif\0\0" + GPS_TIFF),
    "tXMP, an old draft's XMP": (b"tXMP", XMP),
    "XMP in a tEXt chunk": (b"tEXt", b"XML:com.adobe.xmp\0" + XMP),
}


@pytest.mark.parametrize("case", PNG_CHUNKS_EXIFTOOL_READS)
def test_png_chunks_exiftool_reads_lose_their_gps(tmp_path, case):
    path = tmp_path / "chunk.png"
    path.write_bytes(png_with_chunk(*PNG_CHUNKS_EXIFTOOL_READS[case]))
    assert [tag for tag in exiftool(path) if "GPS" in tag], "exiftool reads the GPS there"

    assert remove_location(str(path), "image/png") is True

    assert [tag for tag in exiftool(path) if "GPS" in tag] == []
    with Image.open(path) as image:
        image.load()  # every CRC still right


def test_an_xmp_packet_in_a_png_text_chunk_of_another_keyword_loses_its_gps(tmp_path):
    # exiftool shows it as the chunk's text (here PNG:Comment), the packet and its coordinates in it.
    path = tmp_path / "chunk.png"
    path.write_bytes(png_with_chunk(b"tEXt", b"Comment\0" + XMP))
    assert "52,31.2N" in str(exiftool(path)), "whoever reads the text reads where it was taken"

    assert remove_location(str(path), "image/png") is True

    assert "52,31.2N" not in str(exiftool(path)) and b"52,31.2N" not in path.read_bytes()
    with Image.open(path) as image:
        image.load()  # the CRC is right


COMPRESSED_PNG_CHUNKS = {  # each holds GPS, compressed
    "compressed EXIF": (b"zxIf", b"\0" + bytes(4) + zlib.compress(GPS_TIFF)),
    "XMP in a zTXt chunk": (b"zTXt", b"XML:com.adobe.xmp\0\0" + zlib.compress(XMP)),
}


@pytest.mark.parametrize("case", COMPRESSED_PNG_CHUNKS)
def test_compressed_png_chunks_holding_gps_lose_it(tmp_path, case):
    kind, data = COMPRESSED_PNG_CHUNKS[case]
    path = tmp_path / "chunk.png"
    path.write_bytes(png_with_chunk(kind, data))
    assert [tag for tag in exiftool(path) if "GPS" in tag], "exiftool reads the GPS there"

    assert remove_location(str(path), "image/png") is True

    assert location_read(path) == {} and len(path.read_bytes()) == len(png_with_chunk(kind, data))
    with Image.open(path) as image:
        image.load()  # the CRC is right


def test_compressed_png_exif_without_gps_is_published_as_it_is(tmp_path):
    path = tmp_path / "chunk.png"
    path.write_bytes(png_with_chunk(b"zxIf", b"\0" + bytes(4) + zlib.compress(Image.Exif().tobytes()[6:])))
    original = path.read_bytes()
    assert remove_location(str(path), "image/png") is False
    assert path.read_bytes() == original


# What ImageMagick writes when it turns a geotagged photo into a PNG: every EXIF and XMP property it
# read, as a text chunk of its own (short values as tEXt, long ones compressed), and exiftool shows
# them all. Beside them, text chunks that say nothing of a place.
IMAGEMAGICK_TEXT = {  # keyword: (value, compressed)
    "exif:GPSLatitude": ("39/1, 55/1, 5801/100", False),
    "exif:GPSLatitudeRef": ("N", True),  # compressed into 9 bytes: only empty fixed-Huffman blocks fit there
    "exif:GPSLongitude": ("75/1, 12/1, 4317/100", True),
    "exif:GP\x93SAltitude": ("3130/100", False),  # exiftool drops the stray byte from the name
    "photoshop:City": ("Philadelphia", False),
    "exif:GPSTrack": (random.Random(7).randbytes(80_000).hex(), True),  # thousands of empty stored blocks
}
UNPLACED_TEXT = {"date:create": "2026-11-22T07:00:00+00:00", "exif:PixelXDimension": "64", "Comment": "Birthday"}


def test_png_text_chunks_named_for_a_location_lose_their_text(tmp_path):
    info = PngInfo()
    for keyword, (value, compressed) in IMAGEMAGICK_TEXT.items():
        info.add_text(keyword, value, zip=compressed)
    for keyword, value in UNPLACED_TEXT.items():
        info.add_itxt(keyword, value, zip=keyword == "Comment")
    info.add_itxt("Location", "Independence Hall", zip=True)
    path = tmp_path / "magick.png"
    Image.new("RGB", (8, 8), "teal").save(path, "PNG", pnginfo=info)
    located = ("ExifGPSLatitude", "ExifGPSLatitudeRef", "ExifGPSLongitude", "ExifGPSAltitude", "PhotoshopCity")
    before = exiftool(path)
    assert [before[f"PNG:{tag}"] for tag in located] == [
        "39/1, 55/1, 5801/100",
        "N",
        "75/1, 12/1, 4317/100",
        "3130/100",
        "Philadelphia",
    ]
    assert before["PNG:Location"] == "Independence Hall" and before["PNG:ExifGPSTrack"]

    assert remove_location(str(path), "image/png") is True

    after = exiftool(path)
    assert [tag for tag in (*located, "Location", "ExifGPSTrack") if str(after[f"PNG:{tag}"]).strip()] == []
    assert [after[tag] for tag in ("PNG:Datecreate", "PNG:ExifPixelXDimension", "PNG:Comment")] == [
        "2026-11-22T07:00:00+00:00",
        64,
        "Birthday",
    ]
    with Image.open(path) as image:
        image.load()  # every CRC still right, and every compressed chunk still inflates
        assert image.text["exif:GPSLongitude"].strip() == "" and image.getpixel((0, 0)) == (0, 128, 128)
    assert not any(value in path.read_bytes() for value in (b"5801", b"Philadelphia", b"3130", b"Independence"))


UNBLANKABLE_PLACE_TEXT = {  # case: (chunk data, what the reason says)
    # no zlib stream that ends is that short, so no blanked text fits there
    "too short to be zlib": (b"exif:GPSLatitude\0\0" + b"\x78\x9c" + b"52,31", "does not compress back"),
    # exiftool shows the bytes of a method it does not know as they are
    "another compression method": (b"exif:GPSLatitude\0\x08" + zlib.compress(b"52,31.2N"), "method no reader knows"),
}


@pytest.mark.parametrize("case", UNBLANKABLE_PLACE_TEXT)
def test_a_compressed_png_text_chunk_named_for_a_location_that_cannot_be_blanked_is_refused(tmp_path, case):
    data, reason = UNBLANKABLE_PLACE_TEXT[case]
    path = tmp_path / "unblankable.png"
    path.write_bytes(png_with_chunk(b"zTXt", data))
    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/png")


def test_a_heic_top_level_xmp_box_loses_its_gps(tmp_path):
    path = tmp_path / "uuid.heic"
    path.write_bytes(make_image(".heic") + box(b"uuid", bytes.fromhex("be7acfcb97a942e89c71999491e3afac") + XMP))
    assert [tag for tag in exiftool(path) if "GPS" in tag], "exiftool reads the GPS there"

    assert remove_location(str(path), "image/heic") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["XMP-dc:Title"] == "Harbour"


MOVIE_PLACES = {  # an image sequence's moov, as phones and exiftool write the place into it
    "©xyz": box(b"udta", box(b"\xa9xyz", struct.pack(">HH", 18, 0x15C7) + VIDEO_PLACE)),
    "Apple's ISO 6709 key": box(b"meta", box(b"keys", b"com.apple.quicktime.location.ISO6709"), version=0),
    "XMP": box(b"udta", box(b"XMP_", XMP)),
}


@pytest.mark.parametrize("case", MOVIE_PLACES)
def test_a_heif_image_sequence_whose_movie_names_a_place_is_refused(tmp_path, case):
    path = tmp_path / "sequence.heic"
    path.write_bytes(make_image(".heic") + box(b"moov", box(b"mvhd", bytes(100), version=0) + MOVIE_PLACES[case]))
    with pytest.raises(LocationError, match="image sequence's movie data names where it was taken"):
        remove_location(str(path), "image/heic")


def test_a_heif_image_sequence_naming_no_place_is_published_as_it_is(tmp_path):
    path = tmp_path / "sequence.heic"
    path.write_bytes(make_image(".heic") + box(b"moov", box(b"mvhd", bytes(100), version=0)))
    original = path.read_bytes()
    assert remove_location(str(path), "image/heic") is False
    assert path.read_bytes() == original


def heic_with_quicktime_metadata(boxes: bytes) -> bytes:
    """A HEIC whose meta box holds an Exif item (GPS and all) and, after its item boxes, QuickTime metadata `boxes`."""
    item = struct.pack(">I", 6) + exif_with_gps().tobytes()  # offset of the TIFF header, past "Exif\0\0"
    ftyp = box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")

    def meta(offset: int) -> bytes:
        iloc = box(b"iloc", struct.pack(">HHHHHII", 0x4400, 1, 1, 0, 1, offset, len(item)), version=0)
        infe = box(b"infe", struct.pack(">HH4s", 1, 0, b"Exif") + b"\0", version=2)
        iinf = box(b"iinf", struct.pack(">H", 1) + infe, version=0)
        hdlr = box(b"hdlr", bytes(4) + b"pict" + bytes(13), version=0)
        return box(b"meta", hdlr + iinf + iloc + boxes, version=0)

    return ftyp + meta(len(ftyp) + len(meta(0)) + 8) + box(b"mdat", item)


def quicktime_item(key: bytes, value: bytes) -> bytes:
    """An `ilst` entry of a QuickTime item list: the key's box, holding a `data` box of UTF-8 text."""
    return box(key, box(b"data", struct.pack(">II", 1, 0) + value))


APPLE_LOCATION_NAME = b"com.apple.quicktime.location.name"
ITEM_LIST_PLACES = {  # QuickTime metadata in a HEIC's meta box, which exiftool reads as the photo's
    "©xyz": box(b"ilst", quicktime_item(b"\xa9xyz", VIDEO_PLACE)),
    "Apple's location name key": box(
        b"keys", struct.pack(">II4s", 1, 8 + len(APPLE_LOCATION_NAME), b"mdta") + APPLE_LOCATION_NAME, version=0
    )
    + box(b"ilst", quicktime_item(struct.pack(">I", 1), b"Eiffel Tower")),
}


@pytest.mark.parametrize("case", ITEM_LIST_PLACES)
def test_a_heif_whose_quicktime_item_list_names_a_place_is_refused(tmp_path, case):
    path = tmp_path / "listed.heic"
    path.write_bytes(heic_with_quicktime_metadata(ITEM_LIST_PLACES[case]))
    tags = exiftool(path)
    assert "Eiffel Tower" in tags.values() or tags.get("ItemList:GPSCoordinates"), "exiftool reads the place there"

    with pytest.raises(LocationError, match="item list names where it was taken"):
        remove_location(str(path), "image/heic")


def test_a_heif_whose_quicktime_item_list_names_no_place_is_published_without_its_gps(tmp_path):
    path = tmp_path / "titled.heic"
    path.write_bytes(heic_with_quicktime_metadata(box(b"ilst", quicktime_item(b"\xa9nam", b"Harbour"))))

    assert remove_location(str(path), "image/heic") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["ItemList:Title"] == "Harbour"


def two_sub_ifds() -> bytes:
    """IFD0 lists two SubIFDs (an array at 40): an empty one at 48, and one at 60 with the GPS pointer."""
    tiff = bytearray(
        tiff_block(8, (8, [MAKE, (330, 4, 2, 40)], 0), (48, [], 0), (60, [(0x8825, 4, 1, 200)], 0), GPS_IFD)
    )
    tiff[40:48] = struct.pack("<II", 48, 60)
    return bytes(tiff)


GPS_IFD = (200, [(0, 1, 4, 0x00000302), (1, 2, 2, int.from_bytes(b"N\0\0\0", "little"))], 0)  # version, "N"
GPS_IN_SUB_IFDS = {  # IFD0 (at 8) points at an IFD (at 60) that holds the GPS pointer, as exiftool reads it
    "ExifIFD": tiff_block(8, (8, [MAKE, (0x8769, 4, 1, 60)], 0), (60, [(0x8825, 4, 1, 200)], 0), GPS_IFD),
    "InteropIFD": tiff_block(8, (8, [MAKE, (0xA005, 13, 1, 60)], 0), (60, [(0x8825, 4, 1, 200)], 0), GPS_IFD),
    "second of two SubIFDs": two_sub_ifds(),
    # exiftool follows a pointer of any integer type, and of one UNDEFINED byte, as any writer may type it
    **{
        f"ExifIFD typed {name}": tiff_block(
            8, (8, [MAKE, (0x8769, kind, 1, 60)], 0), (60, [(0x8825, 4, 1, 200)], 0), GPS_IFD
        )
        for name, kind in {"SLONG": 9, "SSHORT": 8, "BYTE": 1, "one UNDEFINED byte": 7}.items()
    },
    # TIFF-F's GlobalParametersIFD, which exiftool reads as one more EXIF IFD
    "GlobalParametersIFD": tiff_block(8, (8, [MAKE, (0x190, 4, 1, 60)], 0), (60, [(0x8825, 4, 1, 200)], 0), GPS_IFD),
}


@pytest.mark.parametrize("case", GPS_IN_SUB_IFDS)
def test_a_gps_pointer_in_an_ifd_below_ifd0_is_taken_out_too(tmp_path, case):
    path = tmp_path / "sub.jpg"
    path.write_bytes(jpeg_with_exif(GPS_IN_SUB_IFDS[case]))
    assert exiftool(path).get("GPS:GPSLatitudeRef") == "N", "exiftool reads the GPS there"

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["IFD0:Make"] == "Cam"


def test_a_big_endian_gps_pointer_typed_short_is_followed_as_exiftool_follows_it(tmp_path):
    # A SHORT's value fills the first two of the entry's four value bytes: read as a LONG, it pointed past the data.
    gps = ifd_bytes(">", [(1, 2, 2, b"N\0\0\0"), (2, 5, 3, struct.pack(">I", 72))])
    ifd0 = ifd_bytes(">", [(0x010F, 2, 4, b"Cam\0"), (0x8825, 3, 1, struct.pack(">HH", 40, 0))])
    tiff = b"MM\0*" + struct.pack(">I", 8) + ifd0
    tiff += bytes(40 - len(tiff)) + gps
    tiff += bytes(72 - len(tiff)) + struct.pack(">6I", 52, 1, 31, 1, 12, 1)
    path = tmp_path / "short.jpg"
    path.write_bytes(jpeg_with_exif(tiff))
    assert exiftool(path)["GPS:GPSLatitude"] == 52.52, "exiftool reads the GPS IFD at 40"

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["IFD0:Make"] == "Cam"
    assert struct.pack(">6I", 52, 1, 31, 1, 12, 1) not in path.read_bytes(), "the GPS IFD's values are zeroed"


def ifd_bytes(order: str, entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """An IFD in `order`: its count, each (tag, type, count, 4 value bytes) entry, a next IFD of 0 (none)."""
    packed = b"".join(struct.pack(order + "HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return struct.pack(order + "H", len(entries)) + packed + bytes(4)


def maker_note_exif(make: bytes, header: bytes, first: tuple, places: dict, order="<", base=0, moved=0) -> bytes:
    """Little-endian EXIF: IFD0 (Make) -> ExifIFD -> a maker note at 100: `header`, then an IFD in `order` of the
    `first` entry and each place tag (72 bytes of text), offsets counted from `base` within the maker note
    (the TIFF header's when 0); `moved`: as an editor leaves them when it moves the maker note that far."""
    ifd_at = 100 + len(header)
    values_at = ifd_at + 2 + 12 * (1 + len(places)) + 4
    entries, values = [first], b""
    for tag, text in places.items():
        offset = values_at + len(values) - (100 + base if base else 0) - moved
        entries.append((tag, 7, 72, struct.pack(order + "I", offset)))
        values += text.ljust(72, b"\0")
    note = header + ifd_bytes(order, entries) + values
    tiff = bytearray(b"II*\0" + struct.pack("<I", 8))
    tiff += ifd_bytes("<", [(0x010F, 2, 16, struct.pack("<I", 60)), (0x8769, 4, 1, struct.pack("<I", 76))])
    tiff += bytes(60 - len(tiff)) + make.ljust(16, b"\0")
    tiff += ifd_bytes("<", [(0x927C, 7, len(note), struct.pack("<I", 100))])
    return bytes(tiff + bytes(100 - len(tiff)) + note)


PANASONIC_QUALITY = (0x0001, 3, 1, struct.pack("<HH", 2, 0))  # ImageQuality: High
NIKON_VERSION = (0x0001, 7, 4, b"0211")  # MakerNoteVersion
NIKON_HEADER = b"Nikon\0\x02\x10\0\0MM\0*\0\0\0\x08"  # its own TIFF header, big-endian, IFD at 8
NIKON_LOCATION = b"0100\x01FRA\0Tour Eiffel"  # version, UTF-8, country code, POI level, Location
SAMSUNG_VERSION = (0x0001, 7, 4, b"0100")
MAKER_NOTES_NAMING_PLACES = {  # case: (EXIF, exiftool's place tags in it, the tag that stays)
    "Panasonic": (
        maker_note_exif(b"Panasonic", b"Panasonic\0\0\0", PANASONIC_QUALITY, {0x6D: b"Paris", 0x6F: b"Eiffel Tower"}),
        {"Panasonic:City": "Paris", "Panasonic:Landmark": "Eiffel Tower"},
        ("Panasonic:ImageQuality", 2),
    ),
    "Panasonic, its IFD big-endian in a little-endian EXIF": (
        maker_note_exif(b"Panasonic", b"Panasonic\0\0\0", (1, 3, 1, b"\0\2\0\0"), {0x69: b"France"}, order=">"),
        {"Panasonic:Country": "France"},
        ("Panasonic:ImageQuality", 2),
    ),
    "Nikon": (
        maker_note_exif(b"NIKON", NIKON_HEADER, NIKON_VERSION, {0x39: NIKON_LOCATION}, order=">", base=10),
        {"Nikon:CountryCode": "FRA", "Nikon:Location": "Tour Eiffel"},
        ("Nikon:MakerNoteVersion", "0211"),
    ),
    "Leica's name on a Lumix (V-Lux, C-Lux)": (
        maker_note_exif(b"LEICA", b"LEICA\0\0\0", PANASONIC_QUALITY, {0x6D: b"Paris", 0x6F: b"Eiffel Tower"}),
        {"Panasonic:City": "Paris", "Panasonic:Landmark": "Eiffel Tower"},
        ("Panasonic:ImageQuality", 2),
    ),
    "Leica's D-Lux": (
        maker_note_exif(b"LEICA CAMERA AG", b"LEICA CAMERA AG\0\0\0", PANASONIC_QUALITY, {0x69: b"France"}),
        {"Panasonic:Country": "France"},
        ("Panasonic:ImageQuality", 2),
    ),
    "Nikon without a header (older Coolpix)": (
        maker_note_exif(b"NIKON", b"", NIKON_VERSION, {0x39: NIKON_LOCATION}),
        {"Nikon:CountryCode": "FRA", "Nikon:Location": "Tour Eiffel"},
        ("Nikon:MakerNoteVersion", "0211"),
    ),
    "Samsung": (
        maker_note_exif(b"SAMSUNG", b"", SAMSUNG_VERSION, {0x30: b"Paris\0 Champ de Mars", 0x31: b"Paris"}),
        {"Samsung:LocalLocationName": "Paris\nChamp de Mars", "Samsung:LocationName": "Paris"},
        ("Samsung:MakerNoteVersion", "0100"),
    ),
}


@pytest.mark.parametrize("case", MAKER_NOTES_NAMING_PLACES)
def test_a_maker_note_naming_the_place_has_those_names_zeroed_and_keeps_its_other_tags(tmp_path, case):
    exif, places, (kept, value) = MAKER_NOTES_NAMING_PLACES[case]
    path = tmp_path / "camera.jpg"
    path.write_bytes(jpeg_with_exif(exif))
    before = exiftool(path)
    assert {tag: before.get(tag) for tag in places} == places and before[kept] == value, "exiftool reads them"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert [after.get(tag) for tag in places] == [""] * len(places) or not set(places) & set(after)
    assert not any(name in str(after) for name in ("Paris", "Eiffel", "FRA", "France"))
    assert after[kept] == value and after["IFD0:Make"] == before["IFD0:Make"] and path.stat().st_size == size


def test_a_maker_note_read_by_a_make_named_twice_differently_is_refused(tmp_path):
    exif = bytearray(maker_note_exif(b"NIKON", b"", NIKON_VERSION, {0x39: NIKON_LOCATION}))
    exif[34:38] = struct.pack("<I", 38)  # IFD0 goes on to an IFD1 of another Make, in the bytes it leaves free
    exif[38:56] = ifd_bytes("<", [(0x010F, 2, 4, b"Cam\0")])
    path = tmp_path / "two makes.jpg"
    path.write_bytes(jpeg_with_exif(bytes(exif)))

    with pytest.raises(LocationError, match="two camera makes \\('Cam', 'NIKON'\\)"):
        remove_location(str(path), "image/jpeg")


def test_a_moved_maker_note_whose_place_names_cannot_be_found_safely_is_zeroed_whole(tmp_path):
    # An editor moved the maker note 40 bytes on and left its offsets: exiftool warns and reads the city
    # only when told the base (-F40); another reader may guess it.
    exif = maker_note_exif(b"Panasonic", b"Panasonic\0\0\0", PANASONIC_QUALITY, {0x6D: b"Paris"}, moved=40)
    path = tmp_path / "edited.jpg"
    path.write_bytes(jpeg_with_exif(exif))

    def city_with_base_fixed() -> str:
        read = subprocess.run(["exiftool", "-s3", "-F40", "-Panasonic:City", str(path)], capture_output=True, text=True)
        return read.stdout.strip()

    assert city_with_base_fixed() == "Paris"

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert city_with_base_fixed() == "" and not any(tag.startswith("Panasonic:") for tag in after)
    assert after["IFD0:Make"] == "Panasonic"


def test_a_maker_note_without_place_names_is_left_as_it_is(tmp_path):
    path = tmp_path / "plain.jpg"
    path.write_bytes(jpeg_with_exif(maker_note_exif(b"Panasonic", b"Panasonic\0\0\0", PANASONIC_QUALITY, {})))
    original = path.read_bytes()

    assert remove_location(str(path), "image/jpeg") is False
    assert path.read_bytes() == original


KODAK_GPS = b"N 48.8584 E 2.2945\0"
# IFD0 with a KodakIFD pointer (0x8290), and that IFD: its version, then a GPSString, as Kodak's GPS cameras write it.
KODAK_EXIF = tiff_block(
    8,
    (8, [MAKE, (0x8290, 4, 1, 38)], 0),
    (38, [(0x0000, 1, 4, 1), (0x0402, 2, len(KODAK_GPS), 68)], 0),
)


def test_a_kodak_ifd_has_its_gps_string_zeroed_and_keeps_its_other_tags(tmp_path):
    path = tmp_path / "kodak.jpg"
    path.write_bytes(jpeg_with_exif(KODAK_EXIF + KODAK_GPS))
    assert exiftool(path)["KodakIFD:GPSString"] == "N 48.8584 E 2.2945", "exiftool reads where it was taken"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert not after["KodakIFD:GPSString"] and after["KodakIFD:KodakVersion"] == "1 0 0 0"  # zeros read as ""
    assert b"48.8584" not in path.read_bytes() and path.stat().st_size == size


def tiff_holding(tag: int, kind: int, value: bytes, make: bytes = b"Cam\0") -> bytes:
    """Little-endian TIFF bytes: IFD0 with a 4-byte Make and `tag`, whose value follows the IFD (at 38)."""
    make_entry = (0x010F, 2, 4, int.from_bytes(make, "little"))
    return tiff_block(8, (8, [make_entry, (tag, kind, len(value), 38)], 0)) + value


def dng_private_data(note_offset_in_camera_file: int) -> bytes:
    """Adobe's DNG private data holding a Panasonic maker note (quality, city, landmark) as the DNG converter
    keeps it: "MakN", its length, the byte order, the offset the note had in the camera's file, the note,
    whose value offsets count from the camera's TIFF header."""
    values_at = 12 + 2 + 12 * 3 + 4
    entries = [PANASONIC_QUALITY]
    entries += [
        (tag, 7, 16, struct.pack("<I", note_offset_in_camera_file + values_at + 16 * i))
        for i, tag in enumerate((0x6D, 0x6F))
    ]
    note = b"Panasonic\0\0\0" + ifd_bytes("<", entries) + b"Paris".ljust(16, b"\0") + b"Eiffel Tower".ljust(16, b"\0")
    original = b"II" + struct.pack(">I", note_offset_in_camera_file) + note
    return b"Adobe\0MakN" + struct.pack(">I", len(original)) + original


def photo_embedded_with_gps() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif_with_gps().tobytes())
    return buffer.getvalue()


EXIF_TAGS_EXIFTOOL_FOLLOWS = {  # case: (file, its type, exiftool's location tags in it, a tag that stays)
    "AFCP IPTC": (
        tiff_holding(0x8568, 7, iim((2, 90, b"Paris"), (2, 101, b"France"), (2, 120, b"Cake"))),
        "image/tiff",
        ["IPTC2:City", "IPTC2:Country-PrimaryLocationName"],
        ("IPTC2:Caption-Abstract", "Cake"),
    ),
    "DNG private data with the camera's maker note": (
        tiff_holding(0xC634, 1, dng_private_data(4000), make=b"Pan\0"),
        "image/tiff",
        ["Panasonic:City", "Panasonic:Landmark"],
        ("Panasonic:ImageQuality", 2),
    ),
    "Hasselblad's embedded file": (
        jpeg_with_exif(tiff_holding(0xC51B, 7, photo_embedded_with_gps())),
        "image/jpeg",
        ["Doc1:GPS:GPSLatitude", "Doc1:GPS:GPSLongitude"],
        ("IFD0:Make", "Cam"),
    ),
}


@pytest.mark.parametrize("case", EXIF_TAGS_EXIFTOOL_FOLLOWS)
def test_the_blocks_exiftool_reads_from_other_exif_tags_lose_their_location(tmp_path, case):
    data, kind, places, (kept, value) = EXIF_TAGS_EXIFTOOL_FOLLOWS[case]
    path = tmp_path / "photo"
    path.write_bytes(data)
    before = exiftool(path)
    assert all(before.get(tag) for tag in places) and before[kept] == value, "exiftool reads them"

    assert remove_location(str(path), kind) is True

    after = exiftool(path)
    assert [tag for tag in places if str(after.get(tag, "")).strip()] == []
    assert not any(name in str(after) for name in ("Paris", "Eiffel", "France", "GPSLatitude"))
    assert after[kept] == value and path.stat().st_size == len(data)


def photo_with_thumbnail(path, thumbnail: bytes) -> None:
    """A plain JPEG at `path` whose EXIF holds `thumbnail` as its IFD1 thumbnail, as exiftool writes it."""
    path.write_bytes(make_image(".jpg"))
    (path.parent / "thumbnail.jpg").write_bytes(thumbnail)
    arguments = ["-q", "-q", "-overwrite_original", f"-ThumbnailImage<={path.parent / 'thumbnail.jpg'}", str(path)]
    subprocess.run(["exiftool", *arguments], check=True)


def extracted_thumbnail(path) -> bytes:
    return subprocess.run(["exiftool", "-b", "-ThumbnailImage", str(path)], capture_output=True, check=True).stdout


def test_a_thumbnail_made_from_a_tagged_photo_loses_its_own_metadata(tmp_path):
    photo_with_gps("jpg", tmp_path / "tagged.jpg", size=(32, 24))
    path = tmp_path / "photo.jpg"
    photo_with_thumbnail(path, (tmp_path / "tagged.jpg").read_bytes())
    (tmp_path / "before.jpg").write_bytes(extracted_thumbnail(path))
    assert exiftool(tmp_path / "before.jpg").get("GPS:GPSLatitudeRef") == "N", "whoever extracts it reads the GPS"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    (tmp_path / "after.jpg").write_bytes(extracted_thumbnail(path))
    assert [tag for tag in exiftool(tmp_path / "after.jpg") if tag.startswith(("GPS:", "IFD0:", "XMP"))] == []
    with Image.open(tmp_path / "before.jpg") as before, Image.open(tmp_path / "after.jpg") as after:
        assert after.tobytes() == before.tobytes(), "the thumbnail still shows the photo"
    assert path.stat().st_size == size


def test_a_bare_thumbnail_is_left_as_it_is_and_a_broken_one_loses_what_follows_the_break(tmp_path):
    path = tmp_path / "photo.jpg"
    bare = make_image(".jpg", size=(32, 24))
    bare = bare[:2] + b"\xff\xed\x00\x0cAdobe_CM\x00\x01" + bare[2:]  # as Photoshop writes a thumbnail
    photo_with_thumbnail(path, bare)
    original = path.read_bytes()
    assert remove_location(str(path), "image/jpeg") is False
    assert path.read_bytes() == original

    # An APP1 segment that claims to run past the thumbnail's end: what follows it cannot be walked.
    broken = bare[:2] + b"\xff\xe1\x7f\xff" + b"Exif\0\0secret" + bare[2:]
    photo_with_thumbnail(path, broken)
    assert b"secret" in path.read_bytes()
    assert remove_location(str(path), "image/jpeg") is True
    assert b"secret" not in path.read_bytes() and exiftool(path)["IFD1:ThumbnailLength"] == len(broken)
    with Image.open(path) as photo:
        photo.load()


def gpmf(key: bytes, kind: int, size: int, repeat: int, data: bytes) -> bytes:
    """One GoPro GPMF key-length-value item, its data padded to 4 bytes; kind 0 nests items."""
    return key + bytes((kind, size)) + struct.pack(">H", repeat) + data + bytes(-len(data) % 4)


def gopro_telemetry(*items: bytes) -> bytes:
    """The APP6 payload of a GoPro photo: the camera's name and `items` in a device's stream."""
    stream = b"".join(items)
    device = gpmf(b"DVNM", ord("c"), 6, 1, b"HERO10") + gpmf(b"STRM", 0, 1, len(stream), stream)
    return b"GoPro\0" + gpmf(b"DEVC", 0, 1, len(device), device)


def test_gopro_telemetry_with_gps_is_zeroed_and_without_is_kept(tmp_path):
    gps = gpmf(b"GPS5", ord("l"), 20, 1, struct.pack(">5i", 525200000, 134050000, 34000, 0, 0))
    path = tmp_path / "gopro.jpg"
    path.write_bytes(jpeg_with_segment(0xE6, gopro_telemetry(gps)))
    assert "GoPro:GPSLatitude" in exiftool(path), "exiftool reads the GPS in a GoPro's APP6"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    assert not any(tag.startswith("GoPro:") for tag in exiftool(path)) and path.stat().st_size == size

    settings = gpmf(b"ISOG", ord("f"), 4, 1, struct.pack(">f", 100.0))
    path.write_bytes(jpeg_with_segment(0xE6, gopro_telemetry(settings)))
    original = path.read_bytes()
    assert remove_location(str(path), "image/jpeg") is False
    assert path.read_bytes() == original and exiftool(path)["GoPro:DeviceName"] == "HERO10"


def flir_data(directory: int = 0x40) -> bytes:
    """A FLIR camera's FFF data, as its APP1 segments carry it: a header (big-endian), a directory
    of two records, CameraInfo (emissivity 0.95) and GPSInfo (little-endian, as FLIR writes it)."""
    header = (b"FFF\0" + b"TestCam".ljust(16, b"\0") + struct.pack(">IIII", 100, directory, 2, 3)).ljust(0x40, b"\0")
    entries = struct.pack(">HHIIII", 0x20, 1, 0x64, 1, 0x80, 0x40).ljust(32, b"\0")
    entries += struct.pack(">HHIIII", 0x2B, 1, 0x64, 2, 0xC0, 0x60).ljust(32, b"\0")
    camera = (struct.pack(">H", 2).ljust(0x20, b"\0") + struct.pack(">f", 0.95)).ljust(0x40, b"\0")
    gps = struct.pack("<I4s2s2s4xddf", 1, b"\2\2\0\0", b"N\0", b"E\0", 48.8584, 2.2945, 35.0).ljust(0x60, b"\0")
    return header + entries + camera + gps


def flir_chunks(data: bytes) -> list[bytes]:
    """`data` in two APP1 payloads: "FLIR\0", a version, the chunk's number and the count less one."""
    return [b"FLIR\0\x01\x00\x01" + data[:0x90], b"FLIR\0\x01\x01\x01" + data[0x90:]]


@pytest.mark.parametrize("order", [1, -1], ids=["chunks in order", "chunks reversed"])
def test_a_flir_photo_loses_its_gps_record_and_keeps_its_thermal_data(tmp_path, order):
    path = tmp_path / "thermal.jpg"
    path.write_bytes(jpeg_with_segment(0xE1, *flir_chunks(flir_data())[::order]))
    assert exiftool(path)["FLIR:GPSLatitude"] == 48.8584, "exiftool reads where the thermal photo was taken"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    after = exiftool(path)
    assert (
        not [tag for tag, value in after.items() if tag.startswith("FLIR:GPS") and value]
        and size == path.stat().st_size
    )
    assert after["FLIR:Emissivity"] == pytest.approx(0.95) and after["FLIR:CreatorSoftware"] == "TestCam"


def test_flir_data_whose_directory_cannot_be_followed_is_zeroed_whole(tmp_path):
    path = tmp_path / "thermal.jpg"
    path.write_bytes(jpeg_with_segment(0xE1, *flir_chunks(flir_data(directory=0x4000))))

    assert remove_location(str(path), "image/jpeg") is True

    assert not [tag for tag in exiftool(path) if tag.startswith("FLIR:")] and b"TestCam" not in path.read_bytes()


def animated_gif_with_xmp(path) -> None:
    """Three frames, and XMP as exiftool writes it into a GIF: GPS, a city and a title."""
    frames = [Image.new("RGB", (16, 16), color) for color in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    arguments = ["-XMP:GPSLatitude=52.5", "-XMP:GPSLongitude=13.4", "-XMP-photoshop:City=Berlin", "-XMP-dc:Title=Hi"]
    subprocess.run(["exiftool", "-q", "-q", "-overwrite_original", *arguments, str(path)], check=True)


def gif_frames(path) -> list[bytes]:
    with Image.open(path) as gif:
        return [gif.seek(frame) or gif.convert("RGB").tobytes() for frame in range(gif.n_frames)]


def test_a_gif_loses_its_xmp_location_and_what_follows_its_trailer(tmp_path):
    original, path = tmp_path / "original.gif", tmp_path / "animated.gif"
    animated_gif_with_xmp(original)
    before = exiftool(original)
    assert before["XMP-photoshop:City"] == "Berlin" and "XMP-exif:GPSLatitude" in before, "exiftool reads them"
    path.write_bytes(original.read_bytes() + b"appended video, with the place it was shot")

    assert remove_location(str(path), "image/gif") is True

    after = exiftool(path)
    assert [tag for tag in after if "GPS" in tag or "City" in tag] == [] and after["XMP-dc:Title"] == "Hi"
    assert path.stat().st_size == original.stat().st_size and "Warning" not in str(after)
    assert gif_frames(path) == gif_frames(original) and len(gif_frames(path)) == 3


def test_a_gif_cut_short_is_published_as_it_came(tmp_path):
    path = tmp_path / "short.gif"
    path.write_bytes(make_image(".gif")[:-20])  # inside its image data, no trailer
    original = path.read_bytes()

    assert remove_location(str(path), "image/gif") is False
    assert path.read_bytes() == original


def test_a_geotiff_loses_the_tags_that_place_it_on_the_earth(tmp_path):
    original, path = tmp_path / "original.tif", tmp_path / "map.tif"
    Image.new("RGB", (32, 32), (10, 100, 200)).save(original, "TIFF")
    arguments = ["-q", "-q", "-overwrite_original", "-ModelTiePoint=0 0 0 13.4 52.5 0", str(original)]
    subprocess.run(["exiftool", *arguments], check=True)
    before = exiftool(original)
    assert before["IFD0:ModelTiePoint"] == "0 0 0 13.4 52.5 0", "exiftool reads where the image lies"
    shutil.copy(original, path)

    assert remove_location(str(path), "image/tiff") is True

    after = exiftool(path)
    assert after == {tag: value for tag, value in before.items() if tag != "IFD0:ModelTiePoint"}
    assert b"52.5" not in path.read_bytes() and struct.pack("<d", 52.5) not in path.read_bytes()
    with Image.open(original) as old, Image.open(path) as new:
        assert new.tobytes() == old.tobytes()


def jpeg_with_c2pa(assertion: bytes, packets: int = 1, reverse: bool = False) -> bytes:
    """A small JPEG with a JUMBF box (a C2PA assertion labelled stds.exif) in `packets` APP11 segments (the last
    first when `reverse`)."""
    description = box(b"jumd", bytes.fromhex("6a736f6e00110010800000aa00389b71") + b"\x03stds.exif\0")
    superbox = box(b"jumb", description + box(b"json", assertion))
    header, content = superbox[:8], superbox[8:]
    size = -(-len(content) // packets)
    slices = enumerate(range(0, len(content), size), start=1)
    payloads = [b"JP" + struct.pack(">HI", 1, n) + header + content[at : at + size] for n, at in slices]
    return jpeg_with_segment(0xEB, *(payloads[::-1] if reverse else payloads))


C2PA_EXIF = b'{"@context": {"exif": "http://ns.adobe.com/exif/1.0/"}, "exif:GPSLatitude": "52,31.2N"}'


@pytest.mark.parametrize("packets", [1, 3], ids=["one packet", "split across packets"])
def test_c2pa_credentials_that_name_the_place_are_zeroed(tmp_path, packets):
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(jpeg_with_c2pa(C2PA_EXIF, packets))
    assert exiftool(path)["Doc1:JSON:ExifGPSLatitude"] == "52,31.2N", "exiftool reads the GPS there"
    size = os.path.getsize(path)

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag or ":JUMBF:" in tag or ":JSON:" in tag] == []
    assert os.path.getsize(path) == size
    with Image.open(path) as image:
        image.load()


C2PA_PLACES = {  # case: (assertion, a tag exiftool reads from it)
    # Where the camera looked (its GPSDest… keys) is a place too.
    "any exif gps key": (b'{"exif:GPSDestLatitude": "52,31.2N"}', "Doc1:JSON:ExifGPSDestLatitude"),
    "a vendor's latitude": (b'{"drone:AbsLatitude": 52.52, "drone:AbsLongitude": 13.4}', "Doc1:JSON:DroneAbsLatitude"),
    "schema.org's": (b'{"contentLocation": {"geo": {"latitude": 52.52}}}', "Doc1:JSON:ContentLocationGeoLatitude"),
    # JSON-LD lets the writer name the prefix: exiftool reads the GPS key whatever it is.
    "a gps key under another prefix": (b'{"EXIF:GPSAreaInformation": "52 Paris"}', "Doc1:JSON:EXIFGPSAreaInformation"),
}


@pytest.mark.parametrize("case", C2PA_PLACES)
def test_c2pa_credentials_with_any_key_holding_a_place_are_zeroed(tmp_path, case):
    assertion, tag = C2PA_PLACES[case]
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(jpeg_with_c2pa(assertion))
    assert str(exiftool(path)[tag]).startswith("52"), "exiftool reads the place there"

    assert remove_location(str(path), "image/jpeg") is True

    assert [tag for tag in exiftool(path) if "GPS" in tag or ":JSON:" in tag] == []


def png_with_c2pa(assertion: bytes) -> bytes:
    """A small PNG with a JUMBF box (a C2PA assertion labelled stds.exif) in a caBX chunk after IHDR."""
    description = box(b"jumd", bytes.fromhex("6a736f6e00110010800000aa00389b71") + b"\x03stds.exif\0")
    superbox = box(b"jumb", description + box(b"json", assertion))
    png = make_image(".png")
    chunk = struct.pack(">I4s", len(superbox), b"caBX") + superbox + struct.pack(">I", zlib.crc32(b"caBX" + superbox))
    return png[:33] + chunk + png[33:]  # the signature and IHDR take 33 bytes


@pytest.mark.parametrize("assertion", [C2PA_EXIF, b'{"actions": [{"action": "c2pa.created"}]}'], ids=["gps", "none"])
def test_png_c2pa_credentials_are_zeroed_when_they_name_the_place(tmp_path, assertion):
    path = tmp_path / "c2pa.png"
    path.write_bytes(png_with_c2pa(assertion))
    original, names_place = path.read_bytes(), b"GPS" in assertion
    assert any(tag.endswith("JSON:ExifGPSLatitude") for tag in exiftool(path)) is names_place, "exiftool reads them"

    assert remove_location(str(path), "image/png") is names_place

    tags = exiftool(path)
    assert [tag for tag in tags if "GPS" in tag] == [] and "Warning" not in str(tags)  # its CRC mended too
    assert path.read_bytes() == original if not names_place else len(path.read_bytes()) == len(original)
    with Image.open(path) as image:
        image.load()


def test_c2pa_packets_out_of_file_order_are_read_in_sequence_order(tmp_path):
    # The key is cut between the two packets, and the second comes first in the file: joined in file
    # order, no key would show; exiftool joins them by sequence number and reads it.
    assertion = next(
        padded
        for padded in (b'{"drone:AbsLatitude": 52.52}' + b" " * padding for padding in range(128))
        if b"Latitude" not in jpeg_with_c2pa(padded, packets=2) and b"Lat" in jpeg_with_c2pa(padded, packets=2)
    )
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(jpeg_with_c2pa(assertion, packets=2, reverse=True))
    assert exiftool(path)["Doc1:JSON:DroneAbsLatitude"] == 52.52, "exiftool reads the place there"

    assert remove_location(str(path), "image/jpeg") is True

    assert [tag for tag in exiftool(path) if ":JSON:" in tag] == [] and b"52.52" not in path.read_bytes()


def test_a_jumbf_packet_of_another_box_type_naming_the_place_is_zeroed_with_the_rest(tmp_path):
    # exiftool takes every APP11 packet starting "JP" for JUMBF, whatever its box type.
    data = bytearray(jpeg_with_c2pa(C2PA_EXIF, packets=3))
    third = data.rindex(b"JP\0\x01\0\0\0\x03")
    data[third + 12 : third + 16] = b"jumd"
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(bytes(data))

    assert remove_location(str(path), "image/jpeg") is True

    assert b"52,31.2N" not in path.read_bytes() and b"JP\0\x01" not in path.read_bytes()


def test_jumbf_packets_out_of_sequence_are_zeroed(tmp_path):
    # No C2PA reader can join them, and exiftool sizes a list by the sequence number: one of 2**31 exhausts it.
    data = bytearray(jpeg_with_c2pa(b'{"actions": [{"action": "c2pa.created"}]}', packets=2))
    second = data.rindex(b"JP\0\x01\0\0\0\x02")
    data[second + 4 : second + 8] = struct.pack(">I", 2**31)
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(bytes(data))

    assert remove_location(str(path), "image/jpeg") is True

    assert b"JP\0\x01" not in path.read_bytes() and b"c2pa.created" not in path.read_bytes()
    with Image.open(path) as image:
        image.load()


def test_c2pa_credentials_naming_no_place_are_kept(tmp_path):
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(jpeg_with_c2pa(b'{"actions": [{"action": "c2pa.created"}]}'))
    original = path.read_bytes()
    assert remove_location(str(path), "image/jpeg") is False
    assert path.read_bytes() == original


def test_a_jumbf_packet_shorter_than_its_header_is_refused(tmp_path):
    payload = b"JP" + struct.pack(">HI", 1, 1) + struct.pack(">I", 1) + b"jumb" + bytes(4)  # XLBox cut short
    path = tmp_path / "c2pa.jpg"
    path.write_bytes(jpeg_with_segment(0xEB, payload))
    with pytest.raises(LocationError, match="shorter than its header"):
        remove_location(str(path), "image/jpeg")


SUB_IFDS_EXIFTOOL_SKIPS = {  # IFD0 holds GPS; its sub-IFD pointer leads nowhere new, so the photo is published
    "back at IFD0": (0x8769, 4, 1, 8),
    "past the end": (0x8769, 4, 1, 0x7FFFFFF0),
    "of a wrong type": (0x8769, 2, 4, 8),
    "listed past the end": (330, 4, 2, 0x7FFFFFF0),
}


@pytest.mark.parametrize("case", SUB_IFDS_EXIFTOOL_SKIPS)
def test_a_sub_ifd_pointer_exiftool_cannot_follow_is_skipped(tmp_path, case):
    path = tmp_path / "sub.jpg"
    ifd0 = (8, [MAKE, SUB_IFDS_EXIFTOOL_SKIPS[case], (0x8825, 4, 1, 200)], 0)
    path.write_bytes(jpeg_with_exif(tiff_block(8, ifd0, GPS_IFD)))
    assert exiftool(path).get("GPS:GPSLatitudeRef") == "N", "exiftool reads the GPS in IFD0"

    assert remove_location(str(path), "image/jpeg") is True

    assert [tag for tag in exiftool(path) if "GPS" in tag] == []


SPLIT_BLOCKS = {  # a block carried on into the next segment of its kind, split inside the value `near` names
    "EXIF": (0xE1, exif_with_gps().tobytes(), b"TestCam", b"Exif\0\0", "GPS:GPSLatitudeRef", ("IFD0:Make", "TestCam")),
    "Photoshop resources": (
        0xED,
        photoshop_resources((0x0400, bytes(65000)), (0x0404, iim(CAPTION, CITY))),
        b"Berlin",
        b"Photoshop 3.0\0",
        "IPTC:City",
        ("IPTC:Caption-Abstract", "Birthday"),
    ),
}


@pytest.mark.parametrize("case", SPLIT_BLOCKS)
def test_a_block_carried_on_into_the_next_segment_loses_its_location_across_the_split(tmp_path, case):
    marker, block, near, header, place, (kept, value) = SPLIT_BLOCKS[case]
    split = block.index(near) + 3
    path = tmp_path / "split.jpg"
    path.write_bytes(jpeg_with_segment(marker, block[:split], header + block[split:]))
    assert exiftool(path)[place], "exiftool reads the two segments as one"
    size = os.path.getsize(path)

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert str(tags.get(place, "")).strip() == "" and [tag for tag in tags if "GPS" in tag] == []
    assert tags[kept] == value and os.path.getsize(path) == size


EXTENDED_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" photoshop:City="Paris" dc:format="image/jpeg"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
EXTENDED_XMP_GUID = b"ABB7EDC92D9D4E76BD327E817A7BA5D7"


def jpeg_with_extended_xmp(slices: list[tuple[int, int]], full_length: int = len(EXTENDED_XMP)) -> bytes:
    """A JPEG whose XMP says it goes on in extended XMP, and that packet's (start, end) slices, in that order."""
    main = JPEG_XMP + XMP_WITHOUT_LOCATION.replace(
        b"<rdf:Description ",
        b'<rdf:Description xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmpNote:HasExtendedXMP="'
        + EXTENDED_XMP_GUID
        + b'" ',
        1,
    )
    extension = b"http://ns.adobe.com/xmp/extension/\0" + EXTENDED_XMP_GUID + struct.pack(">I", full_length)
    return jpeg_with_segment(
        0xE1, main, *(extension + struct.pack(">I", start) + EXTENDED_XMP[start:end] for start, end in slices)
    )


def test_extended_xmp_is_blanked_as_readers_join_its_slices(tmp_path):
    # "photoshop:Ci" | "ty=..." : neither slice alone names the city. They come last slice first.
    cut = EXTENDED_XMP.index(b"photoshop:City") + len(b"photoshop:Ci")
    path = tmp_path / "extended.jpg"
    path.write_bytes(jpeg_with_extended_xmp([(cut, len(EXTENDED_XMP)), (0, cut)]))
    assert exiftool(path)["XMP-photoshop:City"] == "Paris", "exiftool joins the slices"
    size = path.stat().st_size

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert "XMP-photoshop:City" not in tags and b"Paris" not in path.read_bytes()
    assert tags["XMP-dc:Format"] == "image/jpeg" and path.stat().st_size == size


EXTENDED_XMP_UNJOINABLE = {  # case: (slices, the full length they give)
    "overlapping": ([(0, 100), (90, len(EXTENDED_XMP))], len(EXTENDED_XMP)),
    "with a gap": ([(0, 100), (110, len(EXTENDED_XMP))], len(EXTENDED_XMP)),
    "shorter than they say": ([(0, 100)], len(EXTENDED_XMP)),
}


@pytest.mark.parametrize("case", EXTENDED_XMP_UNJOINABLE)
def test_extended_xmp_slices_that_cannot_be_joined_are_refused(tmp_path, case):
    slices, full_length = EXTENDED_XMP_UNJOINABLE[case]
    path = tmp_path / "extended.jpg"
    path.write_bytes(jpeg_with_extended_xmp(slices, full_length))

    with pytest.raises(LocationError, match="extended XMP slices"):
        remove_location(str(path), "image/jpeg")


def test_a_bigtiff_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "big.tif"
    Image.new("RGB", (8, 8)).save(path, big_tiff=True)
    with pytest.raises(LocationError, match="it is a BigTIFF, whose metadata is not read here; save it as a TIFF"):
        remove_location(str(path), detect_type(path.read_bytes()))


def test_junk_between_jpeg_segments_is_skipped_as_decoders_skip_it(tmp_path):
    photo = jpeg_with_exif(exif_with_gps().tobytes()[6:])
    after_exif = 4 + struct.unpack(">H", photo[4:6])[0]
    path = tmp_path / "junk.jpg"
    path.write_bytes(photo[:after_exif] + b"hello" + photo[after_exif:])  # as some writers leave it
    assert exiftool(path)["GPS:GPSLatitudeRef"] == "N", "exiftool reads the GPS and skips the junk"

    assert remove_location(str(path), "image/jpeg") is True

    assert [tag for tag in exiftool(path) if "GPS" in tag] == []
    with Image.open(path) as image:
        image.load()


def test_a_jpeg_of_junk_with_no_next_marker_is_refused(tmp_path):
    plain = make_image(".jpg")
    path = tmp_path / "junk.jpg"
    path.write_bytes(plain[:2] + b"x" * (70 * 1024) + plain[2:])
    with pytest.raises(LocationError, match="segments are malformed"):
        remove_location(str(path), "image/jpeg")


# Headers a writer broke that exiftool still reads (and says so): EXIF after garbage, in lower case, without
# its second NUL (some Kodak cameras); XMP under another header; IIM in Photoshop 2.5's APP13 or under a header
# that only exiftool's pattern (a dot for any byte) takes for Photoshop's.
BROKEN_HEADERS = {
    "EXIF without its second NUL": (0xE1, b"Exif\0 " + exif_with_gps().tobytes()[6:]),
    "EXIF after garbage, lower case": (0xE1, b"\0\0\0\0exif\0\0" + exif_with_gps().tobytes()[6:]),
    "XMP under a misspelt namespace": (0xE1, b"http://ns.adobe.com/xap/1.0\0" + XMP),
    "XMP under no header": (0xE1, b"\0\0\0" + XMP),
    "XMP in mixed case": (0xE1, JPEG_XMP + XMP.replace(b"exif:GPSLatitude", b"exif:GpSLatitude")),
    "Photoshop 2.5 IIM": (0xED, b"Adobe_Photoshop2.5:" + bytes(8) + photoshop_iim(iim(CAPTION, CITY))),
    "Photoshop header with a wrong byte": (0xED, b"Photoshop 3_0\0" + photoshop_iim(iim(CAPTION, CITY))),
}


@pytest.mark.parametrize("case", BROKEN_HEADERS)
def test_location_exiftool_reads_under_a_broken_header_is_blanked_too(tmp_path, case):
    path = tmp_path / "broken.jpg"
    path.write_bytes(jpeg_with_segment(*BROKEN_HEADERS[case]))
    located = [tag for tag, value in exiftool(path).items() if ("GPS" in tag.upper() or "City" in tag) and value]
    assert located, "exiftool reads the location there"

    assert remove_location(str(path), "image/jpeg") is True

    tags = exiftool(path)
    assert [tag for tag in located if str(tags.get(tag, "")).strip()] == []


@pytest.mark.parametrize("compressed", [True, False], ids=["zTXt", "tEXt"])
@pytest.mark.parametrize("case", RAW_PROFILES_NAMING_A_LOCATION)
def test_a_png_raw_profile_loses_the_location_it_names(tmp_path, case, compressed):
    name, profile = RAW_PROFILES_NAMING_A_LOCATION[case]
    path = tmp_path / "magick.png"
    png_with_raw_profile(path, name, profile, compressed)
    size, before = path.stat().st_size, exiftool(path)

    assert remove_location(str(path), "image/png") is True

    assert location_read(path) == {} and path.stat().st_size == size
    kept = {tag: value for tag, value in before.items() if not LOCATION_TAG.search(tag)}
    assert {tag: value for tag, value in exiftool(path).items() if not LOCATION_TAG.search(tag)} == kept
    with Image.open(path) as image:
        image.load()  # the CRC is right
        text = image.info[f"Raw profile type {name}"]
    header, length, digits = text.split("\n", 3)[1:]
    after = bytes.fromhex(digits)
    assert header == name and int(length) == len(profile) == len(after) and after != profile
    assert b"Berlin" not in after, "the place is blanked in the profile itself"
    assert all(len(line) == 72 for line in digits.split("\n")[:-2]), "the hex keeps ImageMagick's lines"


@pytest.mark.parametrize("case", RAW_PROFILES_NAMING_NO_LOCATION)
def test_a_png_raw_profile_naming_no_location_is_published_as_it_is(tmp_path, case):
    path = tmp_path / "magick.png"
    png_with_raw_profile(path, *RAW_PROFILES_NAMING_NO_LOCATION[case])
    original = path.read_bytes()
    assert remove_location(str(path), "image/png") is False
    assert path.read_bytes() == original


def test_png_iptc_written_by_exiftool_loses_only_its_place(tmp_path):
    placed, captioned = tmp_path / "placed.png", tmp_path / "captioned.png"
    Image.new("RGB", (8, 8)).save(placed)
    Image.new("RGB", (8, 8)).save(captioned)
    write_place_names(placed, iim=True)  # exiftool keeps a PNG's IPTC in a "Raw profile type iptc" chunk
    write_caption(captioned)
    assert exiftool(placed)["IPTC:City"] == "Berlin" and exiftool(captioned)["IPTC:Caption-Abstract"] == "Birthday"

    assert remove_location(str(placed), "image/png") is True
    assert remove_location(str(captioned), "image/png") is False
    assert exiftool(placed)["IPTC:City"].strip() == "" and exiftool(captioned)["IPTC:Caption-Abstract"] == "Birthday"


@pytest.mark.parametrize("city", ["Rom", "Bonn", "Paris"])
def test_png_iptc_of_one_short_place_name_written_by_exiftool_is_blanked(tmp_path, city):
    # exiftool compresses it into about 64 bytes; blanking a short name saves only 2 to 6 of them.
    path = tmp_path / "city.png"
    Image.new("RGB", (8, 8)).save(path)
    subprocess.run(["exiftool", "-q", "-q", "-overwrite_original", f"-IPTC:City={city}", str(path)], check=True)
    assert exiftool(path)["IPTC:City"] == city

    assert remove_location(str(path), "image/png") is True

    assert exiftool(path)["IPTC:City"].strip() == "" and location_read(path) == {}


MALFORMED_RAW_PROFILES = {  # case: (chunk text, what the reason says)
    "not hex": ("\nexif\n       4\n4578zz00\n", "not hex"),
    "short": ("\nexif\n      16\n45786966\n", "length does not match"),
    "no length": ("\nexif\nfour\n45786966\n", "header"),
    "bomb": ("\nexif\n 9999999\n" + "0" * (17 * 1024 * 1024), "inflate to more than"),
}


@pytest.mark.parametrize("case", MALFORMED_RAW_PROFILES)
def test_a_png_raw_profile_that_cannot_be_read_is_refused_quickly(tmp_path, case):
    text, reason = MALFORMED_RAW_PROFILES[case]
    info = PngInfo()
    info.add_text("Raw profile type exif", text, zip=True)
    path = tmp_path / "magick.png"
    Image.new("RGB", (8, 8)).save(path, "PNG", pnginfo=info)
    started = time.monotonic()
    with pytest.raises(LocationError, match=reason):
        remove_location(str(path), "image/png")
    assert time.monotonic() - started < 1
