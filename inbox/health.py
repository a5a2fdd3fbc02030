"""Liveness and readiness: /healthz answers 200 only while the credentials can read both containers."""
from __future__ import annotations

from flask import Blueprint, jsonify

from .storage import StorageUnavailable, check_access, current_store, unavailable_on_failure

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    store = current_store()
    for container in (store.images, store.receipts):
        try:
            with unavailable_on_failure(store):
                check_access(container)
        except StorageUnavailable as error:
            reason = f"{store.provider} container {container.name!r} unreachable: {error.__cause__.__class__.__name__}"
            return jsonify(status="unavailable", storage=store.provider, reason=reason), 503
    return jsonify(status="ok", storage=store.provider)
