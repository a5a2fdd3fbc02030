"""The claim step and the private container's records: one receipt per Mailgun token, one record per reply.

Mailgun signs the token, not the body, so a captured (timestamp, token, signature) could
carry any content. A token is therefore good for one message. Before anything is stored the
token is claimed: its receipt is created only if it does not exist yet (one create-only write
on every provider, claims.py), holding a fingerprint of the message. The claim then becomes
the receipt: the answer given, written over the same file (one private file per message, one
fsync). A second post with the token gets, while the first is in progress, 503 (Mailgun
retries later); afterwards the recorded answer if it is the same message, else 403 and
nothing is stored. A first attempt that fails releases its claim, so Mailgun's retry
proceeds; a claim whose worker died is taken over once older than any request may last.

A message that got a reply also has a record (its Message-Id, sender, publisher, objects,
URLs and the reply) under a key derived from its Message-Id (without one, its content) and
sender: a redelivery with a new token finds it and sends no second reply, and a `delete`
reply to our reply finds the objects to take down. The record is claimed as a token is,
before the reply goes out, so two deliveries of one mail at once (two routes that match it,
each without stop()) send one reply: the second gets 503 and, on Mailgun's retry, the
recorded reply. A `delete` is claimed the same way while its photos are taken down. Receipts
and records live in the storage backend, so every worker and instance shares them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

from .claims import upload_if_absent
from .message import InboundMessage
from .mime import first_header
from .spool import SpoolFile, SpoolFolder, SpoolUnavailable
from .storage import StorageUnavailable, Store, delete_if_present, find_object, unavailable_on_failure

# Longer than a delivery goes without renewing its claim (a body still arriving renews it every
# KEEP_ALIVE_EVERY seconds; what follows the body is bounded: fetch.py's deadline, storage's and the
# reply's timeouts), shorter than Mailgun's first retry (10 min): an older pending claim belongs to a
# dead worker, or to an attempt that could not release it.
ABANDONED_AFTER = 300
KEEP_ALIVE_EVERY = 60


class InProgress(Exception):
    """Another request holds this claim now: a token's, or a message's reply or takedown."""


class TokenReused(Exception):
    """The token was used for another message: a replay with new content."""


def _token_name(token: str) -> str:
    return "token-" + hashlib.sha256(token.encode()).hexdigest() + ".json"


def _record_name(key: str) -> str:
    return f"message-{key}.json"


def message_identity(message: InboundMessage) -> str:
    """What tells this mail from the sender's others in every delivery of it: its Message-Id, else its content.

    A mail without a Message-Id is named by its Date, Subject and attachments: a redelivery of it
    finds its record and its names, a different mail of the same sender does not.
    """
    if message.message_id:
        return message.message_id
    return "no Message-Id: " + _digest([first_header(message.headers, "Date") or "", message.subject], message)


def message_key(name_key: bytes, identity: str, sender: str) -> str:
    """The record key of the message with this identity (message_identity) and envelope sender.

    The same for every delivery of it, unguessable without the name key.
    """
    return hmac.new(name_key, f"{identity}\0{sender}".encode(), hashlib.sha256).hexdigest()[:32]


def _digest(parts: list[str], message: InboundMessage) -> str:
    """SHA-256 of `parts` followed by every attachment's content (a store() notification's: its URL)."""
    parts = parts + [attachment.stream.sha256.hexdigest() for attachment in message.attachments]
    parts += [str(item.get("url")) for item in message.stored_attachments or ()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _read(store: Store, name: str) -> tuple[dict, float] | None:
    """The object's JSON and when it was last written (0 where the provider does not say); None when absent.

    A torn object (read mid-rewrite, or cut by a crash) reads as {}: no answer, no age of its own.
    """
    obj = find_object(store, store.receipts, name)
    if obj is None:
        return None
    with unavailable_on_failure(store):
        raw = b"".join(obj.driver.download_object_as_stream(obj))
    try:
        content = json.loads(raw)
    except ValueError:
        content = None
    return (content if isinstance(content, dict) else {}), obj.extra.get("modify_time") or 0


def _write(store: Store, spool: SpoolFolder, name: str, content: dict) -> None:
    file = spool.new_file(limit=1 << 30)
    try:
        file.write(json.dumps(content, separators=(",", ":")).encode())
        file.finish()
        with unavailable_on_failure(store):
            store.receipts.driver.upload_object(file.name, store.receipts, name)  # .json: application/json
    finally:
        file.discard()


def fingerprint(message: InboundMessage) -> str:
    """What makes a message this message: its id, sender and every attachment's content (or URL)."""
    return _digest([message.message_id, message.sender], message)


