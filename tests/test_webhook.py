"""Deliveries through the webhook: what Mailgun (and a forger) gets back, and what ends up stored."""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import shutil
import time
import tracemalloc

import pytest

from inbox import create_app
from inbox import message as message_module
from inbox.delivery import build_delivery, signed_fields
from tests.harness import SIGNING_KEY, mailgun_form, make_image, pasted_photo
from tests.test_mimeform import FIELDS as MIME_FIELDS
from tests.test_mimeform import multipart, urlencoded
from tests.test_webhook_mime import appledouble_header

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def stored_files(settings, container="images"):
    folder = os.path.join(settings["STORAGE_PATH"], container)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_stores_every_accepted_type_and_answers_with_urls_that_open(deliver, client, images):
    response = deliver(*[(f"photo{extension}", content) for extension, content in images.items()])

    assert response.status_code == 200
    body = response.get_json()
    assert body["message_id"] == "<m1@example.com>" and body["rejected"] == []
    assert [item["attachment"] for item in body["stored"]] == [f"attachment-{n}" for n in range(1, 9)]
    for item, (extension, content) in zip(body["stored"], images.items(), strict=True):
        assert item["url"].startswith("http://localhost/files/images/")
        assert item["url"].endswith(extension)
        assert item["size"] == len(content) and item["filename"] == f"photo{extension}"
        fetched = client.get(item["url"])
        assert fetched.status_code == 200
        assert fetched.data == content
        assert fetched.mimetype == item["content_type"]


def test_accounts_for_every_attachment_stored_or_rejected(deliver, images):
    response = deliver(("a.jpg", images[".jpg"]), ("invoice.jpg", PDF), ("logo.svg", SVG), ("empty.png", b""))

    assert response.status_code == 200
    body = response.get_json()
    assert [item["filename"] for item in body["stored"]] == ["a.jpg"]
    reasons = {item["filename"]: (item["content_type"], item["reason"]) for item in body["rejected"]}
    assert reasons["invoice.jpg"][0] == "application/pdf"
    assert reasons["logo.svg"][0] == "image/svg+xml"
    assert reasons["empty.png"][1] == "empty file"
    assert all("not an accepted image" in reasons[name][1] for name in ("invoice.jpg", "logo.svg"))


def test_nothing_acceptable_is_415_with_every_reason(deliver, settings):
    response = deliver(("photo.jpg", PDF), ("x.svg", SVG))

    assert response.status_code == 415
    body = response.get_json()
    assert body["stored"] == [] and len(body["rejected"]) == 2
    assert body["reason"] == "no accepted image in the message"
    assert stored_files(settings) == []


def test_no_attachment_is_415_saying_so(deliver):
    response = deliver()
    assert response.status_code == 415
    assert response.get_json()["reason"] == "the message has no attachments"


def test_only_an_oversized_image_is_413(tmp_path, images):
    app = create_app(
        {
            "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "INBOX_PUBLISHERS": "*",
            "STORAGE_PATH": str(tmp_path),
            "INBOX_MAX_ATTACHMENT_BYTES": "1000",
        }
    )
    big = make_image(".bmp", size=(200, 200))
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("big.bmp", big)))

    assert response.status_code == 413
    assert "over the limit of 1000 bytes" in response.get_json()["rejected"][0]["reason"]
    assert os.listdir(tmp_path / "images") == []
    assert os.listdir(tmp_path / ".spool") == []  # the part was not kept


def test_reject_status_406_makes_mailgun_stop_retrying(tmp_path):
    app = create_app(
        {
            "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "INBOX_PUBLISHERS": "*",
            "STORAGE_PATH": str(tmp_path),
            "INBOX_REJECT_STATUS": "406",
        }
    )
    response = app.test_client().post("/webhooks/mailgun", data=mailgun_form(("a.pdf", PDF)))
    assert response.status_code == 406
    assert response.get_json()["rejected"][0]["content_type"] == "application/pdf"


def test_judges_every_part_present_whatever_attachment_count_says(deliver, images):
    response = deliver(
        ("a.jpg", images[".jpg"]), ("b.png", images[".png"]), ("c.gif", images[".gif"]), **{"attachment-count": "1"}
    )
    assert len(response.get_json()["stored"]) == 3


