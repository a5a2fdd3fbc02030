"""Reading the body: what an unsigned request may cost, open files, and the spool's lifecycle."""

import io
import os
import random
import resource
import time
import tracemalloc
from urllib.parse import urlencode

import pytest
from werkzeug.sansio.multipart import Epilogue, MultipartDecoder, NeedData

from inbox import create_app
from inbox.delivery import signed_fields
from inbox.form import InboxRequest
from inbox.multipart import MailgunDecoder, _BoundaryFinder
from tests.harness import SIGNING_KEY, mailgun_form

MiB = 1024 * 1024
URLENCODED = "application/x-www-form-urlencoded"


def post_traced(client, body: bytes, content_type: str):
    """The answer to `body`, and the most memory Python held while it was read and answered."""
    tracemalloc.start()
    try:
        response = client.post("/webhooks/mailgun", data=body, content_type=content_type)
        return response, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_unsigned_url_encoded_flood_is_refused_quickly_in_bounded_memory(client):
    body = b"&" * (24 * MiB)
    started = time.monotonic()
    response, peak = post_traced(client, body, URLENCODED)
    assert response.status_code == 413 and response.get_json()["reason"]
    assert time.monotonic() - started < 3
    assert peak < 3 * len(body)  # the body and its text, never a field object per '&'


def test_an_unsigned_percent_encoded_body_is_refused_without_an_object_per_escape(client):
    # parse_qsl over the whole body made an object per %XX: 5 MiB cost ~400 MiB before the 403.
    body = b"body-plain=" + b"%41" * (4 * MiB // 3)
    response, peak = post_traced(client, body, URLENCODED)
    assert response.status_code == 403
    assert "timestamp, token and signature fields are required" in response.get_json()["reason"]
    assert peak < 3 * len(body), f"peak {peak // MiB} MiB"


def test_a_url_encoded_header_field_is_refused_while_it_arrives(client):
    body = b"subject=" + b"%41" * (3 * MiB) + b"&" + urlencode(signed_fields(SIGNING_KEY)).encode()
    response = client.post("/webhooks/mailgun", data=body, content_type=URLENCODED)
    assert response.status_code == 413
    assert "form field 'subject' is over 256 KiB" in response.get_json()["reason"]


def test_a_long_non_ascii_mail_without_attachments_arrives_whole(app, client):
    # Mailgun posts a mail without attachments url-encoded; its text comes in many reads, cut inside escapes.
    text = "Grüße aus Köln 🌍, ça va? " * 120_000  # ~3.5 MiB of text, ~9 MiB url-encoded
    fields = {**signed_fields(SIGNING_KEY), "Message-Id": "<long@example.com>", "body-plain": text, "subject": "ü"}
    body = urlencode(fields).encode()
    with app.test_request_context("/webhooks/mailgun", method="POST", data=body, content_type=URLENCODED) as context:
        assert context.request.form.to_dict() == fields
    response = client.post("/webhooks/mailgun", data=body, content_type=URLENCODED)
    assert response.status_code == 415
    assert response.get_json()["message_id"] == "<long@example.com>"
    assert response.get_json()["reason"] == "the message has no attachments"


@pytest.mark.parametrize("size, ended", [(4 * MiB, False), (4 * MiB, True), (100 * 1024, True)])
def test_a_form_part_with_megabytes_of_headers_is_refused_before_they_are_parsed(client, size, ended):
    # The decoder's only bound was the 25 MiB form memory; Werkzeug made a tuple per '; a=b'.
    header = b'Content-Disposition: form-data; name="subject"' + b"; a=b" * (size // 5)
    body = b"--b\r\n" + header + (b"\r\n\r\nhello\r\n--b--\r\n" if ended else b"")
    response, peak = post_traced(client, body, "multipart/form-data; boundary=b")
    assert response.status_code == 400
    assert "a form part's headers are over 64 KiB" in response.get_json()["reason"]
    assert peak < 3 * len(body) + MiB, f"peak {peak // MiB} MiB"  # a tuple per parameter took 100 times the body


def test_a_bad_signature_stops_the_read_before_the_attachments(client, monkeypatch):
    spooled = []
    new_spool = InboxRequest.new_spool
    monkeypatch.setattr(InboxRequest, "new_spool", lambda self, *a: spooled.append(1) or new_spool(self, *a))
    # The test client posts the text fields first, the files after them.
    form = mailgun_form(("a.jpg", b"\xff\xd8\xff" + os.urandom(4 * MiB)), **signed_fields("not our key"))
    response = client.post("/webhooks/mailgun", data=form)
    assert response.status_code == 403
    assert spooled == []  # the 4 MiB attachment after the fields was never written anywhere


def test_a_signed_url_encoded_message_still_reads_every_field(client):
    response = client.post(
        "/webhooks/mailgun",
        data={**signed_fields(SIGNING_KEY), "subject": "a & b", "Message-Id": "<x@y>"},
        content_type=URLENCODED,
    )
    assert response.status_code == 415
    assert response.get_json()["message_id"] == "<x@y>"


def test_a_thousand_parts_need_one_open_file_at_a_time(client):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    form = mailgun_form(*[(f"{n}.txt", b"not a photo") for n in range(1500)])
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        response = client.post("/webhooks/mailgun", data=form)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert response.status_code == 415
    assert len(response.get_json()["rejected"]) == 1500


def test_start_up_sweeps_spool_files_a_killed_worker_left(settings):
    spool = os.path.join(settings["STORAGE_PATH"], ".spool")
    os.makedirs(spool)
    for name, age in (("spool-old", 3600), ("spool-fresh", 5), ("not-a-spool", 3600)):
        with open(os.path.join(spool, name), "wb") as file:
            file.write(b"x")
        os.utime(os.path.join(spool, name), (time.time() - age,) * 2)
    create_app(settings)
    assert sorted(os.listdir(spool)) == ["not-a-spool", "spool-fresh"]


def test_every_spool_file_is_gone_after_the_request(client, settings, images):
    form = mailgun_form(("a.jpg", images[".jpg"]), ("b.txt", b"text"))
    form["attachment-3"] = (io.BytesIO(b"\xff\xd8\xff" + b"x" * 2 * MiB), "big.jpg", "image/jpeg")
    client.post("/webhooks/mailgun", data=form)
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], ".spool")) == []


