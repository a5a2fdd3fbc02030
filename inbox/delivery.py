"""Builds a signed Mailgun-shaped forward() delivery: for `inbox send`, the tests and the benchmark.

The fields are the ones MAILGUN_NOTES.md lists: the envelope (`sender`, `recipient`), the
message's headers both as top-level fields and as the `message-headers` JSON list, the
signature fields, and one `attachment-N` file part per attachment.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import dataclass
from typing import BinaryIO

from urllib3 import encode_multipart_formdata

from .mailgun import sign

# (filename, content, content type); content is bytes or a binary file open for reading.
Attachment = tuple[str, bytes | BinaryIO, str]


def signed_fields(key: str, *, timestamp: str | None = None, token: str | None = None) -> dict[str, str]:
    """`timestamp`, `token` and `signature` as Mailgun signs them; now and a fresh token unless given."""
    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)
    return {"timestamp": timestamp, "token": token, "signature": sign(key, timestamp, token)}


@dataclass
class Delivery:
    """A forward() POST: form fields (a list value is a repeated field) and its attachments, in order."""

    fields: dict[str, str | list[str]]
    attachments: list[Attachment]

    def files(self) -> list[tuple[str, tuple[str, BinaryIO, str]]]:
        """The attachment parts as `requests.post(files=…)` takes them."""
        return [
            (f"attachment-{number}", (filename, _as_file(content), content_type))
            for number, (filename, content, content_type) in enumerate(self.attachments, start=1)
        ]

    def form(self) -> dict:
        """Fields and files in one dict, as Flask's and werkzeug's test clients take `data`."""
        return {
            **self.fields,
            **{name: (file, filename, content_type) for name, (filename, file, content_type) in self.files()},
        }

    def encode(self, boundary: str | None = None) -> tuple[bytes, str]:
        """The raw multipart/form-data body and its Content-Type, for posting bytes directly."""
        parts = [
            (name, value)
            for name, values in self.fields.items()
            for value in (values if isinstance(values, list) else [values])
        ]
        parts += [
            (name, (filename, file.read(), content_type)) for name, (filename, file, content_type) in self.files()
        ]
        return encode_multipart_formdata(parts, boundary)


def _as_file(content: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(content) if isinstance(content, bytes) else content


def build_delivery(
    attachments: list[Attachment] | tuple = (),
    /,
    *,
    key: str,
    sender: str = "alice@example.com",
    recipient: str = "photos@example.com",
    from_header: str | None = None,
    subject: str = "Photos",
    message_id: str = "<m1@example.com>",
    text: str = "",
    headers: list[tuple[str, str]] | tuple = (),
    trace: list[tuple[str, str]] | tuple = (),
    **overrides: str | list[str] | None,
) -> Delivery:
    """A delivery signed with `key`; `overrides` add or replace fields by their Mailgun name, None removes one.

    `headers` are more message headers, after From, To, Subject and Message-Id: each is in
    `message-headers` and a top-level field, a repeated one a repeated field, as Mailgun posts them.
    `trace` are the headers prepended in transit (Mailgun's verdicts, the Received lines), put first.
    """
    message_headers = [
        *([name, value] for name, value in trace),
        ["From", from_header or sender],
        ["To", recipient],
        ["Subject", subject],
        ["Message-Id", message_id],
        *([name, value] for name, value in headers),
    ]
    header_fields: dict[str, list[str]] = {}
    for name, value in message_headers:
        header_fields.setdefault(name, []).append(value)
    fields = {
        "recipient": recipient,
        "sender": sender,
        "from": from_header or sender,
        "subject": subject,
        "body-plain": text,
        **{name: values[0] if len(values) == 1 else values for name, values in header_fields.items()},
        "message-headers": json.dumps(message_headers),
        "attachment-count": str(len(attachments)),
        **signed_fields(key),
        **overrides,
    }
    return Delivery({name: value for name, value in fields.items() if value is not None}, list(attachments))