def test_inline_images_are_stored_like_attachments_whatever_the_content_id_map_says(deliver, client, images):
    # Mailgun's map has been seen with empty and duplicate keys; one here also names a part that is not there.
    content_ids = {"<ii_1>": "attachment-2", "": "attachment-2", "<ii_9>": "attachment-9"}
    pasted = pasted_photo()
    response = deliver(
        ("a.jpg", images[".jpg"]),
        ("image001.jpg", pasted),
        **{"content-id-map": json.dumps(content_ids), "body-html": '<img src="cid:ii_1">'},
    )

    assert response.status_code == 200
    stored = response.get_json()["stored"]
    assert [(item["attachment"], item["filename"]) for item in stored] == [
        ("attachment-1", "a.jpg"),
        ("attachment-2", "image001.jpg"),
    ]
    assert client.get(stored[1]["url"]).data == pasted


def test_a_signature_logo_shown_inline_is_not_published_the_pasted_photo_beside_it_is(deliver):
    logo, pasted = make_image(".png", size=(48, 16)), pasted_photo()
    response = deliver(
        ("logo.png", logo),
        ("IMG_0001.jpg", pasted),
        ("tiny-but-attached.png", logo),
        **{
            "content-id-map": json.dumps({"<logo@x>": "attachment-1", "<photo@x>": "attachment-2"}),
            "body-html": '<p>Look!</p><img src="cid:photo@x"><br>--<br><img src="cid:logo@x">',
        },
    )

    body = response.get_json()
    assert response.status_code == 200
    assert [item["filename"] for item in body["stored"]] == ["IMG_0001.jpg", "tiny-but-attached.png"]
    assert [(item["filename"], item["reason"]) for item in body["rejected"]] == [
        ("logo.png", "inline image too small: a signature logo or tracking pixel?")
    ]


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"signature": "0" * 64}, "does not match"),
        ({"signature": ""}, "required"),
        ({"timestamp": "yesterday"}, "Unix time"),
        (signed_fields("the-mailgun-api-key"), "signing key"),
        (signed_fields(SIGNING_KEY, timestamp="1500000000"), "stale"),
        (signed_fields(SIGNING_KEY, timestamp="4000000000"), "future"),
    ],
)
def test_forged_or_stale_signatures_are_403_and_nothing_is_written(client, settings, images, fields, reason):
    response = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), **fields))

    assert response.status_code == 403
    assert reason in response.get_json()["reason"]
    assert stored_files(settings) == []
    assert stored_files(settings, "images-receipts") == ["name-key"]  # no receipt: nothing claimed


def test_a_replayed_token_with_other_content_is_403_and_stores_nothing(client, settings, images):
    signature = signed_fields(SIGNING_KEY)
    first = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), **signature))
    replay = client.post(
        "/webhooks/mailgun", data=mailgun_form(("evil.png", images[".png"]), message_id="<evil@x>", **signature)
    )
    again = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), **signature))

    assert first.status_code == 200 and replay.status_code == 403
    assert "already used for another message" in replay.get_json()["reason"]
    assert stored_files(settings) == [first.get_json()["stored"][0]["url"].rsplit("/", 1)[1]]
    assert again.status_code == 200 and again.get_json() == first.get_json()  # Mailgun's own retry: the answer


def test_a_redelivery_gives_the_same_urls_and_no_second_copy(deliver, settings, images):
    attachments = [("a.jpg", images[".jpg"]), ("b.webp", images[".webp"])]
    first = deliver(*attachments).get_json()
    again = deliver(*attachments).get_json()  # Mailgun's retry: a new token, the same message

    assert [item["url"] for item in again["stored"]] == [item["url"] for item in first["stored"]]
    assert len(stored_files(settings)) == 2


def test_reusing_a_message_id_cannot_overwrite_another_senders_image(deliver, client, images):
    mine = deliver(("a.jpg", images[".jpg"]), sender="alice@example.com").get_json()["stored"][0]
    other = make_image(".jpg", color=(0, 255, 0))
    theirs = deliver(("a.jpg", other), sender="mallory@example.com").get_json()["stored"][0]
    same_sender = deliver(("a.jpg", other), sender="alice@example.com").get_json()["stored"][0]

    assert len({mine["url"], theirs["url"], same_sender["url"]}) == 3
    assert client.get(mine["url"]).data == images[".jpg"]