@dataclass(frozen=True)
class Answered:
    """The token's first message was answered; whether this post gets that answer depends on its content."""

    fingerprint: str
    status: int
    body: dict

    def for_message(self, message: InboundMessage) -> tuple[int, dict]:
        """The recorded answer when `message` is the one it was given for; else TokenReused."""
        if fingerprint(message) != self.fingerprint:
            raise TokenReused("this token was already used for another message; nothing was stored")
        return self.status, self.body


@dataclass
class Claim:
    """This request's hold on a token; `finish` turns it into the receipt, `release` gives it up."""

    store: Store
    name: str
    file: SpoolFile  # the claim's own file: on the local store it is the object, so the receipt is written once
    renewed: float = field(default_factory=time.monotonic)

    def keep_alive(self) -> None:
        """Renew the claim if KEEP_ALIVE_EVERY has passed: a body arriving slowly must not look abandoned."""
        if time.monotonic() - self.renewed < KEEP_ALIVE_EVERY:
            return
        self.renewed = time.monotonic()
        self._save({"since": int(time.time())})

    def finish(self, message: InboundMessage, status: int, body: dict) -> None:
        """Record the answer and the message's fingerprint, durably, before the answer is given."""
        self._save({"fingerprint": fingerprint(message), "status": status, "body": body})

    def _save(self, content: dict) -> None:
        _rewrite(self.file, content)
        with unavailable_on_failure(self.store):
            self.store.receipts.driver.upload_object(self.file.name, self.store.receipts, self.name)

    def release(self) -> None:
        try:
            delete_if_present(self.store, self.store.receipts, self.name)
        except StorageUnavailable:
            pass  # storage is what failed: the claim is taken over once abandoned (ABANDONED_AFTER)


def _rewrite(file: SpoolFile, content: dict) -> None:
    try:
        with open(file.name, "r+b") as target:
            target.write(json.dumps(content, separators=(",", ":")).encode())
            target.truncate()
    except OSError as error:  # the answer is the largest file a delivery writes: the disk may fill just then
        raise SpoolUnavailable(f"cannot write to {file.name}", error) from None


def claim_token(store: Store, new_spool, token: str) -> Claim | Answered:
    """Claim the token the moment its signature holds, before the message is read on.

    Returns the Claim, or the answer given to the token's first message (Answered); raises
    InProgress while another request holds it. `new_spool(limit)` makes the claim's file
    (the request's, so it is removed with the request).
    """
    held = _claim(store, new_spool, _token_name(token), "a delivery with this token is in progress")
    if isinstance(held, Claim):
        return held
    return Answered(held.get("fingerprint", ""), held["status"], held["body"])


def _claim(store: Store, new_spool, name: str, busy: str) -> Claim | dict:
    """Create `name` in the private container unless it exists; else what it holds once finished.

    A claim holds {"since": …} until it is finished (or released). While another request holds
    it, InProgress(`busy`); a claim older than any request may last is taken over.
    """
    for _ in range(2):  # a second round only after removing an abandoned claim
        file = new_spool(1 << 20)
        file.write(json.dumps({"since": int(time.time())}).encode())
        file.finish()
        with unavailable_on_failure(store):
            # Not durable yet: a claim lost in a crash was never answered, and Mailgun will retry.
            if upload_if_absent(store.receipts, name, file.name, durable=False):
                return Claim(store, name, file)
        found = _read(store, name)
        if found is None:
            continue  # released between our create and our read
        held, modified = found
        if held and "since" not in held:
            return held
        # No "since": torn. The local store rewrites a claim in place, so this may be that very
        # moment (the file is new) or what a crash left (the file grows old).
        since = held.get("since") or modified
        if time.time() - since < ABANDONED_AFTER:
            raise InProgress(f"{busy}; Mailgun will retry")
        delete_if_present(store, store.receipts, name)
    raise InProgress(f"{busy}; Mailgun will retry")


def find_record(store: Store, key: str) -> dict | None:
    """The record of the message with this key: message_id, sender, publisher, objects, urls, reply (, taken_down).

    None also while the record is only claimed: its reply is being sent now.
    """
    found = _read(store, _record_name(key))
    return found[0] if found and found[0] and "since" not in found[0] else None


def claim_record(store: Store, new_spool, key: str) -> Claim | dict:
    """Claim the message's record before its reply is sent: the Claim, or the record another delivery finished.

    Raises InProgress while another delivery of the message holds it. The Claim is finished by
    save_record, or released if the reply could not be sent.
    """
    return _claim(store, new_spool, _record_name(key), "another delivery of this mail is being answered now")


def save_record(store: Store, spool: SpoolFolder, key: str, record: dict) -> None:
    _write(store, spool, _record_name(key), record)
