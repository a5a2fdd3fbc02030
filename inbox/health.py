"""Liveness and readiness: /healthz answers 200 only while the credentials can read both containers."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .storage import STORAGE_ERRORS, check_access

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    provider = current_app.config["STORAGE_PROVIDER"]
    for key in ("inbox.images", "inbox.receipts"):
        container = current_app.extensions[key]
        try:
            check_access(container)
        except STORAGE_ERRORS as error:
            reason = f"{provider} container {container.name!r} unreachable: {type(error).__name__}"
            return jsonify(status="unavailable", storage=provider, reason=reason), 503
    return jsonify(status="ok", storage=provider)