def test_same_file_name_twice_keeps_both_images(deliver, client):
    red, blue = make_image(color=(255, 0, 0)), make_image(color=(0, 0, 255))
    stored = deliver(("IMG_0001.jpg", red), ("IMG_0001.jpg", blue)).get_json()["stored"]

    assert stored[0]["url"] != stored[1]["url"]
    assert [client.get(item["url"]).data for item in stored] == [red, blue]


def test_storage_failure_is_503_and_the_retry_completes_with_the_same_urls(deliver, settings, images):
    container = os.path.join(settings["STORAGE_PATH"], "images")
    shutil.rmtree(container)  # the volume went away under the running service
    attachments = [("a.jpg", images[".jpg"]), ("b.png", images[".png"])]

    failed = deliver(*attachments)
    assert failed.status_code == 503
    assert "stored" not in failed.get_json()
    assert stored_files(settings, "images-receipts") == ["name-key"]  # no answer recorded: the retry must run

    os.mkdir(container)
    retried = deliver(*attachments)
    assert retried.status_code == 200
    good = deliver(*attachments).get_json()["stored"]
    assert [item["url"] for item in retried.get_json()["stored"]] == [item["url"] for item in good]


def test_a_spool_folder_that_is_gone_is_made_again(deliver, settings, images):
    shutil.rmtree(os.path.join(settings["STORAGE_PATH"], ".spool"))
    response = deliver(("a.jpg", images[".jpg"]))
    assert response.status_code == 200
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], ".spool")) == []


def test_a_spool_that_cannot_be_written_is_503_not_500(deliver, settings, images):
    spool = os.path.join(settings["STORAGE_PATH"], ".spool")
    shutil.rmtree(spool)
    with open(spool, "w"):  # a file where the folder was: nothing can be created in it
        pass
    response = deliver(("a.jpg", images[".jpg"]))
    assert response.status_code == 503
    assert "Mailgun will retry" in response.get_json()["reason"]


def test_a_spool_503_says_why_without_the_path(deliver, settings, images):
    # The operator reading Mailgun's log saw "the spool folder cannot take the message now" and
    # had to find the server log to learn the disk was full or read-only. A file size limit stands
    # in for a full disk (EFBIG where a full one gives ENOSPC), a file for the folder (ENOTDIR).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))
    try:
        full = deliver(("a.jpg", images[".jpg"] + b"\0" * 200_000))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    spool = os.path.join(settings["STORAGE_PATH"], ".spool")
    shutil.rmtree(spool)
    with open(spool, "w"):
        pass
    gone = deliver(("a.jpg", images[".jpg"]))

    assert full.status_code == gone.status_code == 503
    assert (
        full.get_json()["reason"] == "the spool folder cannot take the message now: file too large; Mailgun will retry"
    )
    assert (
        gone.get_json()["reason"] == "the spool folder cannot take the message now: not a directory; Mailgun will retry"
    )


def test_a_disk_that_fills_as_the_answer_is_recorded_is_503_and_the_retry_completes(deliver, settings, images):
    # The answer is recorded last, over the token's claim, and is the largest file a delivery
    # writes here. A full disk then (a file size limit stands in for it: no mount in a test)
    # answered 500, the unexpected-error answer, instead of the 503 every other full-disk step gives.
    attachments = [("a.jpg", images[".jpg"])] + [(f"note-{n:03}-{'x' * 120}.txt", b"text") for n in range(300)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, hard))
    try:
        failed = deliver(*attachments)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert failed.status_code == 503, failed.get_json()
    assert "Mailgun will retry" in failed.get_json()["reason"]
    assert stored_files(settings, "images-receipts") == ["name-key"]  # the claim was given up: the retry runs

    retried = deliver(*attachments)
    assert retried.status_code == 200
    assert len(retried.get_json()["stored"]) == 1 and len(retried.get_json()["rejected"]) == 300


