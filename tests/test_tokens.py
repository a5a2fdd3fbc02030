"""One token, one message: races, replays and key rotation, against the service as the Procfile runs it."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from inbox import create_app, receipts
from inbox.delivery import build_delivery, signed_fields
from tests.harness import SIGNING_KEY, mailgun_form, pasted_photo
from tests.processes import free_port, running
from tests.test_procfile import GUNICORN, PROCFILE_COMMAND, ROOT, procfile_env
from tests.test_providers import s3_settings

TRIES = 50


@contextlib.contextmanager
def instances(count, tmp_path, **settings):
    """`count` services as the Procfile starts them (2 workers × 8 threads each), sharing one store."""
    settings = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "INBOX_PUBLISHERS": "*", **settings}
    with contextlib.ExitStack() as stack:
        urls = []
        for number in range(count):
            port = free_port()
            logs = tmp_path / f"logs-{number}"
            logs.mkdir()
            stack.enter_context(
                running(
                    [GUNICORN, *PROCFILE_COMMAND[1:]],
                    port=port,
                    env=procfile_env(port, **settings),
                    cwd=ROOT,
                    logs=logs,
                )
            )
            urls.append(f"http://127.0.0.1:{port}/webhooks/mailgun")
        yield urls


def post(url, photo: bytes, message_id: str, signature: dict) -> requests.Response:
    delivery = build_delivery([("p.jpg", photo, "image/jpeg")], key=SIGNING_KEY, message_id=message_id, **signature)
    return requests.post(url, data=delivery.fields, files=delivery.files(), timeout=30)


def race(urls: list[str]) -> list[tuple[int, int]]:
    """TRIES times: the same signed token posted at once with two different photos, to urls[0] and urls[-1]."""

    def one(side, number, photo, signature, gate):
        gate.wait()
        return post(urls[-side], photo, f"<race-{number}-{side}@x>", signature).status_code

    outcomes = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for number in range(TRIES):
            signature, gate = signed_fields(SIGNING_KEY), threading.Barrier(2)
            racers = [pool.submit(one, side, number, pasted_photo((32, 32)), signature, gate) for side in (0, 1)]
            outcomes.append(tuple(racer.result() for racer in racers))
    return outcomes


@pytest.mark.parametrize("count", [1, 2], ids=["one instance", "two instances"])
def test_racing_posts_of_one_token_store_one_message_local(tmp_path, count):
    storage = tmp_path / "storage"
    with instances(count, tmp_path, STORAGE_PATH=str(storage)) as urls:
        outcomes = race(urls)
    assert [pair for pair in outcomes if sorted(pair)[0] != 200 or sorted(pair)[1] not in (403, 503)] == []
    assert len(os.listdir(storage / "images")) == TRIES  # never both photos of one token


def test_racing_posts_of_one_token_store_one_message_on_s3_across_instances(tmp_path, request):
    port = request.getfixturevalue("moto_s3").port
    bucket = f"race{os.getpid()}"
    with instances(2, tmp_path, **s3_settings(port), STORAGE_CONTAINER=bucket) as urls:
        outcomes = race(urls)
        listing = requests.get(f"http://127.0.0.1:{port}/{bucket}?list-type=2&max-keys=1000", timeout=10).text
    assert [pair for pair in outcomes if sorted(pair)[0] != 200 or sorted(pair)[1] not in (403, 503)] == []
    assert listing.count("<Key>") == TRIES


def test_a_replay_cannot_overtake_a_slow_delivery_still_arriving(tmp_path, images):
    """The legitimate post sends its signature fields first, then its photo slowly; a replay of them races it."""
    storage = tmp_path / "storage"
    with instances(1, tmp_path, STORAGE_PATH=str(storage)) as (url,):
        port = int(url.split(":")[2].split("/")[0])
        signature = signed_fields(SIGNING_KEY)
        mine = pasted_photo((640, 480))  # ~200 KB: read 64 KiB at a time, the signature fields first
        body, content_type = build_delivery(
            [("mine.jpg", mine, "image/jpeg")], key=SIGNING_KEY, message_id="<legit@x>", **signature
        ).encode()
        # The builder puts the signature fields before the file parts, as a cautious client would.
        assert body.index(b'name="signature"') < body.index(b'name="attachment-1"')
        head = (
            f"POST /webhooks/mailgun HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        split = body.index(b'name="attachment-1"') + 100_000
        with socket.create_connection(("127.0.0.1", port), timeout=30) as legit:
            legit.sendall(head + body[:split])
            time.sleep(1)  # the legitimate post is still arriving
            replay = post(url, images[".png"], "<evil@x>", signature)
            legit.sendall(body[split:])
            answer = b"".join(iter(lambda: legit.recv(65536), b""))
    assert replay.status_code == 503 and "in progress" in replay.json()["reason"]
    assert answer.startswith(b"HTTP/1.1 200")
    (stored,) = os.listdir(storage / "images")
    assert (storage / "images" / stored).read_bytes() == mine


class _Trickle(io.BytesIO):
    """A request body that stops at `pause` and sends a byte at a time until `go` is set, like a slow client."""

    def __init__(self, body: bytes, pause: int, go: threading.Event):
        super().__init__(body)
        self.pause, self.go = pause, go

    def read(self, size: int | None = -1) -> bytes:
        at = self.tell()
        if at >= self.pause and not self.go.is_set():
            time.sleep(0.02)
            size = 1
        elif at < self.pause:
            size = self.pause - at if size is None or size < 0 else min(size, self.pause - at)
        return super().read(size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_a_body_arriving_for_longer_than_a_claim_may_live_still_holds_its_token(app, settings, images, monkeypatch):
    # A claim untouched for ABANDONED_AFTER is a dead worker's and is taken over. A delivery whose
    # body is still arriving (25 MiB at the slowest rate let through takes 400 s) is not dead.
    monkeypatch.setattr(receipts, "ABANDONED_AFTER", 2)  # a claim's time is in whole seconds: room for that
    monkeypatch.setattr(receipts, "KEEP_ALIVE_EVERY", 0.2)
    signature = signed_fields(SIGNING_KEY)
    mine = pasted_photo((640, 480))
    body, content_type = build_delivery(
        [("mine.jpg", mine, "image/jpeg")], key=SIGNING_KEY, message_id="<legit@x>", **signature
    ).encode()
    go = threading.Event()
    trickle = _Trickle(body, body.index(b'name="attachment-1"') + 100_000, go)
    storage = Path(settings["STORAGE_PATH"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        legit = pool.submit(
            app.test_client().post,
            "/webhooks/mailgun",
            input_stream=trickle,
            content_type=content_type,
            content_length=len(body),
        )
        while trickle.tell() < trickle.pause and not legit.done():
            time.sleep(0.02)
        assert list((storage / "images-receipts").glob("token-*.json"))  # claimed: the signature fields came first
        time.sleep(4)  # twice ABANDONED_AFTER, the body still arriving
        replay = app.test_client().post(
            "/webhooks/mailgun", data=mailgun_form(("evil.png", images[".png"]), **signature)
        )
        go.set()
        answer = legit.result(timeout=30)
    assert replay.status_code == 503 and "in progress" in replay.get_json()["reason"]
    assert answer.status_code == 200
    (stored,) = os.listdir(storage / "images")
    assert (storage / "images" / stored).read_bytes() == mine


def test_rotating_the_signing_key_keeps_every_url(tmp_path, images):
    storage = {"STORAGE_PATH": str(tmp_path / "storage"), "INBOX_PUBLISHERS": "*"}
    before = create_app({**storage, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}).test_client()
    first = before.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]))).get_json()

    after = create_app({**storage, "MAILGUN_WEBHOOK_SIGNING_KEY": "the-rotated-key"}).test_client()
    redelivery = mailgun_form(("a.jpg", images[".jpg"]), **signed_fields("the-rotated-key"))
    again = after.post("/webhooks/mailgun", data=redelivery).get_json()

    assert again["stored"][0]["url"] == first["stored"][0]["url"]
    assert len(os.listdir(tmp_path / "storage" / "images")) == 1


def test_a_configured_name_key_is_used_and_must_be_long(tmp_path, images):
    settings = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "INBOX_PUBLISHERS": "*"}
    one = create_app({**settings, "STORAGE_PATH": str(tmp_path / "a"), "INBOX_NAME_KEY": "k" * 40}).test_client()
    two = create_app({**settings, "STORAGE_PATH": str(tmp_path / "b"), "INBOX_NAME_KEY": "k" * 40}).test_client()
    form = {"data": mailgun_form(("a.jpg", images[".jpg"]))}
    assert (
        one.post("/webhooks/mailgun", **form).get_json()["stored"][0]["url"]
        == two.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]))).get_json()["stored"][0]["url"]
    )
    assert not os.path.exists(tmp_path / "a" / "images-receipts" / "name-key")
    with pytest.raises(Exception, match="INBOX_NAME_KEY is shorter than 32"):
        create_app({**settings, "STORAGE_PATH": str(tmp_path / "c"), "INBOX_NAME_KEY": "short"})


def test_a_receipt_caught_half_written_holds_its_token_until_it_grows_old(client, settings, images):
    # The local store turns a claim into its receipt by rewriting the file in place, so a racing
    # post can read it half-written. That must read as "in progress", not as a dead claim to take
    # over (which let both racers store), until the file is old enough to be a crash's leftover.
    signature = signed_fields(SIGNING_KEY)
    client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), **signature))
    (receipt,) = (Path(settings["STORAGE_PATH"]) / "images-receipts").glob("token-*.json")
    receipt.write_bytes(receipt.read_bytes()[:20])  # a torn read sees this much

    replay = client.post("/webhooks/mailgun", data=mailgun_form(("b.png", images[".png"]), **signature))
    assert replay.status_code == 503 and "in progress" in replay.get_json()["reason"]

    stale = time.time() - receipts.ABANDONED_AFTER - 1
    os.utime(receipt, (stale, stale))  # what a crash mid-write leaves, ten minutes on
    retry = client.post("/webhooks/mailgun", data=mailgun_form(("a.jpg", images[".jpg"]), **signature))
    assert retry.status_code == 200 and len(retry.get_json()["stored"]) == 1
