"""Reads a raw MIME message (Mailgun's `body-mime`) from disk, decoding each file part into a spool.

The email package parses every header block; the bodies are streamed line by line between
the boundaries here, so a 25 MB message costs a few hundred KiB of memory, never its size.

Decisions:
- A message that ends before its final boundary (Mailgun delivers what it got) keeps the
  parts that completed; the part cut off is kept too, as far as it came, marked `cut_off`
  (never published: half a photo). `complete` says the message was cut.
- message/rfc822 (a forwarded mail) is one attachment, not descended into.
- Text parts without a file name and not marked as attachments are the message's text:
  every text/plain one is joined into `text`, every text/html one into `html` (Apple Mail
  splits the body around inline images), each bounded by `max_text_bytes`.
- Header bytes that are not UTF-8 are read as Latin-1: a name comes out readable, not refused.
- Headers are parsed with compat32: policy.default's header objects cost seconds (and can recurse too
  deep) on a few KiB of crafted parameters. Where email is quadratic, RFC 2047 words are decoded in a
  value's first MAX_ENCODED_CHARS; a Content-Type/-Disposition of over MAX_PARAMETERS ';'s is refused.
- A text part whose charset names no mail text encoding ("base64", "punycode", unknown) reads as UTF-8.
"""

from __future__ import annotations

import codecs
import email.errors
import email.header
import email.policy
import io
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from urllib.parse import unquote

from .transfer import Decoder, Lines, MalformedMime, Sink

MAX_DEPTH = 10
MAX_PARTS = 1000
MAX_HEADER_BYTES = 256 * 1024  # the message's own header block: Received, DKIM-Signature, References…
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_ALL_PART_HEADER_BYTES = 1024 * 1024
MAX_HEADER_FIELD = 32 * 1024
MAX_TEXT_BYTES = 1024 * 1024
MAX_ENCODED_CHARS = 4096  # a 255-character CJK file name takes ~1.2 KiB of base64 words
MAX_PARAMETERS = 200  # a 255-character CJK file name in RFC 2231 pieces takes a few dozen
NOT_MAIL_CHARSETS = {"punycode", "idna", "undefined"}  # Python codecs: quadratic (punycode) or always failing
CID_REFERENCE = re.compile(r"""cid:([^\s"'<>()]{1,998})""", re.IGNORECASE)
FOLD = re.compile(r"\r?\n(?=[ \t])")
ADDRESS_HEADERS = {"from", "sender", "reply-to", "to", "cc", "bcc"}  # words decoded once parsed (RFC 2047 6.2)
# RFC 2046 allows 70 characters; some mailers write a few more.
BOUNDARY_CHARACTERS = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{1,100}")


@dataclass
class MimePart:
    filename: str  # as the sender named it (RFC 2047/2231 decoded), "" when unnamed
    content_type: str  # as declared, lower case: judge the content, not this
    content_id: str  # without the <>, "" when none
    is_inline: bool
    spool: object  # what new_spool() returned, holding the decoded content
    cut_off: bool = False  # the message ended inside this part: the spool holds only what came


