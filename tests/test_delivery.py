"""inbox/delivery.py: the one Mailgun-shaped delivery the CLI, the tests and the benchmark send."""

from __future__ import annotations

import json

from werkzeug.test import EnvironBuilder

from inbox.delivery import build_delivery
from inbox.mailgun import verify_signature
from tests.harness import SIGNING_KEY


def parsed(delivery):
    """The form and files werkzeug reads back from the delivery's raw multipart body."""
    body, content_type = delivery.encode()
    request = EnvironBuilder(method="POST", data=body, content_type=content_type).get_request()
    return request.form, request.files


def test_the_raw_body_carries_every_field_header_and_attachment_as_mailgun_posts_them(images):
    delivery = build_delivery(
        [("Straße.jpg", images[".jpg"], "image/jpeg"), ("b.png", images[".png"], "image/png")],
        key=SIGNING_KEY,
        sender="bob@example.com",
        message_id="<x@y>",
        headers=[("Received", "from a"), ("Received", "from b"), ("X-Mailgun-Spf", "Pass")],
    )
    form, files = parsed(delivery)

    assert form["sender"] == form["from"] == form["From"] == "bob@example.com"
    assert form["Message-Id"] == "<x@y>" and form["attachment-count"] == "2"
    assert form.getlist("Received") == ["from a", "from b"] and form["X-Mailgun-Spf"] == "Pass"
    assert json.loads(form["message-headers"])[-3:] == [
        ["Received", "from a"],
        ["Received", "from b"],
        ["X-Mailgun-Spf", "Pass"],
    ]
    assert [(files[name].filename, files[name].mimetype) for name in ("attachment-1", "attachment-2")] == [
        ("Straße.jpg", "image/jpeg"),
        ("b.png", "image/png"),
    ]
    assert files["attachment-1"].read() == images[".jpg"]
    verify_signature(SIGNING_KEY, form["timestamp"], form["token"], form["signature"], max_age=60)


def test_overrides_replace_or_remove_fields_and_every_delivery_has_a_fresh_token():
    first = build_delivery(key=SIGNING_KEY, **{"Message-Id": None, "attachment-count": "3", "signature": "0"})
    second = build_delivery(key=SIGNING_KEY)

    assert "Message-Id" not in first.fields and first.fields["attachment-count"] == "3"
    assert first.fields["signature"] == "0"
    assert first.fields["token"] != second.fields["token"]


def test_a_raw_body_is_stored_by_the_webhook(client, images):
    body, content_type = build_delivery([("a.webp", images[".webp"], "image/webp")], key=SIGNING_KEY).encode()
    response = client.post("/webhooks/mailgun", data=body, content_type=content_type)

    assert response.status_code == 200, response.get_json()
    assert client.get(response.get_json()["stored"][0]["url"]).data == images[".webp"]