def test_an_orphan_the_sweep_cannot_remove_costs_no_delivery(deliver, client, settings, images, monkeypatch):
    # A killed worker's spool file on a file system gone read-only: removing it fails (EROFS), and
    # the sweep, which runs before a new spool file every minute, turned that delivery and that
    # health check into a 500. A folder by a spool file's name stands in: unlink refuses it too.
    orphan = os.path.join(settings["STORAGE_PATH"], ".spool", "spool-orphan")
    os.makedirs(os.path.join(orphan, "inside"))
    os.utime(orphan, (time.time() - 3600,) * 2)
    monkeypatch.setattr("inbox.spool.SWEEP_EVERY", 0)  # a minute has passed since the last sweep

    assert deliver(("a.jpg", images[".jpg"])).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], ".spool")) == ["spool-orphan"]


def test_a_long_html_thread_and_many_header_fields_are_accepted(client, images):
    form = mailgun_form(("a.jpg", images[".jpg"]))
    form["body-html"] = "<blockquote>" + "quoted reply text " * 400_000 + "</blockquote>"  # ~7 MB
    form["stripped-html"] = form["body-html"]
    form["message-headers"] = json.dumps([["Received", f"from relay{n}"] for n in range(2000)])
    form["Received"] = [f"from relay{n}.example.net by mx.example.com" for n in range(2000)]

    response = client.post("/webhooks/mailgun", data=form)
    assert response.status_code == 200, response.get_json()


def test_message_id_comes_from_message_headers_when_no_field_carries_it(client, images):
    form = mailgun_form(("a.jpg", images[".jpg"]), **{"message-headers": json.dumps([["Message-Id", "<h@x>"]])})
    del form["Message-Id"]
    assert client.post("/webhooks/mailgun", data=form).get_json()["message_id"] == "<h@x>"


def test_a_lone_surrogate_escaped_in_the_json_fields_is_no_500(client, images):
    # JSON can escape a surrogate no text holds; the Message-Id went on to .encode() (receipts, names): a 500.
    headers = json.dumps([["From", "alice@example.com"], ["Message-Id", "<\udcff@x>"]])
    form = mailgun_form(("a.jpg", images[".jpg"]), **{"message-headers": headers})
    form["content-id-map"] = json.dumps({"<\udcff>": "attachment-1"})
    del form["Message-Id"]
    response = client.post("/webhooks/mailgun", data=form)
    assert response.status_code == 200 and len(response.get_json()["stored"]) == 1
    assert response.get_json()["message_id"] == "<?@x>"


def test_a_body_over_the_limit_is_a_clean_413(client, app):
    too_big = app.config["MAX_CONTENT_LENGTH"] + 1
    response = client.post(
        "/webhooks/mailgun", data=b"x" * too_big, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 413
    assert "at most 100 MiB in all, 25 MiB per text field and 5000 parts" in response.get_json()["reason"]


@pytest.mark.parametrize(
    "body, content_type, reason",
    [
        (b'{"attachments": []}', "application/json", "expected a form post"),
        (b"\x00\xff" * 64, "multipart/form-data", "boundary"),
        (b"garbage without any boundary", "multipart/form-data; boundary=XX", "could not be parsed"),
        (
            b'--XX\r\nContent-Disposition: form-data; name="attachment-1"; filename="a.jpg"\r\n\r\n\xff\xd8\xff',
            "multipart/form-data; boundary=XX",
            "could not be parsed",
        ),
        (b"", None, "expected a form post"),
        (
            b"--XX\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--XX--\r\n",
            "multipart/form-data; boundary=XX",
            "has no name",
        ),
        (
            b'--XX\r\nContent-Disposition: form-data; filename="a.jpg"\r\n\r\n\xff\xd8\xff\xd9\r\n--XX--\r\n',
            "multipart/form-data; boundary=XX",
            "has no name",
        ),
    ],
)
def test_malformed_requests_get_400_with_a_reason(client, settings, body, content_type, reason):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/webhooks/mailgun", data=body, headers=headers)

    assert response.status_code == 400
    assert reason in response.get_json()["reason"]
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], ".spool")) == []


def raw_delivery(client, *parts: bytes):
    """POST signed fields and then the given raw multipart parts, as Mailgun frames them."""
    fields = build_delivery(key=SIGNING_KEY).encode("XX")[0].removesuffix(b"--XX--\r\n")
    body = fields + b"".join(b"--XX\r\n" + part + b"\r\n" for part in parts) + b"--XX--\r\n"
    return client.post("/webhooks/mailgun", data=body, headers={"Content-Type": "multipart/form-data; boundary=XX"})


