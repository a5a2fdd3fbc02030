"""Drops slow HTTP clients in gunicorn's threaded worker, so a few of them cannot hold every thread.

gunicorn 27's gthread worker already gives a new connection 5 s to send its first byte,
then parks it without a thread and closes it. After that first byte it reads headers and
body, and writes the answer, on a blocking socket without any limit. This worker gives
every connection a socket that instead:
- gives up after IDLE_SECONDS without a byte in either direction (a silent client, or one
  that does not read its download), and
- once a request has waited GRACE_SECONDS in total for the client's bytes, drops it if it
  averaged under MIN_BYTES_PER_SECOND over that waiting time. Only time spent waiting for
  the client counts, not the app's own work. 64 KiB/s is far below any datacenter upload
  (Mailgun posts from datacenters): a 25 MiB message would take 400 s at that rate.
A dropped client is logged once and its request ends as a reset connection.
Not covered: gunicorn's own TLS (`certfile`), which wraps the socket again; terminate TLS
in the proxy in front instead.
"""

from __future__ import annotations

import errno
import logging
import socket
import time

from gunicorn.workers.gthread import ThreadWorker

from .server_refusals import JsonRefusals

IDLE_SECONDS = 10
GRACE_SECONDS = 10
MIN_BYTES_PER_SECOND = 64 * 1024

log = logging.getLogger("inbox")


class SlowClientError(ConnectionResetError):
    """The client was dropped for being silent or too slow (errno ECONNRESET: gunicorn closes quietly)."""

    def __init__(self, reason: str):
        super().__init__(errno.ECONNRESET, reason)


class GuardedSocket(socket.socket):
    """A client socket that times out when idle and measures how fast the client sends."""

    @classmethod
    def adopt(cls, sock: socket.socket) -> GuardedSocket:
        guarded = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        guarded.waited, guarded.received, guarded.dropped = 0.0, 0, False
        return guarded

    def setblocking(self, flag: bool) -> None:
        # gunicorn switches the socket to blocking when a thread takes a request: start that
        # request's account there, and block at most IDLE_SECONDS per wait.
        if flag:
            self.settimeout(IDLE_SECONDS)
            self.waited, self.received = 0.0, 0
        else:
            super().setblocking(False)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._refuse_if_dropped()
        started = time.monotonic()
        data = self._guarded(super().recv, bufsize, flags)
        self._account(time.monotonic() - started, len(data))
        return data

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        self._refuse_if_dropped()
        started = time.monotonic()
        count = self._guarded(super().recv_into, buffer, nbytes, flags)
        self._account(time.monotonic() - started, count)
        return count

    def sendall(self, data, flags: int = 0) -> None:
        self._guarded(super().sendall, data, flags)

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
        return self._guarded(super().sendfile, file, offset, count)

    def _refuse_if_dropped(self) -> None:
        # gunicorn closes gracefully from its main loop, reading what the client still sends for up
        # to 2 s per connection; a trickling client would stall the worker's loop that long.
        if self.dropped:
            raise SlowClientError("dropped before")

    def _guarding(self) -> bool:
        # gunicorn sets timeouts of its own too (closing gracefully): those are not ours to judge.
        return self.gettimeout() == IDLE_SECONDS

    def _guarded(self, operation, *args):
        try:
            return operation(*args)
        except TimeoutError:
            if not self._guarding():
                raise
            raise self._drop(f"nothing sent or read for {IDLE_SECONDS} s") from None

    def _account(self, waited: float, count: int) -> None:
        if not self._guarding():
            return
        self.waited += waited
        self.received += count
        if self.waited > GRACE_SECONDS and self.received < MIN_BYTES_PER_SECOND * self.waited:
            raise self._drop(f"sent {self.received} bytes in {self.waited:.0f} s, under {MIN_BYTES_PER_SECOND} B/s")

    def _drop(self, reason: str) -> SlowClientError:
        try:
            peer = self.getpeername()[0]
        except OSError:
            peer = "?"
        log.warning("dropped slow client %s: %s", peer, reason)
        self.dropped = True
        return SlowClientError(reason)


class SlowClientThreadWorker(JsonRefusals, ThreadWorker):
    """gunicorn's gthread worker, serving every connection through a GuardedSocket, its refusals in JSON."""

    def enqueue_req(self, conn) -> None:
        if not isinstance(conn.sock, GuardedSocket):
            conn.sock = GuardedSocket.adopt(conn.sock)
        super().enqueue_req(conn)
