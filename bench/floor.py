"""The floors for bench.py: WSGI apps that do only the unavoidable part of receiving a delivery.

`app` reads and discards the request body, 1 MiB at a time; `write_app` also writes it to a
fresh file (no parsing, no fsync) in FLOOR_PATH (default: the temp folder) and deletes it after.
Whatever the service costs beyond them is the price of parsing, checking and storing durably.
"""

from __future__ import annotations

import os
import tempfile

CHUNK = 1024 * 1024
OK = [("Content-Type", "text/plain"), ("Content-Length", "3")]


def app(environ, start_response):
    stream = environ["wsgi.input"]
    while stream.read(CHUNK):
        pass
    start_response("200 OK", OK)
    return [b"ok\n"]


def write_app(environ, start_response):
    stream = environ["wsgi.input"]
    descriptor, name = tempfile.mkstemp(dir=os.environ.get("FLOOR_PATH"), prefix="floor-")
    try:
        with open(descriptor, "wb", buffering=0) as file:
            while chunk := stream.read(CHUNK):
                file.write(chunk)
    finally:
        os.unlink(name)
    start_response("200 OK", OK)
    return [b"ok\n"]
