"""The service run the way the Procfile runs it: real gunicorn on 127.0.0.1, real HTTP deliveries."""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bench.workers import children, proc_kib, reset_peak
from inbox.delivery import build_delivery
from inbox.mailgun import sign
from tests.harness import SIGNING_KEY, large_photo
from tests.processes import free_port, running, scrubbed_environ

ROOT = Path(__file__).resolve().parent.parent
PROCFILE_COMMAND = shlex.split(ROOT.joinpath("Procfile").read_text().split("web:", 1)[1])
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def procfile_env(port, **settings):
    # Procfile platforms set PORT (gunicorn then binds 0.0.0.0); the test keeps to 127.0.0.1.
    return scrubbed_environ(GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}", **settings)


@pytest.fixture(scope="module")
def procfile_server(tmp_path_factory):
    """The running gunicorn (tests.processes.Server), its URL and its storage folder."""
    port = free_port()
    storage = tmp_path_factory.mktemp("gunicorn-storage")
    env = procfile_env(port, MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY, INBOX_PUBLISHERS="*", STORAGE_PATH=str(storage))
    assert PROCFILE_COMMAND == ["gunicorn", "inbox:create_app()"]
    with running(
        [GUNICORN, *PROCFILE_COMMAND[1:]], port=port, env=env, cwd=ROOT, logs=tmp_path_factory.mktemp("gunicorn-logs")
    ) as server:
        yield server, f"http://127.0.0.1:{port}", storage


@pytest.fixture(scope="module")
def service(procfile_server):
    return procfile_server[1:]


def post(url, attachments, message_id="<p1@example.com>", **overrides):
    delivery = build_delivery(
        attachments, key=SIGNING_KEY, sender="a@example.com", subject="hi", message_id=message_id, **overrides
    )
    return requests.post(url + "/webhooks/mailgun", data=delivery.fields, files=delivery.files(), timeout=60)


