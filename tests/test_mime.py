"""read_mime on raw messages built with the standard library, as Mailgun posts them in `body-mime`."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
import tracemalloc
from email.message import EmailMessage

import pytest

from inbox.images import detect_type, is_tiny_inline
from inbox.mime import MalformedMime, decoded_words, read_mime, referenced_content_ids
from tests.harness import make_image


def content(spool) -> bytes:
    spool.finish()
    with open(spool.name, "rb") as file:
        return file.read()


def read(raw: bytes, new_spool, **limits):
    return read_mime(io.BytesIO(raw), new_spool, **limits)


def apple_mail_message(photo1: bytes, photo2: bytes, heic: bytes) -> EmailMessage:
    """multipart/mixed( multipart/alternative( text, multipart/related( html, 2 inline JPEGs ) ), HEIC )."""
    message = EmailMessage()
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "photos@example.com"
    message["Subject"] = "Holiday"
    message["Message-Id"] = "<A1B2C3@mac.example.com>"
    message["In-Reply-To"] = "<earlier@example.com>"
    message["References"] = "<first@example.com> <earlier@example.com>"
    message["DKIM-Signature"] = "v=1; a=rsa-sha256; d=example.com; s=s1; b=abc"
    message.set_content("Two from the beach.")
    message.add_alternative(
        '<p>Two from the beach.</p><img src="cid:beach-1@mac"><img src="cid:beach-2@mac">', subtype="html"
    )
    html = message.get_payload()[1]
    html.add_related(photo1, "image", "jpeg", cid="<beach-1@mac>", filename="IMG_0001.jpeg", disposition="inline")
    html.add_related(photo2, "image", "jpeg", cid="<beach-2@mac>", filename="IMG_0002.jpeg", disposition="inline")
    message.add_attachment(heic, "image", "heic", filename="IMG_0003.HEIC")
    return message


def test_an_apple_mail_message_yields_its_headers_text_and_every_image(images, new_spool):
    photo1, photo2 = make_image(".jpg", (800, 600)), make_image(".jpg", (640, 480), (0, 90, 200))
    raw = apple_mail_message(photo1, photo2, images[".heic"]).as_bytes()

    message = read(raw, new_spool)

    assert message.complete
    assert message.header("message-id") == "<A1B2C3@mac.example.com>"
    names = [name for name, _ in message.headers]
    for name in ("From", "Subject", "In-Reply-To", "References", "DKIM-Signature", "Message-Id"):
        assert name in names
    assert message.text.strip() == "Two from the beach."
    assert 'src="cid:beach-1@mac"' in message.html
    assert [(p.filename, p.content_type, p.content_id, p.is_inline) for p in message.parts] == [
        ("IMG_0001.jpeg", "image/jpeg", "beach-1@mac", True),
        ("IMG_0002.jpeg", "image/jpeg", "beach-2@mac", True),
        ("IMG_0003.HEIC", "image/heic", "", False),
    ]
    assert [content(p.spool) for p in message.parts] == [photo1, photo2, images[".heic"]]
    assert message.parts[0].spool.size == len(photo1)


def write_big_message(raw, original: bytes) -> None:
    """A raw message at path `raw`: a line of text and `original` as a base64 attachment."""
    with raw.open("wb") as file:
        file.write(
            b"From: a@example.com\r\nMessage-Id: <big@example.com>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ\r\n'
            b"Content-Type: text/plain\r\n\r\nhello\r\n--XYZ\r\n"
            b'Content-Type: application/octet-stream; name="big.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n"
        )
        file.write(base64.encodebytes(original).replace(b"\n", b"\r\n"))
        file.write(b"--XYZ--\r\n")


def test_a_24_mb_attachment_is_decoded_to_disk_in_bounded_memory(tmp_path, new_spool):
    original = os.urandom(24 * 1024 * 1024)
    raw = tmp_path / "big.eml"
    write_big_message(raw, original)

    tracemalloc.start()
    try:
        with raw.open("rb") as file:
            message = read_mime(file, new_spool)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    assert message.text == "hello"
    (part,) = message.parts
    assert part.spool.size == len(original)
    assert part.spool.sha256.hexdigest() == hashlib.sha256(original).hexdigest()


def test_rfc_2231_and_rfc_2047_names_and_unnamed_parts(new_spool):
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; "
        b"filename*=utf-8''%C3%A9t%C3%A9%20%C3%A0%20Nice.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"/9j/4AAQ\r\n"
        b'--b\r\nContent-Type: image/png; name="=?utf-8?q?F=C3=BC=C3=9Fe.png?="\r\n\r\nPNGDATA\r\n'
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"%PDF=3D1=\r\n.4\r\n"
        b"--b--\r\n"
    )

    parts = read(raw, new_spool).parts

    assert [p.filename for p in parts] == ["été à Nice.jpg", "Füße.png", ""]
    assert [content(p.spool) for p in parts] == [b"\xff\xd8\xff\xe0\x00\x10", b"PNGDATA", b"%PDF=1.4"]


def test_a_latin_1_header_byte_is_read_not_refused(new_spool):
    raw = b"Subject: Caf\xe9 photos\r\nFrom: Ren\xe9 <r@example.com>\r\nContent-Type: text/plain\r\n\r\nhi\r\n"

    message = read(raw, new_spool)

    assert message.header("subject") == "Café photos"
    assert message.text == "hi"


@pytest.mark.parametrize(
    "charset", ["quoted-printable", "base64", "no-such-charset", "idna", "undefined", "punycode", "utf\x008"]
)
def test_a_text_part_whose_charset_is_no_text_encoding_is_read_as_utf_8(new_spool, charset):
    raw = f"Subject: hi\r\nContent-Type: text/plain; charset={charset}\r\n\r\nCaf\u00e9 delete\r\n".encode()

    assert read(raw, new_spool).text == "Café delete"


def test_a_forwarded_mail_is_one_attachment(new_spool):
    inner = EmailMessage()
    inner["Subject"] = "original"
    inner.set_content("inner text")
    inner.add_attachment(b"\xff\xd8\xff" + bytes(100), "image", "jpeg", filename="inner.jpg")
    outer = EmailMessage()
    outer["Subject"] = "Fwd"
    outer.set_content("see below")
    outer.add_attachment(inner)

    message = read(outer.as_bytes(), new_spool)

    (part,) = message.parts
    assert part.content_type == "message/rfc822"
    assert b"inner.jpg" in content(part.spool)
    assert message.text.strip() == "see below"


def test_a_message_cut_off_keeps_the_parts_that_completed(new_spool):
    message = EmailMessage()
    message.set_content("text")
    message.add_attachment(b"first" * 100, "application", "octet-stream", filename="one.bin")
    message.add_attachment(b"second" * 100, "application", "octet-stream", filename="two.bin")
    raw = message.as_bytes()
    cut = raw[: raw.index(b"two.bin") + 200]

    result = read(cut, new_spool)

    assert not result.complete
    assert content(result.parts[0].spool) == b"first" * 100
    assert [(p.filename, p.cut_off) for p in result.parts] == [("one.bin", False), ("two.bin", True)]


def test_a_single_part_message_ends_at_the_end_of_the_file_and_is_not_cut_off(new_spool):
    message = EmailMessage()
    message.set_content(b"\xff\xd8\xff" + bytes(50), "image", "jpeg", filename="only.jpg")

    result = read(message.as_bytes(), new_spool)

    assert result.complete and not result.parts[0].cut_off


def test_a_single_part_image_message_is_its_one_part(new_spool):
    message = EmailMessage()
    message.set_content(b"\x89PNG\r\n\x1a\n" + bytes(50), "image", "png", filename="only.png")

    (part,) = read(message.as_bytes(), new_spool).parts

    assert part.filename == "only.png" and content(part.spool) == b"\x89PNG\r\n\x1a\n" + bytes(50)


def test_a_nesting_bomb_fails_fast(new_spool):
    raw = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(100000))

    with pytest.raises(MalformedMime, match="nested more than 10 deep"):
        read(raw, new_spool)


def test_a_part_count_bomb_fails_fast(new_spool):
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + b"--b\r\n\r\nx\r\n" * 100000 + b"--b--\r\n"

    with pytest.raises(MalformedMime, match="more than 1000 MIME parts"):
        read(raw, new_spool)


def test_a_message_of_millions_of_empty_lines_is_refused_in_bounded_time(new_spool):
    # Each line costs a microsecond or two of Python: 25 MB of them took 23 s to read.
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\n' + b"\n" * (3 << 20) + b"--b--\r\n"
    started = time.monotonic()

    with pytest.raises(MalformedMime, match="more than 1,048,576 lines; a mail of photos has far fewer"):
        read(raw, new_spool)

    assert time.monotonic() - started < 4  # a million lines, then the reason


def test_a_photo_of_as_many_lines_as_a_25_mb_mail_has_is_read(new_spool):
    photo = os.urandom(18 << 20)  # about 25 MB in base64, 76 characters a line: 330,000 lines
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: image/jpeg\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(photo) + b"--b--\r\n"
    )

    (part,) = read(raw, new_spool).parts

    assert content(part.spool) == photo


def test_huge_headers_and_a_bad_boundary_are_refused(new_spool):
    with pytest.raises(MalformedMime, match="a header field is over 32768 bytes"):
        read(b"X-Junk: " + b"a" * 1024 * 1024 + b"\r\n\r\nbody", new_spool)
    with pytest.raises(MalformedMime, match="a header block is over 262144 bytes"):
        read(b"X-Junk: a\r\n" * 30000 + b"\r\nbody", new_spool)
    with pytest.raises(MalformedMime, match="a header block is over 16384 bytes"):
        read(b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' + b"X: y\r\n" * 5000, new_spool)
    with pytest.raises(MalformedMime, match="the parts' headers are over 1048576 bytes together"):
        part = b"--b\r\n" + b"X-Padding: " + b"p" * 15000 + b"\r\n\r\nx\r\n"
        read(b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + part * 100, new_spool)
    with pytest.raises(MalformedMime, match="not a valid boundary"):
        read(b'Content-Type: multipart/mixed; boundary="a\x01b"\r\n\r\n', new_spool)


def test_an_over_long_line_is_content_not_a_boundary(new_spool):
    line = b"--b" + b"x" * 200_000 + b"\r\n"
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + line + b"--b--\r\n"
    )

    (part,) = read(raw, new_spool).parts

    assert content(part.spool) == line[:-2]


def test_a_signature_logo_is_tiny_and_a_pasted_photo_beside_it_is_not(new_spool):
    logo, photo = make_image(".png", (16, 16)), make_image(".jpg", (800, 600))
    message = EmailMessage()
    message.set_content("Photo below")
    message.add_alternative(
        '<p>Photo:</p><img src="cid:photo%2B1@gmail"><br>--<br><img src=cid:logo@corp>', subtype="html"
    )
    html = message.get_payload()[1]
    html.add_related(photo, "image", "jpeg", cid="<photo+1@gmail>", filename="image.png", disposition="inline")
    html.add_related(logo, "image", "png", cid="<logo@corp>", filename="logo.png", disposition="inline")

    result = read(message.as_bytes(), new_spool)

    referenced = referenced_content_ids(result.html, among={part.content_id for part in result.parts})
    assert referenced == {"photo+1@gmail", "logo@corp"}
    tiny = {
        part.filename: is_tiny_inline(part.spool.head, part.spool.size, detect_type(part.spool.head))
        for part in result.parts
        if part.is_inline and part.content_id in referenced
    }
    assert tiny == {"image.png": False, "logo.png": True}


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Type: image/jpeg; " + b"a=b; " * 3000,
        b"Content-Type: image/jpeg; " + b"(" * 15000,
        b"Content-Disposition: attachment; " + b"".join(b"name*%d*=utf-8''%%41; " % n for n in range(700)),
        b'Content-Disposition: attachment; filename="' + b'\\"' * 7000 + b'"',
        b"Subject: " + b"=?utf-8?q?a?= " * 1000,
    ],
)
def test_crafted_part_headers_cost_no_time(new_spool, header):
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + (b"--b\r\n" + header + b"\r\n\r\nx\r\n") * 60
    started = time.perf_counter()
    try:
        read(raw + b"--b--\r\n", new_spool)
    except MalformedMime:
        pass  # refusing is fine too; taking long or raising anything else is not
    assert time.perf_counter() - started < 2


def test_a_punycode_text_and_html_are_read_as_utf_8_in_no_time(new_spool):
    body = b"-" + b"a" * (1024 * 1024 - 1)  # punycode's decoder inserts each of these characters: quadratic
    raw = b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n' + b"".join(
        b"--b\r\nContent-Type: text/%s; charset=punycode\r\n\r\n%s\r\n" % (kind, body) for kind in (b"plain", b"html")
    )

    started = time.monotonic()
    message = read(raw + b"--b--\r\n", new_spool)

    assert time.monotonic() - started < 1
    assert message.text == message.html == body.decode()


UNCLOSED_WORDS = "=?x?q? " * 4500  # 31.5 KB of encoded-word starts without their "?="


def test_unclosed_encoded_words_in_headers_and_file_names_cost_no_time(new_spool):
    headers = "".join(f"X-Junk-{n}: {UNCLOSED_WORDS}\r\n" for n in range(7))
    part = f'--b\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; filename="{UNCLOSED_WORDS[:15000]}"'
    raw = f'{headers}Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + f"{part}\r\n\r\nx\r\n" * 64 + "--b--\r\n"

    started = time.monotonic()
    message = read(raw.encode(), new_spool)
    name = decoded_words("=?utf-8?q?caf=C3=A9?= " + UNCLOSED_WORDS * 4)  # a forward() file name of 126 KB
    broken = decoded_words(UNCLOSED_WORDS + "\u2028?=")  # a line break that is no fold: no mailer's

    assert time.monotonic() - started < 1
    assert message.header("x-junk-6") == UNCLOSED_WORDS.strip()
    assert {part.filename for part in message.parts} == {UNCLOSED_WORDS[:15000].strip()}
    assert name == "café " + (UNCLOSED_WORDS * 4).strip()
    assert broken == UNCLOSED_WORDS + "\u2028?="


def test_real_encoded_words_are_still_decoded(new_spool):
    subject = "写真と動画 " * 40  # 240 characters: ~1.2 KB of base64 words, folded over many lines
    message = EmailMessage()
    message["Subject"] = subject
    message.set_content("hi")
    message.add_attachment(b"\xff\xd8\xff" + bytes(10), "image", "jpeg", filename="写真" * 120 + ".jpg")
    raw = message.as_bytes()
    assert raw.count(b"filename*") == 35  # the name in RFC 2231 pieces: 35 parameters

    result = read(raw, new_spool)

    assert result.header("subject") == subject.strip()
    assert [part.filename for part in result.parts] == ["写真" * 120 + ".jpg"]
    assert decoded_words("=?utf-8?q?caf=C3=A9?=\r\n =?utf-8?b?w6A=?= Nice =?broken") == "caféà Nice =?broken"


def test_a_part_header_of_thousands_of_parameters_is_refused_fast(new_spool):
    semicolons = ";" * 7900  # email's parameter parser recounts the quotes before each ';' after a '"'
    part = f'--b\r\nContent-Type: image/jpeg; x="{semicolons}\r\nContent-Disposition: attachment; x="{semicolons}'
    raw = 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + f"{part}\r\n\r\nx\r\n" * 64 + "--b--\r\n"

    started = time.monotonic()
    with pytest.raises(MalformedMime, match="a part's Content-Type or Content-Disposition has over 200 parameters"):
        read(raw.encode(), new_spool)
    assert time.monotonic() - started < 1


def test_only_the_given_content_ids_are_collected_from_a_huge_html():
    html = " ".join(f"cid:{n:x}" for n in range(400_000)) + ' <img src="cid:logo%40corp">'

    tracemalloc.start()
    try:
        referenced = referenced_content_ids(html, among={"logo@corp", "missing@corp"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert referenced == {"logo@corp"}
    assert peak < 1024 * 1024, f"peak {peak} bytes"
