"""Parses the JSON Mailgun posts in form fields (message-headers, content-id-map, attachments) into plain values.

A JSON escape can make what no text holds: "\\udcff" parses to a lone surrogate, which every
later .encode() (the receipt's key, an object's name, the reply) refuses with an exception, a
500 after the photos were stored. Each one is made '?' here, once for every JSON field.
"""

from __future__ import annotations

import json


def _without_surrogates(value):
    """Parsed JSON with each lone surrogate, which a JSON escape can make but no text holds, as '?'."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    return value


def json_field(form, name: str, empty: str):
    """Form field `name` parsed as JSON (`empty` when blank), text that can be encoded; None when unreadable."""
    try:
        return _without_surrogates(json.loads(form.get(name) or empty))
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be what Mailgun sends
        return None


def message_headers(form) -> tuple[tuple[str, str], ...]:
    """`message-headers`: Mailgun's JSON list of [name, value] pairs, in order; () when absent or unreadable."""
    pairs = json_field(form, "message-headers", "[]")
    if not isinstance(pairs, list):
        return ()
    return tuple(
        (pair[0], pair[1])
        for pair in pairs
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
    )


def content_ids(form) -> dict[str, str]:
    """`content-id-map` ("<cid>" → "attachment-N") turned round: field → cid without <>."""
    mapping = json_field(form, "content-id-map", "{}")
    if not isinstance(mapping, dict):
        return {}
    return {field: cid.strip().strip("<>") for cid, field in mapping.items() if isinstance(field, str) and cid.strip()}
