"""Helpers the test modules import: the test signing key, real image files, GPS-bearing photos and their
exiftool reading, malformed EXIF, signed Mailgun forms."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from inbox.delivery import build_delivery

INBOX = str(Path(sys.executable).with_name("inbox"))  # the installed console script
SIGNING_KEY = "test-webhook-signing-key"
pillow_heif.register_heif_opener()

# Pillow format name per stored extension: one real file of every accepted type.
IMAGE_FORMATS = {
    ".jpg": "JPEG",
    ".png": "PNG",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".heic": "HEIF",
    ".avif": "AVIF",
    ".tif": "TIFF",
}


def make_image(extension: str = ".jpg", size=(64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, IMAGE_FORMATS[extension])
    return buffer.getvalue()


def pasted_photo(size=(320, 240)) -> bytes:
    """A photo as a phone or Gmail pastes it inline: noisy content, a real JPEG of some KiB."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def large_photo(size: int) -> bytes:
    """A real JPEG (its segments parse, so location removal passes it) padded to `size` with random image data.

    Every FF in the padding is stuffed (FF 00), as in an encoder's output: it holds no marker, so a
    walk through it to the EOI finds the photo's end.
    """
    head = make_image(".jpg")
    padding = os.urandom(size - len(head)).replace(b"\xff", b"\xff\x00")[: size - len(head)]
    return head[:-2] + padding + head[-2:]


def mailgun_form(*attachments, **fields) -> dict:
    """A signed forward() form for Flask's test client; attachments are (filename, bytes) pairs, sent as JPEG."""
    return build_delivery(
        [(filename, content, "image/jpeg") for filename, content in attachments],
        key=SIGNING_KEY,
        from_header=f"Alice <{fields.get('sender', 'alice@example.com')}>",
        text="see attached",
        **fields,
    ).form()


XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
    ' xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' exif:GPSLatitude="52,31.2N" exif:GPSLongitude="13,24.5E" exif:ExposureProgram="2">'
    '<exif:GPSAltitude>34/1</exif:GPSAltitude><dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour</rdf:li>'
    '</rdf:Alt></dc:title></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
).encode()
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# Formats that carry location, and Pillow's writer for each (file extensions without the dot).
# mpo: a JPEG with a second image appended and listed in its MPF index, as cameras store previews.
LOCATION_FORMATS = {
    "jpg": "JPEG",
    "mpo": "MPO",
    "png": "PNG",
    "webp": "WEBP",
    "tif": "TIFF",
    "heic": "HEIF",
    "avif": "AVIF",
}


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW
    exif[0x010F] = "TestCam"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 30.25), 5: b"\x00", 6: 34.5}
    return exif


def photo_with_gps(extension: str, path, size=(64, 48)) -> None:
    """A real photo with EXIF GPS, XMP GPS properties, an ICC profile and an Orientation tag."""
    image = Image.new("RGB", size)
    image.putdata([(x * 4 % 256, y * 5 % 256, x * y % 256) for y in range(size[1]) for x in range(size[0])])
    options = {"exif": exif_with_gps().tobytes(), "icc_profile": ICC, "xmp": XMP}
    if extension == "png":
        options["pnginfo"] = PngInfo()
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", XMP.decode())
    elif extension == "tif":  # Pillow's TIFF writer takes the XMP as tag 700 of the IFD
        options["tiffinfo"] = Image.Exif()
        options["tiffinfo"].load(options.pop("exif"))
        options["tiffinfo"][700] = XMP
    elif extension == "webp":
        options["lossless"] = True
    elif extension == "heic":
        options["quality"] = -1  # lossless
    elif extension == "mpo":  # Pillow writes the EXIF (GPS included) and XMP into both images
        options.update(save_all=True, append_images=[image.transpose(Image.Transpose.ROTATE_180)])
    image.save(path, LOCATION_FORMATS[extension], **options)


def mpf_image_list(data: bytes) -> tuple[int, str, int]:
    """Where an MPO's MP header is (its offsets count from there), its byte order, and its MPEntry tag."""
    header = data.index(b"MPF\0") + 4
    order = "<" if data[header : header + 2] == b"II" else ">"
    ifd = header + struct.unpack(order + "I", data[header + 4 : header + 8])[0]
    entries = [ifd + 2 + 12 * i for i in range(struct.unpack(order + "H", data[ifd : ifd + 2])[0])]
    return header, order, next(at for at in entries if struct.unpack(order + "H", data[at : at + 2])[0] == 0xB002)


