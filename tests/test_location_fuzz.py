"""Hostile variations of photos that carry location: removal either publishes no location or refuses.

Each photo of the location tests (every format's GPS and place names, maker notes, Kodak's IFD,
location namespaces, Darwin Core's terms, GoPro and FLIR data, C2PA, Photoshop resources, PNG
chunks, compressed too, a hex raw profile and text chunks named for a place, a GIF's XMP, a
GeoTIFF) is damaged in a few bytes, the same way on every run (seeded), and goes through what a
delivery does with it: libmagic names its type, and location removal walks it.
The only ways out are a published file in which exiftool reads no location, or LocationError with
a reason. Anything else would be a 500 or a leak; a walk over a second would be a stuck worker.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import time

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from inbox.images import ACCEPTED, detect_type
from inbox.jpeg_segments import JPEG_XMP
from inbox.location import LocationError, remove_location
from inbox.spool import SNIFF_BYTES
from tests.harness import (
    LOCATION_FORMATS,
    XMP,
    exif_with_gps,
    jpeg_with_exif,
    jpeg_with_segment,
    photo_with_gps,
    write_place_names,
)
from tests.test_location import (
    C2PA_EXIF,
    CELL_XMP,
    COMPRESSED_PNG_CHUNKS,
    FLAT_PLACE_XMP,
    GPS_TIFF,
    IMAGEMAGICK_TEXT,
    KODAK_EXIF,
    KODAK_GPS,
    MAKER_NOTES_NAMING_PLACES,
    PNG_CHUNKS_EXIFTOOL_READS,
    SCHEMA_PLACE_XMP,
    animated_gif_with_xmp,
    flir_chunks,
    flir_data,
    gopro_telemetry,
    gpmf,
    jpeg_with_c2pa,
    photoshop_resources,
    png_with_chunk,
    png_with_raw_profile,
)

# More for a longer search: INBOX_FUZZ_VARIANTS=2500 pytest tests/test_location_fuzz.py (about 4.5 minutes).
VARIANTS_PER_PHOTO = int(os.environ.get("INBOX_FUZZ_VARIANTS", "300"))
# What exiftool reads as where a photo was taken: its Location group (GPS, IPTC and XMP places, maker
# notes' place names, a cell tower), any tag named GPS, Latitude or Longitude (C2PA's JSON, Darwin Core's
# terms outside its struct; not EXIF's ISO speed latitude, a film's), and the places this service also
# removes outside them.
LOCATION_TAGS = [
    *("-Location:all", "-*GPS*", "-*Latitude*", "-*Longitude*", "-*Locality*"),
    *("-XMP-xmpDM:ShotLocation", "-ModelTiePoint", "-GeoTiffDirectory"),
]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    return location_photos(tmp_path_factory.mktemp("seeds"))


def location_photos(folder) -> dict[str, bytes]:
    """name: the bytes of a photo that carries location (made in `folder`)."""
    photos = {}
    for extension in LOCATION_FORMATS:
        path = folder / f"gps.{extension}"
        photo_with_gps(extension, path)
        if extension in ("jpg", "tif"):
            write_place_names(path, iim=True, digest=True)
        photos[path.name] = path.read_bytes()
    for case, (exif, _, _) in MAKER_NOTES_NAMING_PLACES.items():
        photos[f"maker note, {case}"] = jpeg_with_exif(exif)
    photos["kodak"] = jpeg_with_exif(KODAK_EXIF + KODAK_GPS)
    for name, packet in (
        ("cell tower", CELL_XMP),
        ("shot location", SCHEMA_PLACE_XMP),
        ("flat places", FLAT_PLACE_XMP),
    ):
        photos[name] = jpeg_with_segment(0xE1, JPEG_XMP + packet)
    gps = gpmf(b"GPS5", ord("l"), 20, 1, struct.pack(">5i", 525200000, 134050000, 34000, 0, 0))
    photos["gopro"] = jpeg_with_segment(0xE6, gopro_telemetry(gps))
    photos["flir"] = jpeg_with_segment(0xE1, *flir_chunks(flir_data()))
    photos["c2pa"] = jpeg_with_c2pa(C2PA_EXIF, packets=3)
    for resource, data in ((0x0422, GPS_TIFF), (0x0424, XMP)):
        photos[f"photoshop resource {resource:#x}"] = jpeg_with_segment(0xED, photoshop_resources((resource, data)))
    for case, (kind, data) in (PNG_CHUNKS_EXIFTOOL_READS | COMPRESSED_PNG_CHUNKS).items():
        photos[f"png {case}"] = png_with_chunk(kind, data)
    png_with_raw_profile(folder / "profile.png", "exif", exif_with_gps().tobytes())  # hex in a zTXt, as ImageMagick
    photos["png raw profile"] = (folder / "profile.png").read_bytes()
    magick = PngInfo()
    for keyword in ("exif:GPSLatitude", "exif:GPSLatitudeRef", "exif:GPSLongitude"):
        value, compressed = IMAGEMAGICK_TEXT[keyword]
        magick.add_text(keyword, value, zip=compressed)
    Image.new("RGB", (8, 8)).save(folder / "magick.png", "PNG", pnginfo=magick)
    photos["png text chunks"] = (folder / "magick.png").read_bytes()
    animated_gif_with_xmp(folder / "xmp.gif")
    photos["xmp.gif"] = (folder / "xmp.gif").read_bytes()
    geotiff = folder / "geo.tif"
    photo_with_gps("tif", geotiff)
    arguments = ["-q", "-q", "-overwrite_original", "-ModelTiePoint=0 0 0 13.4 52.5 0", str(geotiff)]
    subprocess.run(["exiftool", *arguments], check=True)
    photos["geo.tif"] = geotiff.read_bytes()
    return photos


def damaged(photo: bytes, rng: random.Random) -> bytes:
    """`photo` with one to four bytes changed, runs cut out or inserted, or an edge value set."""
    data = bytearray(photo)
    for _ in range(rng.randint(1, 4)):
        at, choice = rng.randrange(len(data)), rng.random()
        if choice < 0.5:
            data[at] = rng.randrange(256)
        elif choice < 0.65:
            data[at] = rng.choice((0x00, 0x7F, 0x80, 0xFF))
        elif choice < 0.8:
            del data[at : at + rng.randint(1, 32)]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def exiftool_locations(folder) -> dict[str, dict]:
    """file name: the location tags with a value that exiftool reads in it, for every file in `folder`."""
    out = subprocess.run(
        ["exiftool", "-j", "-n", "-a", "-G1", "-ee", "-q", "-q", *LOCATION_TAGS, str(folder)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",  # exiftool copies a damaged name's bytes as they are
    ).stdout
    found = {}
    for row in json.loads(out or "[]"):
        # Zeroed values read as nothing or 0 (-n: numbers, not their words).
        tags = {
            tag: value
            for tag, value in row.items()
            if str(value).strip(" \0") not in ("", "0") and "ISOSpeedLatitude" not in tag
        }
        del tags["SourceFile"]
        if tags:
            found[row["SourceFile"].rsplit("/", 1)[-1]] = tags
    return found


def file_name(name: str, content_type: str, number: int | str) -> str:
    """A file name for a variant that exiftool takes, in a folder, by its extension."""
    return f"{name.replace(' ', '_').replace(',', '')}-{number}{ACCEPTED[content_type]}"


def test_the_check_reads_the_location_of_every_photo_before_removal(seeds, tmp_path):
    for name, photo in seeds.items():
        (tmp_path / file_name(name, detect_type(photo[:SNIFF_BYTES]), "original")).write_bytes(photo)

    assert sorted(exiftool_locations(tmp_path)) == sorted(path.name for path in tmp_path.iterdir())


def test_damaged_photos_are_published_without_location_or_refused_with_a_reason(seeds, tmp_path):
    outcomes = {"published": 0, "refused": 0}
    slowest = 0.0
    for name, photo in seeds.items():
        rng = random.Random(name)  # the same variants on every run
        for number in range(VARIANTS_PER_PHOTO):
            data = damaged(photo, rng)
            content_type = detect_type(data[:SNIFF_BYTES])
            if content_type not in ACCEPTED:
                continue  # refused before any walk, as a delivery refuses it
            path = tmp_path / file_name(name, content_type, number)
            path.write_bytes(data)
            started = time.monotonic()
            try:
                remove_location(str(path), content_type)
                outcomes["published"] += 1
            except LocationError as error:
                assert error.reason, f"{path.name}: refused without a reason"
                outcomes["refused"] += 1
                path.unlink()
            slowest = max(slowest, time.monotonic() - started)

    assert exiftool_locations(tmp_path) == {}
    assert slowest < 1, f"one walk took {slowest:.2f} s"
    # Both ways out are taken: the variants reach the walks, not only the type check.
    assert outcomes["published"] > len(seeds) * VARIANTS_PER_PHOTO // 4 and outcomes["refused"] > 0, outcomes
