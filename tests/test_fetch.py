"""store(notify=…) notifications: attachments fetched from Mailgun's storage (mocked: it cannot run here)."""

import base64
import io
import json
import time
from pathlib import Path

import pytest
import responses

from inbox import create_app, fetch
from inbox.delivery import build_delivery
from tests.harness import SIGNING_KEY, large_photo, make_image

STORAGE = "https://storage.eu.mailgun.net/v3/domains/example.com/messages/AgEFxyz/attachments"
API_KEY = "private-api-key"


@pytest.fixture
def app(settings):
    return create_app({**settings, "MAILGUN_API_KEY": API_KEY})


def notification(*items, **fields):
    """The urlencoded form Mailgun POSTs to a store() route's notify URL: forward()'s fields, but no files."""
    return build_delivery(
        key=SIGNING_KEY,
        message_id="<stored@example.com>",
        **{
            "attachment-count": None,
            "domain": "example.com",
            "attachments": json.dumps(list(items)),
            "message-url": "https://storage.eu.mailgun.net/v3/domains/example.com/messages/AgEFxyz",
            **fields,
        },
    ).fields


def item(number, name, size, content_type="image/jpeg"):
    return {"url": f"{STORAGE}/{number}", "name": name, "size": size, "content-type": content_type}


@responses.activate
def test_fetches_each_stored_attachment_with_the_api_key_and_judges_it(client):
    photo, pdf = make_image(".jpg"), b"%PDF-1.4\n%%EOF"
    responses.get(f"{STORAGE}/0", body=photo)
    responses.get(f"{STORAGE}/1", body=pdf)

    answer = client.post(
        "/webhooks/mailgun", data=notification(item(0, "big photo.jpg", len(photo)), item(1, "scan.pdf", len(pdf)))
    )

    assert answer.status_code == 200
    body = answer.get_json()
    assert [(entry["filename"], entry["size"]) for entry in body["stored"]] == [("big photo.jpg", len(photo))]
    assert client.get(body["stored"][0]["url"]).data == photo
    assert body["rejected"][0]["content_type"] == "application/pdf"
    expected = "Basic " + base64.b64encode(f"api:{API_KEY}".encode()).decode()
    assert all(call.request.headers["Authorization"] == expected for call in responses.calls)


@responses.activate
def test_a_storage_hiccup_is_retried_then_a_failure_is_503_for_mailgun_to_retry(client):
    photo = make_image(".png")
    responses.get(f"{STORAGE}/0", status=502)
    responses.get(f"{STORAGE}/0", body=photo)
    assert client.post("/webhooks/mailgun", data=notification(item(0, "a.png", len(photo)))).status_code == 200

    responses.get(f"{STORAGE}/9", status=401)
    refused = client.post("/webhooks/mailgun", data=notification(item(9, "b.png", 10)))
    assert refused.status_code == 503
    assert "Mailgun will retry" in refused.get_json()["reason"]