def first_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The value of the first header called `name` (any case) among (name, value) pairs, None when there is none."""
    name = name.lower()
    return next((value for key, value in headers if key.lower() == name), None)


@dataclass
class MimeMessage:
    headers: list[tuple[str, str]]
    text: str = ""
    html: str = ""
    parts: list[MimePart] = field(default_factory=list)
    complete: bool = True  # False when the message ended before its final boundary

    def header(self, name: str) -> str:
        """The first header called `name` (any case), "" when there is none."""
        return first_header(self.headers, name) or ""


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decoded_words(value: str, header: str = "") -> str:
    """A header value unfolded, its RFC 2047 encoded words decoded (kept when broken, or in an address `header`)."""
    value = FOLD.sub(" ", value).strip()
    # email scans from each "=?" of a line to its next "?=": cut after the last "?=" of one line, each ends at a word.
    end = value.rfind("?=", 0, MAX_ENCODED_CHARS) + 2
    if header.lower() not in ADDRESS_HEADERS and "=?" in value[:end] and len(value[:end].splitlines()) == 1:
        try:
            return str(email.header.make_header(email.header.decode_header(value[:end]))) + value[end:]
        except (ValueError, LookupError, email.errors.HeaderParseError):
            pass
    return value


def _parse_headers(block: bytes) -> Message:
    """The header block as a message to ask."""
    text = "".join(_text(line) for line in block.splitlines(keepends=True))
    return Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)


def _part_info(part: Message) -> tuple[str, str, str, str | None, str]:
    """(content type, boundary, transfer encoding, disposition, file name) with email's errors translated."""
    if any(str(part.get(name) or "").count(";") > MAX_PARAMETERS for name in ("content-type", "content-disposition")):
        raise MalformedMime(f"a part's Content-Type or Content-Disposition has over {MAX_PARAMETERS} parameters")
    try:
        content_type = part.get_content_type()
        boundary = (part.get_boundary() or "") if part.get_content_maintype() == "multipart" else ""  # RFC 2231 too
        encoding = str(part.get("content-transfer-encoding") or "7bit").strip().lower()
        filename = decoded_words(str(part.get_filename() or ""))
        return content_type, boundary, encoding, part.get_content_disposition(), filename
    except (ValueError, LookupError, TypeError, AttributeError, IndexError) as error:
        raise MalformedMime(f"a part's headers cannot be read ({type(error).__name__}: {error})") from None