def test_the_boundary_is_found_where_werkzeugs_own_regexes_find_it():
    # The decoder searches with bytes.find instead of compiling two regexes per request; on
    # every shape of line break, blank, dash and near-miss it must agree with Werkzeug's.
    boundary = b"b-1"
    pieces = [b"\r", b"\n", b"\r\n", b"-", b"--", b" ", b"\t", b"x", b"--b-1", b"--b-", b"b-1"]
    werkzeugs = MultipartDecoder(boundary)
    regexes = {False: werkzeugs.preamble_re, True: werkzeugs.boundary_re}
    shapes = random.Random(8)
    found = 0
    for _ in range(20000):
        data = b"".join(shapes.choice(pieces) for _ in range(shapes.randint(1, 12)))
        position = shapes.randint(0, len(data))
        for line_break_first, regex in regexes.items():
            expected = regex.search(data, position)
            got = _BoundaryFinder(boundary, line_break_first).search(bytearray(data), position)
            if expected is None:
                assert got is None, data
            else:
                found += 1
                assert (got.start(), got.end(), got.group(1)) == (
                    expected.start(),
                    expected.end(),
                    expected.group(1),
                ), data
    assert found > 2000  # the shapes do reach the cases where a boundary is found


def decoded(decoder, body: bytes, cuts: list[int]) -> list:
    """The events a decoder gives for `body` arriving in pieces cut at `cuts`, ending with what it raised."""
    events = []
    try:
        for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
            decoder.receive_data(body[start:end])
            while not isinstance(event := decoder.next_event(), NeedData):
                events.append(event)
                if isinstance(event, Epilogue):
                    return events
        decoder.receive_data(None)
        while not isinstance(event := decoder.next_event(), (NeedData, Epilogue)):
            events.append(event)
    except ValueError as error:
        events.append(type(error))
    return events


def test_parts_are_split_where_werkzeugs_own_decoder_splits_them():
    # MailgunDecoder copies each piece of a part once (Werkzeug's _parse_data copies it three
    # times); on every shape of part, line break and near-miss boundary, cut anywhere, it must
    # give the same events.
    boundary = b"b-1"
    head = b'--b-1\r\nContent-Disposition: form-data; name="f"\r\n\r\n'
    pieces = [b"\r", b"\n", b"\r\n", b"-", b"--", b" ", b"x" * 40, b"\r\n--b-1", b"\r\n--b-", b"--b-1--", b"\r\n\r\n"]
    shapes = random.Random(13)
    broken = set()
    for _ in range(3000):
        body = head + b"".join(shapes.choice(pieces) for _ in range(shapes.randint(0, 16)))
        if shapes.random() < 0.7:
            body += b"\r\n--b-1--\r\n"
        cuts = sorted(shapes.sample(range(1, len(body)), min(len(body) - 1, shapes.randint(0, 6))))
        expected = decoded(MultipartDecoder(boundary), body, cuts)
        assert decoded(MailgunDecoder(boundary), body, cuts) == expected, (body, cuts)
        broken.add(ValueError in expected)
    assert broken == {True, False}  # the shapes reach both complete forms and broken ones
