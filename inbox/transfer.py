"""Undoes a part's Content-Transfer-Encoding line by line, writing the decoded bytes in large chunks.

Each line costs about a microsecond of Python, so a message of empty lines (25 MB of them took
23 s) is refused past MAX_LINES: a 25 MB mail of base64 or quoted-printable has about 330,000.
"""

from __future__ import annotations

import binascii

# A longer line is read in pieces; only a piece that starts a line can be a boundary.
MAX_LINE = 64 * 1024
FLUSH_BYTES = 256 * 1024
MAX_LINES = 1024 * 1024
BASE64_NOISE = bytes(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))


class MalformedMime(Exception):
    """The raw message cannot be read safely; the message says why."""


class Lines:
    """The file's lines as (bytes, starts_a_line), pieces of at most MAX_LINE bytes, at most MAX_LINES of them."""

    def __init__(self, file):
        self.file = file
        self.at_line_start = True

    def __iter__(self):
        for _ in range(MAX_LINES):
            if not (line := self.file.readline(MAX_LINE)):
                return
            starts = self.at_line_start
            self.at_line_start = line.endswith(b"\n")
            yield line, starts
        if self.file.read(1):
            raise MalformedMime(f"the message has more than {MAX_LINES:,} lines; a mail of photos has far fewer")


class Sink:
    """Collects decoded bytes into chunks before writing them, up to `limit` bytes when given."""

    def __init__(self, target, limit: int | None = None):
        self.target, self.limit, self.buffer, self.kept = target, limit, bytearray(), 0

    def write(self, data: bytes) -> None:
        if self.limit is not None:
            data = data[: max(0, self.limit - self.kept)]
            self.kept += len(data)
        self.buffer += data
        if len(self.buffer) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.target.write(bytes(self.buffer))
            self.buffer.clear()


def _split_eol(line: bytes) -> tuple[bytes, bytes]:
    if line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    if line.endswith(b"\n"):
        return line[:-1], b"\n"
    return line, b""


class Decoder:
    """Content-Transfer-Encoding, undone line by line; the line break before a boundary is not content."""

    def __init__(self, encoding: str, sink: Sink):
        self.encoding, self.sink = encoding, sink
        self.pending_eol = b""
        self.base64 = bytearray()

    def feed(self, line: bytes) -> None:
        content, eol = _split_eol(line)
        if self.encoding == "base64":
            self.base64 += content.translate(None, BASE64_NOISE)
            if len(self.base64) >= FLUSH_BYTES:
                self._decode_base64(len(self.base64) // 4 * 4)
            return
        self.sink.write(self.pending_eol)
        if self.encoding == "quoted-printable":
            stripped = content.rstrip(b" \t")
            if stripped.endswith(b"="):  # a soft line break
                content, eol = stripped[:-1], b""
            content = binascii.a2b_qp(content)
        self.sink.write(content)
        self.pending_eol = eol

    def _decode_base64(self, length: int) -> None:
        chunk, self.base64 = bytes(self.base64[:length]), self.base64[length:]
        try:
            self.sink.write(binascii.a2b_base64(chunk))
        except binascii.Error:
            pass  # a stray group of 1 char at the very end: nothing decodable in it

    def finish(self) -> None:
        if self.base64:
            self.base64 += b"=" * (-len(self.base64) % 4)
            self._decode_base64(len(self.base64))
        self.sink.flush()
