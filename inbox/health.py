"""Liveness and readiness: /healthz answers 200 only while a delivery could be taken now.

That is: the spool folder takes a file, the private container takes an object, and the
credentials can read both containers. Anything else is 503 with the reason, so a load
balancer stops sending deliveries to this instance (Mailgun retries them elsewhere or later).
Anyone may ask, so the reason names only the part and the kind of error; the log has the rest.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from .spool import SpoolUnavailable, current_spool_folder
from .storage import StorageUnavailable, check_access, check_writable, current_store, unavailable_on_failure

bp = Blueprint("health", __name__)
log = logging.getLogger("inbox")
SPOOL_PART = "the spool folder takes no files"  # what the reason names when the spool fails, at either step


@bp.get("/healthz")
def healthz():
    store = current_store()
    try:
        probe = current_spool_folder(current_app).new_file(limit=2)
    except SpoolUnavailable as error:
        return _unavailable(store, SPOOL_PART, error)
    try:
        probe.write(b"ok")
        probe.finish()
        check_writable(store, probe.name)
        for container in (store.images, store.receipts):
            with unavailable_on_failure(store):
                check_access(container)
    except SpoolUnavailable as error:
        return _unavailable(store, SPOOL_PART, error)
    except StorageUnavailable as error:
        return _unavailable(store, f"{store.provider} storage", error)
    finally:
        probe.discard()
    return jsonify(status="ok", storage=store.provider)


def _unavailable(store, part: str, error: StorageUnavailable | SpoolUnavailable):
    reason = f"{part}: {error.kind}"
    log.warning("unhealthy reason=%s detail=%s", reason, error)
    return jsonify(status="unavailable", storage=store.provider, reason=reason), 503