class _Reader:
    def __init__(self, file, new_spool, max_parts: int, max_depth: int, max_text_bytes: int):
        self.lines = iter(Lines(file))
        self.new_spool, self.max_parts, self.max_depth = new_spool, max_parts, max_depth
        self.entities, self.part_header_budget = 0, MAX_ALL_PART_HEADER_BYTES
        self.boundaries: list[bytes] = []  # of the enclosing multiparts, innermost last
        self.text, self.html = Sink(io.BytesIO(), max_text_bytes), Sink(io.BytesIO(), max_text_bytes)
        self.message = MimeMessage(headers=[])

    def boundary_of(self, line: bytes, starts: bool) -> tuple[bytes, bool] | None:
        """(boundary, is the closing one) when `line` is a delimiter of an enclosing multipart."""
        if not starts or not line.startswith(b"--") or len(line) > 200:
            return None
        text = line.rstrip(b" \t\r\n")
        for boundary in reversed(self.boundaries):
            if text == b"--" + boundary:
                return boundary, False
            if text == b"--" + boundary + b"--":
                return boundary, True
        return None

    def read_headers(self, limit: int) -> tuple[bytes, tuple[bytes, bool] | None]:
        """The header block up to its blank line, or up to a delimiter when the part has no body."""
        block, field_bytes = bytearray(), 0
        for line, starts in self.lines:
            if starts and line in (b"\r\n", b"\n"):
                break
            if (delimiter := self.boundary_of(line, starts)) is not None:
                return bytes(block), delimiter
            block += line
            field_bytes = field_bytes + len(line) if not starts or line[:1] in (b" ", b"\t") else len(line)
            if len(block) > limit:
                raise MalformedMime(f"a header block is over {limit} bytes")
            if field_bytes > MAX_HEADER_FIELD:
                raise MalformedMime(f"a header field is over {MAX_HEADER_FIELD} bytes")
        return bytes(block), None

    def read_entity(self, depth: int) -> tuple[bytes, bool] | None:
        """One entity (headers and body); returns the delimiter that ended it, None at the end of the file."""
        self.entities += 1
        if self.entities > self.max_parts:
            raise MalformedMime(f"more than {self.max_parts} MIME parts")
        block, delimiter = self.read_headers(MAX_PART_HEADER_BYTES if depth else MAX_HEADER_BYTES)
        self.part_header_budget -= len(block) if depth else 0
        if self.part_header_budget < 0:
            raise MalformedMime(f"the parts' headers are over {MAX_ALL_PART_HEADER_BYTES} bytes together")
        headers = _parse_headers(block)
        if depth == 0:  # the message's own headers, in order and decoded; a part's are only asked
            self.message.headers = [(name, decoded_words(str(value), name)) for name, value in headers.items()]
        content_type, boundary, encoding, disposition, filename = _part_info(headers)
        if boundary:
            if depth >= self.max_depth:
                raise MalformedMime(f"multiparts nested more than {self.max_depth} deep")
            if not BOUNDARY_CHARACTERS.fullmatch(boundary):
                raise MalformedMime(f"multipart boundary {boundary[:80]!r} is not a valid boundary (RFC 2046)")
            return delimiter if delimiter else self.read_multipart(boundary.encode("ascii"), depth)
        if content_type.startswith("multipart/"):
            raise MalformedMime(f"{content_type} part without a boundary")
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            sink, part = (self.text if content_type == "text/plain" else self.html), None
        else:
            content_id = str(headers.get("content-id") or "").strip().strip("<>").strip()
            is_inline = disposition == "inline" or (disposition is None and bool(content_id))
            spool = self.new_spool()
            self.message.parts.append(part := MimePart(filename, content_type, content_id, is_inline, spool))
            sink = Sink(spool)
        decoder = Decoder(encoding, sink)
        delimiter = delimiter or self.read_body(decoder)
        decoder.finish()
        if delimiter is None and depth > 0 and part is not None:
            part.cut_off = True  # a part inside a multipart ends at a delimiter, not at the end of the file
        if sink in (self.text, self.html):
            self.decode_text(headers, content_type, sink)
        return delimiter

    def decode_text(self, headers: Message, content_type: str, sink: Sink) -> None:
        sink.flush()
        raw = sink.target.getvalue()
        try:
            codec = codecs.lookup(headers.get_content_charset() or "utf-8").name
            text = raw.decode("utf-8" if codec in NOT_MAIL_CHARSETS else codec, errors="replace")
        except (LookupError, ValueError):  # unknown, not text ("quoted-printable", "base64"), or "a\0b"
            text = raw.decode("utf-8", errors="replace")
        sink.target = io.BytesIO()
        if content_type == "text/plain":
            self.message.text = "\n".join(filter(None, (self.message.text, text)))
        else:
            self.message.html = "\n".join(filter(None, (self.message.html, text)))

    def read_body(self, decoder: Decoder | None) -> tuple[bytes, bool] | None:
        for line, starts in self.lines:
            if (delimiter := self.boundary_of(line, starts)) is not None:
                return delimiter
            if decoder is not None:
                decoder.feed(line)
        return None

    def read_multipart(self, boundary: bytes, depth: int) -> tuple[bytes, bool] | None:
        """The parts between `boundary`'s delimiters, then the epilogue; returns what ended the epilogue."""
        self.boundaries.append(boundary)
        try:
            delimiter = self.read_body(None)  # the preamble
            while delimiter == (boundary, False):
                delimiter = self.read_entity(depth + 1)
        finally:
            self.boundaries.pop()
        if delimiter is None:
            self.message.complete = False  # cut off before the closing delimiter
            return None
        if delimiter != (boundary, True):
            return delimiter  # an outer multipart went on without closing this one
        return self.read_body(None)  # the epilogue


def referenced_content_ids(html: str, among: Collection[str]) -> set[str]:
    """The Content-IDs of `among` (the message's own) that the HTML shows as `cid:` URLs, percent-decoded as
    RFC 2392 writes them; only those are kept, since a 25 MB body can name millions of others."""
    return {cid for match in CID_REFERENCE.finditer(html) if (cid := unquote(match[1])) in among}


def read_mime(
    file, new_spool, *, max_parts: int = MAX_PARTS, max_depth: int = MAX_DEPTH, max_text_bytes: int = MAX_TEXT_BYTES
) -> MimeMessage:
    """Read the raw message in binary `file`: its headers, text, and every file part decoded into new_spool()."""
    reader = _Reader(file, new_spool, max_parts, max_depth, max_text_bytes)
    reader.read_entity(0)
    return reader.message
