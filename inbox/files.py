"""Serves the local store's public container at /files/<container>/<name>, and nothing else.

Only names the webhook makes (`<uuid>.<ext>`) in the configured image container are
served, with the stored type, nosniff and a sandbox policy, so a polyglot file can only
ever be shown as the image it was accepted as.
"""

from __future__ import annotations

import os

from flask import Blueprint, abort, send_file
from libcloud.storage.types import ObjectDoesNotExistError

from .images import CONTENT_TYPES
from .storage import OBJECT_NAME, current_store

bp = Blueprint("files", __name__)


@bp.get("/files/<container>/<name>")
def serve_file(container: str, name: str):
    store = current_store()
    images = store.images
    if not store.serves_files or container != images.name or not OBJECT_NAME.fullmatch(name):
        abort(404)
    try:
        obj = images.driver.get_object(container, name)
    except ObjectDoesNotExistError:
        abort(404)
    response = send_file(
        images.driver.get_object_cdn_url(obj),
        mimetype=obj.extra.get("content_type")
        or CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream"),
        conditional=True,
    )
    response.headers["Content-Disposition"] = obj.extra.get("headers", {}).get("Content-Disposition", "inline")
    response.headers["Cache-Control"] = store.cache_control
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
