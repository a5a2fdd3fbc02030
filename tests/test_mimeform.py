"""read_mime_form on Mailgun-shaped raw-MIME posts, urlencoded and multipart, then read_mime on the spool."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from urllib.parse import quote_plus, urlencode

import pytest
import requests

from inbox.delivery import signed_fields
from inbox.mime import read_mime
from inbox.mimeform import MalformedForm, read_mime_form
from tests.harness import SIGNING_KEY, make_image
from tests.test_mime import apple_mail_message, write_big_message

FIELDS = {
    "recipient": "photos@example.com",
    "sender": "alice@example.com",
    "from": "Alice <alice@example.com>",
    "subject": "Holiday",
}


def multipart(fields: dict) -> tuple[bytes, str]:
    """The body and Content-Type `requests` sends (as Mailgun does) for these fields, all as form fields."""
    prepared = requests.Request("POST", "http://127.0.0.1/", files={k: (None, v) for k, v in fields.items()}).prepare()
    return prepared.body, prepared.headers["Content-Type"]


def urlencoded(fields: dict) -> tuple[bytes, str]:
    return urlencode(fields).encode("ascii"), "application/x-www-form-urlencoded"


@pytest.mark.parametrize("encode", [multipart, urlencoded])
def test_an_apple_mail_post_yields_the_fields_and_every_image(images, new_spool, encode):
    photo1, photo2 = make_image(".jpg", (800, 600)), make_image(".jpg", (640, 480), (0, 90, 200))
    raw = apple_mail_message(photo1, photo2, images[".heic"]).as_bytes()
    signature = signed_fields(SIGNING_KEY)
    body, content_type = encode({**FIELDS, "body-mime": raw, **signature})

    form = read_mime_form(io.BytesIO(body), content_type, new_spool)

    assert form.fields == {**FIELDS, **signature}
    assert form.body_mime.size == len(raw)
    with open(form.body_mime.name, "rb") as file:
        message = read_mime(file, new_spool)
    assert message.header("Message-Id") == "<A1B2C3@mac.example.com>"
    parts = {part.filename: part.spool for part in message.parts}
    assert [parts[name].sha256.digest() for name in ("IMG_0001.jpeg", "IMG_0002.jpeg", "IMG_0003.HEIC")] == [
        hashlib.sha256(content).digest() for content in (photo1, photo2, images[".heic"])
    ]


def write_urlencoded(path, raw_path) -> str:
    with path.open("wb") as body, raw_path.open("rb") as raw:
        body.write(urlencode(FIELDS).encode() + b"&body-mime=")
        while chunk := raw.read(100_000):
            body.write(quote_plus(chunk).encode("ascii"))
        body.write(b"&" + urlencode(signed_fields(SIGNING_KEY)).encode())
    return "application/x-www-form-urlencoded"


def write_multipart(path, raw_path) -> str:
    with path.open("wb") as body, raw_path.open("rb") as raw:
        body.write(
            b'--bnd\r\nContent-Disposition: form-data; name="recipient"\r\n\r\nphotos@example.com\r\n'
            b'--bnd\r\nContent-Disposition: form-data; name="body-mime"\r\n\r\n'
        )
        while chunk := raw.read(1_000_000):
            body.write(chunk)
        body.write(b'\r\n--bnd\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc\r\n--bnd--\r\n')
    return "multipart/form-data; boundary=bnd"


@pytest.mark.parametrize("write", [write_urlencoded, write_multipart])
def test_a_24_mb_body_mime_streams_to_disk_in_bounded_memory(tmp_path, new_spool, write):
    original = os.urandom(24 * 1024 * 1024)
    write_big_message(tmp_path / "big.eml", original)
    content_type = write(tmp_path / "post", tmp_path / "big.eml")

    tracemalloc.start()
    try:
        with (tmp_path / "post").open("rb") as stream:
            form = read_mime_form(stream, content_type, new_spool)
        with open(form.body_mime.name, "rb") as file:
            message = read_mime(file, new_spool)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    assert form.body_mime.size == (tmp_path / "big.eml").stat().st_size
    assert form.fields["recipient"] == "photos@example.com"
    assert message.parts[0].spool.sha256.digest() == hashlib.sha256(original).digest()


@pytest.mark.parametrize(
    "body, content_type, reason",
    [
        (
            b"recipient=a%40b&sender=c",
            "application/x-www-form-urlencoded",
            "no body-mime field: a raw-MIME route's URL",
        ),
        (b"body-mime=a&body-mime=b", "application/x-www-form-urlencoded", "body-mime appears twice"),
        (b"subject=" + b"x" * 70_000 + b"&body-mime=a", "application/x-www-form-urlencoded", "over 65536 bytes"),
        (b"x" * 300 + b"=1&body-mime=a", "application/x-www-form-urlencoded", "field name is over 256 bytes"),
        (b"&".join(b"f%d=1" % n for n in range(200)), "application/x-www-form-urlencoded", "more than 100 form fields"),
        (
            b'--b\r\nContent-Disposition: form-data; name="body-mime"\r\n\r\nFrom: a',
            "multipart/form-data; boundary=b",
            "the form could not be parsed",
        ),
        (b"--b\r\nX-Junk: " + b"j" * 2_000_000, "multipart/form-data; boundary=b", "headers are over 64 KiB"),
        (b"{}", "application/json", "expected a form post, got application/json"),
        (b"", "multipart/form-data", "without a boundary"),
    ],
)
def test_a_post_mailgun_would_not_send_is_refused_with_the_reason(new_spool, body, content_type, reason):
    with pytest.raises(MalformedForm, match=reason):
        read_mime_form(io.BytesIO(body), content_type, new_spool)