@pytest.mark.parametrize("status", [404, 410])
@responses.activate
def test_an_attachment_mailgun_no_longer_keeps_is_rejected_for_good_and_the_others_published(client, status):
    photos = [make_image(".png", color=(0, number, 0)) for number in range(3)]
    for number in range(3):
        responses.get(f"{STORAGE}/{number}", body=photos[number])
    responses.get(f"{STORAGE}/3", status=status, json={"message": "Message not found"})
    items = [item(number, f"{number}.png", len(photo), "image/png") for number, photo in enumerate(photos)]
    items.append(item(3, "3.png", 100, "image/png"))

    answer = client.post("/webhooks/mailgun", data=notification(*items))

    assert answer.status_code == 200  # not a 503 Mailgun would retry for 8 hours in vain
    body = answer.get_json()
    assert [client.get(entry["url"]).data for entry in body["stored"]] == photos
    assert body["rejected"] == [
        {
            "attachment": "attachment-4",
            "filename": "3.png",
            "content_type": "image/png",
            "reason": f"Mailgun no longer keeps this attachment (HTTP {status}; a stored mail is kept 3 days): "
            "send it again",
        }
    ]
    gone = client.post("/webhooks/mailgun", data=notification(item(3, "3.png", 100, "image/png")))
    assert gone.status_code == 415
    assert "no longer keeps this attachment" in gone.get_json()["rejected"][0]["reason"]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/steal",
        "http://storage.mailgun.net/insecure",
        "https://storage.mailgun.net.evil.example/x",
        "https://127.0.0.1/admin",
        # requests reads a backslash as the end of the host, urllib as part of the user or the host:
        "https://evil.example\\@storage.mailgun.net/v3/domains/example.com/messages/AAA/attachments/0",
        "https://evil.example\\.mailgun.net/v3/x",
        "https://api:key@storage.mailgun.net/v3/x",
        "https://storage.mailgun.net:8443/v3/x",
        "https://storage.mailgun.net/v3/x y",
        "https://storage.mailgun.net\t/v3/x",
        "https://storage.mailgun.net/v3/x\r\nHost: evil.example",
        "https://evil.example\u3002mailgun.net/v3/x",
    ],
)
@responses.activate
def test_only_mailgun_hosts_are_contacted(client, url):
    # Listed after a good one: the list is judged whole before anything is fetched.
    form = notification(item(0, "a.jpg", 10), {"url": url, "name": "b.jpg", "size": 10})
    answer = client.post("/webhooks/mailgun", data=form)
    assert answer.status_code == 400
    assert "not on a Mailgun host" in answer.get_json()["reason"]
    assert len(responses.calls) == 0


@responses.activate
def test_only_the_url_rebuilt_from_its_checked_parts_is_fetched(client):
    photo = make_image(".jpg")
    responses.get(f"{STORAGE}/0", body=photo)
    url = STORAGE.replace("mailgun.net/", "MAILGUN.net:443/") + "/0#part"
    answer = client.post("/webhooks/mailgun", data=notification({"url": url, "name": "a.jpg", "size": len(photo)}))
    assert answer.status_code == 200
    assert [call.request.url for call in responses.calls] == [f"{STORAGE}/0"]


@responses.activate
def test_an_unsigned_notification_fetches_nothing(client):
    form = notification(item(0, "a.jpg", 10), signature="0" * 64)
    assert client.post("/webhooks/mailgun", data=form).status_code == 403
    assert len(responses.calls) == 0


@responses.activate
def test_an_oversized_stored_attachment_is_not_downloaded_whole(settings):
    app = create_app({**settings, "MAILGUN_API_KEY": API_KEY, "INBOX_MAX_ATTACHMENT_BYTES": "100000"})
    huge = make_image(".jpg") + bytes(5_000_000)
    responses.get(f"{STORAGE}/0", body=huge)

    answer = app.test_client().post("/webhooks/mailgun", data=notification(item(0, "huge.jpg", len(huge))))

    assert answer.status_code == 413
    assert f"{len(huge)} bytes is over the limit of 100000 bytes" in answer.get_json()["rejected"][0]["reason"]


def test_without_an_api_key_the_notification_waits_for_the_operator(settings):
    client = create_app(settings).test_client()
    answer = client.post("/webhooks/mailgun", data=notification(item(0, "a.jpg", 10)))
    assert answer.status_code == 503


@pytest.mark.parametrize("attachments", ["not json", '{"url": "x"}', '[{"name": "no url"}]'])
def test_a_malformed_attachment_list_is_400(client, attachments):
    answer = client.post("/webhooks/mailgun", data={**notification(), "attachments": attachments})
    assert answer.status_code == 400


def test_a_notification_without_attachments_is_415(client):
    answer = client.post("/webhooks/mailgun", data=notification())
    assert answer.status_code == 415
    assert answer.get_json()["reason"] == "the message has no attachments"


@responses.activate
def test_a_mail_of_thousands_of_parts_costs_a_hundred_fetches_and_says_which_were_left(client):
    photos = [make_image(".gif", color=(number, 0, 0)) for number in range(100)]
    for number, photo in enumerate(photos):
        responses.get(f"{STORAGE}/{number}", body=photo)  # any other URL is a connection error: a 503
    items = [item(number, f"photo {number}.gif", 100, "image/gif") for number in range(3000)]

    answer = client.post("/webhooks/mailgun", data=notification(*items))

    assert answer.status_code == 200
    body = answer.get_json()
    assert len(responses.calls) == 100
    assert [entry["filename"] for entry in body["stored"]] == [f"photo {number}.gif" for number in range(100)]
    assert client.get(body["stored"][99]["url"]).data == photos[99]
    assert len(body["rejected"]) == 2900
    assert body["rejected"][0] == {
        "attachment": "attachment-101",
        "filename": "photo 100.gif",
        "content_type": "image/gif",
        "reason": "more than 100 attachments in one mail: send those after the first 100 in another",
    }
    assert body["rejected"][-1]["attachment"] == "attachment-3000"


