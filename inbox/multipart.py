"""Splits a multipart/form-data body into parts: Werkzeug's sans-IO decoder, made cheap and lenient for Mailgun.

What differs from Werkzeug's MultipartDecoder, and why:
- the boundary is searched for with bytes.find and one shared pattern, not two regexes
  compiled for each request's (random) boundary;
- each piece of a part is copied out of the buffer once, not three times;
- a part header that is not UTF-8 is read as Latin-1 instead of refusing the whole message;
- a part's header block is bounded (PartHeadersTooLarge): Werkzeug's only bound is the whole
  buffer's, 25 MiB on the forward() route, and it makes an object per `; a=b` of a header.
form.py (the webhook's form) and mimeform.py (the raw-MIME route's) drive it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from werkzeug.datastructures import Headers
from werkzeug.sansio.multipart import LINE_BREAK, LINE_BREAK_RE, Event, MultipartDecoder, NeedData, State

# A form part's headers: its name, a file name of 255 characters in any encoding, its type.
MAX_PART_HEADER_BYTES = 64 * 1024


class PartHeadersTooLarge(ValueError):
    """A form part's header block is larger than any form part's; the message says so."""

    def __init__(self) -> None:
        super().__init__(f"a form part's headers are over {MAX_PART_HEADER_BYTES // 1024} KiB")


class _BoundaryFinder:
    """Finds `--boundary` as the decoder's per-boundary regex would, with bytes.find and one shared pattern.

    Werkzeug compiles two regexes from each request's boundary; Mailgun's boundaries are
    random, so `re`'s cache never hits and every delivery paid ~0.2 ms to compile them.
    """

    # What may follow the boundary: "--" (the last one) or blanks, then a line break.
    TAIL = re.compile(rb"(--[^\S\n\r]*%s?|[^\S\n\r]*%s)" % (LINE_BREAK, LINE_BREAK))

    def __init__(self, boundary: bytes, line_break_first: bool):
        self.delimiter = b"--" + boundary
        self.line_break_first = line_break_first

    def search(self, data: bytes | bytearray, position: int = 0) -> _Found | None:
        origin = position  # like a regex's pos: nothing before it is looked at
        while (at := data.find(self.delimiter, position)) != -1:
            position = at + 1
            before = data[max(origin, at - 2) : at]
            start = at - 2 if before == b"\r\n" else at - 1 if before[-1:] in (b"\r", b"\n") else at
            tail = self.TAIL.match(data, at + len(self.delimiter))
            if tail is not None and (start < at or not self.line_break_first):
                return _Found(start, tail.end(), tail.group(1))
        return None


class _Found(NamedTuple):
    """The three things the decoder reads from a boundary match."""

    begin: int
    finish: int
    tail: bytes

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.finish

    def group(self, _number: int) -> bytes:
        return self.tail


class MailgunDecoder(MultipartDecoder):
    """Werkzeug's decoder, with no regex compiled per request and Latin-1 part headers let through."""

    def __init__(self, boundary: bytes, max_form_memory_size: int | None = None, *, max_parts: int | None = None):
        # Werkzeug 3.1's MultipartDecoder.__init__, less its two re.compile calls.
        self.buffer = bytearray()
        self.complete = False
        self.max_form_memory_size = max_form_memory_size
        self.max_parts = max_parts
        self.state = State.PREAMBLE
        self.boundary = boundary
        self._search_position = 0
        self._parts_decoded = 0
        self.preamble_re = _BoundaryFinder(boundary, line_break_first=False)
        self.boundary_re = _BoundaryFinder(boundary, line_break_first=True)

    def _parse_data(self, data: bytearray, *, start: bool) -> tuple[bytes, int, bool]:
        # Werkzeug 3.1's, copying each piece of a part once instead of three times: a slice of
        # the buffer for the partial-boundary search, another for the data, then bytes() of it.
        data_start = LINE_BREAK_RE.match(data).end() if start else 0
        match = self.boundary_re.search(data)  # one bytes.find when the buffer holds no delimiter
        if match is not None:
            self.state = State.EPILOGUE if match.group(1).startswith(b"--") else State.PART
            data_end, del_index = match.start(), match.end()
        else:
            data_end = del_index = self._partial_boundary_start(data, data_start)
        with memoryview(data) as view:  # released before the caller shortens the buffer
            return bytes(view[data_start:data_end]), del_index, match is None

    def _partial_boundary_start(self, data: bytearray, data_start: int) -> int:
        """Where the data may end: the earliest of the last CR and the last LF, if a delimiter would fit after it."""
        shortest = len(data) - len(self.preamble_re.delimiter) - 2  # "\r\n--boundary"
        found = len(data)
        for line_break in (b"\n", b"\r"):
            at = data.rfind(line_break, data_start)
            if at != -1 and at >= shortest:
                found = min(found, at)
        return found

    def next_event(self) -> Event:
        event = super().next_event()
        if isinstance(event, NeedData) and self.state == State.PART and len(self.buffer) > MAX_PART_HEADER_BYTES:
            raise PartHeadersTooLarge()  # the buffer holds a header block that has not ended yet
        return event

    def _parse_headers(self, data: bytes | bytearray) -> Headers:
        if len(data) > MAX_PART_HEADER_BYTES:  # one that ended within a single read
            raise PartHeadersTooLarge()
        try:
            return super()._parse_headers(data)
        except UnicodeDecodeError:  # Mailgun says UTF-8; an old mailer's Latin-1 name must not cost the message
            return super()._parse_headers(bytes(data).decode("latin-1").encode())
