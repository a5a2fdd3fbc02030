"""Delivered photos carry no location: what the webhook stores (and serves) of a GPS-bearing photo of every format,
read back by exiftool and Pillow, on the local store and on the real S3, Azure and Swift servers."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import time
import zlib
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from inbox import create_app
from inbox.storage import current_store, object_name
from tests.harness import (
    IIM_PLACES,
    LOCATION_FORMATS,
    MALFORMED_EXIF,
    VIDEO_PLACE,
    XMP,
    XMP_PLACES,
    assert_location_gone,
    exiftool,
    grow_first_image,
    jpeg_with_exif,
    mailgun_form,
    motion_video,
    photo_with_gps,
    tiff_block,
    write_caption,
    write_place_names,
)
from tests.test_location import ITEM_LIST_PLACES, heic_with_quicktime_metadata
from tests.test_providers import REAL, Real

MESSAGE_ID, SENDER = "<m1@example.com>", "alice@example.com"  # mailgun_form's defaults


def gps_photo(tmp_path, extension: str):
    path = tmp_path / f"original.{extension}"
    photo_with_gps(extension, path)
    assert "GPS:GPSLatitude" in exiftool(path) and "XMP-exif:GPSLatitude" in exiftool(path), "the photo carries GPS"
    return path


def stored_path(settings, url: str):
    return os.path.join(settings["STORAGE_PATH"], "images", url.rsplit("/", 1)[1])


@pytest.mark.parametrize("extension", LOCATION_FORMATS)
def test_a_delivered_photo_is_stored_and_served_without_location(deliver, client, settings, tmp_path, extension):
    original = gps_photo(tmp_path, extension)
    response = deliver((f"holiday.{extension}", original.read_bytes()))

    assert response.status_code == 200, response.get_json()
    url = response.get_json()["stored"][0]["url"]
    assert_location_gone(original, stored_path(settings, url))
    served = tmp_path / f"served.{extension}"
    fetched = client.get(urlsplit(url).path)
    assert fetched.status_code == 200
    served.write_bytes(fetched.data)
    assert_location_gone(original, served)


def test_a_motion_photo_is_published_as_its_still_without_the_video_and_the_place_it_holds(deliver, client, tmp_path):
    still = gps_photo(tmp_path, "jpg")
    response = deliver(("motion.jpg", still.read_bytes() + motion_video()))

    assert response.status_code == 200, response.get_json()
    (stored,) = response.get_json()["stored"]
    served = client.get(urlsplit(stored["url"]).path).data
    assert VIDEO_PLACE not in served
    assert stored["size"] == len(served) == os.path.getsize(still)  # the still, and the size says so
    published = tmp_path / "served.jpg"
    published.write_bytes(served)
    assert_location_gone(still, published)


def test_a_photo_an_editor_wrote_the_address_into_is_published_without_it(deliver, client, tmp_path):
    original = gps_photo(tmp_path, "jpg")
    write_place_names(original, iim=True, digest=True)
    response = deliver(("edited.jpg", original.read_bytes()))

    assert response.status_code == 200, response.get_json()
    served = tmp_path / "served.jpg"
    served.write_bytes(client.get(urlsplit(response.get_json()["stored"][0]["url"]).path).data)
    tags = exiftool(served)
    named = {tag: value for tag, value in tags.items() if tag in XMP_PLACES or tag in IIM_PLACES and value.strip()}
    assert named == {} and [tag for tag in tags if "GPS" in tag] == []
    assert tags["IPTC:Caption-Abstract"] == "Birthday" and os.path.getsize(served) == os.path.getsize(original)


def test_a_png_whose_compressed_iptc_names_the_place_is_published_without_it(deliver, client, tmp_path):
    placed, captioned = tmp_path / "placed.png", tmp_path / "captioned.png"
    for path in (placed, captioned):
        photo_with_gps("png", path)
    write_place_names(placed, iim=True)  # exiftool keeps a PNG's IPTC as hex in a compressed text chunk
    write_caption(captioned)
    response = deliver(("placed.png", placed.read_bytes()), ("captioned.png", captioned.read_bytes()))

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["rejected"] == [] and [item["filename"] for item in body["stored"]] == ["placed.png", "captioned.png"]
    for stored, original in zip(body["stored"], (placed, captioned), strict=True):
        served = tmp_path / f"served-{stored['filename']}"
        served.write_bytes(client.get(urlsplit(stored["url"]).path).data)
        tags = exiftool(served)
        named = {tag: value for tag, value in tags.items() if tag in IIM_PLACES and value.strip()}
        assert named == {} and [tag for tag in tags if "GPS" in tag] == []
        assert os.path.getsize(served) == os.path.getsize(original)
    assert tags["IPTC:Caption-Abstract"] == "Birthday"


def test_a_phone_photo_an_editor_broke_the_index_of_is_published_as_its_first_image(deliver, client, tmp_path):
    original = gps_photo(tmp_path, "mpo")
    grow_first_image(original, b"Sunset")
    response = deliver(("edited.jpg", original.read_bytes()))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rejected"] == []
    (stored,) = response.get_json()["stored"]
    served = tmp_path / "served.jpg"
    served.write_bytes(client.get(urlsplit(stored["url"]).path).data)
    assert stored["size"] == os.path.getsize(served) < os.path.getsize(original)  # the second image is gone
    tags = exiftool(served)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["File:Comment"] == "Sunset"
    with Image.open(served) as image:  # the index that listed the gone image goes too: one plain JPEG
        assert (image.format, getattr(image, "n_frames", 1)) == ("JPEG", 1)


def test_the_name_comes_from_the_original_content_so_a_redelivery_keeps_the_url(deliver, app, settings, tmp_path):
    original = gps_photo(tmp_path, "jpg")
    first = deliver(("a.jpg", original.read_bytes())).get_json()["stored"][0]["url"]
    again = deliver(("a.jpg", original.read_bytes())).get_json()["stored"][0]["url"]  # a new token, the same mail

    assert again == first
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    assert first.rsplit("/", 1)[1] == object_name(current_store(app).name_key, MESSAGE_ID, SENDER, digest, ".jpg")
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], "images")) == [first.rsplit("/", 1)[1]]
    assert "GPS:GPSLatitude" not in exiftool(stored_path(settings, first))


def test_strip_location_false_stores_the_original_byte_for_byte(settings, tmp_path):
    client = create_app({**settings, "INBOX_STRIP_LOCATION": "false"}).test_client()
    original = gps_photo(tmp_path, "jpg")
    response = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", original.read_bytes())))

    assert response.status_code == 200
    url = response.get_json()["stored"][0]["url"]
    assert client.get(urlsplit(url).path).data == original.read_bytes()
    assert exiftool(stored_path(settings, url))["GPS:GPSLatitude"] == pytest.approx(52.52, abs=0.01)


def test_malformed_exif_is_rejected_with_its_reason_quickly_and_nothing_is_stored(deliver, settings, images):
    attachments = [(f"{case}.jpg", jpeg_with_exif(tiff)) for case, (tiff, _) in MALFORMED_EXIF.items()]
    started = time.monotonic()
    response = deliver(*attachments)
    elapsed = time.monotonic() - started

    assert response.status_code == 415
    body = response.get_json()
    assert body["stored"] == [] and body["reason"] == "no accepted image in the message"
    assert [item["filename"] for item in body["rejected"]] == [name for name, _ in attachments]
    for item, (_, reason) in zip(body["rejected"], MALFORMED_EXIF.values(), strict=True):
        assert item["reason"].startswith("could not remove location from this image (")
        assert reason in item["reason"]
        assert item["reason"].endswith("); export the photo without its metadata and send it again")
    assert elapsed < 2, f"{len(attachments)} malformed photos took {elapsed:.2f} s"
    assert not os.listdir(os.path.join(settings["STORAGE_PATH"], "images"))


def test_a_malformed_photo_does_not_keep_the_good_one_beside_it_from_being_published(deliver, tmp_path):
    original = gps_photo(tmp_path, "png")
    tiff, reason = MALFORMED_EXIF["IFD loop"]
    response = deliver(("good.png", original.read_bytes()), ("bad.jpg", jpeg_with_exif(tiff)))

    assert response.status_code == 200
    body = response.get_json()
    assert [item["filename"] for item in body["stored"]] == ["good.png"]
    assert [item["filename"] for item in body["rejected"]] == ["bad.jpg"] and reason in body["rejected"][0]["reason"]


def test_a_photo_whose_exif_points_at_its_gps_through_a_signed_pointer_is_published_without_it(
    deliver, client, tmp_path
):
    # exiftool follows an ExifIFD pointer typed SLONG (or SSHORT, BYTE) as readily as a LONG one.
    gps = (200, [(1, 2, 2, int.from_bytes(b"N\0\0\0", "little")), (2, 5, 3, 232)], 0)
    tiff = bytearray(
        tiff_block(
            8,
            (8, [(0x010F, 2, 4, int.from_bytes(b"Cam\0", "little")), (0x8769, 9, 1, 60)], 0),
            (60, [(0x8825, 4, 1, 200)], 0),
            gps,
        )
    )
    tiff += bytes(2) + struct.pack("<6I", 52, 1, 31, 1, 12, 1)  # the latitude, after the GPS IFD
    original = tmp_path / "signed.jpg"
    original.write_bytes(jpeg_with_exif(bytes(tiff)))
    assert exiftool(original)["GPS:GPSLatitude"] == 52.52, "exiftool reads the GPS below the signed pointer"

    response = deliver(("signed.jpg", original.read_bytes()))

    assert response.status_code == 200, response.get_json()
    published = tmp_path / "published.jpg"
    published.write_bytes(client.get(urlsplit(response.get_json()["stored"][0]["url"]).path).data)
    tags = exiftool(published)
    assert [tag for tag in tags if "GPS" in tag] == [] and tags["IFD0:Make"] == "Cam"


def test_a_heic_whose_quicktime_item_list_holds_its_coordinates_is_refused_with_the_reason(deliver, settings):
    response = deliver(("listed.heic", heic_with_quicktime_metadata(ITEM_LIST_PLACES["©xyz"])))

    assert response.status_code == 415
    (rejected,) = response.get_json()["rejected"]
    assert "QuickTime item list names where it was taken ('©xyz')" in rejected["reason"]
    assert not os.listdir(os.path.join(settings["STORAGE_PATH"], "images"))


def png_of_crafted_xmp(red: int) -> bytes:
    """A 3 KB PNG whose compressed XMP packet inflates to a megabyte, crafted to cost 0.2 s to check."""
    info = PngInfo()
    info.add_itxt(
        "XML:com.adobe.xmp",
        XMP.replace(b"<exif:GPSAltitude>", b" a:" * 350_000 + b"<exif:GPSAltitude>").decode(),
        zip=True,
    )
    image = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 0, 0)).save(image, "PNG", pnginfo=info)
    return image.getvalue()


def test_a_message_of_small_pngs_holding_big_metadata_costs_no_more_than_one_png(deliver, client, tmp_path):
    # 5,000 of them, as many parts as a post may have, took 17 minutes to check: the worker was killed, and
    # Mailgun's retries would have started it again for eight hours.
    attachments = [(f"{red}.png", png_of_crafted_xmp(red)) for red in range(20)]
    started = time.monotonic()
    response = deliver(*attachments)
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [item["filename"] for item in body["stored"]] == ["0.png", "1.png", "2.png"]
    assert [item["filename"] for item in body["rejected"]] == [f"{red}.png" for red in range(3, 20)]
    reasons = [item["reason"] for item in body["rejected"]]
    assert (
        "XMP and EXIF are larger than 4 MiB together" in reasons[0]
    )  # later ones' (inflated first) pass 16 MiB inflated
    assert all("with the PNGs before it in this message: send it in a mail of its own" in text for text in reasons)
    assert elapsed < 2, f"20 small PNGs took {elapsed:.2f} s"
    served = tmp_path / "served.png"
    served.write_bytes(client.get(urlsplit(body["stored"][2]["url"]).path).data)
    assert [tag for tag in exiftool(served) if "GPS" in tag] == []

    alone = deliver(attachments[-1]).get_json()  # as the reason says: in a mail of its own, it is published
    assert [item["filename"] for item in alone["stored"]] == ["19.png"] and alone["rejected"] == []


def png_of_xmp_in_compressed_exif(red: int) -> bytes:
    """A 3 KB PNG whose compressed eXIf holds a 3 MiB XMP packet (EXIF tag 700) crafted to be slow to check."""
    packet = b"<?xpacket " + b" a:" * (1 << 20)
    exif = b"\0" + bytes(4) + zlib.compress(tiff_block(8, (8, [(700, 7, len(packet), 26)], 0)) + packet, 9)
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    plain = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 0, 0)).save(plain, "PNG")
    return plain.getvalue()[:33] + chunk + plain.getvalue()[33:]


def test_xmp_inside_the_compressed_exif_of_a_message_s_pngs_counts_against_their_xmp_bound(deliver):
    # It counted only against the 16 MiB inflate bound: four such PNGs cost a message 3 s of checking, not 0.75.
    first, second = png_of_xmp_in_compressed_exif(1), png_of_xmp_in_compressed_exif(2)

    body = deliver(("1.png", first), ("2.png", second)).get_json()

    assert [item["filename"] for item in body["stored"]] == ["1.png"]
    assert [item["filename"] for item in body["rejected"]] == ["2.png"]
    assert "XMP and EXIF are larger than 4 MiB together, with the PNGs before it" in body["rejected"][0]["reason"]
    alone = deliver(("2.png", second), message_id="<alone@example.com>").get_json()
    assert [item["filename"] for item in alone["stored"]] == ["2.png"]


@pytest.mark.parametrize("provider", list(REAL))
def test_the_public_object_on_a_real_server_has_no_location(request, provider, tmp_path):
    real = Real(provider, request.getfixturevalue(REAL[provider][0]))
    app = real.app()
    original = gps_photo(tmp_path, "jpg")
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.jpg", original.read_bytes())))

    assert response.status_code == 200, response.get_json()
    url = response.get_json()["stored"][0]["url"]
    assert url.startswith(real.url_prefix(app))
    fetched = requests.get(url, timeout=10)  # anonymous, as anyone with the link
    assert fetched.status_code == 200
    published = tmp_path / "published.jpg"
    published.write_bytes(fetched.content)
    assert_location_gone(original, published)
