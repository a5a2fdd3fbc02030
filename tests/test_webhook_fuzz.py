"""Damaged deliveries on both routes: every one ends in a JSON answer Mailgun can act on, never a 500.

A signed forward() post (a photo with GPS and a PNG) and a signed raw-MIME post (an Apple Mail
message with inline photos and a HEIC) are damaged in a few bytes, the same way on every run
(seeded): line breaks, dashes, quotes and semicolons where the parsers look, cuts and insertions.
Each is posted to the app as Mailgun posts it. The answer is one of the statuses the README lists,
with a reason unless it stored something; the spool is empty after each, and the store holds
nothing but published images and the private receipts.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

import pytest

from inbox.delivery import build_delivery, signed_fields
from tests.harness import SIGNING_KEY, make_image, photo_with_gps
from tests.test_mime import apple_mail_message
from tests.test_mimeform import FIELDS, multipart, urlencoded

VARIANTS_PER_ROUTE = int(os.environ.get("INBOX_FUZZ_VARIANTS", "300"))
ANSWERS = {200, 400, 403, 406, 413, 415}  # 503 needs storage or Mailgun to fail; none does here
PARSER_BYTES = b'\r\n-";=:'


def damaged(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 6)):
        at, choice = rng.randrange(len(data)), rng.random()
        if choice < 0.6:
            data[at] = rng.choice([*PARSER_BYTES, rng.randrange(256)])
        elif choice < 0.8:
            del data[at : at + rng.randint(1, 48)]
        else:
            data[at:at] = rng.randbytes(rng.randint(1, 12))
    return bytes(data)


def forward_post(photo: bytes, png: bytes) -> tuple[bytes, str]:
    delivery = build_delivery(
        [("photo.jpg", photo, "image/jpeg"), ("diagram.png", png, "image/png")],
        key=SIGNING_KEY,
        message_id=f"<{uuid.uuid4()}@fuzz.example>",
    )
    return delivery.encode()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("photo") / "gps.jpg"
    photo_with_gps("jpg", path)
    return path.read_bytes()


def assert_ends_well(response, store) -> None:
    assert response.status_code in ANSWERS, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer is not None, "every answer is JSON"
    if response.status_code != 200:
        assert answer.get("reason"), answer
    assert os.listdir(store / ".spool") == []


@pytest.mark.parametrize("route", ["forward", "mime"])
def test_damaged_deliveries_get_an_answer_mailgun_can_act_on(client, settings, photo, route):
    rng = random.Random(route)
    png = make_image(".png")
    raw = apple_mail_message(make_image(".jpg", (80, 60)), photo, make_image(".heic")).as_bytes()
    store = Path(settings["STORAGE_PATH"])
    statuses: dict[int, int] = {}
    slowest = 0.0
    for number in range(VARIANTS_PER_ROUTE):
        if route == "forward":
            body, content_type = forward_post(photo, png)
            body = damaged(body, rng)
        else:
            fields = {**FIELDS, "body-mime": damaged(raw, rng), **signed_fields(SIGNING_KEY)}
            body, content_type = (multipart if number % 2 else urlencoded)(fields)
        started = time.monotonic()
        url = "/webhooks/mailgun" if route == "forward" else "/webhooks/mailgun/mime"
        response = client.post(url, data=body, content_type=content_type)
        slowest = max(slowest, time.monotonic() - started)
        assert_ends_well(response, store)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    assert slowest < 2, f"one delivery took {slowest:.2f} s"
    # The variants reach the steps after the parsers: some photos are still published.
    assert statuses.get(200, 0) > VARIANTS_PER_ROUTE // 10 and len(statuses) > 2, statuses
    published = {path.suffix for path in (store / "images").iterdir()}
    assert published <= {".jpg", ".png", ".heic"}, published