@pytest.mark.parametrize(
    "filename, kept",
    [
        (b"caf\xe9.jpg", "café.jpg"),  # Latin-1: costs nothing but its spelling
        (b"=?utf-8?b?x?=", "=?utf-8?b?x?="),  # a broken encoded word: kept as it came
    ],
)
def test_an_odd_file_name_is_read_not_refused(client, images, filename, kept):
    response = raw_delivery(
        client,
        b'Content-Disposition: form-data; name="attachment-1"; filename="' + filename + b'"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + images[".jpg"],
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["stored"][0]["filename"] == kept


def test_file_parts_without_a_name_or_with_backslashes_are_judged(client, images):
    response = raw_delivery(
        client,
        b'Content-Disposition: form-data; name="attachment-1"\r\nContent-Type: image/png\r\n\r\n' + images[".png"],
        b'Content-Disposition: form-data; name="attachment-2"; filename="path\\"\r\n\r\n' + images[".gif"],
        b'Content-Disposition: form-data; name="attachment-3"; filename="\\share\\mail\\x.msg"\r\n\r\nnot a photo',
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(item["attachment"], item["filename"]) for item in body["stored"]] == [
        ("attachment-1", ""),
        ("attachment-2", "path\\"),
    ]
    assert [(item["attachment"], item["filename"]) for item in body["rejected"]] == [
        ("attachment-3", "\\share\\mail\\x.msg")
    ]


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/webhooks/mailgun").status_code == 405
    missing = client.get("/nothing-here")
    assert missing.status_code == 404 and missing.is_json


def test_one_log_line_per_delivery_without_secrets(deliver, images, caplog):
    with caplog.at_level(logging.INFO, logger="inbox"):
        deliver(("a.jpg", images[".jpg"]), ("b.pdf", PDF))
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("delivery")]
    assert lines == ["delivery message_id=<m1@example.com> attachments=2 stored=1 rejected=1 status=200"]
    assert SIGNING_KEY not in caplog.text


def test_spool_files_are_gone_after_each_request(deliver, settings, images):
    deliver(("a.jpg", images[".jpg"]), ("b.pdf", PDF))
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], ".spool")) == []


