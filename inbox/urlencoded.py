"""Splits an application/x-www-form-urlencoded body into its fields as it arrives, a piece at a time.

Both webhook routes read url-encoded posts with it (form.py for forward(), mimeform.py for
raw MIME). urllib's parse_qsl wants the whole body as one string and makes an object per
%XX escape, tens of times the body's size before a single field can be looked at; here the
caller's `fields` gets start(name), write(bytes) (as often as the value's pieces arrive,
percent-decoded) and end() for each field, so it bounds a value while it is still arriving
and checks the signature the moment its fields are in.
"""

from __future__ import annotations

from urllib.parse import unquote_plus, unquote_to_bytes

# unquote_to_bytes splits its input at every %: smaller pieces keep its lists small.
READ_SIZE = 64 * 1024


class MalformedUrlencoded(ValueError):
    """The body breaks one of the caller's bounds; the message says which."""


class TooManyFields(MalformedUrlencoded):
    """More '&'-separated fields than the caller takes."""


def read_urlencoded(stream, fields, *, max_fields: int, max_name_bytes: int) -> None:
    """Read binary `stream` to its end, handing each field to `fields` (start, write…, end).

    Every '&' counts towards `max_fields`, as parse_qsl's max_num_fields counts them: a body
    of nothing but '&' is refused on its first read, not looped over.
    """
    name, in_value, carry, count = bytearray(), False, b"", 1
    while chunk := stream.read(READ_SIZE):
        count += chunk.count(b"&")
        if count > max_fields:
            raise TooManyFields(f"more than {max_fields} form fields")
        for number, piece in enumerate(chunk.split(b"&")):
            if number > 0:  # an & ended the pair before
                if in_value:
                    fields.write(unquote_to_bytes(carry.replace(b"+", b" ")))
                    fields.end()
                name, in_value, carry = bytearray(), False, b""
            if not in_value:
                head, equals, piece = piece.partition(b"=")
                name += head
                if len(name) > max_name_bytes:
                    raise MalformedUrlencoded(f"a form field name is over {max_name_bytes} bytes")
                if not equals:
                    continue
                fields.start(unquote_plus(name.decode("latin-1"), encoding="utf-8", errors="replace"))
                in_value = True
            data = carry + piece
            cut = data.rfind(b"%", max(0, len(data) - 2))  # keep a %XX cut in two for the next chunk
            data, carry = (data[:cut], data[cut:]) if cut >= 0 else (data, b"")
            fields.write(unquote_to_bytes(data.replace(b"+", b" ")))
    if in_value:
        fields.write(unquote_to_bytes(carry.replace(b"+", b" ")))
        fields.end()
