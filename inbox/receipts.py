"""One receipt per Mailgun token: the answer given to it, kept in the private receipts container.

Mailgun signs the token, not the body, so a captured (timestamp, token, signature) could
carry any content. A token is therefore good for one message: its second use gets the
answer recorded for the first, never new content. The receipts live in the storage
backend, so every worker and instance shares them.
"""
from __future__ import annotations

import hashlib
import json
import tempfile

from libcloud.storage.types import ObjectDoesNotExistError

from .storage import Store, unavailable_on_failure


def _name(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest() + ".json"


def find_receipt(store: Store, token: str) -> tuple[int, dict] | None:
    """The (status, body) answered to this token before, or None."""
    container = store.receipts
    with unavailable_on_failure(store):
        try:
            obj = container.driver.get_object(container.name, _name(token))
        except ObjectDoesNotExistError:
            return None
        receipt = json.loads(b"".join(container.driver.download_object_as_stream(obj)))
    return receipt["status"], receipt["body"]


def save_receipt(store: Store, token: str, status: int, body: dict) -> None:
    """Record the answer given to this token."""
    container = store.receipts
    with unavailable_on_failure(store), tempfile.NamedTemporaryFile(dir=store.spool_folder, prefix="receipt-") as file:
        file.write(json.dumps({"status": status, "body": body}).encode())
        file.flush()
        # No extra: drivers take application/json from the .json name.
        container.driver.upload_object(file.name, container, _name(token))
