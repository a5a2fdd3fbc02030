"""The raw-MIME route (`/webhooks/mailgun/mime`): Mailgun posts the whole message as `body-mime`."""

from __future__ import annotations

import base64
import os
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest

from inbox import create_app
from inbox.delivery import build_delivery, signed_fields
from inbox.form import InboxRequest
from tests.harness import SIGNING_KEY, large_photo, pasted_photo
from tests.test_mime import apple_mail_message
from tests.test_mimeform import FIELDS, multipart, urlencoded


def post_mime(client, raw: bytes, encode, **extra):
    body, content_type = encode({**FIELDS, "body-mime": raw, **signed_fields(SIGNING_KEY), **extra})
    return client.post("/webhooks/mailgun/mime", data=body, content_type=content_type)


@pytest.mark.parametrize("encode", [multipart, urlencoded])
def test_an_apple_mail_message_stores_its_inline_photos_and_heic_like_a_parsed_forward(client, images, encode):
    photo1, photo2 = pasted_photo((800, 600)), pasted_photo((640, 480))
    raw = apple_mail_message(photo1, photo2, images[".heic"]).as_bytes()

    response = post_mime(client, raw, encode)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message_id"] == "<A1B2C3@mac.example.com>" and body["rejected"] == []
    assert "incomplete" not in body
    assert [(item["filename"], item["content_type"]) for item in body["stored"]] == [
        ("IMG_0001.jpeg", "image/jpeg"),
        ("IMG_0002.jpeg", "image/jpeg"),
        ("IMG_0003.HEIC", "image/heic"),
    ]
    for item, content in zip(body["stored"], (photo1, photo2, images[".heic"]), strict=True):
        assert client.get(item["url"]).data == content

    # The same message forwarded parsed (same Message-Id, sender, bytes) maps to the same objects.
    forward = build_delivery(
        [("a.jpeg", photo1, "image/jpeg")],
        key=SIGNING_KEY,
        sender="alice@example.com",
        message_id="<A1B2C3@mac.example.com>",
    ).form()
    parsed = client.post("/webhooks/mailgun", data=forward).get_json()
    assert parsed["stored"][0]["url"] == body["stored"][0]["url"]


def test_a_boundary_written_in_rfc_2231_form_is_the_boundary(client):
    # boundary*=us-ascii'en'BB was read as "('us-ascii', 'en', 'BB')": the mail looked cut off, 415, retried 8 h.
    photo = pasted_photo((320, 240))
    raw = (
        b"From: alice@example.com\r\nMessage-Id: <r@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary*=us-ascii'en'BB\r\n\r\n"
        b"--BB\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--BB\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.jpg"\r\n\r\n' + base64.encodebytes(photo) + b"--BB--\r\n"
    )
    response = post_mime(client, raw, multipart)
    assert response.status_code == 200, response.get_json()
    assert "incomplete" not in response.get_json()
    assert client.get(response.get_json()["stored"][0]["url"]).data == photo


def test_a_24_mb_body_mime_is_spooled_and_its_photo_stored_whole(client):
    photo = large_photo(24 * 1024 * 1024)
    message = EmailMessage()
    message["From"], message["Message-Id"] = "alice@example.com", "<big@example.com>"
    message.set_content("the big one")
    message.add_attachment(photo, "image", "jpeg", filename="big.jpg")
    raw = message.as_bytes()
    assert len(raw) > 32 * 1024 * 1024  # base64: larger than Flask's form memory limit would ever allow

    response = post_mime(client, raw, multipart)

    assert response.status_code == 200, response.get_json()
    (stored,) = response.get_json()["stored"]
    assert stored["size"] == len(photo)
    assert client.get(stored["url"]).data == photo


def test_only_the_photo_is_sent_on_to_the_disk_not_the_raw_message_it_came_in(client, settings, monkeypatch):
    # The raw message is read back once, into its parts, and removed with the request: writing it
    # out (and hashing it) would double a MIME delivery's disk writes for nothing.
    sent_out = set()
    fadvise = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, *a: sent_out.add(os.fstat(fd).st_ino) or fadvise(fd, *a))
    message = EmailMessage()
    message["From"], message["Message-Id"] = "alice@example.com", "<scratch@example.com>"
    message.set_content("one photo")
    message.add_attachment(large_photo(3 * 1024 * 1024), "image", "jpeg", filename="photo.jpg")

    response = post_mime(client, message.as_bytes(), multipart)

    assert response.status_code == 200, response.get_json()
    name = response.get_json()["stored"][0]["url"].rsplit("/", 1)[1]
    kept = {entry.stat().st_ino for entry in Path(settings["STORAGE_PATH"]).rglob("*") if entry.is_file()}
    photo = Path(settings["STORAGE_PATH"], "images", name).stat().st_ino
    assert photo in sent_out and sent_out <= kept  # the photo and its receipt, nothing removed after