VIDEO_PLACE = b"+48.8584+002.2945/"  # ISO 6709, as phones write it into a video's udta


def box(kind: bytes, payload: bytes, version: int | None = None) -> bytes:
    """An ISOBMFF box (HEIF, MP4); a FullBox when `version` is given (flags 0)."""
    if version is not None:
        payload = struct.pack(">I", version << 24) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def motion_video() -> bytes:
    """The MP4 a phone appends to a motion photo, cut to what matters here: where it was shot (udta ©xyz).

    exiftool reads this MP4's GPSCoordinates on its own, but not inside a JPEG's trailer, so the
    tests look for the bytes.
    """
    place = box(b"\xa9xyz", struct.pack(">HH", len(VIDEO_PLACE), 0x15C7) + VIDEO_PLACE)
    return box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + box(b"moov", box(b"udta", place))


def container_directory(path) -> list[str]:
    """The semantics of the items of the file's Google container directory, as exiftool reads them."""
    out = subprocess.run(
        ["exiftool", "-j", "-struct", "-XMP-Container:Directory", str(path)], capture_output=True, text=True, check=True
    )
    return [entry["Item"]["Semantic"] for entry in json.loads(out.stdout)[0].get("Directory", [])]


# Where a photo was taken, as an editor's address lookup fills it in (Lightroom writes these; exiftool here).
XMP_PLACES = {
    "XMP-photoshop:City": "Berlin",
    "XMP-photoshop:State": "Berlin",
    "XMP-photoshop:Country": "Germany",
    "XMP-iptcCore:Location": "Unter den Linden 1",
    "XMP-iptcCore:CountryCode": "DEU",
    "XMP-iptcExt:LocationCreatedCity": "Berlin",
    "XMP-iptcExt:LocationShownSublocation": "Brandenburger Tor",
}
IIM_PLACES = {
    "IPTC:ContentLocationName": "Mitte",
    "IPTC:City": "Berlin",
    "IPTC:Sub-location": "Unter den Linden 1",
    "IPTC:Province-State": "Berlin",
    "IPTC:Country-PrimaryLocationCode": "DEU",
    "IPTC:Country-PrimaryLocationName": "Germany",
}


def write_place_names(path, iim: bool, digest: bool = False) -> None:
    """Fill in where the photo was taken, as an editor does: in XMP, and with `iim` in IPTC-IIM too (a JPEG's
    APP13, a TIFF's tag 33723), with `digest` the MD5 Photoshop keeps of it. Also a caption and the
    photographer's own city, which stay."""
    tags = {**XMP_PLACES, "XMP-iptcCore:CreatorCity": "Hamburg"}
    if iim:
        tags |= {**IIM_PLACES, "IPTC:Caption-Abstract": "Birthday"}
    if digest:
        tags["Photoshop:IPTCDigest"] = "new"
    arguments = [f"-{tag}={value}" for tag, value in tags.items()]
    subprocess.run(["exiftool", "-q", "-overwrite_original", *arguments, str(path)], check=True)


def write_caption(path) -> None:
    """Give the photo an IPTC caption and nothing else, as exiftool writes it (in a PNG: a raw profile)."""
    arguments = ["-q", "-q", "-overwrite_original", "-IPTC:Caption-Abstract=Birthday", str(path)]
    subprocess.run(["exiftool", *arguments], check=True)


def exiftool(path) -> dict:
    """exiftool's reading of the file (the independent reader), without the file-system facts.

    Tags of images embedded in the file (a JPEG's MPF images) are included, named `Doc2:…` and on.
    """
    if shutil.which("exiftool") is None:
        pytest.fail("exiftool is missing: scripts/bootstrap --test installs it (Debian libimage-exiftool-perl)")
    out = subprocess.run(
        ["exiftool", "-j", "-ee", "-a", "-G3:1", "-n", str(path)], capture_output=True, text=True, check=True
    )
    tags = json.loads(out.stdout)[0]
    # File:FileType follows the name as well as the bytes: a stored .mpo is named .jpg, as libmagic says.
    named = ("System:", "SourceFile", "File:FileType")
    return {key: value for key, value in tags.items() if not key.startswith(named)}


