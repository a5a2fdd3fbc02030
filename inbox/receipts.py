"""The private container's records: one receipt per Mailgun token, one record per replied-to message.

Mailgun signs the token, not the body, so a captured (timestamp, token, signature) could
carry any content. A token is therefore good for one message: its second use gets the
answer recorded for the first, never new content. A message that got a reply also has a
record (its Message-Id, sender, objects and the reply's id) under a key derived from its
Message-Id and sender: a redelivery with a new token finds it and sends no second reply,
and a `delete` reply to our reply finds the objects to take down. Both live in the storage
backend, so every worker and instance shares them.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from libcloud.storage.types import ObjectDoesNotExistError

from .message import InboundMessage
from .spool import SpoolFolder
from .storage import Store, unavailable_on_failure


def _token_name(token: str) -> str:
    return "token-" + hashlib.sha256(token.encode()).hexdigest() + ".json"


def _record_name(key: str) -> str:
    return f"message-{key}.json"


def message_key(name_key: bytes, message: InboundMessage) -> str:
    """The message's record key: the same for every delivery of it, unguessable without the name key."""
    digest = hmac.new(name_key, f"{message.message_id}\0{message.sender}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def _read(store: Store, name: str) -> dict | None:
    container = store.receipts
    with unavailable_on_failure(store):
        try:
            obj = container.driver.get_object(container.name, name)
        except ObjectDoesNotExistError:
            return None
        raw = b"".join(container.driver.download_object_as_stream(obj))
    try:
        content = json.loads(raw)
    except ValueError:
        return None  # torn by a crash mid-write: as if never written
    return content if isinstance(content, dict) else None


def _write(store: Store, spool: SpoolFolder, name: str, content: dict) -> None:
    file = spool.new_file(limit=1 << 30)
    try:
        file.write(json.dumps(content, separators=(",", ":")).encode())
        file.finish()
        with unavailable_on_failure(store):
            store.receipts.driver.upload_object(file.name, store.receipts, name)  # .json: application/json
    finally:
        file.discard()


def _delete(store: Store, name: str) -> None:
    container = store.receipts
    with unavailable_on_failure(store):
        try:
            container.driver.delete_object(container.driver.get_object(container.name, name))
        except ObjectDoesNotExistError:
            pass


def find_receipt(store: Store, token: str) -> tuple[int, dict] | None:
    """The (status, body) answered to this token before, or None."""
    receipt = _read(store, _token_name(token))
    return None if receipt is None else (receipt["status"], receipt["body"])


def save_receipt(store: Store, spool: SpoolFolder, token: str, status: int, body: dict) -> None:
    """Record the answer given to this token."""
    _write(store, spool, _token_name(token), {"status": status, "body": body})


def find_record(store: Store, key: str) -> dict | None:
    """The record of the message with this key: message_id, sender, publisher, objects, urls, reply_id."""
    return _read(store, _record_name(key))


def save_record(store: Store, spool: SpoolFolder, key: str, record: dict) -> None:
    _write(store, spool, _record_name(key), record)


def delete_record(store: Store, key: str) -> None:
    _delete(store, _record_name(key))
