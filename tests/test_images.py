"""Judging by content with real libmagic: every accepted type in, everything disguised out."""

import struct

import pytest

from inbox.images import TINY_REASON, detect_type, image_dimensions, inspect, is_tiny_inline
from inbox.spool import SNIFF_BYTES
from tests.harness import IMAGE_FORMATS, make_image

LIMIT = 1000_000

SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
)
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def judge(content: bytes, max_bytes=LIMIT):
    return inspect(content[:SNIFF_BYTES], len(content), max_bytes)


@pytest.mark.parametrize("extension", IMAGE_FORMATS)
def test_every_accepted_type_is_recognised_by_content(images, extension):
    verdict = judge(images[extension])
    assert verdict.reason is None
    assert verdict.extension == extension
    assert verdict.content_type.startswith("image/")


@pytest.mark.parametrize(
    "content, detected",
    [
        (PDF, "application/pdf"),
        (SVG_WITH_SCRIPT, "image/svg+xml"),
        (HTML, "text/html"),
        (b"MZ\x90\x00\x03" + bytes(200), "application/"),  # a Windows executable
        (b"PK\x03\x04" + bytes(100), "application/"),  # a zip
    ],
)
def test_non_images_are_rejected_whatever_they_claim(content, detected):
    verdict = judge(content)
    assert verdict.extension is None
    assert verdict.content_type.startswith(detected)
    assert "not an accepted image" in verdict.reason


def test_html_carrying_an_image_further_on_is_rejected():
    verdict = judge(HTML + make_image(".png"))
    assert verdict.extension is None
    assert not verdict.content_type.startswith("image/")


def test_an_image_with_a_payload_appended_is_accepted_as_the_image_it_starts_as():
    # Served as image/png with nosniff and a sandbox policy, it can only ever be an image.
    polyglot = make_image(".png") + HTML + PDF
    assert judge(polyglot).extension == ".png"


def test_a_gif_that_is_also_javascript_is_only_a_gif():
    gifar = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=alert(1)//;" + bytes(64)
    verdict = judge(gifar)
    assert (verdict.content_type, verdict.extension) == ("image/gif", ".gif")


def test_empty_file_is_rejected():
    verdict = judge(b"")
    assert verdict.reason == "empty file"


def test_oversized_image_is_rejected_as_too_large(images):
    verdict = judge(images[".jpg"], max_bytes=100)
    assert verdict.too_large
    assert "INBOX_MAX_ATTACHMENT_BYTES" in verdict.reason


def test_truncated_jpeg_header_is_still_judged_by_its_magic():
    assert judge(make_image(".jpg")[:20]).extension == ".jpg"


@pytest.mark.parametrize("extension", [extension for extension in IMAGE_FORMATS if extension != ".tif"])
@pytest.mark.parametrize("size", [(1, 1), (64, 48), (800, 600)])
def test_dimensions_are_read_from_the_header_of_every_format(extension, size):
    head = make_image(extension, size)[:SNIFF_BYTES]
    width, height = image_dimensions(head, detect_type(head))
    if extension == ".heic":  # the coded size, before the crop to the picture
        assert (width, height) >= size and width - size[0] < 64 and height - size[1] < 64
    else:
        assert (width, height) == size


def test_dimensions_of_a_jpeg_with_a_long_exif_block_are_unknown_not_guessed():
    photo = make_image(".jpg", (10, 10))
    app1 = b"\xff\xe1" + struct.pack(">H", 20002) + b"Exif\x00\x00" + bytes(19994)
    head = (photo[:2] + app1 + photo[2:])[:SNIFF_BYTES]
    assert image_dimensions(head, "image/jpeg") is None
    assert image_dimensions(head[: SNIFF_BYTES // 2] + b"\xff", "image/jpeg") is None


@pytest.mark.parametrize(
    "head",
    [
        b"\xff\xd8" + b"\xff" * 50,
        b"\xff\xd8\xff\xe0\x00\x00" * 5,
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"GIF89a\x01",
        b"BM" + bytes(10),
    ],
)
def test_truncated_or_looping_headers_give_no_dimensions(head):
    content_type = detect_type(head)
    for claimed in (content_type, "image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"):
        assert image_dimensions(head, claimed) is None


def test_a_signature_logo_is_tiny_and_a_pasted_photo_is_not():
    logo = make_image(".png", (16, 16))
    photo = make_image(".jpg", (800, 600))
    assert is_tiny_inline(logo[:SNIFF_BYTES], len(logo), detect_type(logo))
    assert not is_tiny_inline(photo[:SNIFF_BYTES], len(photo), detect_type(photo))
    assert "tracking pixel" in TINY_REASON


def test_a_wide_banner_logo_over_2_kib_is_tiny_by_its_area():
    banner = make_image(".bmp", (200, 20))
    assert len(banner) > 2048
    assert is_tiny_inline(banner[:SNIFF_BYTES], len(banner), detect_type(banner))