def assert_location_gone(original, published) -> dict:
    """`published` is `original` without any GPS tag or XMP GPS property; nothing else changed. Returns its tags."""
    before, after = exiftool(original), exiftool(published)
    assert [key for key in after if "GPS" in key] == []
    assert after == {key: value for key, value in before.items() if "GPS" not in key}  # no new warnings either
    # pillow-heif writes an AVIF's orientation as its irot box (a rotation) instead of the EXIF tag.
    assert after.get("IFD0:Orientation") == 6 or after.get("QuickTime:Rotation") == 270
    assert os.path.getsize(published) == os.path.getsize(original)
    with Image.open(original) as old, Image.open(published) as new:
        for frame in range(getattr(old, "n_frames", 1)):  # an MPO's appended image too
            old.seek(frame), new.seek(frame)
            assert new.tobytes() == old.tobytes()
        old.seek(0), new.seek(0)
        assert new.info["icc_profile"] == ICC
        assert new.getexif().get(0x0112) == old.getexif().get(0x0112)
        assert 0x8825 not in new.getexif()
    return after


def tiff_block(first_ifd: int, *ifds: tuple[int, list[tuple[int, int, int, int]], int]) -> bytes:
    """Little-endian TIFF bytes: a header pointing at `first_ifd`, then each (offset, entries, next) IFD."""
    data = bytearray(b"II*\0" + struct.pack("<I", first_ifd))
    for offset, entries, next_ifd in ifds:
        raw = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
        raw += struct.pack("<I", next_ifd)
        data[len(data) :] = bytes(max(0, offset + len(raw) - len(data)))
        data[offset : offset + len(raw)] = raw
    return bytes(data)


def jpeg_with_exif(tiff: bytes) -> bytes:
    return jpeg_with_segment(0xE1, b"Exif\0\0" + tiff)


def grow_first_image(path, comment: bytes) -> None:
    """Add a comment segment to an MPO's first image, after its MPF index, leaving the index's offsets as they
    were: what an editor that does not know MPF does (exiftool 12.57, growing the XMP, for one)."""
    data = path.read_bytes()
    index = data.index(b"MPF\0") - 4  # the APP2 segment's marker
    after = index + 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    path.write_bytes(data[:after] + segment + data[after:])


def jpeg_with_segment(marker: int, *payloads: bytes) -> bytes:
    """A small JPEG with more APPn segments first, one per payload, all of one kind."""
    plain = make_image(".jpg")
    segments = b"".join(bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload for payload in payloads)
    return plain[:2] + segments + plain[2:]


MAKE = (0x010F, 2, 4, int.from_bytes(b"Cam\0", "little"))
MALFORMED_EXIF = {  # case: (TIFF bytes, what the reason says)
    "IFD0 offset past the end": (tiff_block(0x10000), "past the end"),
    "IFD loop": (tiff_block(8, (8, [MAKE], 26), (26, [MAKE], 8)), "loop"),
    "huge entry count": (tiff_block(8) + struct.pack("<H", 0xFFFF) + bytes(64), "65535 entries"),
    "count running past the end": (tiff_block(8) + struct.pack("<H", 4000) + bytes(64), "past the end"),
    "GPS IFD past the end": (tiff_block(8, (8, [MAKE, (0x8825, 4, 1, 0x7FFFFFF0)], 0)), "past the end"),
    "GPS value past the end": (
        tiff_block(8, (8, [(0x8825, 4, 1, 26)], 0), (26, [(2, 5, 3, 0x7FFF0000)], 0)),
        "past the end",
    ),
    "two GPS pointers": (
        tiff_block(8, (8, [(0x8825, 4, 1, 44), (0x8825, 4, 1, 44)], 0), (44, [], 0)),
        "two GPS pointers",
    ),
    "GPS IFD pointing at IFD0": (tiff_block(8, (8, [MAKE, (0x8825, 4, 1, 8)], 0)), "points back"),
    "not TIFF": (b"JUNKJUNKJUNK", "no TIFF header"),
}