@responses.activate
def test_a_slow_storage_is_a_503_before_the_claim_could_pass_for_abandoned_and_the_retry_publishes(
    client, settings, monkeypatch
):
    photos = [make_image(".png", color=(0, number, 0)) for number in range(3)]

    def slowly(number):
        def answer(request):
            time.sleep(0.2)
            return 200, {}, photos[number]

        return answer

    for number in range(3):
        responses.add_callback(responses.GET, f"{STORAGE}/{number}", callback=slowly(number))
    form = notification(*(item(number, f"{number}.png", len(photos[number])) for number in range(3)))
    monkeypatch.setattr(fetch, "FETCH_DEADLINE", 0.3)

    slow = client.post("/webhooks/mailgun", data=form)

    assert slow.status_code == 503
    assert "fetching 2 of 3 attachments took over 0.3 s" in slow.get_json()["reason"]
    assert len(responses.calls) == 2
    images = [path for path in (Path(settings["STORAGE_PATH"])).rglob("*.png")]
    assert images == []  # nothing half-published
    monkeypatch.setattr(fetch, "FETCH_DEADLINE", 60)
    retried = client.post("/webhooks/mailgun", data=form)  # Mailgun's retry: the same token
    assert retried.status_code == 200
    assert [client.get(entry["url"]).data for entry in retried.get_json()["stored"]] == photos


@responses.activate
def test_a_body_cut_short_is_a_503_and_the_retry_publishes_all_once(client, settings):
    photos = [large_photo(60_000 + number) for number in range(5)]

    def answer(number, cut):  # no Content-Length: the body ends where the connection does
        return lambda request: (200, {}, io.BufferedReader(io.BytesIO(photos[number][:cut])))

    for number in range(5):
        responses.add_callback(responses.GET, f"{STORAGE}/{number}", answer(number, 30_000 if number == 2 else None))
    form = notification(*(item(number, f"{number}.jpg", len(photo)) for number, photo in enumerate(photos)))

    cut_short = client.post("/webhooks/mailgun", data=form)

    assert cut_short.status_code == 503
    assert "closed the connection after 30000 of the 60002 bytes" in cut_short.get_json()["reason"]
    assert list(Path(settings["STORAGE_PATH"]).rglob("*.jpg")) == []  # nothing half-published
    responses.replace(responses.CallbackResponse(responses.GET, f"{STORAGE}/2", callback=answer(2, None)))
    retried = client.post("/webhooks/mailgun", data=form)  # Mailgun's retry: the same token
    assert retried.status_code == 200
    assert [client.get(entry["url"]).data for entry in retried.get_json()["stored"]] == photos


class _Dribble(io.RawIOBase):
    """A storage answer that sends one byte every 20 ms, as a server can without ever tripping a read timeout."""

    def __init__(self, size: int):
        self.left, self.sent = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.left:
            return 0
        time.sleep(0.02)
        buffer[0:1], self.left, self.sent = b"\xff", self.left - 1, self.sent + 1
        return 1


@responses.activate
def test_a_server_sending_a_byte_at_a_time_cannot_hold_the_fetch_past_its_deadline(client, monkeypatch):
    dribble = _Dribble(500)  # 10 s in all
    responses.get(f"{STORAGE}/0", body=io.BufferedReader(dribble), headers={"Content-Length": "500"})
    monkeypatch.setattr(fetch, "FETCH_DEADLINE", 0.3)

    answer = client.post("/webhooks/mailgun", data=notification(item(0, "a.jpg", 500)))

    assert answer.status_code == 503
    assert "fetching 1 of 1 attachments took over 0.3 s" in answer.get_json()["reason"]
    assert dribble.sent < 250  # given up near the deadline, not when the last byte came