def test_a_mime_post_with_a_bad_signature_is_403(client, images):
    raw = apple_mail_message(images[".jpg"], images[".jpg"], images[".heic"]).as_bytes()
    response = post_mime(client, raw, urlencoded, signature="0" * 64)
    assert response.status_code == 403


@pytest.mark.parametrize("encode", [multipart, urlencoded])
def test_a_bad_signature_ahead_of_body_mime_stops_the_read_before_it_is_spooled(client, images, encode, monkeypatch):
    spooled = []
    new_spool = InboxRequest.new_spool
    monkeypatch.setattr(InboxRequest, "new_spool", lambda self, *a, **k: spooled.append(1) or new_spool(self, *a, **k))
    raw = apple_mail_message(pasted_photo((800, 600)), pasted_photo((640, 480)), images[".heic"]).as_bytes()
    body, content_type = encode({**signed_fields("not our key"), **FIELDS, "body-mime": raw})

    response = client.post("/webhooks/mailgun/mime", data=body, content_type=content_type)

    assert response.status_code == 403 and "signature" in response.get_json()["reason"]
    assert spooled == []  # neither body-mime nor its parts were written anywhere


def test_a_parsed_forward_sent_to_the_mime_url_says_what_to_fix(client, images):
    form = build_delivery([("a.jpg", images[".jpg"], "image/jpeg")], key=SIGNING_KEY).form()
    response = client.post("/webhooks/mailgun/mime", data=form)
    assert response.status_code == 400
    assert "no body-mime field" in response.get_json()["reason"]


