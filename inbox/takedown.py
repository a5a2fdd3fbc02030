"""Takedown: removes published images from whichever store is configured, by public URL or by object name.

Used by `inbox delete` (the operator) and by a publisher's `delete` reply. Only names the
service makes (`<uuid>.<ext>`) are accepted, so a takedown can never reach another object.
Caches (a CDN, browsers) may keep serving a copy for up to INBOX_CACHE_MAX_AGE seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .storage import OBJECT_NAME, Store, delete_if_present


@dataclass
class Takedown:
    removed: list[str] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)  # not a name the service makes: never looked up
    absent: list[str] = field(default_factory=list)  # one of our names, but no such image (any more)


def _object_name_of(reference: str) -> str | None:
    """The object name in a public URL or a bare name, if it is one the service makes."""
    name = unquote(urlsplit(reference.strip()).path.rsplit("/", 1)[-1])
    return name if OBJECT_NAME.fullmatch(name) else None


def take_down(store: Store, references: list[str]) -> Takedown:
    """Remove each referenced image (a URL or a name); say which were removed, not ours, or absent."""
    outcome = Takedown()
    for reference in references:
        name = _object_name_of(reference)
        if name is None:
            outcome.not_ours.append(reference)
        elif delete_if_present(store, store.images, name):
            outcome.removed.append(reference)
        else:
            outcome.absent.append(reference)
    return outcome
