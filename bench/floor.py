"""The floors for bench.py: WSGI apps that do only the unavoidable part of receiving a delivery.

`app` reads and discards the request body, 1 MiB at a time; `write_app` also writes it to a
fresh file (no parsing, no fsync) in FLOOR_PATH (default: the temp folder) and deletes it after.
`durable_app` is the write floor plus the least that lets a 200 mean "on disk": each megabyte
sent on to the disk as it arrives, then the file and its folder fsynced at once (as the
service does its objects), with no parsing, hashing or receipt. Whatever the service costs
beyond the write floor is the price of parsing, checking and storing durably; beyond the
durable floor, the price of everything but the durability.
"""

from __future__ import annotations

import functools
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

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


@functools.cache
def _threads(pid: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1)  # per worker: made after gunicorn's fork


def _fsync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def durable_app(environ, start_response):
    stream = environ["wsgi.input"]
    folder = os.environ.get("FLOOR_PATH") or tempfile.gettempdir()
    descriptor, name = tempfile.mkstemp(dir=folder, prefix="floor-")
    threads, sending = _threads(os.getpid()), None
    try:
        with open(descriptor, "wb", buffering=0) as file:
            while chunk := stream.read(CHUNK):
                file.write(chunk)
                if len(chunk) == CHUNK:  # more may follow: start writing the dirty pages out, as the spool does
                    if sending is not None:
                        sending.result()
                    sending = threads.submit(os.posix_fadvise, descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            if sending is not None:
                sending.result()
            folder_synced = threads.submit(_fsync, folder)
            os.fsync(descriptor)
            folder_synced.result()
    finally:
        os.unlink(name)
    start_response("200 OK", OK)
    return [b"ok\n"]
