"""Slow clients against real gunicorn started as the Procfile does: they are dropped, and never delay a delivery.

With the old 2 sync workers, two silent connections made every delivery wait about two
minutes. Here four of each kind of slow client (silent, trickling a body, not reading a
25 MiB download) are connected while a real delivery is made.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from inbox.slow_clients import GRACE_SECONDS, IDLE_SECONDS
from tests.harness import SIGNING_KEY, large_photo
from tests.processes import free_port, running
from tests.test_procfile import GUNICORN, PROCFILE_COMMAND, ROOT, post, procfile_env

N = 4  # of each kind: twice the old worker count


@pytest.fixture
def service(tmp_path):
    port = free_port()
    env = procfile_env(
        port, MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY, INBOX_PUBLISHERS="*", STORAGE_PATH=str(tmp_path / "storage")
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    with running([GUNICORN, *PROCFILE_COMMAND[1:]], port=port, env=env, cwd=ROOT, logs=logs):
        yield port, logs / "server.log"


def connect(port: int, receive_buffer: int | None = None) -> socket.socket:
    client = socket.socket()
    if receive_buffer:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    client.connect(("127.0.0.1", port))
    return client


def closed_by_server(client: socket.socket, deadline: float) -> bool:
    """Whether the server closes `client` before the time.monotonic() `deadline` (reading what it sent first)."""
    client.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        while client.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def trickle(client: socket.socket, stop: threading.Event) -> None:
    """A POST whose 1 MB body arrives one byte a second."""
    try:
        client.sendall(
            b"POST /webhooks/mailgun HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
        )
        while not stop.wait(1):
            client.sendall(b"-")
    except OSError:
        pass


def test_slow_clients_are_dropped_and_do_not_delay_a_delivery(service, tmp_path, images):
    port, log = service
    url = f"http://127.0.0.1:{port}"
    big = ("big.jpg", large_photo(25 * 1024 * 1024), "image/jpeg")
    download = post(url, [big], message_id="<big@example.com>").json()["stored"][0]["url"]

    stop = threading.Event()
    silent = [connect(port) for _ in range(N)]
    trickling = [connect(port) for _ in range(N)]
    for client in trickling:
        threading.Thread(target=trickle, args=(client, stop), daemon=True).start()
    not_reading = [connect(port, receive_buffer=4096) for _ in range(N)]
    for client in not_reading:
        client.sendall(f"GET {download.removeprefix(url)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    started = time.monotonic()
    try:
        time.sleep(1)  # every slow client has been accepted and holds whatever it can

        delivery = post(url, [("photo.jpg", images[".jpg"], "image/jpeg")], message_id="<quick@example.com>")
        took = time.monotonic() - started - 1

        assert delivery.status_code == 200, delivery.text
        assert took < 5, f"a delivery waited {took:.1f} s behind slow clients"
        assert all(closed_by_server(client, started + 5 + 3) for client in silent)  # gunicorn: 5 s for a first byte
        assert all(closed_by_server(client, started + GRACE_SECONDS + 5) for client in trickling), log.read_text()[
            -3000:
        ]
        time.sleep(max(0.0, started + IDLE_SECONDS + 3 - time.monotonic()))
        text = log.read_text()
        assert text.count("dropped slow client") == 2 * N, text[-3000:]
        assert text.count("under 65536 B/s") == N and text.count(f"nothing sent or read for {IDLE_SECONDS} s") == N
    finally:
        stop.set()
        for client in silent + trickling + not_reading:
            client.close()
