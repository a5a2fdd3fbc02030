"""The benchmark's deliveries: signed Mailgun forward() posts of JPEGs with GPS in their EXIF, sent as raw bytes.

Each photo is a real JPEG from Pillow whose EXIF block (APP1, right after the JFIF header) carries a GPS
IFD, so location removal has work to do, padded to the wanted size with a random nonce and
random bytes before its end marker: every delivery is stored as a new object, as in real use.
Bodies are encoded before the clock starts; only the POST and its answer are timed.
"""

from __future__ import annotations

import io
import os
import socket
import time
import uuid

from PIL import Image

from inbox.delivery import build_delivery
from inbox.send_command import AUTHENTICATED_TRACE

KiB, MiB = 1024, 1024 * 1024
# Image data as an encoder writes it: every FF stuffed (FF 00), so it holds no marker.
RANDOM = os.urandom(25 * MiB).replace(b"\xff", b"\xff\x00")[: 25 * MiB]
GPS_IFD = 0x8825
END_OF_IMAGE = b"\xff\xd9"


def gps_jpeg() -> bytes:
    """A small real JPEG (JFIF, then EXIF with a GPS position in Vienna, then the image)."""
    exif = Image.Exif()
    exif[0x010F] = "Bench Camera"
    exif[GPS_IFD] = {1: "N", 2: (48.0, 12.0, 30.5), 3: "E", 4: (16.0, 22.0, 15.2)}
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(buffer, "JPEG", exif=exif)
    content = buffer.getvalue()
    if not (content[20:22] == b"\xff\xe1" and content[24:30] == b"Exif\0\0" and content.endswith(END_OF_IMAGE)):
        raise SystemExit("bench: Pillow did not put EXIF after JFIF; the photos would have no location to strip")
    return content


BASE_JPEG = gps_jpeg()


def photo(size: int) -> bytes:
    """`size` bytes: the GPS JPEG, a nonce and random bytes, then the JPEG's end marker."""
    nonce = uuid.uuid4().hex.encode()
    padding = size - len(BASE_JPEG) - len(nonce)
    return BASE_JPEG[: -len(END_OF_IMAGE)] + nonce + RANDOM[:padding] + END_OF_IMAGE


def delivery(key: str, sizes: list[int]) -> tuple[bytes, bytes]:
    """The request head and the multipart body of one signed delivery, encoded once."""
    photos = [(f"photo-{number}.jpg", photo(size), "image/jpeg") for number, size in enumerate(sizes, start=1)]
    body, content_type = build_delivery(
        photos,
        key=key,
        sender="bench@example.com",
        subject="Benchmark",
        message_id=f"<{uuid.uuid4()}@bench.local>",
        trace=AUTHENTICATED_TRACE,  # what Mailgun adds for a sender whose SPF passed: the reply goes out
    ).encode()
    head = (
        f"POST /webhooks/mailgun HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


def post(port: int, request: tuple[bytes, bytes]) -> tuple[int, bytes, float]:
    """Send one pre-encoded request; return status, answer body and seconds from connect to answer."""
    head, body = request
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(head)
        connection.sendall(body)
        answer = b"".join(iter(lambda: connection.recv(256 * KiB), b""))
    seconds = time.perf_counter() - start
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], seconds