def test_delivers_and_serves_under_gunicorn(service, images):
    url, _ = service
    response = post(
        url,
        [
            ("photo.jpg", images[".jpg"], "image/jpeg"),
            ("photo.heic", images[".heic"], "image/heic"),
            ("notes.pdf", b"%PDF-1.4\n%%EOF", "application/pdf"),
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert [item["content_type"] for item in body["stored"]] == ["image/jpeg", "image/heic"]
    assert body["rejected"][0]["content_type"] == "application/pdf"
    for item, extension in zip(body["stored"], (".jpg", ".heic"), strict=True):
        assert item["url"].startswith(url + "/files/images/")
        fetched = requests.get(item["url"], timeout=10)
        assert fetched.content == images[extension]
        assert fetched.headers["X-Content-Type-Options"] == "nosniff"


def test_a_25_mib_photo_is_stored_whole(service):
    url, storage = service
    photo = large_photo(25 * 1024 * 1024)

    response = post(url, [("big.jpg", photo, "image/jpeg")], message_id="<big@example.com>")

    assert response.status_code == 200
    stored = storage / "images" / response.json()["stored"][0]["url"].rsplit("/", 1)[1]
    assert stored.read_bytes() == photo


def test_large_deliveries_leave_a_workers_memory_steady(procfile_server):
    """Workers keep their freed body buffers (serving.keep_freed_buffers) instead of faulting them in anew."""
    server, url, _ = procfile_server
    workers = children(server.processes[0].pid)
    photo = large_photo(25 * 1024 * 1024)
    growth = []
    for number in range(4):  # the first ones make the buffers
        for worker in workers:
            assert reset_peak(worker)
        before = {worker: proc_kib(worker, "VmRSS") for worker in workers}
        response = post(url, [("big.jpg", photo, "image/jpeg")], message_id=f"<steady-{number}@example.com>")
        assert response.status_code == 200
        growth.append(max(proc_kib(worker, "VmHWM") - before[worker] for worker in workers) / 1024)

    # Without it, each 25 MiB delivery faults its ~7 MiB of buffers in again.
    assert min(growth[1:]) < 2, f"peak memory above the worker's resting size per delivery, MiB: {growth}"


def test_a_body_far_beyond_mailguns_size_gets_a_413_answer_not_a_reset(service):
    url, _ = service
    body = b"x" * (150 * 1024 * 1024)
    response = requests.post(
        url + "/webhooks/mailgun", data=body, timeout=60, headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 413
    assert "error" in response.json()


def test_a_client_cannot_forge_or_colour_a_line_of_the_access_log(procfile_server):
    server, url, _ = procfile_server
    forged = "10.0.0.9 - - [01/Jan/2026 00 00 00] POST /webhooks/mailgun HTTP/1.1 200 2"
    # gunicorn logs the user of a Basic Authorization header as it decodes it, and a header's
    # bytes 0x80-0x9f as C1 controls (0x9b: the one-byte form of the terminal's ESC [).
    user = base64.b64encode(f"x\n{forged}\x1b[2J".encode()).decode()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + user.encode() + b"\r\n"
            b"User-Agent: probe \x9b31mred\r\n\r\n"
        )
        assert connection.recv(100).startswith(b"HTTP/1.1 200")
    log = server.folder / "server.log"
    deadline = time.monotonic() + 5
    while b"probe" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = log.read_text(errors="replace").splitlines()
    line = next(line for line in lines if "probe" in line)
    assert not any(line.startswith(forged) for line in lines)
    assert "\\x0a" in line and "\x1b" not in line and "\\x9b31mred" in line and "\x9b" not in line


def test_forged_delivery_is_refused_over_http(service, images):
    url, storage = service
    before = sorted(os.listdir(storage / "images"))

    photo = ("a.jpg", images[".jpg"], "image/jpeg")
    response = post(url, [photo], signature="f" * 64, message_id="<forged@example.com>")

    assert response.status_code == 403
    assert sorted(os.listdir(storage / "images")) == before


def test_garbage_bodies_get_json_4xx(service):
    url, _ = service
    for body, content_type in [
        (b"\x00" * 5000, "multipart/form-data; boundary=XX"),
        (b'{"json": true}', "application/json"),
    ]:
        response = requests.post(
            url + "/webhooks/mailgun", data=body, headers={"Content-Type": content_type}, timeout=10
        )
        assert response.status_code == 400, response.text
        assert response.json()["reason"]


def test_production_refuses_to_start_without_a_signing_key(tmp_path):
    env = procfile_env(free_port(), STORAGE_PATH=str(tmp_path))
    result = subprocess.run(
        [GUNICORN, *PROCFILE_COMMAND[1:]], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert result.stderr.count("MAILGUN_WEBHOOK_SIGNING_KEY is not set") == 1
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr
    assert len(result.stderr.splitlines()) <= 3, result.stderr


@pytest.mark.parametrize(
    "fields",
    [
        {"signature": "\u00e9" * 64},  # hmac.compare_digest raised TypeError on non-ASCII text: a 500
        # "²".isdigit() is True, and once the signature matched, int("²") raised: a 500
        {"timestamp": "\u00b2", "token": "a" * 50, "signature": sign(SIGNING_KEY, "\u00b2", "a" * 50)},
        {"token": "\u0663" * 50},
    ],
)
def test_signature_fields_of_the_wrong_form_are_a_403_not_a_500(service, images, fields):
    url, _ = service
    response = post(url, [("a.jpg", images[".jpg"], "image/jpeg")], message_id="<odd-signature@example.com>", **fields)
    assert response.status_code == 403, response.text
    assert response.json()["reason"]


def raw_answer(url: str, request: bytes) -> tuple[bytes, bytes]:
    """The status line and body gunicorn answers to `request` sent as is."""
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    "request_bytes, status, reason",
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nIf-None-Match: \x7f\x7f\r\n\r\n", 400, "IF-NONE-MATCH"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "the request line is over 4094 bytes"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(120)) + b"\r\n",
            431,
            "at most 100 header fields",
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431, "each at most 8190 bytes"),
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method"),
        (b"GET / HTTP/9.1\r\nHost: x\r\n\r\n", 400, "HTTP version"),
        (b"GARBAGE\r\n\r\n", 400, "request line"),
        # 501 is the client's transfer coding, not a fault of the server's: its reason says which.
        (
            b"POST /webhooks/mailgun HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n0\r\n\r\n",
            501,
            "br, chunked",
        ),
    ],
    ids=["header-byte", "long-line", "many-headers", "large-header", "method", "version", "request-line", "coding"],
)
def test_requests_gunicorn_refuses_get_a_json_reason(procfile_server, request_bytes, status, reason):
    server, url, _ = procfile_server
    head, body = raw_answer(url, request_bytes)

    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"\r\nContent-Type: application/json\r\n" in head + b"\r\n", head
    assert json.loads(body)["error"] == status
    assert reason.lower() in json.loads(body)["reason"].lower(), body
    assert "Invalid request from ip=127.0.0.1" in (server.folder / "server.log").read_text()  # gunicorn's log line