def test_an_unfinished_multipart_upload_leaves_no_spool_file(client, settings):
    body = b'--XX\r\nContent-Disposition: form-data; name="attachment-1"; filename="a.jpg"\r\n\r\n' + b"\xff" * 100_000
    client.post(
        "/webhooks/mailgun",
        input_stream=io.BytesIO(body),
        content_length=len(body),
        headers={"Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert os.listdir(os.path.join(settings["STORAGE_PATH"], ".spool")) == []


def test_a_message_id_with_a_newline_cannot_forge_a_log_line(deliver, images):
    logger = logging.getLogger("inbox")
    stream = io.StringIO()
    # The service's formatter, on a stream of our own: the handler's may be an earlier test's captured stderr, closed.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.handlers[0].formatter)
    logger.addHandler(handler)
    try:
        deliver(("a.jpg", images[".jpg"]), message_id="<a@b>\n2026-01-01 00:00:00 INFO inbox: forged\u2028x")
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "<a@b>\\x0a2026-01-01 00:00:00 INFO inbox: forged\\u2028x" in logged
    assert not any(line.startswith("2026-01-01") for line in logged.splitlines())


@pytest.mark.parametrize(
    "body, content_type, names",
    [
        (
            json.dumps(
                {
                    "signature": {"timestamp": "1", "token": "t", "signature": "s"},
                    "event-data": {"event": "delivered", "recipient": "a@example.com"},
                }
            ),
            "application/json",
            "event webhook",
        ),
        ({"event": "opened", "recipient": "a@example.com", **signed_fields(SIGNING_KEY)}, None, "legacy event webhook"),
    ],
)
def test_event_webhooks_aimed_here_get_406_naming_the_mistake(client, body, content_type, names):
    response = client.post("/webhooks/mailgun", data=body, content_type=content_type)
    assert response.status_code == 406  # Mailgun stops retrying
    reason = response.get_json()["reason"]
    assert names in reason and "point event and tracking webhooks elsewhere" in reason


def chunked_post(client, path: str, body: bytes):
    """POST `body` as a chunked request, without Content-Length, as gunicorn hands one on."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("path", ["/webhooks/mailgun", "/webhooks/mailgun/mime"])
def test_a_chunked_json_body_is_not_parsed_whole(client, path):
    # Without a Content-Length the size check passed, and get_json() read and parsed up to 100 MiB.
    event = json.dumps({"event-data": {"event": "delivered"}}).encode()
    assert chunked_post(client, path, event).status_code == 406  # a small one is still named the mistake it is
    huge = b'{"event-data": [' + b"0," * (4 * 1024 * 1024) + b"0]}"
    tracemalloc.start()
    try:
        response = chunked_post(client, path, huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 400  # as an oversized JSON with a Content-Length is answered
    assert "expected a form post" in response.get_json()["reason"]
    assert peak < 2 * 1024 * 1024, f"peak {peak // 1024} KiB"


def test_a_store_notification_without_an_api_key_names_the_variable(client):
    form = mailgun_form(
        attachments=json.dumps(
            [
                {
                    "url": "https://storage.mailgun.net/v3/domains/x/messages/k/attachments/0",
                    "content-type": "image/jpeg",
                    "name": "a.jpg",
                    "size": 10,
                }
            ]
        )
    )
    response = client.post("/webhooks/mailgun", data=form)
    assert response.status_code == 503  # Mailgun keeps the message 3 days: set the key and its retry succeeds
    assert "MAILGUN_API_KEY is not set" in response.get_json()["reason"]


def test_fewer_attachments_than_mailgun_counted_are_reported_missing(deliver, images, caplog):
    response = deliver(("a.jpg", images[".jpg"]), **{"attachment-count": "3"})
    body = response.get_json()
    assert response.status_code == 200 and len(body["stored"]) == 1
    assert body["missing"] == 2
    assert body["incomplete"] == "2 of its 3 attachments did not arrive"
    assert "message incomplete" in caplog.text and "2 of its 3 attachments did not arrive" in caplog.text


def test_a_count_that_matches_reports_nothing_missing(deliver, images):
    body = deliver(("a.jpg", images[".jpg"])).get_json()
    assert "missing" not in body and "incomplete" not in body


UNSIGNED = {"timestamp": None, "token": None, "signature": None}
REQUIRED = "timestamp, token and signature fields are required (a Mailgun-signed request)"


@pytest.fixture
def parsed(monkeypatch):
    """The names of the message's parsing steps that ran: file names, JSON fields, MIME."""
    ran = []
    for step in ("clean_filename", "message_headers", "content_ids", "read_mime"):
        original = getattr(message_module, step)
        monkeypatch.setattr(message_module, step, lambda *args, s=step, f=original: ran.append(s) or f(*args))
    return ran


@pytest.mark.parametrize("missing", [UNSIGNED, {"signature": None}])
@pytest.mark.parametrize("attached", [True, False], ids=["multipart", "urlencoded"])
def test_an_unsigned_forward_is_403_before_its_file_names_or_fields_are_read(
    client, settings, images, parsed, missing, attached
):
    crafted = "=?x?q? " * 9_000  # 63 KB of encoded-word openings (a part may have 64 KiB of headers)
    attachments = [(crafted, images[".jpg"], "image/jpeg")] if attached else []
    form = build_delivery(attachments, key=SIGNING_KEY, **missing).form()

    started = time.monotonic()
    response = client.post("/webhooks/mailgun", data=form)

    assert time.monotonic() - started < 1
    assert response.status_code == 403 and response.get_json()["reason"] == REQUIRED
    assert parsed == [] and stored_files(settings) == []


@pytest.mark.parametrize("encode", [multipart, urlencoded])
def test_an_unsigned_raw_mime_post_is_403_before_its_message_is_read(client, parsed, encode):
    words = "=?x?q? " * 4500  # seven 32 KB headers of encoded-word openings: 5.6 s before the 403
    raw = "From: alice@example.com\r\n" + "".join(f"X-H{n}: {words}\r\n" for n in range(7)) + "\r\nhi\r\n"
    body, content_type = encode({**MIME_FIELDS, "body-mime": raw.encode()})

    started = time.monotonic()
    response = client.post("/webhooks/mailgun/mime", data=body, content_type=content_type)

    assert time.monotonic() - started < 1
    assert response.status_code == 403 and response.get_json()["reason"] == REQUIRED
    assert parsed == []


def test_a_raw_mime_post_repeating_one_field_name_is_held_to_the_field_cap(client):
    body = b"body-mime=x&" + b"a=&" * 2_000_000  # 6 MB; each repeat replaced the last, 3.5 s before the 403

    started = time.monotonic()
    response = client.post("/webhooks/mailgun/mime", data=body, content_type="application/x-www-form-urlencoded")

    assert time.monotonic() - started < 1
    assert response.status_code == 400 and response.get_json()["reason"] == "more than 100 form fields"


@pytest.mark.parametrize(
    "name, value, limit",
    [
        ("message-headers", "[" + '["",""],' * 200_000 + '["From","a@b.c"]]', 1024),
        ("content-id-map", json.dumps({f"<{n}@x>": "attachment-1" for n in range(20_000)}), 256),
        ("References", "<a@b> " * 50_000, 256),
        ("from", "Alice " * 50_000 + "<alice@example.com>", 256),
    ],
    ids=["message-headers", "content-id-map", "References", "from"],
)
@pytest.mark.parametrize("attached", [True, False], ids=["multipart", "urlencoded"])
def test_a_header_field_larger_than_any_mails_headers_is_413_naming_it(
    client, settings, images, name, value, limit, attached
):
    form = mailgun_form(*([("a.jpg", images[".jpg"])] if attached else []), **{name: value})

    response = client.post("/webhooks/mailgun", data=form)

    assert response.status_code == 413
    assert response.get_json()["reason"] == (
        f"form field {name!r} is over {limit} KiB, more than any mail's headers; "
        "only the message's text (body-*, stripped-*) may be larger"
    )
    assert stored_files(settings) == []


def test_a_huge_message_headers_field_is_refused_before_it_fills_memory(client, images):
    body, content_type = build_delivery(
        [("a.jpg", images[".jpg"], "image/jpeg")],
        key=SIGNING_KEY,
        **{"message-headers": "[" + '["",""],' * 500_000 + "]"},  # 4 MB: 94 MB of pairs in memory before
    ).encode()

    tracemalloc.start()
    try:
        response = client.post("/webhooks/mailgun", data=body, content_type=content_type)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert response.status_code == 413 and "'message-headers'" in response.get_json()["reason"]
    assert peak < 24 * 1024 * 1024


def test_a_long_threads_headers_and_a_large_calendar_part_are_read_as_mailgun_posts_them(client, images):
    thread = " ".join(f"<thread.{n}.1700000000@mail.example.com>" for n in range(6000))  # 246 KB
    form = mailgun_form(
        ("a.jpg", images[".jpg"]),
        subject="Ferien im Süden 🌞 " * 1000,  # twice as long in message-headers' JSON
        headers=[("In-Reply-To", "<thread.5999.1700000000@mail.example.com>"), ("References", thread)],
        **{"body-calendar": "BEGIN:VCALENDAR\r\n" + "DESCRIPTION:Wir fahren los\r\n" * 40_000 + "END:VCALENDAR\r\n"},
    )
    assert len(form["message-headers"]) > 256 * 1024 and len(form["body-calendar"]) > 1024 * 1024

    response = client.post("/webhooks/mailgun", data=form)

    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["stored"]) == 1


def test_a_mac_resource_fork_mailgun_hands_over_beside_its_photo_is_not_listed(deliver, client, images):
    # Mailgun gives both parts of an AppleDouble photo as attachments: the fork was rejected beside the stored photo.
    body = deliver(("IMG_0042.JPG", appledouble_header("IMG_0042.JPG")), ("IMG_0042.JPG", images[".jpg"])).get_json()

    assert [item["filename"] for item in body["stored"]] == ["IMG_0042.JPG"] and body["rejected"] == []
    assert client.get(body["stored"][0]["url"]).data == images[".jpg"]