def test_a_message_cut_off_inside_a_photo_publishes_the_photos_before_it_and_not_half_a_photo(client):
    first, second = pasted_photo((800, 600)), pasted_photo((640, 480))
    message = EmailMessage()
    message["From"], message["Message-Id"] = "alice@example.com", "<cut@example.com>"
    message.set_content("two photos")
    message.add_attachment(first, "image", "jpeg", filename="first.jpg")
    message.add_attachment(second, "image", "jpeg", filename="second.jpg")
    raw = message.as_bytes()
    cut = raw[: raw.index(b"second.jpg") + len(second) // 2]  # halfway through the second photo's base64

    response = post_mime(client, cut, multipart)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    (stored,) = body["stored"]
    assert stored["filename"] == "first.jpg" and client.get(stored["url"]).data == first
    (rejected,) = body["rejected"]
    assert rejected["filename"] == "second.jpg"
    assert rejected["reason"] == "the message ended inside this attachment: only its beginning arrived"
    assert "cut off on its way" in body["incomplete"] and "missing" not in body


def test_a_raw_message_that_is_not_mime_is_400(client):
    response = post_mime(client, base64.b64encode(b"\x00" * 100), urlencoded)
    assert response.status_code in (400, 415)
    assert response.get_json()["reason"]


def test_a_text_part_with_a_transfer_encoding_for_its_charset_is_read_and_the_photo_published(client, images):
    message = EmailMessage()
    message["From"], message["Subject"] = "Alice <alice@example.com>", "Holiday"
    message.set_content("Here they are")
    message.replace_header("Content-Type", "text/plain; charset=quoted-printable")  # a broken mailer's slip
    message.add_attachment(images[".jpg"], maintype="image", subtype="jpeg", filename="a.jpg")

    response = post_mime(client, message.as_bytes(), multipart)

    assert response.status_code == 200, response.get_json()
    assert [item["filename"] for item in response.get_json()["stored"]] == ["a.jpg"]


@pytest.mark.parametrize("charset", ["idna", "undefined"])
def test_a_text_part_in_a_charset_python_cannot_decode_is_read_and_the_photo_published(client, images, charset):
    message = EmailMessage()
    message["From"], message["Subject"] = "Alice <alice@example.com>", "Holiday"
    message.set_content("Here they are")
    message.replace_header("Content-Type", f"text/plain; charset={charset}")
    message.add_attachment(images[".jpg"], maintype="image", subtype="jpeg", filename="a.jpg")

    response = post_mime(client, message.as_bytes(), multipart)

    assert response.status_code == 200, response.get_json()
    assert [item["filename"] for item in response.get_json()["stored"]] == ["a.jpg"]


def test_a_part_header_of_thousands_of_parameters_is_400_and_says_so(client):
    semicolons = ";" * 7900
    raw = (
        'From: alice@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f'--b\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; x="{semicolons}\r\n\r\nx\r\n--b--\r\n'
    )

    response = post_mime(client, raw.encode(), multipart)

    assert response.status_code == 400
    assert "Content-Type or Content-Disposition has over 200 parameters" in response.get_json()["reason"]


def test_a_listed_publisher_whose_name_outlook_encodes_with_a_comma_is_admitted(settings):
    # Exchange writes "Müller, Jürgen" as one encoded word; decoded before parsing, the comma split the From
    # into two addresses: 406 "not exactly one address", the photo lost and Mailgun told not to retry.
    client = create_app({**settings, "INBOX_PUBLISHERS": "juergen@example.com"}).test_client()
    photo = pasted_photo((320, 240))
    raw = (
        b"X-Mailgun-Spf: Pass\r\nReceived: from mx.firma.example by mxa.mailgun.org with ESMTP\r\n"
        b"From: =?iso-8859-1?Q?M=FCller=2C_J=FCrgen?= <juergen@example.com>\r\nMessage-Id: <ol@firma.example>\r\n"
        b"Subject: Fotos\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        b"--BB\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.jpg"\r\n\r\n' + base64.encodebytes(photo) + b"--BB--\r\n"
    )

    response = post_mime(client, raw, multipart, sender="juergen@example.com")

    assert response.status_code == 200, response.get_json()
    assert client.get(response.get_json()["stored"][0]["url"]).data == photo


def forwarded_as_attachment(photo: bytes) -> EmailMessage:
    """Forward as Attachment (Outlook, Gmail): the photos travel inside an attached message/rfc822."""
    original = EmailMessage()
    original["From"], original["Subject"], original["Message-Id"] = "Bob <bob@example.com>", "Beach", "<o@example.com>"
    original.set_content("from the beach")
    original.add_attachment(photo, "image", "jpeg", filename="beach.jpg")
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-Id"] = "alice@example.com", "Fwd: Beach", "<f@example.com>"
    message.set_content("see the attached mail")
    message.add_attachment(original)
    return message


def outlook_rich_text(photo: bytes) -> EmailMessage:
    """Outlook in Rich Text mode: the photos travel inside winmail.dat (TNEF), which other clients cannot open."""
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-Id"] = "alice@example.com", "Fotos", "<t@example.com>"
    message.set_content("see attached")
    tnef = b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90\x08\x00" + photo  # the TNEF signature, then its attributes
    message.add_attachment(tnef, "application", "ms-tnef", filename="winmail.dat")
    return message


@pytest.mark.parametrize(
    "shape, advice",
    [(forwarded_as_attachment, "forward the photos themselves"), (outlook_rich_text, "HTML or plain text")],
)
def test_photos_wrapped_in_a_forwarded_mail_or_winmail_dat_get_a_reason_that_says_what_to_do(client, shape, advice):
    # The reason was only "the content is application/vnd.ms-tnef": the sender attached JPEGs and never saw a
    # winmail.dat, nor can tell from "message/rfc822" that forwarding as an attachment hid the photos.
    response = post_mime(client, shape(pasted_photo((320, 240))).as_bytes(), multipart)

    assert response.status_code == 415
    (rejected,) = response.get_json()["rejected"]
    assert rejected["reason"].startswith("not an accepted image: the content is ") and advice in rejected["reason"]


def appledouble_header(name: str) -> bytes:
    """The AppleDouble header (RFC 1740's application/applefile): the Mac resource fork, naming the file."""
    entries = [(3, name.encode()), (9, b"JPEGprvw" + bytes(24))]  # the real name, then Finder info
    offset, descriptors, data = 26 + 12 * len(entries), b"", b""
    for entry_id, content in entries:
        descriptors += struct.pack(">III", entry_id, offset + len(data), len(content))
        data += content
    return struct.pack(">II16sH", 0x00051607, 0x00020000, bytes(16), len(entries)) + descriptors + data


def mac_mail_appledouble(name: str, photo: bytes | None) -> EmailMessage:
    """Old Mac Mail: a photo sent as multipart/appledouble, its resource fork first, then the photo (its data fork)."""
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-Id"] = "alice@example.com", "Photo", "<ad@mac.example.com>"
    message.set_content("a photo from my Mac")
    double = EmailMessage()
    double.add_attachment(appledouble_header(name), "application", "applefile", filename=name)
    if photo is not None:
        double.add_attachment(photo, "image", "jpeg", filename=name)
    double.replace_header("Content-Type", f"multipart/appledouble; boundary={double.get_boundary()}")
    message.make_mixed()
    message.attach(double)
    return message


def test_a_photo_mac_mail_sent_as_appledouble_is_listed_once_and_a_lone_resource_fork_says_what_it_is(client):
    # The resource fork was listed beside its photo as rejected, "not an accepted image: the content is
    # application/octet-stream": the reply said IMG_0042.JPG was published and was not.
    photo = pasted_photo((320, 240))
    raw = mac_mail_appledouble("IMG_0042.JPG", photo).as_bytes()

    body = post_mime(client, raw, multipart).get_json()

    assert [item["filename"] for item in body["stored"]] == ["IMG_0042.JPG"] and body["rejected"] == []
    assert client.get(body["stored"][0]["url"]).data == photo

    alone = post_mime(client, mac_mail_appledouble("IMG_0043.JPG", None).as_bytes(), multipart)

    assert alone.status_code == 415
    (rejected,) = alone.get_json()["rejected"]
    assert rejected["filename"] == "IMG_0043.JPG" and rejected["content_type"] == "application/applefile"
    assert "Mac resource fork" in rejected["reason"] and "no photo in it" in rejected["reason"]
